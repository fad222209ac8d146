"""Types without a binary decoder come back as their PostgreSQL text form (str).

oxpg fetches such values' text forms from the server; the result must be exactly
the string the server gives for `value::text`, for any row count and mixed with
decoded columns and NULLs. Never a crash, never garbage.

The types that gained binary decoders (network, geometric, ranges, money, xid, tid,
...) moved to their own test_<family>.py; the ones left here stay text on purpose
(docs/types.md says why): tsvector/tsquery, reg* (their names are the useful form),
refcursor, and user types without a decoder (a user-defined range type here).
Enums, domains, composites, hstore and citext decode since the client looks them up
in the catalog: test_enum.py, test_domain.py, test_composite.py, test_hstore.py.
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal

import pytest

import oxpg

EXPRESSIONS = [
    "to_tsvector('english', 'The quick brown foxes')", "to_tsquery('english', 'quick & fox')",
    "'pg_class'::regclass", "'int4'::regtype", "'now()'::regprocedure::regproc", "'sum(int4)'::regprocedure",
    "'+(int4,int4)'::regoperator", "'english'::regconfig", "'a'::refcursor", "'abc'::bytea::text::tsvector",
    "'$.a[*] ? (@ > 1)'::jsonpath", "'10:20:10,14,15'::txid_snapshot", "'10:20:10,14,15'::pg_snapshot",
    "'1 2 3'::int2vector", "'1 2'::oidvector",
    # Decoded in binary now, and still equal to their text form:
    "'<a>x</a>'::xml", "B'10101'", "B'1'::bit(4)", "'0/16B6C50'::pg_lsn", "'08:00:2b:01:02:03'::macaddr",
]


@pytest.fixture(scope="module")
def user_types(db):
    db.execute("CREATE TYPE pg_temp.floatrange AS RANGE (subtype = float8)")
    db.execute("CREATE TYPE pg_temp.pair AS (a int, r pg_temp.floatrange)")
    return db


def check_text_form(db, expr):
    (row,) = db.query(f"SELECT {expr} AS v, ({expr})::text AS t")
    assert type(row["v"]) is str, f"{expr} came back as {type(row['v']).__name__}"
    assert row["v"] == row["t"]


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_text_form(db, expr):
    check_text_form(db, expr)


@pytest.mark.parametrize(
    "expr",
    ["'[1.5,2.5)'::pg_temp.floatrange", "ARRAY['[1,2)'::pg_temp.floatrange]",
     # A composite with a field of such a type stays text too (one field's text
     # form cannot be fetched).
     "ROW(1, '[1,2)')::pg_temp.pair", "ARRAY[ROW(1, '(,3]')::pg_temp.pair]"],
)
def test_user_defined_types(user_types, expr):
    check_text_form(user_types, expr)


@pytest.mark.parametrize(
    ("expr", "as_python"),
    [("ROW(1, 'a')", (1, "a")), ("ROW(1, 'a', NULL, ROW(2))", (1, "a", None, (2,))),
     ("ARRAY[ROW(1, 'a')]", [(1, "a")])],
    ids=["record", "nested-record", "record-array"],
)
def test_anonymous_records(db, expr, as_python):
    # Anonymous records (ROW(...), whole-row references) must come back usable:
    # either as their text form or, with a record decoder, as Python values.
    (row,) = db.query(f"SELECT {expr} AS v, ({expr})::text AS t")
    if isinstance(row["v"], str):
        assert row["v"] == row["t"]
    else:
        assert row["v"] == as_python


def test_whole_row_of_a_subquery(db):
    (row,) = db.query("SELECT t AS v, t::text AS s FROM (VALUES (1, 'a b')) AS t(x, y)")
    assert row["v"] in ('(1,"a b")', (1, "a b"))
    assert row["s"] == '(1,"a b")'


@pytest.mark.parametrize(
    "sql",
    ["SELECT ev_action AS v, ev_action::text AS t FROM pg_rewrite LIMIT 1",
     "SELECT relacl AS v, relacl::text AS t FROM pg_class WHERE relacl IS NOT NULL LIMIT 1",
     "SELECT ARRAY['oxpg_test=r/oxpg_test'::aclitem] AS v, ARRAY['oxpg_test=r/oxpg_test'::aclitem]::text AS t"],
    ids=["pg_node_tree", "aclitem-column", "aclitem-array"],
)
def test_types_without_binary_io(db, sql):
    # pg_node_tree has no binary input and aclitem no binary output: such values
    # must still come back as their text form, never as an error.
    (row,) = db.query(sql)
    assert type(row["v"]) is str and row["v"] == row["t"]


def test_column_without_binary_output_runs_the_statement_once(db):
    # The server refuses binary output at the first row, after the statement started:
    # running it again (in text) would repeat what it did so far. A sequence shows it.
    db.execute("DROP SEQUENCE IF EXISTS pg_temp.acl_once; CREATE TEMP SEQUENCE acl_once")
    sql = "SELECT nextval('pg_temp.acl_once') AS n, 'oxpg_test=r/oxpg_test'::aclitem AS a"
    assert db.query(sql) == [{"n": 1, "a": "oxpg_test=r/oxpg_test"}]
    assert db.query(sql) == [{"n": 2, "a": "oxpg_test=r/oxpg_test"}]
    assert db.query_value("SELECT nextval('pg_temp.acl_once')") == 3


def test_column_without_binary_output_inside_a_transaction(db):
    # A failed first try would have aborted the transaction block.
    with db.transaction():
        assert db.query("SELECT 'oxpg_test=r/oxpg_test'::aclitem AS a, $1::int AS n", 5) == [
            {"a": "oxpg_test=r/oxpg_test", "n": 5}
        ]
        assert db.query_value("SELECT 1") == 1


def test_column_without_binary_output_with_the_cache_off(dsn):
    with oxpg.connect(dsn, statement_cache_size=0) as c:
        for _ in range(3):
            assert c.query("SELECT 'oxpg_test=r/oxpg_test'::aclitem AS a") == [{"a": "oxpg_test=r/oxpg_test"}]


def test_text_form_is_the_output_function(db):
    # `::text` is not always the output function (inet::text appends '/32'); the
    # fallback must give what psql and a text-format result show. format('%s') uses
    # the output function.
    (row,) = db.query("SELECT 'pg_catalog.pg_class'::regclass AS v, format('%s', 'pg_class'::regclass) AS t")
    assert row["v"] == row["t"] == "pg_class"


def test_null_and_empty_results(db):
    (row,) = db.query("SELECT NULL::tsvector AS a, NULL::int[] AS b, NULL::regclass AS c")
    assert row == {"a": None, "b": None, "c": None}
    assert db.query("SELECT 'a'::tsvector AS p WHERE false") == []


def test_many_rows_mixed_with_decoded_columns_and_nulls(db):
    # More values than one text batch holds (32767), interleaved with decoded
    # columns and NULLs: every value must land in its own cell.
    rows = db.query(
        "SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE ('w' || i)::tsvector END AS p, i::text AS s, "
        "'10.0.0.0'::inet + i AS ip, CASE WHEN i % 5 = 0 THEN NULL ELSE ('c' || i)::refcursor END AS r "
        "FROM generate_series(1, 40000) AS i ORDER BY i")
    assert len(rows) == 40000
    for r in rows:
        i = r["i"]
        assert r["s"] == str(i)
        assert r["p"] == (None if i % 7 == 0 else f"'w{i}'")
        assert r["r"] == (None if i % 5 == 0 else f"c{i}")
        # inet decodes in binary between the text columns.
        assert r["ip"] == ipaddress.ip_address("10.0.0.0") + i
    assert rows[-1]["ip"] == ipaddress.ip_address("10.0.156.64")


def test_query_tuples_too(db):
    assert db.query_tuples("SELECT 1 AS a, 'x y'::tsvector AS b, 'x' AS c") == [(1, "'x' 'y'", "x")]


def test_session_settings_flow_into_text_forms(client):
    # The text form is produced by the server for this session, as `::text` would:
    # a regclass prints schema-qualified when its schema is not on the search_path.
    (row,) = client.query("SELECT 'pg_catalog.pg_class'::regclass AS v")
    assert row["v"] == "pg_class"
    client.execute("SET search_path TO public")
    (row,) = client.query("SELECT 'pg_catalog.pg_class'::regclass AS v, 'pg_catalog.pg_class'::regclass::text AS t")
    assert row["v"] == row["t"]
    # Binary values do not follow settings: point ignores extra_float_digits, money lc_monetary.
    client.execute("SET lc_monetary TO 'C'; SET extra_float_digits TO 0")
    (row,) = client.query("SELECT point(0.1, 1.0/3) AS v, 1.5::money AS m")
    assert row == {"v": (0.1, 1.0 / 3), "m": Decimal("1.50")}


def test_inside_a_transaction(db):
    db.execute("BEGIN")
    try:
        assert db.query("SELECT 'a'::tsvector AS p") == [{"p": "'a'"}]
        with pytest.raises(oxpg.DataError):
            db.query("SELECT 1 / 0 AS v")
        with pytest.raises(oxpg.errors.InFailedSqlTransaction):
            db.query("SELECT 'a'::tsvector AS p")
    finally:
        db.execute("ROLLBACK")
    assert db.query("SELECT 'a'::tsvector AS p") == [{"p": "'a'"}]


def test_search_path_cannot_change_text_forms(client):
    # The text forms are fetched with SQL oxpg writes itself; a type named "text"
    # earlier in the search_path (here a varchar(1) domain) must not truncate them.
    client.execute("CREATE DOMAIN pg_temp.text AS varchar(1)")
    client.execute("SET search_path TO pg_temp, pg_catalog, public")
    (row,) = client.query("SELECT 'ab cd'::tsvector AS v, format('%s', 'ab cd'::tsvector) AS t")
    assert row["v"] == row["t"] == "'ab' 'cd'"
