"""oxpg.Pool and oxpg.aio.AsyncPool (issue 9; src/oxpg/pool.py, aio_pool.py,
_pool_policy.py). Each behaviour is one coroutine run for both pools: the sync pool's
calls simply return, the async pool's are awaited (`v()` below). What only one of them
has (threads and Ctrl-C, fork; task cancellation) is tested on its own."""

from __future__ import annotations

import _thread
import asyncio
import inspect
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from support.session import kill

import oxpg
import oxpg.aio


async def v(value: Any) -> Any:
    """The value of a call on either pool: awaited when it is a coroutine."""
    return await value if inspect.isawaitable(value) else value


class Flavor:
    """How a test body makes, borrows from and closes a pool of one kind."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.is_async = name == "async"

    def make(self, dsn: str, **options: Any) -> Any:
        return (oxpg.aio.AsyncPool if self.is_async else oxpg.Pool)(dsn, **options)

    @asynccontextmanager
    async def connection(self, pool: Any, **options: Any) -> AsyncIterator[Any]:
        if self.is_async:
            async with pool.connection(**options) as client:
                yield client
        else:
            with pool.connection(**options) as client:
                yield client

    async def close(self, pool: Any, **options: Any) -> None:
        await v(pool.close(**options))

    async def sleep(self, seconds: float) -> None:
        # The sync pool's thread must run meanwhile: a plain sleep releases the GIL.
        if self.is_async:
            await asyncio.sleep(seconds)
        else:
            time.sleep(seconds)


@pytest.fixture(params=["sync", "async"])
def flavor(request: pytest.FixtureRequest) -> Flavor:
    return Flavor(request.param)


def run(body: Callable[[], Awaitable[Any]], limit: float = 60) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(body(), limit)

    return asyncio.run(bounded())


@pytest.fixture
def admin(pg: Any) -> Iterator[oxpg.Client]:
    with oxpg.connect(pg.superuser_dsn) as c:
        yield c


async def wait_until(flavor: Flavor, condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await flavor.sleep(0.01)


# ---- lending and taking back ----------------------------------------------------------------


def test_calls_borrow_and_return(flavor: Flavor, dsn: str) -> None:
    async def body() -> None:
        pool = flavor.make(dsn, min_size=1, max_size=2)
        try:
            assert await v(pool.query("SELECT 1 AS one")) == [{"one": 1}]
            assert await v(pool.query_tuples("SELECT $1::int", 2)) == [(2,)]
            assert await v(pool.query_one("SELECT 3 AS x")) == {"x": 3}
            assert await v(pool.query_value("SELECT 4")) == 4
            assert await v(pool.execute("SELECT 5")) == 1
            assert await v(pool.executemany("SELECT $1::int", [(1,), (2,)])) == 2
            async with flavor.connection(pool) as client:
                assert await v(client.query_value("SELECT 6")) == 6
                assert pool.stats().busy == 1
            stats = pool.stats()
            assert stats.busy == 0 and stats.idle >= 1 and stats.served == 7 and stats.waiting == 0
            assert stats.size <= 2 and stats.connects >= 1 and stats.connect_time > 0
            assert "open" in repr(pool)
        finally:
            await flavor.close(pool)
        assert pool.closed and pool.stats().size == 0
        with pytest.raises(oxpg.InterfaceError, match="closed"):
            await v(pool.query_value("SELECT 1"))

    run(body)


@pytest.mark.parametrize("state", ["in transaction", "in error"])
def test_a_connection_returned_in_a_transaction_is_rolled_back(
    flavor: Flavor, dsn: str, admin: oxpg.Client, state: str
) -> None:
    async def body() -> None:
        pool = flavor.make(dsn, min_size=1, max_size=1)
        try:
            async with flavor.connection(pool) as client:
                pid = client.backend_pid
                await v(client.execute("BEGIN"))
                await v(client.execute("CREATE TEMP TABLE pool_rolled_back (a int)"))
                if state == "in error":
                    with pytest.raises(oxpg.errors.DivisionByZero):
                        await v(client.execute("SELECT 1 / 0"))
            async with flavor.connection(pool) as client:
                assert client.backend_pid == pid, "the same connection, kept"
                assert not client.in_transaction
                assert await v(client.query_value("SELECT to_regclass('pg_temp.pool_rolled_back')::text")) is None
            assert admin.query_value("SELECT state FROM pg_stat_activity WHERE pid = $1", pid) == "idle"
        finally:
            await flavor.close(pool)

    run(body)


def test_a_connection_returned_mid_statement_is_discarded(dsn: str) -> None:
    """A stream left open: nothing can tell how its statement would end."""
    with oxpg.Pool(dsn, min_size=1, max_size=1) as pool:
        with pool.connection() as client:
            pid = client.backend_pid
            stream = client.stream("SELECT g FROM generate_series(1, 100000) g", chunk_size=10)
            next(iter(stream))
        with pool.connection() as client:
            assert client.backend_pid != pid
        assert pool.stats().discarded == 1


def test_hooks_and_rotating_credentials(flavor: Flavor, pg: Any) -> None:
    if pg.cluster is None:
        pytest.skip("needs the suite's own cluster for its password")
    cl = pg.cluster
    calls: list[str] = []

    def password() -> str:
        calls.append("password")
        return cl.password

    def sync_configure(client: Any) -> None:
        calls.append("configure")
        client.execute("SET application_name TO 'pooled'")

    async def async_configure(client: Any) -> None:
        calls.append("configure")
        await client.execute("SET application_name TO 'pooled'")

    configure = async_configure if flavor.is_async else sync_configure

    def reset(client: Any) -> None:
        calls.append("reset")

    async def body() -> None:
        pool = flavor.make(None, host=cl.host, port=cl.port, user=cl.user, db=cl.database, password=password,
                           min_size=0, max_size=1, configure=configure, reset=reset)
        try:
            assert await v(pool.query_value("SELECT current_setting('application_name')")) == "pooled"
        finally:
            await flavor.close(pool)
        assert calls == ["password", "configure", "reset"]

    run(body)


def test_a_coroutine_hook_is_refused_by_the_sync_pool(dsn: str) -> None:
    async def reset(client: Any) -> None:
        pass

    with oxpg.Pool(dsn, min_size=1, max_size=1, reset=reset) as pool:
        assert pool.query_value("SELECT 1") == 1  # the reset fails: the connection is closed
        assert pool.stats().discarded == 1


def test_check_runs_after_idle_and_a_failing_one_replaces_the_connection(flavor: Flavor, dsn: str) -> None:
    checked: list[int] = []
    failing = {"on": False}

    def check(client: Any) -> None:
        checked.append(client.backend_pid)
        if failing["on"]:
            raise RuntimeError("unhealthy")

    async def body() -> None:
        pool = flavor.make(dsn, min_size=1, max_size=1, check=check)
        try:
            first = await v(pool.query_value("SELECT pg_backend_pid()"))
            assert await v(pool.query_value("SELECT pg_backend_pid()")) == first
            assert checked in ([], [first]), "no round trip for a connection used a moment ago"
            await flavor.sleep(1.1)
            failing["on"] = True
            # The idle connection fails its check: it is replaced by a new one, which
            # needs none (it was opened a moment ago).
            second = await v(pool.query_value("SELECT pg_backend_pid()"))
            assert second != first and checked[-1] == first
            assert pool.stats().lost >= 1
        finally:
            await flavor.close(pool)

    run(body)


# ---- waiting ----------------------------------------------------------------------------------


def test_acquire_timeout_says_what_is_busy(flavor: Flavor, dsn: str) -> None:
    async def body() -> None:
        pool = flavor.make(dsn, min_size=1, max_size=1, timeout=0.3)
        try:
            async with flavor.connection(pool):
                started = time.monotonic()
                with pytest.raises(oxpg.PoolTimeout, match=r"1 open \(max_size=1\), 1 busy") as excinfo:
                    await v(pool.query_value("SELECT 1"))
                assert 0.3 <= time.monotonic() - started < 1.0
                assert isinstance(excinfo.value, oxpg.OperationalError)
            assert pool.stats().timeouts == 1 and pool.stats().waiting == 0
            assert await v(pool.query_value("SELECT 2")) == 2
        finally:
            await flavor.close(pool)

    run(body)


def test_connect_errors_are_retried_with_backoff_and_reported(flavor: Flavor) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def body() -> None:
        pool = flavor.make(None, host="127.0.0.1", port=port, user="x", min_size=1, max_size=2, timeout=1.0)
        try:
            with pytest.raises(oxpg.PoolTimeout, match="the last connect failed"):
                await v(pool.query_value("SELECT 1"))
            stats = pool.stats()
            # Backoff: 50 ms doubling, so a handful of attempts in a second, not thousands.
            assert 2 <= stats.connect_errors <= 10, stats
        finally:
            await flavor.close(pool)

    run(body)


# ---- failures ---------------------------------------------------------------------------------


def test_every_backend_killed_reaches_no_user_after_the_first(flavor: Flavor, dsn: str, admin: oxpg.Client) -> None:
    async def body() -> None:
        pool = flavor.make(dsn, min_size=3, max_size=3)
        try:
            await wait_until(flavor, lambda: pool.stats().idle == 3)
            pids = admin.query_tuples(
                "SELECT pid FROM pg_stat_activity WHERE usename = current_user AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend' AND datname = $1",
                await v(pool.query_value("SELECT current_database()")),
            )
            for (pid,) in pids:
                kill(admin, pid)
            errors = 0
            for _ in range(10):
                try:
                    assert await v(pool.query_value("SELECT 1")) == 1
                except oxpg.OperationalError:
                    errors += 1
            assert errors <= 1
        finally:
            await flavor.close(pool)

    run(body)


@pytest.mark.cluster
def test_server_down_for_a_while_then_up(flavor: Flavor, cluster: Any, dsn: str) -> None:
    async def body() -> None:
        pool = flavor.make(dsn, min_size=2, max_size=2, timeout=20)
        try:
            assert await v(pool.query_value("SELECT 1")) == 1
            cluster.stop_server()
            threading.Timer(5.0, cluster.start_server).start()
            started = time.monotonic()
            values = []
            for _ in range(3):
                try:
                    values.append(await v(pool.query_value("SELECT 2")))
                except oxpg.OperationalError:
                    values.append("error")
            assert values.count("error") <= 1 and values[-1] == 2, values
            assert time.monotonic() - started < 20
        finally:
            await flavor.close(pool)

    run(body)


# ---- sizes and lifetimes -----------------------------------------------------------------------


def test_max_lifetime_replaces_connections(flavor: Flavor, dsn: str) -> None:
    async def body() -> None:
        pool = flavor.make(dsn, min_size=1, max_size=1, max_lifetime=0.3)
        try:
            first = await v(pool.query_value("SELECT pg_backend_pid()"))
            await flavor.sleep(0.4)
            assert await v(pool.query_value("SELECT pg_backend_pid()")) != first
            assert pool.stats().discarded >= 1
        finally:
            await flavor.close(pool)

    run(body)


def test_idle_connections_above_min_size_are_closed(flavor: Flavor, dsn: str) -> None:
    async def body() -> None:
        pool = flavor.make(dsn, min_size=1, max_size=3, max_idle=0.3)
        try:
            if flavor.is_async:
                await asyncio.gather(*(pool.query_value("SELECT pg_sleep(0.1)") for _ in range(3)))
            else:
                threads = [threading.Thread(target=pool.query_value, args=("SELECT pg_sleep(0.1)",)) for _ in range(3)]
                [t.start() for t in threads]
                [t.join() for t in threads]
            assert pool.stats().size == 3
            await wait_until(flavor, lambda: pool.stats().size == 1, seconds=5)
        finally:
            await flavor.close(pool)

    run(body)


def test_close_is_bounded_with_connections_lent_out(flavor: Flavor, dsn: str) -> None:
    async def body() -> None:
        pool = flavor.make(dsn, min_size=1, max_size=1)
        if flavor.is_async:
            busy = asyncio.ensure_future(pool.query_value("SELECT pg_sleep(30)"))
        else:
            busy = threading.Thread(target=lambda: pytest.raises(oxpg.Error, pool.query_value, "SELECT pg_sleep(30)"))
            busy.start()
        await flavor.sleep(0.3)
        started = time.monotonic()
        await flavor.close(pool, timeout=0.5)
        assert time.monotonic() - started < 3.0
        assert pool.stats().size == 0
        if flavor.is_async:
            with pytest.raises(oxpg.Error):
                await busy
        else:
            busy.join(5)
            assert not busy.is_alive()

    run(body)


# ---- many callers ----------------------------------------------------------------------------


def test_fifty_threads_against_five_connections(dsn: str, admin: oxpg.Client) -> None:
    pool = oxpg.Pool(dsn, min_size=1, max_size=5, timeout=30)
    failures: list[BaseException] = []
    done = [0]
    stop = time.monotonic() + 2.0

    def work() -> None:
        try:
            while time.monotonic() < stop:
                with pool.connection() as client:
                    if random.random() < 0.2:
                        client.execute("BEGIN")
                    assert client.query_value("SELECT $1::int", 7) == 7
                done[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(50)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    try:
        assert not failures, failures[:3]
        stats = pool.stats()
        assert stats.size <= 5 and stats.busy == 0 and stats.waiting == 0
        assert stats.served == done[0] and stats.timeouts == 0
        assert not admin.query("SELECT 1 FROM pg_stat_activity WHERE state = 'idle in transaction'")
    finally:
        pool.close()


def test_two_hundred_tasks_against_five_connections(dsn: str, admin: oxpg.Client) -> None:
    async def body() -> None:
        async with oxpg.aio.AsyncPool(dsn, min_size=1, max_size=5) as pool:
            stop = time.monotonic() + 2.0
            done = 0

            async def work() -> None:
                nonlocal done
                while time.monotonic() < stop:
                    async with pool.connection() as client:
                        if random.random() < 0.2:
                            await client.execute("BEGIN")
                        assert await client.query_value("SELECT $1::int", 7) == 7
                    done += 1

            await asyncio.gather(*(work() for _ in range(200)))
            stats = pool.stats()
            assert stats.size <= 5 and stats.busy == 0 and stats.waiting == 0
            assert stats.served == done and stats.timeouts == 0
            assert not admin.query("SELECT 1 FROM pg_stat_activity WHERE state = 'idle in transaction'")

    run(body)


def test_a_storm_of_cancellations_loses_no_connection(dsn: str, admin: oxpg.Client) -> None:
    async def body() -> None:
        async with oxpg.aio.AsyncPool(dsn, min_size=2, max_size=4) as pool:
            async def work(i: int) -> None:
                async with pool.connection() as client:
                    if i % 3 == 0:
                        await client.execute("BEGIN")
                    await client.execute("SELECT pg_sleep($1)", random.random() * 0.02)

            tasks = [asyncio.ensure_future(work(i)) for i in range(1000)]
            for _ in range(40):
                await asyncio.sleep(0.005)
                for task in random.sample(tasks, 30):
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            stats = pool.stats()
            assert stats.busy == 0 and stats.waiting == 0 and 1 <= stats.size <= 4, stats
            assert stats.idle == stats.size
            assert await pool.query_value("SELECT 1") == 1
            assert not admin.query("SELECT 1 FROM pg_stat_activity WHERE state = 'idle in transaction'")

    run(body)


def test_ctrl_c_while_waiting_in_acquire(dsn: str) -> None:
    pool = oxpg.Pool(dsn, min_size=1, max_size=1, timeout=30)
    try:
        holder = pool.connection()
        holder.__enter__()
        timer = threading.Timer(0.3, _thread.interrupt_main)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            pool.query_value("SELECT 1")
        assert pool.stats().waiting == 0
        holder.__exit__(None, None, None)
        assert pool.query_value("SELECT 2") == 2
        assert pool.stats().size == 1
    finally:
        pool.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_pool_used_after_fork_starts_afresh(dsn: str) -> None:
    pool = oxpg.Pool(dsn, min_size=1, max_size=1)
    try:
        parent_pid = pool.query_value("SELECT pg_backend_pid()")
        reader, writer = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            try:
                value = pool.query_value("SELECT pg_backend_pid()")
                os.write(writer, str(value).encode())
            finally:
                os._exit(0)
        os.close(writer)
        got = os.read(reader, 100)
        os.waitpid(child, 0)
        os.close(reader)
        assert got and int(got) != parent_pid, "the child used its own connection"
        assert pool.query_value("SELECT pg_backend_pid()") == parent_pid, "the parent's connection is intact"
    finally:
        pool.close()


def test_a_base_exception_while_returning_loses_no_connection(dsn: str) -> None:
    def reset(client: Any) -> None:
        raise KeyboardInterrupt

    with oxpg.Pool(dsn, min_size=1, max_size=1, reset=reset, timeout=5) as pool:
        with pytest.raises(KeyboardInterrupt):
            pool.query_value("SELECT 1")
        stats = pool.stats()
        assert stats.busy == 0 and stats.discarded == 1, stats
    with oxpg.Pool(dsn, min_size=1, max_size=1, timeout=5) as pool:
        with pytest.raises(KeyboardInterrupt):
            with pool.connection() as client:
                client.execute("BEGIN")
                timer = threading.Timer(0.2, _thread.interrupt_main)
                timer.start()
                client.execute("SELECT pg_sleep(5)")
        stats = pool.stats()
        assert stats.busy == 0, stats
        assert pool.query_value("SELECT 2") == 2
