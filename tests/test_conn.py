"""The one result path (src/_oxpg/conn.c): the bookkeeping every result gets, whichever
call read it (query, execute, stream, pipeline, executemany).

- Schema changes made by this session (DDL, and the rollback of a transaction that
  made them) forget the cached statements, so a cached statement never meets a
  schema it was not prepared for inside a transaction.
- DEALLOCATE ALL / DISCARD ALL empty the cache on every path.
- A statement that changes client_encoding raises InterfaceError itself, commits
  nothing that the other encoding garbled, and the client is back on UTF8.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

import oxpg


@pytest.fixture
def other(dsn: str) -> Iterator[oxpg.Client]:
    with oxpg.connect(dsn) as c:
        yield c


@pytest.fixture
def name() -> str:
    return f"cn_{uuid.uuid4().hex[:12]}"


def prepared_count(client: oxpg.Client) -> int:
    return int(client.query_value("SELECT count(*) FROM pg_prepared_statements"))


def run_until_prepared(client: oxpg.Client, sql: str) -> None:
    before = client.statement_cache_info()["prepared"]
    for _ in range(3):
        client.query(sql)
    assert client.statement_cache_info()["prepared"] == before + 1, "the statement was not prepared"


def assert_utf8(client: oxpg.Client) -> None:
    assert client.query_value("SHOW client_encoding") == "UTF8"
    assert client.query_value("SELECT $1::text", "é€𝄞") == "é€𝄞"


# ---- schema changes made by this session --------------------------------------------------


def test_rolled_back_table_recreated_with_other_columns(client: oxpg.Client, name: str) -> None:
    """The 'roll back after each test' fixture: test A creates a table and queries it,
    is rolled back; test B creates it anew with other columns inside its transaction."""
    sql = f"SELECT * FROM {name}"
    client.execute("BEGIN")
    client.execute(f"CREATE TABLE {name} (a int)")
    client.execute(f"INSERT INTO {name} VALUES (1)")
    run_until_prepared(client, sql)
    client.execute("ROLLBACK")

    client.execute("BEGIN")
    client.execute(f"CREATE TABLE {name} (b text, c int)")
    client.execute(f"INSERT INTO {name} VALUES ('x', 2)")
    assert client.query(sql) == [{"b": "x", "c": 2}]
    client.execute("ROLLBACK")


def test_alter_inside_a_transaction(client: oxpg.Client, other: oxpg.Client, name: str) -> None:
    other.execute(f"CREATE TABLE {name} (a int, b int); INSERT INTO {name} VALUES (1, 2)")
    try:
        sql = f"SELECT * FROM {name}"
        run_until_prepared(client, sql)
        client.execute("BEGIN")
        client.execute(f"ALTER TABLE {name} ALTER b TYPE text")
        assert client.query(sql) == [{"a": 1, "b": "2"}]
        client.execute("ROLLBACK")
        assert client.query(sql) == [{"a": 1, "b": 2}]
    finally:
        other.execute(f"DROP TABLE IF EXISTS {name}")


def test_schema_change_frees_the_server_side_statements(client: oxpg.Client, name: str) -> None:
    run_until_prepared(client, "SELECT 1 AS one")
    assert prepared_count(client) == 1
    client.execute(f"CREATE TEMP TABLE {name} (a int)")
    assert client.statement_cache_info()["size"] == 0
    # Freed before the next statement is prepared: the server never holds more
    # statements than the cache.
    run_until_prepared(client, "SELECT 2 AS two")
    assert prepared_count(client) == 1


# ---- the server dropped our statements ------------------------------------------------------


@pytest.mark.parametrize("path", ["pipeline", "executemany", "stream"])
def test_deallocate_all_on_every_path(client: oxpg.Client, path: str) -> None:
    sql = "SELECT $1::int + 1 AS v"
    for i in range(3):
        client.query(sql, i)
    assert prepared_count(client) == 1
    if path == "pipeline":
        with client.pipeline() as p:
            p.execute("DEALLOCATE ALL")
    elif path == "executemany":
        client.executemany("DEALLOCATE ALL", [()])
    else:
        assert list(client.stream("DEALLOCATE ALL")) == []
    assert client.statement_cache_info()["size"] == 0
    # Inside a transaction a stale cache would fail with 26000 (and abort it).
    client.execute("BEGIN")
    assert client.query(sql, 41) == [{"v": 42}]
    client.execute("COMMIT")


# ---- client_encoding -------------------------------------------------------------------------


def test_encoding_change_in_stream_raises_there(client: oxpg.Client) -> None:
    with pytest.raises(oxpg.InterfaceError, match="client_encoding"):
        list(client.stream("SET client_encoding TO 'LATIN1'"))
    assert_utf8(client)


def test_encoding_change_mid_stream_hands_out_no_garbled_row(client: oxpg.Client) -> None:
    rows = []
    with pytest.raises(oxpg.InterfaceError, match="client_encoding"):
        for row in client.stream("SELECT pg_catalog.set_config('client_encoding', 'LATIN1', false) AS s, 'é' AS v"):
            rows.append(row)
    assert rows == []
    assert_utf8(client)


def test_encoding_change_in_executemany_commits_nothing(client: oxpg.Client, other: oxpg.Client, name: str) -> None:
    other.execute(f"CREATE TABLE {name} (v text)")
    try:
        sql = f"INSERT INTO {name} SELECT $1 FROM (SELECT pg_catalog.set_config('client_encoding', $2, false)) s"
        with pytest.raises(oxpg.InterfaceError, match="client_encoding"):
            client.executemany(sql, [("é", "LATIN1"), ("é", "LATIN1"), ("é", "LATIN1")])
        assert other.query_value(f"SELECT count(*) FROM {name}") == 0
        assert_utf8(client)
        client.execute(f"INSERT INTO {name} VALUES ($1)", "é")
        assert other.query_value(f"SELECT v FROM {name}") == "é"
    finally:
        other.execute(f"DROP TABLE IF EXISTS {name}")


def test_encoding_change_in_a_pipeline_commits_nothing(client: oxpg.Client, other: oxpg.Client, name: str) -> None:
    other.execute(f"CREATE TABLE {name} (v text)")
    try:
        with pytest.raises(oxpg.InterfaceError, match="client_encoding"):
            with client.pipeline() as p:
                p.execute("SET client_encoding TO 'LATIN1'")
                p.execute(f"INSERT INTO {name} VALUES ($1)", "é")
        assert other.query_value(f"SELECT count(*) FROM {name}") == 0
        assert_utf8(client)
    finally:
        other.execute(f"DROP TABLE IF EXISTS {name}")


def test_encoding_change_inside_a_transaction_block(client: oxpg.Client) -> None:
    client.execute("BEGIN")
    with pytest.raises(oxpg.InterfaceError, match="client_encoding"):
        client.executemany("SELECT pg_catalog.set_config('client_encoding', $1, false)", [("LATIN1",)])
    # The block is aborted (the guard failed in it); rolling back is the way out,
    # and undoes the change.
    assert client.transaction_status == oxpg.TransactionStatus.IN_ERROR
    client.execute("ROLLBACK")
    assert_utf8(client)


def test_encoding_change_then_rollback_to_savepoint(client: oxpg.Client) -> None:
    client.execute("BEGIN")
    client.execute("SAVEPOINT s")
    with pytest.raises(oxpg.InterfaceError, match="client_encoding"):
        client.executemany("SELECT pg_catalog.set_config('client_encoding', $1, false)", [("LATIN1",)])
    client.execute("ROLLBACK TO SAVEPOINT s")
    assert_utf8(client)
    client.execute("ROLLBACK")
