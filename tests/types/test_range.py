"""Ranges and multiranges <-> oxpg.Range (multiranges: lists of Range).

Decoding: int4range, int8range, numrange, daterange, tsrange, tstzrange and their
multiranges, in binary. Parameters: a Range with date, datetime or Decimal bounds goes
as daterange/tsrange/tstzrange/numrange in binary; int bounds, empty ranges and ranges
with no bounds go as text (OID 0) because PostgreSQL has no casts between range types:
the context (a column, `$1::int8range`) picks the type. docs/types.md has the rules.
"""

from __future__ import annotations

import copy
import pickle
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import oxpg
from oxpg import Range

FAST = settings(max_examples=100, deadline=None)
UTC = timezone.utc


# ------------------------------------------------------------------ the Range type


def test_range_attributes():
    r = Range(1, 10)
    assert (r.lower, r.upper, r.lower_inc, r.upper_inc, r.isempty) == (1, 10, True, False, False)
    assert (r.lower_inf, r.upper_inf, r.bounds) == (False, False, "[)")
    r = Range(1, 10, "(]")
    assert (r.lower_inc, r.upper_inc, r.bounds) == (False, True, "(]")
    e = Range(empty=True)
    assert (e.lower, e.upper, e.lower_inc, e.upper_inc, e.isempty, e.lower_inf, e.upper_inf) == (
        None, None, False, False, True, False, False)


def test_infinite_bounds_are_none_and_never_inclusive():
    r = Range(None, 5, "[]")
    assert r.lower is None and r.lower_inf and not r.lower_inc and r.upper_inc
    assert r == Range(None, 5, "(]")
    assert Range() == Range(None, None, "()") and Range().lower_inf and Range().upper_inf


def test_range_equality_and_hash():
    assert Range(1, 2) == Range(1, 2, "[)")
    assert Range(1, 2) != Range(1, 2, "[]")
    assert Range(1, 2) != Range(1, 3)
    assert Range(empty=True) == Range(empty=True) != Range()
    assert Range(1, 2) != (1, 2)
    assert len({Range(1, 2), Range(1, 2), Range(1, 2, "[]"), Range(empty=True), Range(empty=True)}) == 3
    # Python does not canonicalize: PostgreSQL's int4range '[1,2]' is '[1,3)'.
    assert Range(1, 2, "[]") != Range(1, 3)


def test_range_is_immutable():
    r = Range(1, 2)
    with pytest.raises(AttributeError):
        r.lower = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        r._lower = 5  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        del r._upper  # type: ignore[attr-defined]
    assert r == Range(1, 2)


@pytest.mark.parametrize("r", [Range(1, 2), Range(None, date(2024, 1, 1), "(]"), Range(empty=True), Range(),
                               Range(Decimal("1.5"), None)], ids=repr)
def test_range_pickles_and_copies(r):
    assert pickle.loads(pickle.dumps(r)) == r
    assert copy.copy(r) == r and copy.deepcopy(r) == r


def test_range_repr_and_str():
    assert repr(Range(1, 2)) == "Range(1, 2, '[)')"
    assert repr(Range(empty=True)) == "Range(empty=True)"
    assert repr(Range(None, 3, "[]")) == "Range(None, 3, '(]')"
    assert str(Range(1, 2, "[]")) == "[1,2]"
    assert str(Range(None, None)) == "(,)"
    assert str(Range(empty=True)) == "empty"
    assert str(Range("a b", 'c"d')) == '["a b","c\\"d")'


def test_range_contains():
    r = Range(1, 5)
    assert 1 in r and 4 in r and 5 not in r and 0 not in r
    assert 5 in Range(1, 5, "[]") and 1 not in Range(1, 5, "(]")
    assert 10**9 in Range(1, None) and -(10**9) in Range(None, 1)
    assert 1 not in Range(empty=True)


def test_range_rejects_bad_arguments():
    with pytest.raises(ValueError):
        Range(1, 2, "[[")
    with pytest.raises(ValueError):
        Range(1, 2, empty=True)


def test_range_is_generic():
    assert Range[int](1, 2) == Range(1, 2)


# -------------------------------------------------------------------- decoding

