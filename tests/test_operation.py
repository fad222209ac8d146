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


# ---- execute and executemany as operations ------------------------------------------------


def test_execute_gives_the_row_count(client: oxpg.Client) -> None:
    client.execute("CREATE TEMP TABLE op_exec (a int)")
    count, seen = drive(client._start_execute("INSERT INTO op_exec SELECT g FROM generate_series(1, $1::int) g", 5))
    assert count == 5 and seen
    count, _ = drive(client._start_execute("UPDATE op_exec SET a = a + 1; DELETE FROM op_exec WHERE a > 4"))
    assert count == 2, "without parameters several statements run, as execute() runs them"
    assert client.query_value("SELECT count(*) FROM op_exec") == 3


def test_executemany_is_one_batch(client: oxpg.Client, other: oxpg.Client) -> None:
    client.execute("CREATE TABLE IF NOT EXISTS op_many (a int PRIMARY KEY)")
    try:
        # Enough rows for several flushes (the op flushes every 128 rows).
        rows = ((i,) for i in range(1000))
        count, seen = drive(client._start_executemany("INSERT INTO op_many VALUES ($1)", rows))
        assert count == 1000 and seen
        assert other.query_value("SELECT count(*) FROM op_many") == 1000
        op = client._start_executemany("INSERT INTO op_many VALUES ($1)", [(5000,), (5001,), (3,)])
        with pytest.raises(oxpg.errors.UniqueViolation) as excinfo:
            drive(op)
        assert excinfo.value.executemany_row == 3
        assert other.query_value("SELECT count(*) FROM op_many") == 1000, "the failed batch committed nothing"
        assert drive(client._start_executemany("INSERT INTO op_many VALUES ($1)", []))[0] == 0
    finally:
        client.execute("DROP TABLE op_many")


def test_executemany_iterator_error_is_raised_by_step(client: oxpg.Client) -> None:
    def rows() -> Iterator[tuple[int]]:
        yield from ((i,) for i in range(300))
        raise LookupError("the source failed")

    op = client._start_executemany("SELECT $1::int", rows())
    with pytest.raises(LookupError, match="the source failed") as excinfo:
        drive(op)
    assert excinfo.value.executemany_row == 301  # type: ignore[attr-defined]
    assert client.query_value("SELECT 5") == 5


def test_executemany_refuses_copy_before_taking_the_client(client: oxpg.Client) -> None:
    with pytest.raises(oxpg.NotSupportedError, match="COPY"):
        client._start_executemany("COPY (SELECT 1) TO STDOUT", [()])
    assert client.query_value("SELECT 6") == 6


# ---- deadlines: the driver asks, the op times out as the sync client would ----------------


def test_deadline_and_time_out(client: oxpg.Client, other: oxpg.Client) -> None:
    pid = client.backend_pid
    before = time.monotonic()
    op = client._start_query(True, "SELECT pg_sleep(30)", timeout=2.0)
    assert op.deadline is not None and before + 2.0 <= op.deadline <= time.monotonic() + 2.0
    assert op.drain_deadline is None and not op.draining
    op.step()
    op.time_out()
    assert op.draining
    assert op.drain_deadline is not None and op.drain_deadline <= time.monotonic() + 0.2 + 0.01
    with pytest.raises(oxpg.QueryTimeoutError, match="timeout of 2 s"):
        drive(op)
    assert other.query_value("SELECT state FROM pg_stat_activity WHERE pid = $1", pid) == "idle"
    assert client.query_value("SELECT 8") == 8


def test_no_timeout_means_no_deadline(client: oxpg.Client) -> None:
    op = client._start_execute("SELECT 1", timeout=float("inf"))
    assert op.deadline is None
    drive(op)
    assert op.deadline is None and op.done


def test_time_out_mid_executemany_commits_nothing(client: oxpg.Client, other: oxpg.Client) -> None:
    client.execute("CREATE TABLE IF NOT EXISTS op_many_slow (a int)")
    try:
        rows = ((i,) for i in range(100_000))
        op = client._start_executemany("INSERT INTO op_many_slow SELECT $1 FROM pg_sleep(0.001)", rows, timeout=0.5)
        # Step (and so queue) until the server is busy with the batch, then give up.
        for _ in range(3):
            op.step()
        op.time_out()
        with pytest.raises(oxpg.QueryTimeoutError) as excinfo:
            drive(op)
        assert excinfo.value.executemany_row >= 1  # type: ignore[attr-defined]
        assert other.query_value("SELECT count(*) FROM op_many_slow") == 0
        assert client.query_value("SELECT 9") == 9
    finally:
        client.execute("DROP TABLE op_many_slow")


def test_statement_after_an_abandoned_stream_is_stepped(client: oxpg.Client) -> None:
    """A stream leaves libpq's single-row flag set; the next new statement resets
    it with an empty query, one more round trip that the op steps through too."""
    stream = client.stream("SELECT g FROM generate_series(1, 100) g", chunk_size=10)
    next(iter(stream))
    stream.close()
    rows, seen = drive(client._start_query(True, "SELECT $1::int + 40 AS v", 2))
    assert rows == [{"v": 42}]
    assert seen.count(_oxpg.IO_WANT_READ) >= 2
    stream = client.stream("SELECT g FROM generate_series(1, 100) g", chunk_size=10)
    next(iter(stream))
    stream.close()
    count, _ = drive(client._start_executemany("SELECT $1::int", [(1,), (2,)]))
    assert count == 2


def test_the_operation_keeps_its_parameters_alive(client: oxpg.Client) -> None:
    """The encoded parameters point into the argument objects' buffers, and the op
    sends them after its describe round trip: a temporary argument must stay alive
    until then."""
    import gc
    import hashlib

    blob = bytes(range(256)) * 4096
    expected = hashlib.md5(blob).hexdigest()
    sql = "SELECT md5($1::bytea) AS h, $2::text AS t"
    op = client._start_query(False, sql, bytes(blob), "x" * 50_000 + "é")
    del blob
    gc.collect()
    clobber = [bytes([i % 256]) * 1_048_576 for i in range(8)]  # reuse the freed memory
    rows, _ = drive(op)
    del clobber
    assert rows == [(expected, "x" * 50_000 + "é")]
