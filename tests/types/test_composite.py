"""Named composite types come back as tuples (the record wire format) without any
registration: nested composites, arrays of composites, NULL fields, fields of
enum, domain and extension types. Registration (named tuples, dataclasses, as
parameters) is in test_registration.py."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def composites(db):
    db.execute("CREATE TYPE pg_temp.mood AS ENUM ('happy', 'sad')")
    db.execute("CREATE TYPE pg_temp.pair AS (a int, b text, m pg_temp.mood)")
    db.execute("CREATE TYPE pg_temp.outer_t AS (p pg_temp.pair, ps pg_temp.pair[], n numeric)")
    return db


def test_composite_is_a_tuple(composites):
    (row,) = composites.query("SELECT ROW(1, 'x y', 'sad')::pg_temp.pair AS v")
    assert row == {"v": (1, "x y", "sad")}


def test_null_fields_and_null_composite(composites):
    (row,) = composites.query("SELECT ROW(NULL, NULL, NULL)::pg_temp.pair AS v, NULL::pg_temp.pair AS n")
    assert row == {"v": (None, None, None), "n": None}


def test_nested_and_arrays(composites):
    (row,) = composites.query(
        "SELECT ROW(ROW(1, 'a', 'happy'), ARRAY[ROW(2, 'b', NULL)::pg_temp.pair, NULL], 1.5)::pg_temp.outer_t AS v, "
        "ARRAY[ROW(3, 'c', 'sad')::pg_temp.pair] AS a")
    from decimal import Decimal

    assert row == {"v": ((1, "a", "happy"), [(2, "b", None), None], Decimal("1.5")), "a": [(3, "c", "sad")]}


def test_table_rows_and_dropped_columns(composites):
    db = composites
    db.execute("CREATE TEMP TABLE comp_t (a int, gone text, b pg_temp.mood)")
    try:
        db.execute("INSERT INTO comp_t VALUES (1, 'x', 'sad')")
        db.execute("ALTER TABLE comp_t DROP COLUMN gone")
        assert db.query("SELECT t AS v FROM comp_t t") == [{"v": (1, "sad")}]
    finally:
        db.execute("DROP TABLE comp_t")


def test_composite_with_a_text_only_field_stays_text(composites):
    composites.execute("CREATE TYPE pg_temp.tsv_pair AS (a int, v tsvector)")
    (row,) = composites.query("SELECT ROW(1, 'a b')::pg_temp.tsv_pair AS v, ROW(1, 'a b')::pg_temp.tsv_pair::text AS t")
    assert row["v"] == row["t"] == "(1,\"'a' 'b'\")"
