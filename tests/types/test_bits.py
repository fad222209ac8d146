"""bit(n), varbit -> str of '0' and '1', exactly what PostgreSQL prints.
Parameters: a str of '0'/'1' goes as text for the context to parse."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=100, deadline=None)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [("B'10101'", "10101"), ("B'1'::bit(4)", "1000"), ("B''::varbit", ""), ("B'0'", "0"),
     ("B'11111111'", "11111111"), ("B'111111111'", "111111111"), ("B'1010'::bit(3)", "101"),
     ("X'F0A'::varbit", "111100001010"), ("(-1)::bit(32)", "1" * 32), ("5::bit(8)", "00000101"),
     ("repeat('10', 500)::varbit", "10" * 500)],
)
def test_decode(db, expr, expected):
    (row,) = db.query(f"SELECT {expr} AS v, ({expr})::text AS t")
    assert row["v"] == row["t"] == expected


@given(st.text(alphabet="01", max_size=200))
@FAST
def test_round_trip(one, bits):
    assert one("SELECT $1::varbit AS v", bits) == bits


@given(st.text(alphabet="01", min_size=1, max_size=70))
@FAST
def test_fixed_width_pads_and_truncates(one, bits):
    # Casting to bit(n) pads on the right with zeros or truncates (PostgreSQL's rule).
    assert one("SELECT $1::varbit::bit(35) AS v", bits) == (bits + "0" * 35)[:35]


def test_column_and_operators(db):
    db.execute("CREATE TEMP TABLE bits_t (flags bit(8), v varbit)")
    try:
        db.execute("INSERT INTO bits_t VALUES ($1, $2)", "10100000", "1")
        assert db.query("SELECT flags, v, flags & $1::bit(8) AS masked FROM bits_t", "00100000") == [
            {"flags": "10100000", "v": "1", "masked": "00100000"}]
        assert db.query("SELECT get_bit(flags, 0) AS b FROM bits_t") == [{"b": 1}]
    finally:
        db.execute("DROP TABLE bits_t")


def test_arrays_and_null(one):
    assert one("SELECT ARRAY[B'1', NULL, B'01'] AS v") == ["1", None, "01"]
    assert one("SELECT $1::varbit[] AS v", ["1", "0011"]) == ["1", "0011"]
    assert one("SELECT NULL::varbit AS v") is None