DECODE = [
    ("int4range(1, 5)", Range(1, 5)),
    ("int4range(1, 5, '[]')", Range(1, 6)),
    ("int4range(1, 5, '()')", Range(2, 5)),
    ("int4range(NULL, 5)", Range(None, 5)),
    ("int4range(1, NULL, '[]')", Range(1, None)),
    ("int4range(NULL, NULL)", Range(None, None)),
    ("'empty'::int4range", Range(empty=True)),
    ("int4range(3, 3)", Range(empty=True)),
    ("int4range(-2147483648, 2147483647)", Range(-(2**31), 2**31 - 1)),
    ("int8range(-9223372036854775808, 9223372036854775807)", Range(-(2**63), 2**63 - 1)),
    ("int8range(1, 2, '[]')", Range(1, 3)),
    ("numrange(1.5, 2.50)", Range(Decimal("1.5"), Decimal("2.50"))),
    ("numrange(1.5, 2.5, '(]')", Range(Decimal("1.5"), Decimal("2.5"), "(]")),
    ("numrange(NULL, 'Infinity')", Range(None, Decimal("Infinity"))),
    ("numrange(1, 1, '[]')", Range(Decimal(1), Decimal(1), "[]")),
    ("'[2024-01-01,2024-02-01]'::daterange", Range(date(2024, 1, 1), date(2024, 2, 2))),
    ("'[2024-01-01,infinity)'::daterange", Range(date(2024, 1, 1), date.max)),
    ("'(,2024-01-01)'::daterange", Range(None, date(2024, 1, 1))),
    ("'[2024-01-01 10:00,2024-01-01 11:30:00.5]'::tsrange",
     Range(datetime(2024, 1, 1, 10), datetime(2024, 1, 1, 11, 30, 0, 500000), "[]")),
    ("'(2024-01-01 10:00+02,)'::tstzrange", Range(datetime(2024, 1, 1, 8, tzinfo=UTC), None, "()")),
    ("'empty'::tstzrange", Range(empty=True)),
]


@pytest.mark.parametrize(("expr", "expected"), DECODE, ids=[e for e, _ in DECODE])
def test_decode(one, expr, expected):
    result = one(f"SELECT {expr} AS v")
    assert type(result) is Range
    assert result == expected
    # And the bounds have the subtype's Python type (int, Decimal, date, datetime).
    assert type(result.lower) is type(expected.lower) and type(result.upper) is type(expected.upper)


def test_decode_matches_text_form(db):
    # The text form PostgreSQL prints is what str(Range) gives for ints and dates.
    for expr in ("int4range(1, 5)", "int8range(NULL, 7)", "'empty'::int4range", "'[2024-01-01,2024-03-01)'::daterange",
                 "int4range(NULL, NULL)"):
        (row,) = db.query(f"SELECT {expr} AS v, ({expr})::text AS t")
        assert str(row["v"]) == row["t"]


MULTI = [
    ("'{}'::int4multirange", []),
    ("'{[1,3), [5,7]}'::int4multirange", [Range(1, 3), Range(5, 8)]),
    ("'{[1,3), [2,7)}'::int8multirange", [Range(1, 7)]),
    ("'{(,1), [5,)}'::int8multirange", [Range(None, 1), Range(5, None)]),
    ("'{[1.5,2], (3,4)}'::nummultirange", [Range(Decimal("1.5"), Decimal(2), "[]"), Range(Decimal(3), Decimal(4), "()")]),
    ("'{[2024-01-01,2024-01-05), [2024-02-01,2024-02-02]}'::datemultirange",
     [Range(date(2024, 1, 1), date(2024, 1, 5)), Range(date(2024, 2, 1), date(2024, 2, 3))]),
    ("'{[2024-01-01 00:00,2024-01-02 00:00)}'::tsmultirange", [Range(datetime(2024, 1, 1), datetime(2024, 1, 2))]),
    ("'{[2024-01-01 00:00+00,)}'::tstzmultirange", [Range(datetime(2024, 1, 1, tzinfo=UTC), None)]),
    ("'{empty}'::int4multirange", []),
]


@pytest.mark.parametrize(("expr", "expected"), MULTI, ids=[e for e, _ in MULTI])
def test_decode_multirange(one, expr, expected):
    result = one(f"SELECT {expr} AS v")
    assert type(result) is list
    assert result == expected


