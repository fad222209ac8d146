"""money -> decimal.Decimal with two decimals.

money's binary form is an int64 count of the currency's smallest unit; oxpg assumes
two fractional digits (cents), which holds for lc_monetary C/POSIX and most locales.
Under a locale with 0 or 3 (ja_JP, ar_BH) read money as numeric (`m::numeric`):
docs/types.md. A Decimal parameter goes as numeric, which casts to money.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=100, deadline=None)

INT64 = (-(2**63), 2**63 - 1)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [("12.5::money", "12.50"), ("0::money", "0.00"), ("0.01::money", "0.01"), ("(-0.01)::money", "-0.01"),
     ("(-1234567.89)::money", "-1234567.89"), ("1.005::money", "1.01"), ("'92233720368547758.07'::money",
                                                                          "92233720368547758.07"),
     ("'-92233720368547758.08'::money", "-92233720368547758.08"), ("'$1,000.25'::money", "1000.25")],
)
def test_decode(one, expr, expected):
    result = one(f"SELECT {expr} AS v")
    assert type(result) is Decimal
    assert str(result) == expected
    assert result.as_tuple().exponent == -2


@given(st.integers(*INT64))
@example(INT64[0])
@example(INT64[1])
@example(-1)
@FAST
def test_every_cent_survives(one, cents):
    value = Decimal(cents).scaleb(-2)
    # numeric -> money is exact for two decimals; the second value is built from the cents.
    (result, via_int) = one("SELECT ARRAY[$1::money, ($2::numeric * 0.01)::money] AS v", value, cents)
    assert result == via_int == value and str(result) == str(value)


def test_param_and_column(db):
    db.execute("CREATE TEMP TABLE money_t (m money)")
    try:
        db.execute("INSERT INTO money_t VALUES ($1), ($2), ($3)", Decimal("19.99"), "$5.00", 3)
        assert db.query("SELECT m FROM money_t ORDER BY m") == [{"m": Decimal("3.00")}, {"m": Decimal("5.00")},
                                                                 {"m": Decimal("19.99")}]
        assert db.query("SELECT sum(m) AS s FROM money_t") == [{"s": Decimal("27.99")}]
        assert db.query("SELECT count(*) AS n FROM money_t WHERE m > $1::numeric::money", Decimal("4")) == [{"n": 2}]
    finally:
        db.execute("DROP TABLE money_t")


def test_lc_monetary_does_not_change_the_value(client):
    # The binary value is cents whatever the symbol and separators lc_monetary prints.
    client.execute("SET lc_monetary TO 'C'")
    assert client.query("SELECT 1234.5::money AS v, (1234.5::money)::text AS t") == [
        {"v": Decimal("1234.50"), "t": "$1,234.50"}]


def test_array_and_null(one):
    assert one("SELECT ARRAY[1::money, NULL, (-2.5)::money] AS v") == [Decimal("1.00"), None, Decimal("-2.50")]
    assert one("SELECT NULL::money AS v") is None
