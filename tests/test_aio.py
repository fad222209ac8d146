"""oxpg.aio.AsyncClient (issue 9): the sync client's operations driven by the event
loop. Every test runs on asyncio's loop and on uvloop's. The values are the sync
client's (tests/test_parity.py runs the whole parity table through the async client
too); here: the call family, errors, turn-taking, timeouts, cancellation at each
await point, transactions, connecting."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from support.aio import loop_factories, run
from support.proxy import Proxy

import oxpg
import oxpg.aio

T = TypeVar("T")
Runner = Callable[[Callable[[], Awaitable[T]]], T]

FACTORIES = loop_factories()


@pytest.fixture(params=list(FACTORIES), ids=list(FACTORIES))
def arun(request: pytest.FixtureRequest) -> Runner[Any]:
    """arun(main): run the coroutine function main on a new loop of the kind under test."""
    factory = FACTORIES[request.param]
    return lambda main: run(factory, main)


@pytest.fixture
def other(dsn: str) -> Iterator[oxpg.Client]:
    """A sync connection looking at the async client's session from outside."""
    with oxpg.connect(dsn) as c:
        yield c


def backend_state(other: oxpg.Client, pid: int) -> str | None:
    return other.query_value("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)


VALUES_SQL = (
    "SELECT $1::int + 1 AS i, $2::text AS t, 12.50::numeric AS n, NULL::int AS z, "
    "ARRAY[1, NULL, 3] AS a, timestamptz '2024-03-10 12:00+00' AS ts, $3::bytea AS b, "
    "g AS g FROM generate_series(1, 3) g"
)
VALUES_PARAMS = (41, "é€𝄞", b"\x00\xff")


# ---- the call family ------------------------------------------------------------------------


def test_the_call_family_gives_the_sync_values(arun: Runner[Any], dsn: str, client: oxpg.Client) -> None:
    async def main() -> None:
        async with await oxpg.aio.connect(dsn) as c:
            await c.execute("SET TimeZone TO 'Europe/Berlin'")
            client.execute("SET TimeZone TO 'Europe/Berlin'")
            assert await c.query(VALUES_SQL, *VALUES_PARAMS) == client.query(VALUES_SQL, *VALUES_PARAMS)
            tuples = await c.query_tuples(VALUES_SQL, *VALUES_PARAMS)
            assert tuples == client.query_tuples(VALUES_SQL, *VALUES_PARAMS)
            first = await c.query_one(VALUES_SQL, *VALUES_PARAMS)
            assert first is not None and first["i"] == 42 and first["n"] == Decimal("12.50")
            assert first["ts"] == dt.datetime(2024, 3, 10, 12, tzinfo=dt.UTC)
            assert await c.query_one("SELECT 1 WHERE false") is None
            assert await c.query_value("SELECT $1::text", "x") == "x"
            assert await c.query_value("SELECT 1 WHERE false") is None
            with pytest.raises(oxpg.ProgrammingError, match="no columns"):
                await c.query_value("SELECT")
            await c.execute("CREATE TEMP TABLE aio_t (a int PRIMARY KEY, b text)")
            assert await c.executemany("INSERT INTO aio_t VALUES ($1, $2)", ((i, str(i)) for i in range(500))) == 500
            assert await c.execute("UPDATE aio_t SET b = $1 WHERE a < $2", "low", 10) == 10
            assert await c.execute("DELETE FROM aio_t WHERE a >= 400; DELETE FROM aio_t WHERE a >= 300") == 100
            assert await c.query_value("SELECT count(*) FROM aio_t") == 300
        assert c.closed

    arun(main)


def test_errors_are_the_sync_errors_and_the_client_goes_on(arun: Runner[Any], dsn: str) -> None:
    async def main() -> None:
        async with await oxpg.aio.connect(dsn) as c:
            with pytest.raises(oxpg.errors.DivisionByZero):
                await c.query("SELECT 1 / (g - 2) FROM generate_series(1, 3) g")
            with pytest.raises(oxpg.errors.UndefinedTable):
                await c.execute("SELECT * FROM aio_no_such_table")
            await c.execute("CREATE TEMP TABLE aio_u (a int PRIMARY KEY)")
            with pytest.raises(oxpg.errors.UniqueViolation) as excinfo:
                await c.executemany("INSERT INTO aio_u VALUES ($1)", [(1,), (2,), (1,)])
            assert excinfo.value.executemany_row == 3
            assert await c.query_value("SELECT count(*) FROM aio_u") == 0, "the batch committed nothing"
            with pytest.raises(oxpg.NotSupportedError, match="COPY"):
                await c.query("COPY (SELECT 1) TO STDOUT")
            with pytest.raises(oxpg.DataError):
                await c.query("SELECT $1::text", "nul\x00inside")
            assert await c.query_value("SELECT 1") == 1

    arun(main)


def test_the_statement_cache_is_the_sync_one(arun: Runner[Any], dsn: str) -> None:
    async def main() -> None:
        async with await oxpg.aio.connect(dsn) as c:
            for i in range(4):
                assert await c.query_value("SELECT $1::int * 2", i) == 2 * i
            assert c.statement_cache_info()["prepared"] >= 1

    arun(main)


def test_a_large_parameter_and_result(arun: Runner[Any], dsn: str) -> None:
    """16 MiB out is more than a socket takes at once (the op asks to wait for
    writing); 16 MiB back is more than one read."""
    blob = bytes(range(256)) * (64 * 1024)

    async def main() -> None:
        async with await oxpg.aio.connect(dsn) as c:
            assert await c.query_value("SELECT $1::bytea", blob) == blob

    arun(main)


# ---- one call at a time ------------------------------------------------------------------


def test_concurrent_calls_take_turns(arun: Runner[Any], dsn: str) -> None:
    async def main() -> None:
        async with await oxpg.aio.connect(dsn) as c:
            order: list[int] = []

            async def one(i: int) -> int:
                value = await c.query_value("SELECT $1::int FROM pg_sleep(0.001 * ($1::int % 3))", i)
                order.append(i)
                return value  # type: ignore[no-any-return]

            results = await asyncio.gather(*(one(i) for i in range(50)))
            assert results == list(range(50))
            assert order == list(range(50)), "first come, first served"

    arun(main)


def test_a_task_cancelled_while_waiting_its_turn_gives_it_up(arun: Runner[Any], dsn: str) -> None:
    async def main() -> None:
        async with await oxpg.aio.connect(dsn) as c:
            first = asyncio.ensure_future(c.query_value("SELECT 1 FROM pg_sleep(0.3)"))
            await asyncio.sleep(0.05)
            waiting = asyncio.ensure_future(c.query_value("SELECT 2"))
            third = asyncio.ensure_future(c.query_value("SELECT 3"))
            await asyncio.sleep(0.05)
            waiting.cancel()
            assert await first == 1
            assert await third == 3
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert await c.query_value("SELECT 4") == 4

    arun(main)


def test_a_task_handed_the_turn_as_it_is_cancelled_passes_it_on(arun: Runner[Any], dsn: str) -> None:
    async def main() -> None:
        async with await oxpg.aio.connect(dsn) as c:
            first = asyncio.ensure_future(c.query_value("SELECT 1 FROM pg_sleep(0.2)"))
            await asyncio.sleep(0.05)
            second = asyncio.ensure_future(c.query_value("SELECT 2"))
            third = asyncio.ensure_future(c.query_value("SELECT 3"))
            await asyncio.sleep(0)
            # When the first ends it hands the client to the second, which is
            # cancelled before it runs: the third must still get it.
            first.add_done_callback(lambda _: second.cancel())
            assert await first == 1
            assert await third == 3
            assert second.cancelled()

    arun(main)


# ---- timeouts and cancellation: the statement is cancelled on the server ------------------


def test_timeout_cancels_on_the_server(arun: Runner[Any], dsn: str, other: oxpg.Client) -> None:
    async def main() -> None:
        async with await oxpg.aio.connect(dsn) as c:
            started = time.monotonic()
            with pytest.raises(oxpg.QueryTimeoutError, match="timeout of 0.5 s"):
                await c.query("SELECT pg_sleep(30)", timeout=0.5)
            elapsed = time.monotonic() - started
            assert 0.5 <= elapsed < 0.5 * 1.1 + 0.25, f"raised after {elapsed:.3f} s"
            assert backend_state(other, c.backend_pid) == "idle"
            assert await c.query_value("SELECT 1") == 1

    arun(main)


def test_command_timeout_is_the_default(arun: Runner[Any], dsn: str) -> None:
    async def main() -> None:
        async with await oxpg.aio.connect(dsn, command_timeout=0.3) as c:
            with pytest.raises(oxpg.QueryTimeoutError):
                await c.execute("SELECT pg_sleep(30)")
            assert await c.execute("SELECT pg_sleep(0.5)", timeout=float("inf")) == 1
            with pytest.raises(oxpg.QueryTimeoutError):
                await c.executemany("SELECT pg_sleep($1)", [(0,), (30,)])
            assert await c.query_value("SELECT 1") == 1

    arun(main)


@pytest.mark.parametrize("how", ["task.cancel", "asyncio.timeout", "wait_for"])
def test_cancelling_the_task_cancels_the_statement(arun: Runner[Any], dsn: str, other: oxpg.Client, how: str) -> None:
    async def main() -> None:
        async with await oxpg.aio.connect(dsn) as c:
            started = time.monotonic()
            if how == "task.cancel":
                task = asyncio.ensure_future(c.query("SELECT pg_sleep(30)"))
                await asyncio.sleep(0.3)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            elif how == "asyncio.timeout":
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.3):
                        await c.query("SELECT pg_sleep(30)")
            else:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(c.execute("SELECT pg_sleep(30)"), 0.3)
            assert time.monotonic() - started < 2.0, "the statement was not cancelled on the server"
            assert backend_state(other, c.backend_pid) == "idle"
            assert not c.closed
            assert await c.query_value("SELECT 1") == 1

    arun(main)