def test_range_agg_gives_a_multirange(db):
    db.execute("CREATE TEMP TABLE booking (room int, during tsrange)")
    try:
        db.execute("INSERT INTO booking VALUES (1, $1), (1, $2), (1, $3)",
                   Range(datetime(2024, 1, 1, 9), datetime(2024, 1, 1, 10)),
                   Range(datetime(2024, 1, 1, 10), datetime(2024, 1, 1, 11)),
                   Range(datetime(2024, 1, 1, 13), datetime(2024, 1, 1, 14)))
        (row,) = db.query("SELECT range_agg(during) AS busy FROM booking WHERE room = $1", 1)
        assert row["busy"] == [Range(datetime(2024, 1, 1, 9), datetime(2024, 1, 1, 11)),
                               Range(datetime(2024, 1, 1, 13), datetime(2024, 1, 1, 14))]
    finally:
        db.execute("DROP TABLE booking")


@pytest.mark.parametrize(
    ("expr", "expected"),
    [("ARRAY[int4range(1, 2), NULL, 'empty']", [Range(1, 2), None, Range(empty=True)]),
     ("ARRAY[numrange(1, 2)]", [Range(Decimal(1), Decimal(2))]),
     ("ARRAY[ARRAY[daterange('2024-01-01', '2024-01-02')], ARRAY[NULL::daterange]]",
      [[Range(date(2024, 1, 1), date(2024, 1, 2))], [None]]),
     ("ARRAY['[1,2)'::int8range]", [Range(1, 2)]),
     ("ARRAY[tsrange('2024-01-01', NULL)]", [Range(datetime(2024, 1, 1), None)]),
     ("ARRAY[tstzrange(NULL, '2024-01-01 00:00+00')]", [Range(None, datetime(2024, 1, 1, tzinfo=UTC))]),
     ("ARRAY['{[1,2)}'::int4multirange, '{}']", [[Range(1, 2)], []]),
     ("ROW(int4range(1, 2), '{[3,4)}'::int8multirange)", (Range(1, 2), [Range(3, 4)]))],
    ids=range(8),
)
def test_ranges_in_arrays_and_records(one, expr, expected):
    assert one(f"SELECT {expr} AS v") == expected


def test_null(one):
    assert one("SELECT NULL::int4range AS v") is None
    assert one("SELECT NULL::datemultirange AS v") is None


def test_out_of_python_range_bound_raises_data_error(db):
    with pytest.raises(oxpg.DataError, match="far"):
        db.query("SELECT '[2024-01-01,10000-01-01)'::daterange AS far")
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


# ------------------------------------------------------------------ parameters


@pytest.mark.parametrize(
    ("value", "pg_type"),
    [(Range(date(2024, 1, 1), date(2024, 2, 1)), "daterange"),
     (Range(None, date(2024, 2, 1)), "daterange"),
     (Range(datetime(2024, 1, 1), datetime(2024, 1, 2)), "tsrange"),
     (Range(datetime(2024, 1, 1, tzinfo=UTC), None), "tstzrange"),
     (Range(Decimal("1.5"), Decimal("2")), "numrange"),
     (Range(1, Decimal("2.5")), "numrange"),
     (Range(None, Decimal(0)), "numrange")],
    ids=repr,
)
def test_typed_param(one, value, pg_type):
    assert one("SELECT pg_typeof($1)::text AS v", value) == pg_type
    assert one("SELECT $1 AS v", value) == value


