"""_oxpg.Operation (src/_oxpg/operation.c over src/_oxpg/ops/query_op.c): a statement
driven from Python with select.poll, the way the asyncio client will drive it. It is
the query operation query() is driven through, so values (tests/test_parity.py runs
the whole table through it), errors, the statement cache, COPY refusal, cancel and
drain match the sync client's."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

import oxpg
from oxpg import _oxpg

from support.operation import drive


@pytest.fixture
def other(dsn: str) -> Iterator[oxpg.Client]:
    with oxpg.connect(dsn) as c:
        yield c


VALUES_SQL = (
    "SELECT $1::int + 1 AS i, $2::text AS t, 12.50::numeric AS n, NULL::int AS z, "
    "ARRAY[1, NULL, 3] AS a, timestamptz '2024-03-10 12:00+00' AS ts, $3::bytea AS b, "
    "g AS g FROM generate_series(1, 3) g"
)
VALUES_PARAMS = (41, "é€𝄞", b"\x00\xff")


@pytest.mark.parametrize("as_dicts", [True, False], ids=["dicts", "tuples"])
def test_same_values_as_query(client: oxpg.Client, as_dicts: bool) -> None:
    client.execute("SET TimeZone TO 'Europe/Berlin'")
    rows, seen = drive(client._start_query(as_dicts, VALUES_SQL, *VALUES_PARAMS))
    expected = (client.query if as_dicts else client.query_tuples)(VALUES_SQL, *VALUES_PARAMS)
    assert rows == expected
    assert seen, "an operation that never asked to wait did not really run on the socket"
    first = rows[0] if as_dicts else dict(zip("i t n z a ts b g".split(), rows[0]))
    assert first["i"] == 42 and first["n"] == Decimal("12.50") and first["z"] is None
    assert first["ts"] == dt.datetime(2024, 3, 10, 12, tzinfo=dt.UTC)
    assert first["ts"].utcoffset() == dt.timedelta(hours=1)


def test_server_error_is_raised_by_step_and_the_client_goes_on(client: oxpg.Client) -> None:
    op = client._start_query(True, "SELECT 1 / (g - 2) AS v FROM generate_series(1, 3) g")
    with pytest.raises(oxpg.errors.DivisionByZero):
        drive(op)
    assert op.done
    with pytest.raises(oxpg.InterfaceError, match="failed"):
        op.result()
    assert client.query_value("SELECT 7") == 7


def test_one_statement_in_flight(client: oxpg.Client) -> None:
    op = client._start_query(True, "SELECT pg_sleep(0.2)")
    with pytest.raises(oxpg.InterfaceError, match="busy"):
        client.query("SELECT 1")
    drive(op)
    assert client.query_value("SELECT 1") == 1


def test_interrupt_cancels_on_the_server(client: oxpg.Client, other: oxpg.Client) -> None:
    pid = client.backend_pid
    op = client._start_query(True, "SELECT pg_sleep(30)")
    assert op.step() == _oxpg.IO_WANT_READ
    started = time.monotonic()
    op.interrupt()
    with pytest.raises(oxpg.errors.QueryCanceled):
        drive(op)
    assert time.monotonic() - started < 5, "the cancel did not end the statement"
    state = other.query_value("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)
    assert state == "idle"
    assert client.query_value("SELECT 2") == 2


def test_dropping_a_running_operation_frees_the_client(client: oxpg.Client) -> None:
    op = client._start_query(True, "SELECT pg_sleep(30)")
    op.step()
    started = time.monotonic()
    del op
    assert time.monotonic() - started < 5
    assert client.query_value("SELECT 3") == 3


@pytest.mark.parametrize("sql", ["COPY (SELECT 1) TO STDOUT", "CREATE TEMP TABLE op_copy (a int); COPY op_copy FROM STDIN"])
def test_copy_is_refused_in_step(client: oxpg.Client, sql: str) -> None:
    if ";" in sql:
        client.execute(sql.split(";")[0])
        sql = sql.split(";")[1]
    with pytest.raises(oxpg.NotSupportedError, match="COPY"):
        drive(client._start_query(True, sql))
    assert client.query_value("SELECT 4") == 4


def test_a_large_parameter_goes_out_whole(client: oxpg.Client) -> None:
    """16 MiB is usually more than the socket takes at once, so step() asks for
    IO_WANT_WRITE until it is out; whether it has to depends on how fast the server
    reads, so only the result is asserted."""
    blob = bytes(range(256)) * (64 * 1024)
    sql = "SELECT length($1::bytea) AS n, md5($1::bytea) AS h"
    rows, _ = drive(client._start_query(False, sql, blob))
    assert rows == client.query_tuples(sql, blob)


def test_every_round_trip_of_query_is_stepped(client: oxpg.Client) -> None:
    """An enum needs a catalog lookup, a tsvector its text form, an aclitem text
    results chosen from the statement's description: several round trips, each
    one stepped from Python, giving query()'s rows."""
    client.execute("CREATE TYPE pg_temp.op_mood AS ENUM ('sad', 'happy')")
    for sql in ("SELECT 'happy'::pg_temp.op_mood AS m, 'a:1'::tsvector AS v",
                "SELECT 'oxpg_test=r/oxpg_test'::aclitem AS a"):
        rows, seen = drive(client._start_query(True, sql))
        assert rows == client.query(sql)
        assert seen.count(_oxpg.IO_WANT_READ) >= 2, "more than one round trip was waited for"


def test_statement_cache_is_shared_with_query(client: oxpg.Client) -> None:
    sql = "SELECT $1::int * 2 AS v"
    for i in range(5):
        rows, _ = drive(client._start_query(True, sql, i))
        assert rows == [{"v": 2 * i}]
    assert client.statement_cache_info()["prepared"] >= 1, "the operation prepared it as query() would"
    assert client.query(sql, 21) == [{"v": 42}]