def test_cancelling_mid_executemany_commits_nothing(arun: Runner[Any], dsn: str, other: oxpg.Client) -> None:
    other.execute("CREATE TABLE IF NOT EXISTS aio_many (a int)")
    try:
        async def main() -> None:
            async with await oxpg.aio.connect(dsn) as c:
                rows = ((i,) for i in range(100_000))
                task = asyncio.ensure_future(c.executemany("INSERT INTO aio_many SELECT $1 FROM pg_sleep(0.0005)", rows))
                await asyncio.sleep(0.3)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert await c.query_value("SELECT count(*) FROM aio_many") == 0

        arun(main)
        assert other.query_value("SELECT count(*) FROM aio_many") == 0
    finally:
        other.execute("DROP TABLE aio_many")


def test_a_second_cancellation_waits_for_the_drain(arun: Runner[Any], dsn: str) -> None:
    async def main() -> None:
        async with await oxpg.aio.connect(dsn) as c:
            task = asyncio.ensure_future(c.query("SELECT pg_sleep(30)"))
            await asyncio.sleep(0.2)
            task.cancel()
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await c.query_value("SELECT 1") == 1

    arun(main)


def test_cancel_from_another_task(arun: Runner[Any], dsn: str) -> None:
    async def main() -> None:
        async with await oxpg.aio.connect(dsn) as c:
            task = asyncio.ensure_future(c.query("SELECT pg_sleep(30)"))
            await asyncio.sleep(0.3)
            await c.cancel()
            with pytest.raises(oxpg.errors.QueryCanceled):
                await task
            assert await c.query_value("SELECT 1") == 1

    arun(main)


