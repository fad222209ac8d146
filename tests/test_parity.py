"""Same value through every path (issues 8 and 9): whatever query() returns for an
expression, query_tuples(), stream() (several chunk sizes), pipeline(), cursor(), an
_oxpg.Operation stepped from Python and oxpg.aio.AsyncClient return too. One table of (SQL expression, expected value) per type family; each
case runs on a fresh client, so no path profits from types another call looked up.

The statistics views (pg_stats: anyarray, aclitem[] values; pg_stats_ext: pg_ndistinct,
pg_dependencies) are compared path against path, and read inside a transaction
block, which the client's own fallbacks must leave usable.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import ipaddress
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import oxpg
import oxpg.aio
from oxpg.types import Range

from support.operation import drive

SCHEMA = f"parity_{uuid.uuid4().hex[:10]}"

# (SQL expression, the value query() returns). {s} is the schema of the test types.
CASES: list[tuple[str, Any]] = [
    # built-in binary decoders
    ("42::int2", 42),
    ("12.5::numeric", decimal.Decimal("12.5")),
    ("1.5::float8", 1.5),
    ("true", True),
    ("'abc'::text", "abc"),
    ("'\\x01ff'::bytea", b"\x01\xff"),
    ("'2020-01-01 00:00+00'::timestamptz", datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)),
    ("'1 day'::interval", datetime.timedelta(days=1)),
    ("'{1,NULL,3}'::int[]", [1, None, 3]),
    ("'{\"a\": [1, null]}'::jsonb", {"a": [1, None]}),
    ("'192.168.0.1/24'::inet", ipaddress.IPv4Interface("192.168.0.1/24")),
    ("'(1,2)'::point", (1.0, 2.0)),
    ("'[1,3)'::int4range", Range(1, 3, "[)")),
    ("'{[1,3)}'::int4multirange", [Range(1, 3, "[)")]),
    ("12.5::money", decimal.Decimal("12.50")),
    ("B'101'", "101"),
    ("'0/16'::pg_lsn", "0/16"),
    ("'(0,1)'::tid", (0, 1)),
    ("ROW(1, 'x', NULL)", (1, "x", None)),
    # catalog types: enums, composites, domains over them, user ranges, hstore
    ("'sad'::{s}.mood", "sad"),
    ("ARRAY['happy', 'sad']::{s}.mood[]", ["happy", "sad"]),
    ("ROW(1, 'x')::{s}.pair", (1, "x")),
    ("ROW(2, 'y')::{s}.pos_pair", (2, "y")),
    ("ARRAY[ROW(1, 'x')::{s}.pair]", [(1, "x")]),
    ("ROW(1, 'sad'::{s}.mood)", (1, "sad")),
    ("'[1.5,2.5)'::{s}.floatrange", "[1.5,2.5)"),
    ("'a=>1, b=>NULL'::hstore", {"a": "1", "b": None}),
    # reg* types, text search, jsonpath, vectors, snapshots: their text forms
    ("'pg_class'::regclass", "pg_class"),
    ("'int4'::regtype", "integer"),
    ("'a:1 b:2'::tsvector", "'a':1 'b':2"),
    ("'a & b'::tsquery", "'a' & 'b'"),
    ("ARRAY['a:1'::tsvector]", "{'a':1}"),
    ("'$.a'::jsonpath", '$."a"'),
    ("'1 2'::int2vector", "1 2"),
    ("'23 25'::oidvector", "23 25"),
    ("'10:20:10,14'::pg_snapshot", "10:20:10,14"),
    # no binary output at all: the statement is read in text form
    ("'=r/postgres'::aclitem", "=r/postgres"),
    ("ARRAY['=r/postgres'::aclitem]", "{=r/postgres}"),
]

Path = Callable[[oxpg.Client, str], list[Any]]


def via_query(c: oxpg.Client, sql: str) -> list[Any]:
    return [row["v"] for row in c.query(sql)]


def via_query_tuples(c: oxpg.Client, sql: str) -> list[Any]:
    return [row[0] for row in c.query_tuples(sql)]


def via_stream(chunk_size: int, tuples: bool) -> Path:
    def run(c: oxpg.Client, sql: str) -> list[Any]:
        with c.stream(sql, chunk_size=chunk_size, tuples=tuples) as rows:
            return [row[0] if tuples else row["v"] for row in rows]

    return run


def via_pipeline(c: oxpg.Client, sql: str) -> list[Any]:
    with c.pipeline() as p:
        before = p.query("SELECT 1 AS v")
        result = p.query(sql)
        tuples = p.query_tuples(sql)
    assert before.result() == [{"v": 1}]
    values = [row["v"] for row in result.result()]
    assert [row[0] for row in tuples.result()] == values
    return values


def via_cursor(c: oxpg.Client, sql: str) -> list[Any]:
    with c.cursor(sql, hold=True) as cur:
        first = cur.fetch(1)
        return [row["v"] for row in first + cur.fetchall()]


def via_operation(c: oxpg.Client, sql: str) -> list[Any]:
    rows, _ = drive(c._start_query(True, sql))
    return [row["v"] for row in rows]  # type: ignore[attr-defined]


def on_the_event_loop(c: oxpg.Client, call: Callable[[oxpg.aio.AsyncClient], Awaitable[Any]]) -> Any:
    """Run call with an AsyncClient over c's own connection (the same session, so the
    same fresh caches), on a new event loop."""

    async def main() -> Any:
        return await call(oxpg.aio.AsyncClient(c._core, asyncio.get_running_loop()))

    return asyncio.run(main())


def via_async(c: oxpg.Client, sql: str) -> list[Any]:
    async def both(ac: oxpg.aio.AsyncClient) -> list[Any]:
        values = [row["v"] for row in await ac.query(sql)]
        assert [row[0] for row in await ac.query_tuples(sql)] == values
        return values

    return on_the_event_loop(c, both)  # type: ignore[no-any-return]


PATHS: dict[str, Path] = {
    "query": via_query,
    "query_tuples": via_query_tuples,
    "stream-1": via_stream(1, False),
    "stream-2-tuples": via_stream(2, True),
    "stream-1000": via_stream(1000, False),
    "pipeline": via_pipeline,
    "cursor": via_cursor,
    "operation": via_operation,
    "async": via_async,
}


# Paths that do not give query()'s value yet, by expression. Each is a strict xfail
# naming the gap, so a fix shows up as XPASS and the entry has to go.
GAPS: dict[str, tuple[set[str], str]] = {}


def gap(path: str, expr: str) -> str | None:
    exprs, reason = GAPS.get(path.split("-")[0], (set(), ""))
    return reason if expr in exprs else None


def case_params() -> list[Any]:
    params = []
    for expr, expected in CASES:
        for path in PATHS:
            reason = gap(path, expr)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(path, expr, expected, marks=marks, id=f"{expr}-{path}"))
    return params


@pytest.fixture(scope="module")
def types(pg: Any) -> Iterator[None]:
    with oxpg.connect(pg.dsn) as c:
        if not c.query("SELECT 1 AS ok FROM pg_catalog.pg_available_extensions WHERE name = 'hstore'"):
            pytest.fail("the hstore extension (contrib) is not installed on the test server")
        c.execute("CREATE EXTENSION IF NOT EXISTS hstore")
        c.execute(f"CREATE SCHEMA {SCHEMA}; "
                  f"CREATE TYPE {SCHEMA}.mood AS ENUM ('happy', 'sad'); "
                  f"CREATE TYPE {SCHEMA}.pair AS (a int, b text); "
                  f"CREATE DOMAIN {SCHEMA}.pos_pair AS {SCHEMA}.pair CHECK ((VALUE).a > 0); "
                  f"CREATE TYPE {SCHEMA}.floatrange AS RANGE (subtype = float8)")
    yield
    with oxpg.connect(pg.dsn) as c:
        c.execute(f"DROP SCHEMA {SCHEMA} CASCADE")


@pytest.fixture
def fresh(dsn: str, types: None) -> Iterator[oxpg.Client]:
    c = oxpg.connect(dsn)
    c.execute("SET TimeZone TO 'UTC'")
    try:
        yield c
    finally:
        c.close()


@pytest.mark.parametrize(("path", "expr", "expected"), case_params())
def test_same_value_through_every_path(fresh: oxpg.Client, path: str, expr: str, expected: Any) -> None:
    # Three rows, so a chunk size of 1 or 2 reads several chunks.
    sql = "SELECT " + expr.replace("{s}", SCHEMA) + " AS v FROM generate_series(1, 3)"
    values = PATHS[path](fresh, sql)
    assert values == [expected] * 3
    assert [type(v) for v in values] == [type(expected)] * 3
    # The client is usable afterwards, and the value has not changed on a second run.
    assert PATHS[path](fresh, sql) == [expected] * 3


@pytest.mark.parametrize("path", PATHS)
def test_anonymous_record_with_a_field_without_binary_output(fresh: oxpg.Client, path: str) -> None:
    # No description says an anonymous record's field types: the server refuses the
    # binary output once the statement runs, and oxpg never runs a statement twice
    # (it may have done something), so every path raises the server's error.
    sql = "SELECT ROW(1, '=r/postgres'::aclitem) AS v FROM generate_series(1, 3)"
    with pytest.raises(oxpg.errors.UndefinedFunction, match="no binary output function"):
        PATHS[path](fresh, sql)
    # Cast to text, as the error's note says, the field comes back.
    assert PATHS[path](fresh, sql.replace("::aclitem", "::aclitem::text")) == [(1, "=r/postgres")] * 3


STATS_VIEWS = {
    "pg_stats": "SELECT * FROM pg_catalog.pg_stats WHERE schemaname = '{s}' ORDER BY attname",
    "pg_stats_ext": "SELECT * FROM pg_catalog.pg_stats_ext WHERE schemaname = '{s}' ORDER BY statistics_name",
    # Every table's statistics: catalog columns' value arrays include aclitem[].
    "pg_stats-all": "SELECT * FROM pg_catalog.pg_stats ORDER BY schemaname, tablename, attname, inherited",
}


@pytest.fixture(scope="module")
def analysed(pg: Any, types: None) -> None:
    with oxpg.connect(pg.dsn) as c:
        c.execute(f"CREATE TABLE {SCHEMA}.measured (a int, b int, c text, d {SCHEMA}.mood); "
                  f"INSERT INTO {SCHEMA}.measured SELECT g % 10, g % 5, 'x' || g % 3, "
                  f"CASE WHEN g % 2 = 0 THEN 'happy' ELSE 'sad' END::{SCHEMA}.mood FROM generate_series(1, 2000) g; "
                  f"CREATE STATISTICS {SCHEMA}.measured_ab (ndistinct, dependencies, mcv) ON a, b "
                  f"FROM {SCHEMA}.measured; "
                  f"ANALYZE {SCHEMA}.measured; ANALYZE pg_catalog.pg_class")


def stats_row_path(path: str) -> Path:
    """A path that returns whole rows (dicts), for views of many columns."""
    if path == "query_tuples":
        return lambda c, sql: [tuple(r) for r in c.query_tuples(sql)]
    if path.startswith("stream"):
        return lambda c, sql: list(c.stream(sql, chunk_size=7))
    if path == "pipeline":
        def run(c: oxpg.Client, sql: str) -> list[Any]:
            with c.pipeline() as p:
                result = p.query(sql)
            return result.result()
        return run
    if path == "operation":
        return lambda c, sql: drive(c._start_query(True, sql))[0]  # type: ignore[return-value]
    if path == "async":
        return lambda c, sql: on_the_event_loop(c, lambda ac: ac.query(sql))  # type: ignore[no-any-return]
    if path == "cursor":
        def fetch(c: oxpg.Client, sql: str) -> list[Any]:
            with c.cursor(sql) as cur:
                return cur.fetchall()
        return fetch
    return lambda c, sql: c.query(sql)


@pytest.mark.parametrize("view", STATS_VIEWS)
@pytest.mark.parametrize(
    "path",
    ["query", "query_tuples", "stream", "pipeline", "cursor", "operation", "async"],
)
def test_statistics_views_through_every_path(fresh: oxpg.Client, analysed: None, view: str, path: str) -> None:
    # Inside a transaction block: a fallback of the client's own (a text form, a
    # catalog lookup) must neither fail the read nor abort the block.
    sql = STATS_VIEWS[view].replace("{s}", SCHEMA)
    expected = fresh.query(sql)
    if view != "pg_stats-all":
        assert expected, "the view has rows for the analysed table"
    with fresh.transaction():
        got = stats_row_path(path)(fresh, sql)
        assert fresh.query_value("SELECT 1") == 1, "the transaction block is still usable"
    if path == "query_tuples":
        expected = [tuple(r.values()) for r in expected]
    assert got == expected
