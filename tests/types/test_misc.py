"""PostgreSQL's own identifiers: pg_lsn -> str, xid/xid8/cid -> int, tid -> (block,
offset); the types left as text on purpose: reg* (names), tsvector/tsquery."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=100, deadline=None)


@pytest.mark.parametrize("lsn", ["0/16B6C50", "0/0", "FFFFFFFF/FFFFFFFF", "1/0", "16/B374D848"])
def test_pg_lsn(db, lsn):
    (row,) = db.query("SELECT $1::pg_lsn AS v, $1::pg_lsn::text AS t", lsn)
    assert row["v"] == row["t"] == lsn


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
@FAST
def test_pg_lsn_any(one, hi, lo):
    text = f"{hi:X}/{lo:X}"
    assert one("SELECT $1::pg_lsn AS v", text) == text


def test_pg_lsn_from_the_server(db):
    (row,) = db.query("SELECT pg_current_wal_lsn() AS v, pg_current_wal_lsn() - '0/0'::pg_lsn AS bytes")
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", row["v"])
    hi, lo = (int(part, 16) for part in row["v"].split("/"))
    assert abs(((hi << 32) | lo) - int(row["bytes"])) < 2**24


@pytest.mark.parametrize(("expr", "expected"), [("'1234'::xid", 1234), ("'4294967295'::xid", 2**32 - 1),
                                                ("'0'::xid", 0), ("'7'::cid", 7), ("'4294967295'::cid", 2**32 - 1),
                                                ("'18446744073709551615'::xid8", 2**64 - 1), ("'5'::xid8", 5)])
def test_xid_cid(one, expr, expected):
    result = one(f"SELECT {expr} AS v")
    assert type(result) is int and result == expected


def test_system_columns(db):
    db.execute("CREATE TEMP TABLE sys_t (x int)")
    try:
        db.execute("INSERT INTO sys_t VALUES (1), (2)")
        rows = db.query("SELECT ctid, xmin, cmin, pg_current_xact_id() AS cur FROM sys_t ORDER BY x")
        assert [r["ctid"] for r in rows] == [(0, 1), (0, 2)]
        assert all(type(r["xmin"]) is int and type(r["cmin"]) is int and type(r["cur"]) is int for r in rows)
        # A tid goes back as text in its own notation.
        assert db.query("SELECT x FROM sys_t WHERE ctid = $1::tid", "(0,2)") == [{"x": 2}]
    finally:
        db.execute("DROP TABLE sys_t")


@pytest.mark.parametrize(("expr", "expected"), [("'(0,0)'::tid", (0, 0)), ("'(4294967295,65535)'::tid",
                                                                           (2**32 - 1, 2**16 - 1))])
def test_tid(one, expr, expected):
    assert one(f"SELECT {expr} AS v") == expected


def test_arrays(one):
    assert one("SELECT ARRAY['0/1'::pg_lsn, NULL] AS v") == ["0/1", None]
    assert one("SELECT ARRAY['1'::xid, '2'] AS v") == [1, 2]
    assert one("SELECT ARRAY['(1,2)'::tid, '(3,4)'] AS v") == [(1, 2), (3, 4)]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [("'pg_class'::regclass", "pg_class"), ("'int4'::regtype", "integer"), ("'now'::regproc", "now"),
     ("'english'::regconfig", "english"), ("ARRAY['int4'::regtype, 'text']", "{integer,text}"),
     ("'a:1 b'::tsvector", "'a':1 'b'"), ("'a & !b'::tsquery", "'a' & !'b'")],
)
def test_left_as_text(one, expr, expected):
    # reg* values are OIDs on the wire; their names are what a user wants to read.
    # (Cast to oid in SQL for the number: `t::oid`.)
    assert one(f"SELECT {expr} AS v") == expected


def test_reg_oid_when_asked(one):
    assert one("SELECT 'pg_class'::regclass::oid AS v") == 1259