def test_timeout_holds_in_a_network_black_hole(arun: Runner[Any], proxied: tuple[Proxy, str]) -> None:
    """The server cannot hear the cancel: the call still raises at its deadline plus
    the grace, and the connection is given up, as with the sync client."""
    proxy, url = proxied

    async def main() -> None:
        c = await oxpg.aio.connect(url)
        try:
            assert await c.query_value("SELECT 1") == 1
            proxy.black_hole()
            started = time.monotonic()
            with pytest.raises(oxpg.QueryTimeoutError):
                await c.query("SELECT 1", timeout=0.5)
            elapsed = time.monotonic() - started
            assert elapsed < 0.75, f"a 0.5 s timeout raised after {elapsed:.2f} s"
            assert c.closed and c.broken
        finally:
            c.terminate()

    arun(main)


def test_cancelled_in_a_black_hole_within_the_grace(arun: Runner[Any], proxied: tuple[Proxy, str]) -> None:
    proxy, url = proxied

    async def main() -> None:
        c = await oxpg.aio.connect(url)
        try:
            proxy.black_hole()
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await c.query("SELECT 1")
            elapsed = time.monotonic() - started
            assert elapsed < 0.3 + 1.0 + 0.3, f"the drain took {elapsed:.2f} s, more than its grace"
            assert c.closed
        finally:
            c.terminate()

    arun(main)