@pytest.mark.parametrize("cast", ["int4range", "int8range", "numrange"])
def test_int_range_takes_the_type_of_its_context(db, cast):
    # ints go as text (OID 0): PostgreSQL cannot cast int4range to int8range, so a
    # fixed type would make every int8range column refuse Range(1, 5).
    expected = Range(1, 5) if cast != "numrange" else Range(Decimal(1), Decimal(5))
    assert db.query(f"SELECT $1::{cast} AS v", Range(1, 5)) == [{"v": expected}]
    table = f"r_{cast}"  # one table (and statement text) per range type
    db.execute(f"CREATE TEMP TABLE {table} (r {cast})")
    try:
        big = 7 if cast == "int4range" else 2**40
        db.execute(f"INSERT INTO {table} VALUES ($1), ($2), ($3), ($4)", Range(1, 5), Range(None, big, "(]"),
                   Range(empty=True), Range())
        assert db.query(f"SELECT count(*) AS n FROM {table} WHERE r && $1", Range(4, 10)) == [{"n": 3}]
        assert db.query(f"SELECT count(*) AS n FROM {table} WHERE r && $1", Range(8, 10)) == [{"n": 1 + (big > 8)}]
        rows = [r["r"] for r in db.query(f"SELECT r FROM {table}")]
        assert Range(empty=True) in rows and Range() in rows
    finally:
        db.execute(f"DROP TABLE {table}")


def test_int_range_without_context_is_its_text_form(one):
    assert one("SELECT $1 AS v", Range(1, 5, "[]")) == "[1,5]"


@pytest.mark.parametrize("cast", ["int4range", "int8range", "numrange", "daterange", "tsrange", "tstzrange"])
def test_empty_and_unbounded_with_a_cast(one, cast):
    assert one(f"SELECT $1::{cast} AS v", Range(empty=True)) == Range(empty=True)
    assert one(f"SELECT $1::{cast} AS v", Range()) == Range()
    assert one(f"SELECT $1::{cast} @> NULL AS v", Range()) is None


def test_date_range_with_infinite_date_bound(one):
    r = Range(date(2024, 1, 1), date.max)
    assert one("SELECT upper_inf($1) AS v", r) is False
    assert one("SELECT isfinite(upper($1)) AS v", r) is False
    assert one("SELECT $1 AS v", r) == r


def test_range_params_in_columns_and_operators(db):
    db.execute("CREATE TEMP TABLE rooms (id int, stay daterange, price numrange, slot tstzrange)")
    try:
        stay = Range(date(2024, 5, 1), date(2024, 5, 8))
        price = Range(Decimal("10.00"), Decimal("99.99"), "[]")
        slot = Range(datetime(2024, 5, 1, 14, tzinfo=timezone(timedelta(hours=2))), None)
        db.execute("INSERT INTO rooms VALUES ($1, $2, $3, $4)", 1, stay, price, slot)
        (row,) = db.query("SELECT stay, price, slot FROM rooms WHERE stay && $1 AND price @> $2",
                          Range(date(2024, 5, 7), None), Decimal("50"))
        assert row == {"stay": stay, "price": price, "slot": slot}
        assert row["slot"].lower == datetime(2024, 5, 1, 12, tzinfo=UTC)
        assert db.query("SELECT count(*) AS n FROM rooms WHERE stay @> $1", date(2024, 5, 8)) == [{"n": 0}]
    finally:
        db.execute("DROP TABLE rooms")


def test_array_of_ranges_param(one):
    dates = [Range(date(2024, 1, 1), date(2024, 1, 2)), None, Range(empty=True)]
    assert one("SELECT pg_typeof($1)::text AS v", dates) == "daterange[]"
    assert one("SELECT $1 AS v", dates) == dates
    ints = [Range(1, 2), Range(None, 5), None, Range(empty=True)]
    assert one("SELECT $1::int8range[] AS v", ints) == ints
    assert one("SELECT $1::numrange[] AS v", [Range(1, Decimal("1.5"))]) == [Range(Decimal(1), Decimal("1.5"))]


def test_multirange_param_through_an_array(one):
    # A list is an array; build a multirange from an array of ranges in SQL.
    ranges = [Range(1, 3), Range(5, 8)]
    assert one("SELECT int4multirange(VARIADIC $1::int4range[]) AS v", ranges) == ranges
    assert one("SELECT $1::int4multirange AS v", "{[1,3), [2,4)}") == [Range(1, 4)]


@pytest.mark.parametrize(
    "bad",
    [Range(date(2024, 1, 1), datetime(2024, 1, 2)), Range(datetime(2024, 1, 1), datetime(2024, 1, 2, tzinfo=UTC)),
     Range(1, "x"), Range(Decimal(1), 2.5)],
    ids=repr,
)
def test_mixed_bound_types_are_refused(db, bad):
    with pytest.raises(oxpg.DataError, match=r"\$1.*different types"):
        db.query("SELECT $1::text AS v", bad)
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_mixed_range_types_in_a_list_are_refused(db):
    with pytest.raises(oxpg.DataError, match=r"\$1"):
        db.query("SELECT $1 AS v", [Range(date(2024, 1, 1), None), Range(Decimal(1), None)])


