"""hstore -> dict[str, str | None] and citext -> str: extension types, found by name
(and send function) in each database's catalog, never by a fixed OID."""

from __future__ import annotations

import pytest

import oxpg


def create_extension(db: oxpg.Client, name: str) -> None:
    available = db.query("SELECT 1 AS ok FROM pg_catalog.pg_available_extensions WHERE name = $1", name)
    if not available:
        pytest.skip(f"the {name} extension is not installed on the test server (contrib)")
    db.execute(f"CREATE EXTENSION IF NOT EXISTS {name}")


@pytest.fixture(scope="module")
def hstore(db):
    create_extension(db, "hstore")
    return db


@pytest.fixture(scope="module")
def citext(db):
    create_extension(db, "citext")
    return db


def test_hstore_is_a_dict(hstore):
    (row,) = hstore.query("""SELECT 'a=>1, b=>NULL, "c d"=>"x,y", ""=>"", "ü"=>"\\\\"'::hstore AS v""")
    assert row == {"v": {"a": "1", "b": None, "c d": "x,y", "": "", "ü": "\\"}}


def test_hstore_empty_null_arrays_records(hstore):
    (row,) = hstore.query("SELECT ''::hstore AS e, NULL::hstore AS n, ARRAY['a=>1'::hstore, NULL] AS arr, "
                          "ROW(1, 'k=>v'::hstore) AS r")
    assert row == {"e": {}, "n": None, "arr": [{"a": "1"}, None], "r": (1, {"k": "v"})}


def test_hstore_param_as_text(hstore):
    assert hstore.query("SELECT $1::hstore -> 'a' AS v", 'a=>"q"') == [{"v": "q"}]


def test_many_pairs(hstore):
    (row,) = hstore.query("SELECT hstore(array_agg('k' || i), array_agg(i::text)) AS v FROM generate_series(1, 500) i")
    assert row["v"] == {f"k{i}": str(i) for i in range(1, 501)}


def test_a_type_named_hstore_that_is_not_the_extension(db):
    # Found by name *and* send function: a domain or another type called hstore in
    # another schema is not decoded as hstore.
    db.execute("CREATE TYPE pg_temp.hstore AS (x int)")
    assert db.query("SELECT ROW(1)::pg_temp.hstore AS v") == [{"v": (1,)}]


def test_citext_is_str(citext):
    (row,) = citext.query("SELECT 'AbC'::citext AS v, ARRAY['x'::citext, NULL] AS a, "
                          "'abc'::citext = 'ABC'::citext AS eq")
    assert row == {"v": "AbC", "a": ["x", None], "eq": True}