# ---- transactions -------------------------------------------------------------------------


def test_transaction_blocks(arun: Runner[Any], dsn: str, other: oxpg.Client) -> None:
    other.execute("CREATE TABLE IF NOT EXISTS aio_tx (a int)")
    other.execute("TRUNCATE aio_tx")
    try:
        async def main() -> None:
            async with await oxpg.aio.connect(dsn) as c:
                async with c.transaction():
                    await c.execute("INSERT INTO aio_tx VALUES (1)")
                    assert c.in_transaction
                    assert other.query_value("SELECT count(*) FROM aio_tx") == 0
                assert not c.in_transaction
                assert other.query_value("SELECT count(*) FROM aio_tx") == 1
                with pytest.raises(LookupError):
                    async with c.transaction():
                        await c.execute("INSERT INTO aio_tx VALUES (2)")
                        raise LookupError
                assert other.query_value("SELECT count(*) FROM aio_tx") == 1
                async with c.transaction(isolation="serializable", readonly=False):
                    await c.execute("INSERT INTO aio_tx VALUES (3)")
                    with pytest.raises(ZeroDivisionError):
                        async with c.transaction() as inner:
                            assert inner.savepoint is not None
                            await c.execute("INSERT INTO aio_tx VALUES (4)")
                            raise ZeroDivisionError
                    assert await c.query_value("SELECT current_setting('transaction_isolation')") == "serializable"
                assert sorted(r[0] for r in other.query_tuples("SELECT a FROM aio_tx")) == [1, 3]
                with pytest.raises(oxpg.errors.InFailedSqlTransaction):
                    async with c.transaction():
                        with pytest.raises(oxpg.errors.DivisionByZero):
                            await c.execute("SELECT 1 / 0")
                async with c.transaction() as tx:
                    await c.execute("INSERT INTO aio_tx VALUES (5)")
                    await tx.rollback()
                async with c.transaction() as tx:
                    await c.execute("INSERT INTO aio_tx VALUES (6)")
                    await tx.commit()
                    assert not c.in_transaction
                assert sorted(r[0] for r in other.query_tuples("SELECT a FROM aio_tx")) == [1, 3, 6]

        arun(main)
    finally:
        other.execute("DROP TABLE aio_tx")


def test_a_cancelled_task_inside_a_block_rolls_it_back(arun: Runner[Any], dsn: str, other: oxpg.Client) -> None:
    async def main() -> None:
        async with await oxpg.aio.connect(dsn) as c:
            async def work() -> None:
                async with c.transaction():
                    await c.execute("CREATE TEMP TABLE aio_gone (a int)")
                    await c.execute("SELECT pg_sleep(30)")

            task = asyncio.ensure_future(work())
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not c.in_transaction
            assert backend_state(other, c.backend_pid) == "idle"
            assert await c.query_value("SELECT to_regclass('pg_temp.aio_gone')::text") is None

    arun(main)


# ---- connecting and closing ------------------------------------------------------------------


