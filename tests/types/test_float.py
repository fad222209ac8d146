"""float <-> float8 (binary IEEE 754), float4 -> float. NaN, +-inf and -0.0 survive."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import oxpg

FAST = settings(max_examples=100, deadline=None)

SPECIALS = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324, 2.2250738585072014e-308,
            1.7976931348623157e308, -1.7976931348623157e308, 0.1, 1 / 3, 1e16, 123456789.123456789]


def same_float(a: float, b: float) -> bool:
    """Bit-for-bit equality up to the NaN payload: NaN == NaN, -0.0 != 0.0."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def to_float32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


@pytest.mark.parametrize("value", SPECIALS, ids=repr)
def test_float8_specials(one, value):
    result = one("SELECT $1::float8 AS v", value)
    assert type(result) is float
    assert same_float(result, value)


@pytest.mark.parametrize("value", SPECIALS, ids=repr)
def test_param_is_float8_without_cast(one, value):
    assert one("SELECT pg_typeof($1)::text AS v", value) == "double precision"
    assert same_float(one("SELECT $1 AS v", value), value)


@given(st.floats(allow_nan=True, allow_infinity=True))
@example(-0.0)
@example(math.nan)
@FAST
def test_float8_round_trip(one, value):
    assert same_float(one("SELECT $1::float8 AS v", value), value)


@given(st.floats(allow_nan=True, allow_infinity=True))
@example(-0.0)
@example(math.inf)
@example(5e-324)
@FAST
def test_server_reads_the_exact_value(one, value):
    # extra_float_digits = 1 (the default since PG 12) prints the shortest text that
    # reads back as the same double, so float(text) must give back the exact value.
    text = one("SELECT $1::float8::text AS v", value)
    assert same_float(float(text), value)


@given(st.floats(allow_nan=True, allow_infinity=True))
@example(-0.0)
@FAST
def test_decode_server_parsed_value(one, value):
    # The server parses repr(value); the binary result must be that same double.
    assert same_float(one("SELECT $1::float8 AS v", repr(value)), value)


@given(st.floats(width=32, allow_nan=True, allow_infinity=True))
@example(-0.0)
@example(3.4028234663852886e38)
@example(1.401298464324817e-45)
@FAST
def test_float4_round_trip(one, value):
    result = one("SELECT $1::float4 AS v", value)
    assert type(result) is float
    assert same_float(result, value)


@given(st.floats(min_value=-3e38, max_value=3e38).filter(lambda x: x == 0 or to_float32(x) != 0))
@FAST
def test_float4_rounds_like_ieee(one, value):
    # float8 -> float4 in the server rounds to nearest (values that would round to 0
    # are an "underflow" error there); the decoder must widen the float4 exactly.
    result = one("SELECT $1::float4 AS v", value)
    assert same_float(result, to_float32(value))


@pytest.mark.parametrize(
    ("literal", "expected"),
    [("'NaN'::float4", math.nan), ("'Infinity'::float4", math.inf), ("'-Infinity'::float4", -math.inf),
     ("'-0'::float4", -0.0), ("1.5::float4", 1.5), ("0.1::float4", to_float32(0.1)),
     ("'NaN'::float8", math.nan), ("'-Infinity'::float8", -math.inf), ("'-0'::float8", -0.0),
     ("1e308::float8 * 10", None)],
)
def test_decode_literals(db, literal, expected):
    if expected is None:
        # float8 overflow in the server is an error, not inf.
        with pytest.raises(oxpg.DataError):
            db.query(f"SELECT {literal} AS v")
        return
    (row,) = db.query(f"SELECT {literal} AS v")
    assert same_float(row["v"], expected)


def test_float4_overflow_is_an_error(db):
    with pytest.raises(oxpg.DataError):
        db.query("SELECT $1::float4 AS v", 1e39)
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


class MyFloat(float):
    pass


def test_float_subclass(one):
    assert one("SELECT pg_typeof($1)::text AS v", MyFloat(2.5)) == "double precision"
    result = one("SELECT $1 AS v", MyFloat(2.5))
    assert result == 2.5 and type(result) is float


def test_float_into_numeric_and_int_columns(db):
    db.execute("CREATE TEMP TABLE float_t (n numeric, r real, d double precision)")
    try:
        assert db.execute("INSERT INTO float_t VALUES ($1, $2, $3)", 1.5, 0.1, math.nan) == 1
        (row,) = db.query("SELECT n, r, d FROM float_t")
        assert str(row["n"]) == "1.5"
        assert row["r"] == to_float32(0.1)
        assert math.isnan(row["d"])
    finally:
        db.execute("DROP TABLE float_t")


@pytest.mark.parametrize("setting", ["-15", "0", "1", "3"])
def test_extra_float_digits_does_not_change_results(client, setting):
    client.execute(f"SET extra_float_digits TO {setting}")
    for v in [0.1, 1 / 3, -0.0, 1e-40, 3.4028234663852886e38, math.inf, -math.inf, math.nan]:
        (row,) = client.query("SELECT $1::float8 AS d, $1::float4 AS f", v)
        assert same_float(row["d"], v)
        assert same_float(row["f"], to_float32(v))
    for v in [1.7976931348623157e308, 5e-324, 2.2250738585072014e-308]:
        (row,) = client.query("SELECT $1::float8 AS d", v)
        assert same_float(row["d"], v)
    (row,) = client.query("SELECT 0.1::float8 AS d, 0.1::float4 AS f, pi() AS p")
    assert row == {"d": 0.1, "f": to_float32(0.1), "p": math.pi}