def test_user_defined_range_over_float8(db):
    db.execute("CREATE TYPE pg_temp.floatrange AS RANGE (subtype = float8)")
    # Float bounds go as text; the context parses them. No binary decoder: text form.
    (row,) = db.query("SELECT $1::pg_temp.floatrange AS v", Range(1.5, 2.25, "[]"))
    assert row["v"] == "[1.5,2.25]"


# ------------------------------------------------------------------ round trips


def canonical_discrete(lower, upper, bounds, step):
    """PostgreSQL's canonical form of a discrete range: [lower, upper)."""
    if lower is not None and bounds[0] == "(":
        lower = lower + step
    if upper is not None and bounds[1] == "]":
        upper = upper + step
    if lower is not None and upper is not None and lower >= upper:
        return Range(empty=True)
    return Range(lower, upper, "[)")


def ordered(a, b):
    if a is not None and b is not None and a > b:
        return b, a
    return a, b


BOUNDS = st.sampled_from(["[)", "[]", "()", "(]"])


@given(st.one_of(st.none(), st.integers(-(2**31), 2**31 - 2)), st.one_of(st.none(), st.integers(-(2**31), 2**31 - 2)),
       BOUNDS)
@example(None, None, "[]")
@example(0, 0, "[)")
@example(0, 0, "[]")
@FAST
def test_int4range_round_trip(one, a, b, bounds):
    lower, upper = ordered(a, b)
    assert one("SELECT $1::int4range AS v", Range(lower, upper, bounds)) == canonical_discrete(lower, upper, bounds, 1)


@given(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 2)), st.one_of(st.none(), st.integers(-(2**63), 2**63 - 2)),
       BOUNDS)
@FAST
def test_int8range_round_trip(one, a, b, bounds):
    lower, upper = ordered(a, b)
    assert one("SELECT $1::int8range AS v", Range(lower, upper, bounds)) == canonical_discrete(lower, upper, bounds, 1)


# date.min and date.max are -infinity and infinity (docs/types.md): kept out of the
# bounds here, which PostgreSQL canonicalizes by adding a day.
finite_dates = st.dates(min_value=date(1, 1, 2), max_value=date(9999, 12, 30))


@given(st.one_of(st.none(), finite_dates), st.one_of(st.none(), finite_dates), BOUNDS)
@FAST
def test_daterange_round_trip(one, a, b, bounds):
    lower, upper = ordered(a, b)
    expected = canonical_discrete(lower, upper, bounds, timedelta(days=1))
    assert one("SELECT $1::daterange AS v", Range(lower, upper, bounds)) == expected


decimals = st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**20), max_value=10**20, places=4)


@given(st.one_of(st.none(), decimals), st.one_of(st.none(), decimals), BOUNDS)
@FAST
def test_numrange_round_trip(one, a, b, bounds):
    lower, upper = ordered(a, b)
    value = Range(lower, upper, bounds)
    result = one("SELECT $1::numrange AS v", value)
    if lower is not None and upper is not None and lower == upper and bounds != "[]":
        assert result == Range(empty=True)
    else:
        assert result == value


naive = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))


@given(st.one_of(st.none(), naive), st.one_of(st.none(), naive), BOUNDS, st.booleans())
@FAST
def test_timestamp_ranges_round_trip(one, a, b, bounds, aware):
    lower, upper = ordered(a, b)
    if aware:
        lower = None if lower is None else lower.replace(tzinfo=UTC)
        upper = None if upper is None else upper.replace(tzinfo=UTC)
    value = Range(lower, upper, bounds)
    # (A Range with neither bound has no type of its own: the cast gives it one.)
    result = one(f"SELECT $1::{'tstzrange' if aware else 'tsrange'} AS v", value)
    if lower is not None and upper is not None and lower == upper and bounds != "[]":
        assert result == Range(empty=True)
    else:
        assert result == value