def test_connect_takes_the_sync_arguments(arun: Runner[Any], pg: Any) -> None:
    async def main() -> None:
        if pg.cluster is None:
            pytest.skip("needs the suite's own cluster for its keywords")
        cl = pg.cluster
        async with await oxpg.aio.connect(
            host=cl.host, port=cl.port, user=cl.user, password=cl.password, db=cl.database, application_name="aio-test"
        ) as c:
            assert await c.query_value("SELECT current_setting('application_name')") == "aio-test"
            assert c.dbname == cl.database and c.backend_pid > 0 and c.server_version >= 100000
            assert "AsyncClient" in repr(c)

    arun(main)


def test_connect_errors(arun: Runner[Any], dsn: str) -> None:
    async def main() -> None:
        with pytest.raises(oxpg.InterfaceError):
            await oxpg.aio.connect(dsn, no_such_option="1")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with pytest.raises(oxpg.OperationalError):
            await oxpg.aio.connect(host="127.0.0.1", port=port, user="x")

    arun(main)


def test_connect_timeout_against_a_silent_listener(arun: Runner[Any]) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts the TCP handshake, never says a word
        port = listener.getsockname()[1]

        async def main() -> None:
            ticks = 0

            async def ticking() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.05)
                    ticks += 1

            ticker = asyncio.ensure_future(ticking())
            started = time.monotonic()
            with pytest.raises(oxpg.OperationalError, match="connect_timeout=2"):
                await oxpg.aio.connect(host="127.0.0.1", port=port, user="x", connect_timeout=2)
            elapsed = time.monotonic() - started
            ticker.cancel()
            assert 2.0 <= elapsed < 3.0
            assert ticks >= 20, "the loop was blocked while connecting"

        arun(main)


def test_a_loop_without_add_reader_is_refused(dsn: str) -> None:
    class NoReaders(asyncio.SelectorEventLoop):
        def add_reader(self, *args: Any) -> None:
            raise NotImplementedError

        def add_writer(self, *args: Any) -> None:
            raise NotImplementedError

    async def main() -> None:
        with pytest.raises(oxpg.InterfaceError, match="add_reader"):
            await oxpg.aio.connect(dsn)

    run(NoReaders, main)


def test_close_waits_for_the_call_in_flight_and_terminate_does_not(arun: Runner[Any], dsn: str) -> None:
    async def main() -> None:
        c = await oxpg.aio.connect(dsn)
        running = asyncio.ensure_future(c.query_value("SELECT 1 FROM pg_sleep(0.3)"))
        await asyncio.sleep(0.05)
        await c.close()
        assert await running == 1
        assert c.closed
        await c.close()  # again: nothing
        with pytest.raises(oxpg.InterfaceError):
            await c.query("SELECT 1")

        c = await oxpg.aio.connect(dsn)
        running = asyncio.ensure_future(c.query_value("SELECT pg_sleep(30)"))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        c.terminate()
        with pytest.raises(oxpg.Error):
            await running
        assert time.monotonic() - started < 1.0
        assert c.closed

    arun(main)


def test_the_loop_is_free_while_a_statement_runs(arun: Runner[Any], dsn: str) -> None:
    async def main() -> None:
        async with await oxpg.aio.connect(dsn) as c:
            ticks = 0

            async def ticking() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.ensure_future(ticking())
            await c.execute("SELECT pg_sleep(0.5)")
            ticker.cancel()
            assert ticks >= 25, f"only {ticks} ticks in 0.5 s: the loop was blocked"

    arun(main)


# ---- the socket is watched for the client's life -------------------------------------------


def test_a_backend_ended_while_idle_is_noticed(arun: Runner[Any], dsn: str, other: oxpg.Client) -> None:
    """Between calls the loop still watches the socket: the server's goodbye closes
    the client at once (no busy loop on a dead socket), the next call raises
    OperationalError, and the socket number, reused by the next connection, works."""

    async def main() -> None:
        c = await oxpg.aio.connect(dsn)
        assert await c.query_value("SELECT 1") == 1
        assert other.query_value("SELECT pg_terminate_backend($1)", c.backend_pid) is True
        for _ in range(100):
            if c.closed:
                break
            await asyncio.sleep(0.01)
        assert c.closed and c.broken
        with pytest.raises(oxpg.OperationalError, match="lost"):
            await c.query("SELECT 1")
        for _ in range(3):
            async with await oxpg.aio.connect(dsn) as again:
                assert await again.query_value("SELECT 2") == 2

    arun(main)


