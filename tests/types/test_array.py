"""Arrays: results of any decodable element type -> (nested) lists; list/tuple
parameters -> arrays of the elements' common type.

Lower bounds are dropped: a Python list starts at 0 whatever PostgreSQL's index base.
Parameters (docs/types.md): ints take the widest element's type (int4, int8, numeric);
ints beside floats make float8[] (when exact), beside Decimals numeric[]; str lists are
text[]; None elements are NULL; nested lists are dimensions and must be rectangular;
an empty list (or one of only None) goes as the text '{}' with OID 0, for the context
or a cast to type.
"""

from __future__ import annotations

import datetime
import ipaddress
import math
import uuid
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oxpg
from oxpg import Json, Jsonb, Range

FAST = settings(max_examples=100, deadline=None)
UTC = datetime.timezone.utc


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("ARRAY[1, 2, 3]", [1, 2, 3]),
        ("'{1,NULL,3}'::int[]", [1, None, 3]),
        ("'{}'::int[]", []),
        ("'{{1,2},{3,4}}'::int[]", [[1, 2], [3, 4]]),
        ("'{{{1},{2}},{{3},{4}}}'::int8[]", [[[1], [2]], [[3], [4]]]),
        ("ARRAY['a b', 'c\"d', NULL, '', 'NULL', '{,}', 'back\\slash']", ["a b", 'c"d', None, "", "NULL", "{,}", "back\\slash"]),
        ("ARRAY[1.5, NULL]::numeric[]", [Decimal("1.5"), None]),
        ("ARRAY['2024-01-02'::date]", [datetime.date(2024, 1, 2)]),
        ("ARRAY[true, false]", [True, False]),
        ("ARRAY['{\"a\": 1}'::jsonb]", [{"a": 1}]),
        ("'[3:4]={7,8}'::int[]", [7, 8]),
        ("ARRAY[ROW(1, 'a')]", [(1, "a")]),
    ],
)
def test_array_decodes_to_lists(client: oxpg.Client, expr: str, expected: list[object]) -> None:
    assert client.query(f"SELECT {expr} AS v") == [{"v": expected}]


