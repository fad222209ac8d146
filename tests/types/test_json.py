"""json / jsonb results -> the objects json.loads gives. (Sending a dict as jsonb
belongs to the types issue; here JSON goes up as a str the server parses.)"""

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