def test_a_connection_lost_mid_call_frees_its_socket_number(arun: Runner[Any], dsn: str, other: oxpg.Client) -> None:
    async def main() -> None:
        c = await oxpg.aio.connect(dsn)
        task = asyncio.ensure_future(c.query("SELECT pg_sleep(30)"))
        await asyncio.sleep(0.2)
        other.query_value("SELECT pg_terminate_backend($1)", c.backend_pid)
        with pytest.raises(oxpg.OperationalError):
            await task
        assert c.closed and c.broken
        for _ in range(3):
            async with await oxpg.aio.connect(dsn) as again:
                assert await again.query_value("SELECT 3") == 3

    arun(main)


def test_notices_between_calls_are_kept(arun: Runner[Any], dsn: str) -> None:
    async def main() -> None:
        async with await oxpg.aio.connect(dsn) as c:
            await c.execute("DO $$BEGIN RAISE NOTICE 'from the server'; END$$")
            assert any("from the server" in str(n) for n in c.take_notices())

    arun(main)


def test_an_unclosed_client_is_collected(arun: Runner[Any], dsn: str, other: oxpg.Client) -> None:
    import gc

    async def main() -> int:
        c = await oxpg.aio.connect(dsn)
        pid = c.backend_pid
        assert await c.query_value("SELECT 1") == 1
        del c
        gc.collect()
        return pid  # type: ignore[no-any-return]

    pid = arun(main)
    deadline = time.monotonic() + 5
    while other.query_value("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
        assert time.monotonic() < deadline, "the dropped client's connection was never closed"
        time.sleep(0.02)


# ---- found in review -----------------------------------------------------------------------


def test_a_waiter_cancelled_as_the_turn_is_passed_ends_cancelled(
    arun: Runner[Any], dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The running call ends and the waiting task is cancelled in the same loop pass:
    passing the turn drops the cancelled waiter, and the waiter must still end as
    cancelled (it raised ValueError, so asyncio.timeout() could not say TimeoutError)."""
    second: asyncio.Future[Any] | None = None
    settle = oxpg.aio.AsyncClient._settle

    def settle_then_cancel(self: oxpg.aio.AsyncClient, exc: BaseException | None) -> None:
        settle(self, exc)
        if second is not None and not second.done():
            second.cancel()

    monkeypatch.setattr(oxpg.aio.AsyncClient, "_settle", settle_then_cancel)

    async def main() -> None:
        nonlocal second
        async with await oxpg.aio.connect(dsn) as c:
            first = asyncio.ensure_future(c.query_value("SELECT 1 FROM pg_sleep(0.1)"))
            await asyncio.sleep(0.02)
            second = asyncio.ensure_future(c.query_value("SELECT 2"))
            assert await first == 1
            with pytest.raises(asyncio.CancelledError):
                await second
            monkeypatch.undo()
            assert await c.query_value("SELECT 3") == 3

    arun(main)


def test_an_encoding_change_in_executemany_says_so(arun: Runner[Any], dsn: str, other: oxpg.Client) -> None:
    other.execute("CREATE TABLE IF NOT EXISTS aio_encoding (v text)")
    try:
        async def main() -> None:
            async with await oxpg.aio.connect(dsn) as c:
                sql = "INSERT INTO aio_encoding SELECT $1 FROM (SELECT pg_catalog.set_config('client_encoding', $2, false)) s"
                with pytest.raises(oxpg.InterfaceError, match="client_encoding"):
                    await c.executemany(sql, [("é", "LATIN1"), ("é", "LATIN1")])
                assert await c.query_value("SHOW client_encoding") == "UTF8"
                assert await c.query_value("SELECT $1::text", "é") == "é"

        arun(main)
        assert other.query_value("SELECT count(*) FROM aio_encoding") == 0
    finally:
        other.execute("DROP TABLE aio_encoding")