# Arrays of the other families: each decodes like its element (see test_<family>.py).
NEW_FAMILIES = [
    ("ARRAY['10.0.0.1'::inet, NULL]", [ipaddress.ip_address("10.0.0.1"), None]),
    ("ARRAY['10.0.0.0/8'::cidr]", [ipaddress.ip_network("10.0.0.0/8")]),
    ("ARRAY['08:00:2b:01:02:03'::macaddr]", ["08:00:2b:01:02:03"]),
    ("ARRAY['08:00:2b:01:02:03:04:05'::macaddr8]", ["08:00:2b:01:02:03:04:05"]),
    ("ARRAY[B'101', NULL]", ["101", None]),
    ("ARRAY[B'1'::bit(3)]", ["100"]),
    ("ARRAY[B'10'::varbit, B'']", ["10", ""]),
    ("ARRAY[1.5::money, (-2)::money]", [Decimal("1.50"), Decimal("-2.00")]),
    ("ARRAY['0/16B6C50'::pg_lsn]", ["0/16B6C50"]),
    ("ARRAY['7'::xid, NULL]", [7, None]),
    ("ARRAY['7'::xid8]", [7]),
    ("ARRAY['7'::cid]", [7]),
    ("ARRAY['(1,2)'::tid]", [(1, 2)]),
    ("ARRAY[point(1, 2), NULL]", [(1.0, 2.0), None]),
    ("ARRAY['{1,2,3}'::line]", [(1.0, 2.0, 3.0)]),
    ("ARRAY['((0,0),(1,1))'::lseg]", [((0.0, 0.0), (1.0, 1.0))]),
    ("ARRAY['(1,1),(0,0)'::box]", [((1.0, 1.0), (0.0, 0.0))]),
    ("ARRAY['[(0,0),(1,1)]'::path]", [(((0.0, 0.0), (1.0, 1.0)), False)]),
    ("ARRAY['((0,0),(1,1),(1,0))'::polygon]", [((0.0, 0.0), (1.0, 1.0), (1.0, 0.0))]),
    ("ARRAY['<(1,2),3>'::circle]", [((1.0, 2.0), 3.0)]),
    ("ARRAY[int4range(1, 3)]", [Range(1, 3)]),
    ("ARRAY[int8range(1, 3)]", [Range(1, 3)]),
    ("ARRAY[numrange(1, 3)]", [Range(Decimal(1), Decimal(3))]),
    ("ARRAY[daterange('2024-01-01', NULL)]", [Range(datetime.date(2024, 1, 1), None)]),
    ("ARRAY[tsrange(NULL, '2024-01-01')]", [Range(None, datetime.datetime(2024, 1, 1))]),
    ("ARRAY[tstzrange('2024-01-01 00:00+00', NULL)]", [Range(datetime.datetime(2024, 1, 1, tzinfo=UTC), None)]),
    ("ARRAY['{[1,2)}'::int4multirange]", [[Range(1, 2)]]),
    ("ARRAY['{[1,2)}'::int8multirange]", [[Range(1, 2)]]),
    ("ARRAY['{[1,2)}'::nummultirange]", [[Range(Decimal(1), Decimal(2))]]),
    ("ARRAY['{[2024-01-01,2024-01-02)}'::datemultirange]",
     [[Range(datetime.date(2024, 1, 1), datetime.date(2024, 1, 2))]]),
    ("ARRAY['{[2024-01-01,)}'::tsmultirange]", [[Range(datetime.datetime(2024, 1, 1), None)]]),
    ("ARRAY['{[2024-01-01 00:00+00,)}'::tstzmultirange]", [[Range(datetime.datetime(2024, 1, 1, tzinfo=UTC), None)]]),
    ("'{{\"(1,2)\"},{NULL}}'::point[]", [[(1.0, 2.0)], [None]]),
]


@pytest.mark.parametrize(("expr", "expected"), NEW_FAMILIES, ids=[e for e, _ in NEW_FAMILIES])
def test_arrays_of_every_family(one, expr, expected):
    assert one(f"SELECT {expr} AS v") == expected


def test_array_of_undecodable_elements_comes_back_as_text(client: oxpg.Client) -> None:
    # regclass[] has no decoder (reg* types stay names), so the whole array takes the
    # text-form fallback.
    (row,) = client.query("SELECT ARRAY['pg_class'::regclass, 'pg_type'] AS v, "
                          "ARRAY['pg_class'::regclass, 'pg_type']::text AS t")
    assert row["v"] == row["t"] == "{pg_class,pg_type}"


def test_record_with_undecodable_field_raises_data_error(client: oxpg.Client) -> None:
    # tsvector stays text, and a text form cannot be fetched for one field.
    with pytest.raises(oxpg.DataError, match="tsvector .*cannot be fetched inside an array or record"):
        client.query("SELECT ROW(1, 'a b'::tsvector) AS v")
    assert client.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_record_with_new_families_decodes(one):
    assert one("SELECT ROW('10.0.0.1'::inet, point(1, 2), int4range(1, 2), 1.5::money) AS v") == (
        ipaddress.ip_address("10.0.0.1"), (1.0, 2.0), Range(1, 2), Decimal("1.50"))


def test_void_is_none(client: oxpg.Client) -> None:
    assert client.query("SELECT pg_sleep(0) AS v") == [{"v": None}]


# ------------------------------------------------------------------ parameters

