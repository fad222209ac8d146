"""json / jsonb results -> the objects json.loads gives. Parameters: a str is text
for the server to parse, a dict goes as jsonb, oxpg.Json(obj) / oxpg.Jsonb(obj) send
any object as json / jsonb (a list alone would be an array)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oxpg

FAST = settings(max_examples=100, deadline=None)

# jsonb cannot hold \u0000 and rewrites floats as numeric, so keep to values that
# come back equal: ints of any size, modest floats, text without NUL or surrogates.
json_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**30), 10**30),
                         st.floats(min_value=-1e15, max_value=1e15, allow_nan=False), json_text)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(json_text, children, max_size=5)),
    max_leaves=25,
)


@given(json_values)
@settings(max_examples=100, deadline=None)
@pytest.mark.parametrize("cast", ["json", "jsonb"])
def test_round_trip(db, cast, value):
    (row,) = db.query(f"SELECT $1::{cast} AS v", json.dumps(value))
    assert row["v"] == value


@pytest.mark.parametrize("cast", ["json", "jsonb"])
@pytest.mark.parametrize(
    ("text", "expected"),
    [('{"a": [1, 2.5, null, true, false, "x"]}', {"a": [1, 2.5, None, True, False, "x"]}),
     ("[]", []), ("{}", {}), ('"just a string"', "just a string"), ("42", 42), ("null", None),
     ("12345678901234567890123", 12345678901234567890123), ('"\\ud83d\\ude00 é"', "😀 é"),
     ('{"nested": {"deep": [[[]]]}}', {"nested": {"deep": [[[]]]}})],
)
def test_decode(one, cast, text, expected):
    assert one(f"SELECT $1::{cast} AS v", text) == expected


def test_json_keeps_duplicates_as_text_but_jsonb_dedupes(db):
    (row,) = db.query("SELECT $1::json AS j, $1::jsonb AS b", '{"a": 1, "a": 2}')
    # json.loads keeps the last key, like jsonb does.
    assert row == {"j": {"a": 2}, "b": {"a": 2}}


def test_json_may_hold_nul_escape_but_jsonb_refuses(db):
    assert db.query("SELECT $1::json AS v", '"a\\u0000b"') == [{"v": "a\x00b"}]
    with pytest.raises(oxpg.DataError):
        db.query("SELECT $1::jsonb AS v", '"a\\u0000b"')
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_invalid_json_is_a_server_error(db):
    with pytest.raises(oxpg.DataError):
        db.query("SELECT $1::jsonb AS v", "{not json")
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_server_built_json(db):
    (row,) = db.query("SELECT jsonb_build_object('k', $1::int, 'arr', jsonb_build_array($2::text, 1.5)) AS b, "
                      "json_build_object('x', NULL) AS j, to_jsonb($3::numeric) AS n, row_to_json(t) AS r "
                      "FROM (SELECT 1 AS a, 'two' AS b) t", 7, "s", 10**20)
    assert row == {"b": {"k": 7, "arr": ["s", 1.5]}, "j": {"x": None}, "n": 10**20, "r": {"a": 1, "b": "two"}}


def test_large_document(one):
    doc = {"items": [{"id": i, "name": f"item {i}", "tags": ["a", "b"]} for i in range(20_000)]}
    assert one("SELECT $1::jsonb AS v", json.dumps(doc)) == doc


def test_jsonb_column(db):
    db.execute("CREATE TEMP TABLE json_t (j jsonb, k json)")
    try:
        db.execute("INSERT INTO json_t VALUES ($1, $2)", '{"b": 1, "a": [1]}', '{"b": 1, "a": [1]}')
        assert db.query("SELECT j, k FROM json_t") == [{"j": {"a": [1], "b": 1}, "k": {"a": [1], "b": 1}}]
        assert db.query("SELECT j->'a' AS a, j->>'b' AS b FROM json_t WHERE j @> $1", '{"b": 1}') == [
            {"a": [1], "b": "1"}]
    finally:
        db.execute("DROP TABLE json_t")


def test_null(db):
    (row,) = db.query("SELECT NULL::json AS a, NULL::jsonb AS b, 'null'::jsonb AS c")
    assert row == {"a": None, "b": None, "c": None}


# ------------------------------------------------ dict, Json and Jsonb parameters


@given(st.dictionaries(json_text, json_values, max_size=5))
@FAST
def test_dict_param_round_trip(db, value):
    (row,) = db.query("SELECT $1 AS v, pg_typeof($1)::text AS t", value)
    assert row == {"v": value, "t": "jsonb"}


@given(json_values)
@FAST
def test_wrappers_round_trip(db, value):
    (row,) = db.query("SELECT $1 AS j, pg_typeof($1)::text AS jt, $2 AS b, pg_typeof($2)::text AS bt",
                      oxpg.Json(value), oxpg.Jsonb(value))
    assert row == {"j": value, "jt": "json", "b": value, "bt": "jsonb"}


def test_dict_into_columns(db):
    db.execute("CREATE TEMP TABLE jparam_t (j jsonb, k json)")
    try:
        doc = {"name": "é😀", "tags": ["a", "b"], "n": None, "big": 10**30, "nested": {"x": [1.5, True]}}
        db.execute("INSERT INTO jparam_t VALUES ($1, $2)", doc, doc)
        assert db.query("SELECT j, k FROM jparam_t") == [{"j": doc, "k": doc}]
        assert db.query("SELECT count(*) AS n FROM jparam_t WHERE j @> $1", {"tags": ["a"]}) == [{"n": 1}]
        assert db.query("SELECT j -> 'nested' AS v FROM jparam_t WHERE j ? $1", "name") == [{"v": doc["nested"]}]
        # A list is an array, so a JSON array needs a wrapper.
        assert db.query("SELECT count(*) AS n FROM jparam_t WHERE j -> 'tags' = $1", oxpg.Jsonb(["a", "b"])) == [
            {"n": 1}]
    finally:
        db.execute("DROP TABLE jparam_t")


def test_json_keeps_the_dumped_text_jsonb_normalizes(one):
    # json stores the text as dumped (key order, spacing); jsonb its own form.
    assert one("SELECT $1::text AS v", oxpg.Json({"b": 1, "a": 2})) == '{"b": 1, "a": 2}'
    assert one("SELECT $1::text AS v", oxpg.Jsonb({"b": 1, "a": 2})) == '{"a": 2, "b": 1}'
    assert one("SELECT $1::text AS v", {"b": 1, "a": 2}) == '{"a": 2, "b": 1}'


def test_wrapper_with_custom_dumps(one):
    def compact(obj):
        return json.dumps(obj, separators=(",", ":")).encode()  # bytes, like orjson.dumps

    assert one("SELECT $1::text AS v", oxpg.Json({"a": [1, 2]}, dumps=compact)) == '{"a":[1,2]}'
    assert one("SELECT $1 AS v", oxpg.Jsonb({"a": "é"}, dumps=compact)) == {"a": "é"}


def test_wrapper_dumps_returning_something_else(db):
    with pytest.raises(oxpg.DataError, match=r"\$1.*not str or bytes"):
        db.query("SELECT $1 AS v", oxpg.Json(1, dumps=lambda obj: 42))


@pytest.mark.parametrize("bad", [{"a": {1, 2}}, {"a": object()}, oxpg.Json(b"bytes"), {1.5j: 1}],
                         ids=lambda b: repr(b)[:30])
def test_unserializable_is_a_data_error_naming_the_parameter(db, bad):
    with pytest.raises(oxpg.DataError, match=r"\$2"):
        db.query("SELECT $1::int AS a, $2 AS v", 1, bad)
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_nan_in_a_dict_is_refused_by_the_server(db):
    # json.dumps writes NaN, which is not JSON: the server refuses it.
    with pytest.raises(oxpg.DataError):
        db.query("SELECT $1 AS v", {"x": float("nan")})
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_json_arrays(db):
    (row,) = db.query("SELECT $1 AS b, pg_typeof($1)::text AS bt, $2 AS j, pg_typeof($2)::text AS jt",
                      [{"a": 1}, None, {}], [oxpg.Json([1]), oxpg.Json("s")])
    assert row == {"b": [{"a": 1}, None, {}], "bt": "jsonb[]", "j": [[1], "s"], "jt": "json[]"}


def test_wrapper_value_type():
    assert oxpg.Json([1]) == oxpg.Json([1]) != oxpg.Jsonb([1])
    assert repr(oxpg.Jsonb({"a": 1})) == "Jsonb({'a': 1})"
    assert isinstance(oxpg.Jsonb(1), oxpg.Json)
