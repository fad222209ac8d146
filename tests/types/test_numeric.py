"""numeric <-> decimal.Decimal: exact digits and scale, NaN and +-Infinity.

The oracle is the server's own text output: a decoded Decimal printed in plain
notation (format(d, "f")) must be exactly what `value::text` prints.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import oxpg

FAST = settings(max_examples=100, deadline=None)


def plain(d: Decimal) -> str:
    return format(d, "f")


def scale_of(text: str) -> int:
    return len(text.partition(".")[2])


def check_against_server_text(db, sql, *params) -> Decimal:
    (row,) = db.query(f"SELECT {sql} AS v, ({sql})::text AS t", *params)
    v, t = row["v"], row["t"]
    assert type(v) is Decimal
    assert plain(v) == t
    return v


LITERALS = [
    "0", "0.000", "-0.5", "1.50", "0.0001", "0.00010000", "10000", "9999", "10001", "100000000",
    "-123456789012345678901234567890.123456789", "1e-20", "1e20", "123.456e3", "-1.000000000000000000001",
    "100::numeric(10,3)", "'NaN'::numeric", "'Infinity'::numeric", "'-Infinity'::numeric",
    "repeat('9', 1000)::numeric", "('-' || repeat('7', 1000))::numeric", "('1' || repeat('0', 999))::numeric",
    "('0.' || repeat('0', 999) || '1')::numeric", "(repeat('1', 500) || '.' || repeat('2', 500))::numeric",
    "1::numeric / 3", "2::numeric ^ 1000", "0.1::numeric ^ 100", "sqrt(2::numeric)",
]


@pytest.mark.parametrize("literal", LITERALS)
def test_decode_matches_server_text(db, literal):
    check_against_server_text(db, f"({literal})::numeric")


@pytest.mark.parametrize(
    ("literal", "expected"),
    [("1.50", "1.50"), ("0.0001", "0.0001"), ("-123456789012345678901234567890.123456789",
                                              "-123456789012345678901234567890.123456789"),
     ("0.000", "0.000"), ("'NaN'", "NaN"), ("'Infinity'", "Infinity"), ("'-Infinity'", "-Infinity")],
)
def test_decode_exact_digits_and_scale(one, literal, expected):
    result = one(f"SELECT {literal}::numeric AS v")
    assert str(result) == expected or (result.is_nan() and expected == "NaN")
    assert result.as_tuple() == Decimal(expected).as_tuple()


def test_decode_thousand_digits(one):
    result = one("SELECT repeat('9', 1000)::numeric AS v")
    assert result == Decimal("9" * 1000)
    frac = one("SELECT ('0.' || repeat('0', 999) || '1')::numeric AS v")
    assert frac.as_tuple() == Decimal("1E-1000").as_tuple()


@pytest.mark.parametrize(
    "value",
    ["1.50", "0.0001", "-123456789012345678901234567890.123456789", "0", "0.00", "-1", "1E+1000", "1E-1000",
     "-1E-1000", "12345678901234567890.12345678901234567890", "0.1", "9999.9999", "10000.0001", "1E+4",
     "1.2345E+7", "-0", "-0.00", "0E+5", "NaN", "Infinity", "-Infinity", "1E-16383", "9.999E+131071"],
)
def test_encode(db, value):
    d = Decimal(value)
    assert db.query("SELECT pg_typeof($1)::text AS v", d) == [{"v": "numeric"}]
    result = check_against_server_text(db, "$1::numeric", d)
    if not d.is_finite():
        assert str(result) == str(d)
        return
    assert result == d
    # The scale (digits after the point) is kept; PostgreSQL has no negative exponent
    # scale or negative zero, so 1E+4 comes back as 10000 and -0 as 0.
    assert -result.as_tuple().exponent == max(0, -d.as_tuple().exponent)


def test_encode_keeps_scale(one):
    assert str(one("SELECT $1::numeric AS v", Decimal("1.50"))) == "1.50"
    assert one("SELECT $1::numeric::text AS v", Decimal("1.50")) == "1.50"
    assert one("SELECT scale($1::numeric) AS v", Decimal("0.000100")) == 6


def test_huge_exponents(one):
    assert one("SELECT $1::numeric = 10::numeric ^ 1000 AS v", Decimal("1E+1000")) is True
    assert one("SELECT $1::numeric = 1 / 10::numeric ^ 1000 AS v", Decimal("1E-1000")) is True
    assert one("SELECT $1 AS v", Decimal("1E+1000")) == Decimal("1E+1000")
    assert one("SELECT $1 AS v", Decimal("-1E-1000")) == Decimal("-1E-1000")


@pytest.mark.parametrize("value", ["sNaN", "-sNaN"])
def test_signalling_nan_is_refused(db, value):
    with pytest.raises(oxpg.DataError, match=r"\$1"):
        db.query("SELECT $1::numeric AS v", Decimal(value))
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


@pytest.mark.parametrize("value", ["1E-16384", "1E+131072", "-1E+200000", "1E+999999999"])
def test_beyond_postgresql_range_is_refused(db, value):
    # PostgreSQL stores at most 16383 digits after the point and 131072 before it.
    with pytest.raises(oxpg.DataError, match=r"\$1"):
        db.query("SELECT $1::numeric AS v", Decimal(value))
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


def decimals(max_digits: int = 40, min_exp: int = -60, max_exp: int = 60) -> st.SearchStrategy[Decimal]:
    """Exact Decimals (built from their tuple, so no context rounding)."""
    finite = st.builds(
        lambda sign, digits, exp: Decimal((sign, tuple(int(c) for c in str(digits)), exp)),
        st.integers(0, 1), st.integers(0, 10**max_digits - 1), st.integers(min_exp, max_exp))
    specials = st.sampled_from([Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
    return st.one_of(finite, specials)


@given(decimals())
@example(Decimal("0.0001"))
@example(Decimal("-0.00"))
@example(Decimal("1E+100"))
@example(Decimal("9999E-4"))
@example(Decimal("10000E-4"))
@FAST
def test_round_trip(db, value):
    result = check_against_server_text(db, "$1::numeric", value)
    if not value.is_finite():
        assert str(result) == str(value)
    else:
        assert result == value
        assert -result.as_tuple().exponent == max(0, -value.as_tuple().exponent)


@given(decimals())
@FAST
def test_decode_server_parsed_value(db, value):
    # The server parses str(value) (scientific or not); the decoder must print back
    # exactly the server's text. Independent of our encoder.
    result = check_against_server_text(db, "$1::numeric", str(value))
    if not value.is_finite():
        assert str(result) == str(value)
    else:
        assert result == value


@given(decimals(max_digits=60))
@settings(max_examples=30, deadline=None)
def test_python_decimal_context_does_not_matter(db, value):
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        ctx.traps[decimal.Inexact] = True
        ctx.traps[decimal.Rounded] = True
        ctx.Emax = 10
        ctx.Emin = -10
        (row,) = db.query("SELECT $1::numeric AS v, $1::numeric::text AS t", value)
    assert plain(row["v"]) == row["t"]


def test_int_beyond_int8_as_numeric(one):
    for v in (10**30, -(10**30), 2**63, -(2**63) - 1, 10**200 + 1):
        result = one("SELECT $1 AS v", v)
        assert result == v
        assert isinstance(result, Decimal)
        assert one("SELECT $1::text AS v", v) == str(v)


def test_column_with_typmod(db):
    db.execute("CREATE TEMP TABLE numeric_t (a numeric(10, 3), b numeric)")
    try:
        db.execute("INSERT INTO numeric_t VALUES ($1, $2)", Decimal("1.5"), Decimal("1.500000"))
        (row,) = db.query("SELECT a, b FROM numeric_t")
        assert str(row["a"]) == "1.500"
        assert str(row["b"]) == "1.500000"
        assert db.query("SELECT count(*) AS n FROM numeric_t WHERE b = $1", Decimal("1.5")) == [{"n": 1}]
        with pytest.raises(oxpg.DataError):  # numeric field overflow, 22003
            db.execute("INSERT INTO numeric_t (a) VALUES ($1)", Decimal("1E+10"))
    finally:
        db.execute("DROP TABLE numeric_t")


def test_null(one):
    assert one("SELECT NULL::numeric AS v") is None
    assert one("SELECT $1::numeric AS v", None) is None


@pytest.mark.parametrize(
    "text",
    ["123.45", "-0.001", "1E+5", "1.20E-7", "0E-7", "-0", "NaN", "Infinity", "-Infinity", "9" * 40 + "." + "1" * 20],
)
def test_decimal_parameters_keep_value_and_scale(client, text):
    # Plain Decimals are encoded from their str() form: every notation must survive.
    value = Decimal(text)
    (row,) = client.query("SELECT $1::numeric AS v", value)
    if value.is_nan():
        assert row["v"].is_nan()
        return
    assert row["v"] == value
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < 0:
        # A negative exponent is the scale PostgreSQL keeps ('1.20E-7' has 9 digits).
        assert row["v"].as_tuple().exponent == exponent


def test_decimal_subclass_with_its_own_str_is_encoded_by_value(client):
    class Shown(Decimal):
        def __str__(self) -> str:
            return "not a number"

    assert client.query("SELECT $1::numeric AS v", Shown("2.50")) == [{"v": Decimal("2.50")}]