ENCODING = [
    ([1, 2, 3], "integer[]"),
    ([0, 2**40], "bigint[]"),
    ([1, -(2**63)], "bigint[]"),
    ([1, 2**63], "numeric[]"),
    ([1, None], "integer[]"),
    ((1, 2), "integer[]"),
    ([True, None], "boolean[]"),
    ([1.5, float("nan")], "double precision[]"),
    ([1, 2.5], "double precision[]"),
    ([Decimal("1.5"), 2], "numeric[]"),
    (["a", None], "text[]"),
    ([b"a", bytearray(b"b"), memoryview(b"c")], "bytea[]"),
    ([datetime.date(2024, 1, 2)], "date[]"),
    ([datetime.datetime(2024, 1, 2)], "timestamp without time zone[]"),
    ([datetime.datetime(2024, 1, 2, tzinfo=UTC)], "timestamp with time zone[]"),
    ([datetime.time(1, 2)], "time without time zone[]"),
    ([datetime.time(1, 2, tzinfo=UTC)], "time with time zone[]"),
    ([datetime.timedelta(1)], "interval[]"),
    ([uuid.UUID(int=1)], "uuid[]"),
    ([{"a": 1}, None], "jsonb[]"),
    ([Json(1), Json([2])], "json[]"),
    ([Jsonb(1), {"b": 2}], "jsonb[]"),
    ([ipaddress.ip_address("::1")], "inet[]"),
    ([ipaddress.ip_network("10.0.0.0/8")], "cidr[]"),
    ([Range(datetime.date(2024, 1, 1), None)], "daterange[]"),
    ([[1, 2], [3, 4]], "integer[]"),
]


@pytest.mark.parametrize(("param", "pg_type"), ENCODING, ids=[repr(p)[:40] for p, _ in ENCODING])
def test_param_type(one, param, pg_type):
    assert one("SELECT pg_typeof($1)::text AS v", param) == pg_type


@pytest.mark.parametrize(
    "value",
    [[1, 2, 3], [1, None, 3], [None, 1], [2**40, -1], [10**30, 1, None], [True, False, None], ["a", "", None, "NULL"],
     ['quote"s', "back\\slash", "{br,aces}", "comma,", " spaced ", "tab\there", "é😀", "x" * 10_000],
     [b"\x00\xff", b""], [1.5, -0.0, float("inf")], [Decimal("1.50"), Decimal("-0"), Decimal("Infinity")],
     [datetime.date(2024, 1, 2), datetime.date.max, datetime.date.min],
     [datetime.datetime(2024, 1, 2, 3, 4, 5, 6), datetime.datetime.max],
     [datetime.time(23, 59, 59, 999999), datetime.time(0)], [datetime.timedelta(days=-1, microseconds=1)],
     [uuid.UUID(int=5), None], [{"a": [1, {"b": None}]}, {}], [[1, 2], [3, 4]], [[[1], [None]], [[3], [4]]],
     [["a", "b"], ["c", None]], [[[[[[1]]]]]]],
    ids=lambda v: repr(v)[:40],
)
def test_round_trip(one, value):
    assert one("SELECT $1 AS v", value) == value


def test_aware_datetimes_keep_their_instants(one):
    tz = datetime.timezone(datetime.timedelta(hours=5, minutes=45))
    values = [datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=tz), datetime.datetime(2000, 1, 1, tzinfo=UTC)]
    assert one("SELECT $1 AS v", values) == values
    times = [datetime.time(1, 2, 3, tzinfo=tz)]
    assert one("SELECT $1 AS v", times) == times


def test_nan_in_float_array(one):
    (result,) = one("SELECT $1 AS v", [float("nan")])
    assert math.isnan(result)


def test_tuple_is_an_array(one):
    assert one("SELECT $1 AS v", (1, 2)) == [1, 2]
    assert one("SELECT $1 AS v", ((1, 2), [3, 4])) == [[1, 2], [3, 4]]


def test_widest_int_wins_whatever_the_order(one):
    assert one("SELECT pg_typeof($1)::text AS v", [2**40, 1]) == "bigint[]"
    assert one("SELECT pg_typeof($1)::text AS v", [[1], [2**40]]) == "bigint[]"
    assert one("SELECT $1 AS v", [1, 2**70]) == [Decimal(1), Decimal(2**70)]


