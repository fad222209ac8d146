"""oxpg.aio.AsyncPool: a pool of AsyncClients shared by tasks.

    async with oxpg.aio.AsyncPool("postgresql://user:pw@localhost/mydb", max_size=10) as pool:
        async with pool.connection() as client:
            await client.query("SELECT 1")
        await pool.query("SELECT 1")    # borrows a client for one call

The decisions are oxpg._pool_policy's, as for oxpg.Pool; here the waiting is on the
event loop and a background task opens and closes connections. Waiters are served
first come, first served.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

from ._oxpg import TRANS_ACTIVE, TRANS_IDLE, TRANS_INERROR, TRANS_INTRANS, InterfaceError
from ._pool_policy import PoolPolicy, PoolStats, Slot
from .aio import AsyncClient, connect
from .pool import RESET_TIMEOUT, PoolTimeout, check_pool_arguments, resolve, timeout_message

__all__ = ["AsyncPool"]

log = logging.getLogger("oxpg")



async def _call(hook: Callable[[AsyncClient], Any], client: AsyncClient) -> None:
    """A configure/check/reset hook may be a coroutine function or a plain one."""
    result = hook(client)
    if inspect.isawaitable(result):
        await result


class AsyncPool:
    """Connections shared by tasks: ``async with pool.connection() as client:``.
    Make it inside a running event loop (it starts a task there)."""

    def __init__(
        self,
        dsn: str | Callable[[], str] | None = None,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
        max_lifetime: float = 3600.0,
        max_idle: float = 600.0,
        check: Callable[[AsyncClient], Any] | None = None,
        configure: Callable[[AsyncClient], Any] | None = None,
        reset: Callable[[AsyncClient], Any] | None = None,
        **connect_options: Any,
    ) -> None:
        """AsyncPool(dsn=None, *, min_size=1, max_size=10, timeout=30, max_lifetime=3600,
        max_idle=600, check=None, configure=None, reset=None, **connect_options)

        As oxpg.Pool; check, configure and reset may be coroutine functions.
        """
        check_pool_arguments(min_size, max_size, timeout, max_lifetime, max_idle)
        self._loop = asyncio.get_running_loop()
        self._dsn = dsn
        self._connect_options = connect_options
        self._timeout = float(timeout)
        self._check = check
        self._configure = configure
        self._reset = reset
        self._policy = PoolPolicy(min_size, max_size, float(max_lifetime), float(max_idle))
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._work = asyncio.Event()  # wakes the maintainer
        self._closed = False
        self._last_error: BaseException | None = None
        self._maintainer = self._loop.create_task(self._maintain())

    # ---- borrowing ----

    def connection(self, timeout: float | None = None) -> AsyncLease:
        """connection(timeout=None)

        ``async with pool.connection() as client:`` lends an AsyncClient and takes it
        back at the end of the block, rolled back if it was left inside a
        transaction. timeout: seconds to wait for one (None: the pool's).
        """
        return AsyncLease(self, self._timeout if timeout is None else timeout)

    def _take_now(self) -> Slot | None:
        """The fast path: an idle connection, nobody waiting before us, and the
        cheap checks pass; None sends the caller down the slow path."""
        policy = self._policy
        if not policy.idle or self._closed or policy.waiting:
            return None
        slot = policy.idle.pop()
        now = time.monotonic()
        core = slot.client._core
        if (
            now < slot.expires
            and core._consume_input()
            and core._transaction_status == TRANS_IDLE
            and not policy.needs_round_trip(slot, now)
        ):
            policy.lend(slot)
            return slot
        policy.idle.append(slot)  # the slow path deals with it
        return None

    def _put_back_now(self, slot: Slot) -> bool:
        """The fast path of a return: clean, nothing to run, not expired."""
        client = slot.client
        policy = self._policy
        if client._core._transaction_status != TRANS_IDLE or self._reset is not None or self._closed:
            return False
        if policy.lent.get(id(client)) is not slot:
            return False
        now = time.monotonic()
        if now >= slot.expires:
            return False
        del policy.lent[id(client)]
        slot.last_used = now
        policy.idle.append(slot)
        if self._waiters:
            self._wake()
        return True

    async def _acquire(self, timeout: float) -> Slot:
        slot = self._take_now()
        if slot is not None:
            return slot
        started = time.monotonic()
        deadline = started + timeout
        policy = self._policy
        while True:
            slot = await self._take(started, deadline, timeout)
            policy.lend(slot)
            policy.stats.wait_time += time.monotonic() - started
            started = time.monotonic()  # a retry after a failed check counts its own wait
            try:
                if await self._usable(slot):
                    return slot
            except BaseException:
                # Cancelled during the check: the connection is not known good, so it
                # goes (put back, its check would be skipped by the next borrower).
                self._put_back(slot, usable=False)
                raise

    async def _take(self, started: float, deadline: float, timeout: float) -> Slot:
        policy = self._policy
        policy.waiting += 1
        try:
            while True:
                if self._closed:
                    raise InterfaceError("the pool is closed")
                slot, expired = policy.take(time.monotonic())
                for dead in expired:
                    policy.stats.discarded += 1
                    dead.client.terminate()
                if slot is not None and not self._waiters_ahead():
                    return slot
                if slot is not None:
                    policy.add_idle(slot)  # someone waited longer: theirs
                if policy.want_connect():
                    self._work.set()
                left = deadline - time.monotonic()
                if left <= 0:
                    policy.stats.timeouts += 1
                    raise PoolTimeout(timeout_message(policy, timeout, self._last_error))
                waiter = self._loop.create_future()
                self._waiters.append(waiter)
                try:
                    await asyncio.wait_for(waiter, left)
                except asyncio.TimeoutError:
                    pass
                except BaseException:
                    if waiter.done() and not waiter.cancelled():
                        self._wake()  # woken just as this task was cancelled: pass it on
                    raise
                finally:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
                # Woken: the first in line takes what came.
                slot, expired = policy.take(time.monotonic())
                for dead in expired:
                    policy.stats.discarded += 1
                    dead.client.terminate()
                if slot is not None:
                    return slot
        finally:
            policy.waiting -= 1

    def _waiters_ahead(self) -> bool:
        return any(not w.done() for w in self._waiters)

    def _wake(self) -> None:
        """A connection is idle: the first waiter gets it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _usable(self, slot: Slot) -> bool:
        client: AsyncClient = slot.client
        core = client._core
        ok = not core.closed and core._consume_input() and core._transaction_status == TRANS_IDLE
        if ok and self._policy.needs_round_trip(slot, time.monotonic()):
            try:
                if self._check is not None:
                    await _call(self._check, client)
                else:
                    await client.execute("", timeout=self._timeout)
            except Exception as exc:
                log.info("oxpg.aio.AsyncPool: a connection failed its check (%r) and was replaced", exc)
                ok = False
        if ok:
            return True
        self._policy.lost(slot)
        self._work.set()
        client.terminate()
        return False

    async def _release(self, slot: Slot) -> None:
        client: AsyncClient = slot.client
        usable = not client.closed
        try:
            if usable:
                status = client._transaction_status
                if status == TRANS_ACTIVE:
                    usable = False
                elif status in (TRANS_INTRANS, TRANS_INERROR):
                    await client.execute("ROLLBACK", timeout=RESET_TIMEOUT)
            if usable and self._reset is not None:
                await _call(self._reset, client)
        except Exception as exc:
            log.warning("oxpg.aio.AsyncPool: cleaning up a returned connection failed (%r); it was closed", exc)
            usable = False
        except BaseException:
            usable = False
            raise  # a cancellation goes on; the connection is closed below
        finally:
            self._put_back(slot, usable)

    def _put_back(self, slot: Slot, usable: bool) -> None:
        client: AsyncClient = slot.client
        if client.broken:
            self._policy.lost(slot)
            keep = False
        elif self._closed:
            self._policy.lent.pop(id(client), None)
            keep = False
        else:
            keep = self._policy.returned(slot, time.monotonic(), usable)
        if keep:
            self._wake()
        else:
            client.terminate()
            self._work.set()
            self._wake()  # a waiter may now open one (or see the pool closed)

    # ---- one call on a borrowed client ----

    async def query(self, sql: str, /, *params: Any, timeout: float | None = None) -> list[dict[str, Any]]:
        """query(sql, *params, timeout=None): AsyncClient.query on a borrowed client."""
        slot = self._take_now() or await self._acquire(self._timeout)
        try:
            return await slot.client.query(sql, *params, timeout=timeout)  # type: ignore[no-any-return]
        finally:
            if not self._put_back_now(slot):
                await self._release(slot)

    async def query_tuples(self, sql: str, /, *params: Any, timeout: float | None = None) -> list[tuple[Any, ...]]:
        """query_tuples(sql, *params, timeout=None)"""
        slot = self._take_now() or await self._acquire(self._timeout)
        try:
            return await slot.client.query_tuples(sql, *params, timeout=timeout)  # type: ignore[no-any-return]
        finally:
            if not self._put_back_now(slot):
                await self._release(slot)

    async def query_one(self, sql: str, /, *params: Any, timeout: float | None = None) -> dict[str, Any] | None:
        """query_one(sql, *params, timeout=None)"""
        async with self.connection() as client:
            return await client.query_one(sql, *params, timeout=timeout)

    async def query_value(self, sql: str, /, *params: Any, timeout: float | None = None) -> Any:
        """query_value(sql, *params, timeout=None)"""
        async with self.connection() as client:
            return await client.query_value(sql, *params, timeout=timeout)

    async def execute(self, sql: str, /, *params: Any, timeout: float | None = None) -> int:
        """execute(sql, *params, timeout=None)"""
        slot = self._take_now() or await self._acquire(self._timeout)
        try:
            return await slot.client.execute(sql, *params, timeout=timeout)  # type: ignore[no-any-return]
        finally:
            if not self._put_back_now(slot):
                await self._release(slot)

    async def executemany(
        self, sql: str, seq_of_params: Iterable[Sequence[Any]], /, *, timeout: float | None = None
    ) -> int:
        """executemany(sql, seq_of_params, *, timeout=None)"""
        async with self.connection() as client:
            return await client.executemany(sql, seq_of_params, timeout=timeout)

    # ---- the background task: opening and closing connections ----

    async def _maintain(self) -> None:
        policy = self._policy
        while not self._closed:
            now = time.monotonic()
            if policy.want_connect():
                delay = policy.connect_delay(now)
                if delay > 0:
                    await self._sleep_or_work(delay)
                    continue
                policy.connecting()
                await self._open_one()
                continue
            for slot in policy.sweep(now):
                slot.client.terminate()
            await self._sleep_or_work(policy.next_sweep_in(now))

    async def _sleep_or_work(self, seconds: float) -> None:
        self._work.clear()
        try:
            await asyncio.wait_for(self._work.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _open_one(self) -> None:
        started = time.monotonic()
        try:
            options = dict(self._connect_options)
            if "password" in options:
                options["password"] = resolve(options["password"])
            client = await connect(resolve(self._dsn), **options)
            if self._configure is not None:
                try:
                    await _call(self._configure, client)
                except BaseException:
                    client.terminate()
                    raise
        except Exception as exc:
            self._last_error = exc
            self._policy.connect_failed(time.monotonic(), time.monotonic() - started)
            self._wake()  # a waiter re-checks its deadline
            return
        except BaseException:
            # close() cancelled the maintainer mid-connect: not opening any more.
            self._policy.connect_failed(time.monotonic(), time.monotonic() - started)
            raise
        slot = self._policy.connected(client, time.monotonic(), time.monotonic() - started)
        if self._closed:
            client.terminate()
            return
        self._policy.add_idle(slot)
        self._wake()

    # ---- the pool itself ----

    def stats(self) -> PoolStats:
        """stats(): sizes now and counters since the pool was made (oxpg.PoolStats)."""
        return self._policy.snapshot()

    async def close(self, timeout: float = 5.0) -> None:
        """close(timeout=5.0)

        Close every connection: lent ones are waited for up to timeout seconds,
        then terminated. Waiting acquires, and later ones, raise InterfaceError.
        """
        if self._closed:
            return
        self._closed = True
        self._work.set()
        while self._waiters:
            self._wake()
        for slot in list(self._policy.idle):
            slot.client.terminate()
        self._policy.idle.clear()
        deadline = time.monotonic() + timeout
        while self._policy.lent and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for slot in list(self._policy.lent.values()):
            slot.client.terminate()
        self._policy.lent.clear()
        self._maintainer.cancel()
        try:
            await self._maintainer
        except asyncio.CancelledError:
            pass

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> AsyncPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        stats = self.stats()
        return f"<oxpg.aio.AsyncPool {stats.size} open, {stats.busy} busy, max_size={self._policy.max_size}>"


class AsyncLease:
    """``async with pool.connection() as client:``: lends a client, takes it back."""

    __slots__ = ("_pool", "_timeout", "_slot")

    def __init__(self, pool: AsyncPool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        self._slot: Slot | None = None

    async def __aenter__(self) -> AsyncClient:
        if self._slot is not None:
            raise InterfaceError("this pool.connection() block is already entered")
        self._slot = await self._pool._acquire(self._timeout)
        return self._slot.client  # type: ignore[no-any-return]

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        slot, self._slot = self._slot, None
        if slot is not None and not self._pool._put_back_now(slot):
            await self._pool._release(slot)
