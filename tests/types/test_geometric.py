"""Geometric types -> tuples of floats.

    point    (x, y)
    line     (a, b, c)                 the line ax + by + c = 0
    lseg     ((x1, y1), (x2, y2))
    box      ((x_high, y_high), (x_low, y_low))   upper-right corner first, as printed
    path     (points, closed)          points a tuple of (x, y); closed a bool
    polygon  points
    circle   ((x, y), r)

Parameters: a tuple is an array, so geometric values go in as str ('(1,2)') with a cast
or a constructor (point($1, $2)).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=100, deadline=None)

DECODE = [
    ("point(1.5, -2)", (1.5, -2.0)),
    ("'(0,0)'::point", (0.0, 0.0)),
    ("'{1,-1,0}'::line", (1.0, -1.0, 0.0)),
    ("line(point(0, 0), point(1, 1))", (1.0, -1.0, 0.0)),
    ("'[(0,0),(1,2)]'::lseg", ((0.0, 0.0), (1.0, 2.0))),
    ("'(3,4),(1,2)'::box", ((3.0, 4.0), (1.0, 2.0))),
    ("'(1,2),(3,4)'::box", ((3.0, 4.0), (1.0, 2.0))),  # PostgreSQL reorders the corners
    ("'[(0,0),(1,1),(2,0)]'::path", (((0.0, 0.0), (1.0, 1.0), (2.0, 0.0)), False)),
    ("'((0,0),(1,1),(2,0))'::path", (((0.0, 0.0), (1.0, 1.0), (2.0, 0.0)), True)),
    ("'(0,0)'::path", (((0.0, 0.0),), True)),
    ("'((0,0),(1,1),(1,0))'::polygon", ((0.0, 0.0), (1.0, 1.0), (1.0, 0.0))),
    ("'(1,1)'::polygon", ((1.0, 1.0),)),
    ("'<(1,2),3>'::circle", ((1.0, 2.0), 3.0)),
    ("circle(point(0, 0), 0.5)", ((0.0, 0.0), 0.5)),
]


@pytest.mark.parametrize(("expr", "expected"), DECODE, ids=[e for e, _ in DECODE])
def test_decode(one, expr, expected):
    assert one(f"SELECT {expr} AS v") == expected


def test_special_floats(one):
    x, y = one("SELECT point('NaN'::float8, '-Infinity'::float8) AS v")
    assert math.isnan(x) and y == -math.inf
    assert one("SELECT point(-0.0::float8, 1e-310::float8) AS v") == (-0.0, 1e-310)


@given(st.floats(allow_nan=False), st.floats(allow_nan=False))
@FAST
def test_point_is_exact(one, x, y):
    # float8 on the wire: every bit survives, unlike the text form.
    assert one("SELECT point($1, $2) AS v", x, y) == (x, y)


@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=1, max_size=10), st.booleans())
@FAST
def test_path_and_polygon_from_text(db, points, closed):
    inner = ",".join(f"({x!r},{y!r})" for x, y in points)
    path = f"({inner})" if closed else f"[{inner}]"
    (row,) = db.query("SELECT $1::path AS p, $2::polygon AS g", path, f"({inner})")
    assert row["p"] == (tuple(points), closed)
    assert row["g"] == tuple(points)


def test_str_params_and_columns(db):
    db.execute("CREATE TEMP TABLE shapes (p point, b box, c circle)")
    try:
        db.execute("INSERT INTO shapes VALUES ($1, $2, $3)", "(1,2)", "(0,0),(4,4)", "<(2,2),1>")
        assert db.query("SELECT p, b, c FROM shapes") == [
            {"p": (1.0, 2.0), "b": ((4.0, 4.0), (0.0, 0.0)), "c": ((2.0, 2.0), 1.0)}]
        assert db.query("SELECT count(*) AS n FROM shapes WHERE b @> point($1, $2)", 1.5, 3.5) == [{"n": 1}]
        assert db.query("SELECT p <-> $1::point AS d FROM shapes", "(4,6)") == [{"d": 5.0}]
    finally:
        db.execute("DROP TABLE shapes")


def test_arrays_and_null(one):
    assert one("SELECT ARRAY[point(1, 2), NULL, point(3, 4)] AS v") == [(1.0, 2.0), None, (3.0, 4.0)]
    assert one("SELECT ARRAY['<(0,0),1>'::circle] AS v") == [((0.0, 0.0), 1.0)]
    assert one("SELECT NULL::polygon AS v") is None