@pytest.mark.parametrize("cast", ["int[]", "int8[]", "text[]", "date[]", "jsonb[]", "int4range[]"])
def test_empty_list_with_a_cast(one, cast):
    assert one(f"SELECT $1::{cast} AS v", []) == []


def test_empty_list_without_a_cast_is_the_text_form(db):
    # OID 0 and the text '{}': the context decides, as with a str; with no context
    # at all the server sees text.
    assert db.query("SELECT $1 AS v", []) == [{"v": "{}"}]
    assert db.query("SELECT $1::int[] AS v, cardinality($1::int[]) AS n", []) == [{"v": [], "n": 0}]
    assert db.query("SELECT $1::int[] AS v", [[], []]) == [{"v": []}]


def test_only_none_goes_as_text_with_nulls(one):
    assert one("SELECT $1::int[] AS v", [None, None]) == [None, None]
    assert one("SELECT $1::text[] AS v", [[None], [None]]) == [[None], [None]]


def test_list_into_columns_and_operators(db):
    db.execute("CREATE TEMP TABLE arr_t (i int4[], b int8[], t text[], d date[], v varchar(5)[], j jsonb[])")
    try:
        # Assignment casts: int4[] into int8[], text[] into varchar[].
        db.execute("INSERT INTO arr_t VALUES ($1, $2, $3, $4, $5, $6)", [1, 2], [3, None], ["x", "y"],
                   [datetime.date(2024, 1, 1)], ["ab"], [{"k": 1}])
        assert db.query("SELECT * FROM arr_t") == [{"i": [1, 2], "b": [3, None], "t": ["x", "y"],
                                                     "d": [datetime.date(2024, 1, 1)], "v": ["ab"],
                                                     "j": [{"k": 1}]}]
        assert db.query("SELECT count(*) AS n FROM arr_t WHERE 2 = ANY($1)", [1, 2]) == [{"n": 1}]
        assert db.query("SELECT count(*) AS n FROM arr_t WHERE i @> $1", [2]) == [{"n": 1}]
        assert db.query("SELECT count(*) AS n FROM arr_t WHERE b @> $1::int8[]", [3]) == [{"n": 1}]
        assert db.query("SELECT count(*) AS n FROM arr_t WHERE t = $1", ["x", "y"]) == [{"n": 1}]
        assert db.query("SELECT unnest($1::int[]) AS x", [5, 6]) == [{"x": 5}, {"x": 6}]
    finally:
        db.execute("DROP TABLE arr_t")


def test_str_list_is_text_array_usable_with_a_cast(one):
    assert one("SELECT $1::date[] AS v", ["2024-01-02", None]) == [datetime.date(2024, 1, 2), None]
    assert one("SELECT $1::int[] AS v", ["1", "2"]) == [1, 2]


@pytest.mark.parametrize(
    "ragged",
    [[[1, 2], [3]], [[1], 2], [1, [2]], [[1], None], [None, [1]], [[[1]], [2]], [[], [1]], [[1], []], ([1], (2, 3))],
    ids=repr,
)
def test_ragged_nesting_is_a_data_error(db, ragged):
    with pytest.raises(oxpg.DataError, match=r"\$2.*rectangular"):
        db.query("SELECT $1::int AS a, $2::int[] AS v", 1, ragged)
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


@pytest.mark.parametrize(
    ("mixed", "names"),
    [([1, "a"], ("int", "str")), (["a", b"b"], ("str", "bytes")), ([True, 1], ("bool", "int")),
     ([1.5, Decimal(1)], ("float", "Decimal")), ([datetime.date(2024, 1, 1), datetime.datetime(2024, 1, 1)],
                                                  ("date", "datetime")),
     ([{"a": 1}, Json(1)], ("dict", "Json")), ([ipaddress.ip_address("::1"), "::1"], ("IPv6Address", "str"))],
    ids=repr,
)
def test_mixed_types_are_a_data_error(db, mixed, names):
    with pytest.raises(oxpg.DataError, match=r"\$1") as info:
        db.query("SELECT $1 AS v", mixed)
    assert all(name in str(info.value) for name in names)
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_naive_and_aware_mixed_is_a_data_error(db):
    for values in ([datetime.datetime(2024, 1, 1), datetime.datetime(2024, 1, 1, tzinfo=UTC)],
                   [datetime.time(1), datetime.time(1, tzinfo=UTC)]):
        with pytest.raises(oxpg.DataError, match=r"\$1.*naive and aware"):
            db.query("SELECT $1 AS v", values)


