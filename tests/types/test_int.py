"""Integers: int -> int4 / int8 / numeric by magnitude; int2/int4/int8/oid -> int."""

from __future__ import annotations

import enum
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import oxpg

INT2 = (-(2**15), 2**15 - 1)
INT4 = (-(2**31), 2**31 - 1)
INT8 = (-(2**63), 2**63 - 1)

FAST = settings(max_examples=100, deadline=None)


def expected_param_type(value: int) -> str:
    if INT4[0] <= value <= INT4[1]:
        return "integer"
    if INT8[0] <= value <= INT8[1]:
        return "bigint"
    return "numeric"


@pytest.mark.parametrize(
    "value",
    [0, 1, -1, INT2[0], INT2[1], INT4[0], INT4[1], INT4[0] - 1, INT4[1] + 1, INT8[0], INT8[1], INT8[0] - 1,
     INT8[1] + 1, 2**40, -(2**40), 10**30, -(10**30), 10**100, -(10**100)],
)
def test_param_type_by_magnitude(one, value):
    assert one("SELECT pg_typeof($1)::text AS v", value) == expected_param_type(value)


@pytest.mark.parametrize("value", [INT4[0], INT4[1], INT8[0], INT8[1], 2**40, 10**30, -(10**30), 10**100])
def test_uncast_round_trip(one, value):
    result = one("SELECT $1 AS v", value)
    assert result == value
    if INT8[0] <= value <= INT8[1]:
        assert type(result) is int
    else:
        # Beyond int8 the value travels as numeric and comes back as an exact Decimal.
        assert isinstance(result, Decimal)
        assert result == Decimal(value)
        assert result.as_tuple().exponent == 0


@given(st.integers(*INT2))
@FAST
def test_int2_round_trip(one, value):
    result = one("SELECT $1::int2 AS v", value)
    assert type(result) is int and result == value


@given(st.integers(*INT4))
@example(INT4[0])
@example(INT4[1])
@FAST
def test_int4_round_trip(one, value):
    result = one("SELECT $1::int4 AS v", value)
    assert type(result) is int and result == value


@given(st.integers(*INT8))
@example(INT8[0])
@example(INT8[1])
@example(INT4[1] + 1)
@example(INT4[0] - 1)
@FAST
def test_int8_round_trip(one, value):
    result = one("SELECT $1::int8 AS v", value)
    assert type(result) is int and result == value


@given(st.integers(-(10**60), 10**60))
@example(INT8[1] + 1)
@example(INT8[0] - 1)
@FAST
def test_any_int_round_trip_through_numeric(one, value):
    result = one("SELECT $1::numeric AS v", value)
    assert result == value
    assert result.as_tuple().exponent == 0


@given(st.integers(-(10**40), 10**40))
@FAST
def test_server_reads_the_exact_value(one, value):
    # Against the server's text output, not only a round trip through our own decoder.
    assert one("SELECT $1::text AS v", value) == str(value)


@given(st.integers(*INT8))
@FAST
def test_decode_server_parsed_value(one, value):
    # The server parses the digits (str param); our decoder must agree.
    assert one("SELECT $1::int8 AS v", str(value)) == value
    if INT4[0] <= value <= INT4[1]:
        assert one("SELECT $1::int4 AS v", str(value)) == value
    if INT2[0] <= value <= INT2[1]:
        assert one("SELECT $1::int2 AS v", str(value)) == value


@pytest.mark.parametrize(
    ("cast", "value"),
    [("int2", INT2[1] + 1), ("int2", INT2[0] - 1), ("int4", INT4[1] + 1), ("int4", INT4[0] - 1),
     ("int8", INT8[1] + 1), ("int8", INT8[0] - 1), ("int8", 10**30)],
)
def test_out_of_range_raises_never_wraps(db, cast, value):
    with pytest.raises(oxpg.DataError) as info:
        db.query(f"SELECT $1::{cast} AS v", value)
    assert info.value.sqlstate == "22003"
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_int4_arithmetic_overflow_is_an_error(db):
    # int4 + int4 is computed in int4 by the server: an overflow must surface.
    with pytest.raises(oxpg.DataError):
        db.query("SELECT $1 + $2 AS v", INT4[1], 1)


def test_columns(db):
    db.execute("CREATE TEMP TABLE int_t (a int2, b int4, c int8, d numeric)")
    try:
        rows = [(INT2[0], INT4[0], INT8[0], -(10**30)), (INT2[1], INT4[1], INT8[1], 10**30), (0, 0, 0, 0),
                (None, None, None, None)]
        for r in rows:
            assert db.execute("INSERT INTO int_t VALUES ($1, $2, $3, $4)", *r) == 1
        got = db.query("SELECT a, b, c, d FROM int_t")
        assert [(g["a"], g["b"], g["c"], g["d"]) for g in got] == rows
        # int4 and int8 params compare with every integer column type.
        assert db.query("SELECT count(*) AS n FROM int_t WHERE a = $1", INT2[1]) == [{"n": 1}]
        assert db.query("SELECT count(*) AS n FROM int_t WHERE c = $1", INT8[1]) == [{"n": 1}]
        assert db.query("SELECT count(*) AS n FROM int_t WHERE c = $1", 0) == [{"n": 1}]
        assert db.query("SELECT count(*) AS n FROM int_t WHERE d = $1", 10**30) == [{"n": 1}]
    finally:
        db.execute("DROP TABLE int_t")


def test_oid_is_unsigned(one):
    assert one("SELECT 4294967295::oid AS v") == 4294967295
    assert one("SELECT 0::oid AS v") == 0
    assert one("SELECT 'pg_class'::regclass::oid AS v") == 1259
    assert one("SELECT $1::oid AS v", 2**32 - 1) == 2**32 - 1


class Color(enum.IntEnum):
    RED = 7


class MyInt(int):
    pass


@pytest.mark.parametrize("value", [Color.RED, MyInt(7)])
def test_int_subclasses_are_ints(one, value):
    assert one("SELECT pg_typeof($1)::text AS v", value) == "integer"
    result = one("SELECT $1 AS v", value)
    assert result == 7 and type(result) is int


def test_null(one):
    for cast in ("int2", "int4", "int8", "oid"):
        assert one(f"SELECT NULL::{cast} AS v") is None