def test_float_list_refuses_an_int_it_cannot_hold_exactly(db):
    assert db.query("SELECT $1 AS v", [0.5, 2**53]) == [{"v": [0.5, float(2**53)]}]
    with pytest.raises(oxpg.DataError, match=r"\$1.*2\*\*53"):
        db.query("SELECT $1 AS v", [0.5, 2**53 + 1])


def test_too_deep_is_a_data_error(db):
    with pytest.raises(oxpg.DataError, match=r"\$1.*6"):
        db.query("SELECT $1 AS v", [[[[[[[1]]]]]]])


def test_self_containing_list_is_a_data_error(db):
    loop: list[object] = [1]
    loop.append(loop)
    with pytest.raises(oxpg.DataError):
        db.query("SELECT $1 AS v", loop)


@pytest.mark.parametrize("bad", [["a\x00b"], [object()], [[1], [object()]], [{"a": {1}}], [1, 2j]],
                         ids=lambda b: repr(b)[:30])
def test_bad_elements_are_a_data_error_naming_the_parameter(db, bad):
    with pytest.raises(oxpg.DataError, match=r"\$3"):
        db.query("SELECT $1::int AS a, $2::int AS b, $3 AS v", 1, 2, bad)
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_list_changed_by_an_element_callback(db):
    # A tzinfo that empties the list while oxpg walks it: an error, never a crash.
    values: list[object] = []

    class Shrinking(datetime.tzinfo):
        def utcoffset(self, dt):
            values.clear()
            return datetime.timedelta(0)

    values.extend([datetime.datetime(2024, 1, 1, tzinfo=Shrinking()), datetime.datetime(2024, 1, 2, tzinfo=UTC)])
    with pytest.raises(oxpg.DataError, match=r"\$1"):
        db.query("SELECT $1 AS v", values)
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_large_array(one):
    values = list(range(100_000))
    assert one("SELECT $1 AS v", values) == values
    texts = [f"item {i}" for i in range(20_000)]
    assert one("SELECT $1 AS v", texts) == texts


# ------------------------------------------------------------------ round trips

ints = st.integers(-(2**63), 2**63 - 1)
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
floats = st.floats(allow_nan=False)


@given(st.lists(st.one_of(st.none(), ints), max_size=20))
@FAST
def test_int_list_round_trip(one, values):
    assert one("SELECT $1::int8[] AS v", values) == values


@given(st.lists(st.one_of(st.none(), st.integers(-(2**70), 2**70)), max_size=20).filter(
    lambda values: any(v is not None for v in values)))
@FAST
def test_int_list_round_trip_uncast(one, values):
    assert one("SELECT $1 AS v", values) == values


@given(st.lists(st.one_of(st.none(), texts), max_size=20))
@FAST
def test_text_list_round_trip(one, values):
    assert one("SELECT $1::text[] AS v", values) == values


@given(st.lists(st.one_of(st.none(), floats), max_size=20))
@FAST
def test_float_list_round_trip(one, values):
    assert one("SELECT $1::float8[] AS v", values) == values


@given(st.integers(1, 4), st.integers(1, 4), st.data())
@FAST
def test_two_dimensional_round_trip(one, rows, cols, data):
    element = data.draw(st.sampled_from([ints, texts, floats]))
    value = [[data.draw(st.one_of(st.none(), element)) for _ in range(cols)] for _ in range(rows)]
    if all(v is None for row in value for v in row):
        value[0][0] = data.draw(element)
    assert one("SELECT $1 AS v", value) == value
