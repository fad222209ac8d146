"""oxpg.Pool: a pool of Clients shared by threads.

    pool = oxpg.Pool("postgresql://user:pw@localhost/mydb", max_size=10)
    with pool.connection() as client:
        client.query("SELECT 1")
    pool.query("SELECT 1")          # borrows a client for one call

What it decides (which connection to lend, when to open, check or close one, the
backoff after a failed connect) is oxpg._pool_policy's, shared with oxpg.AsyncPool.
Here: the waiting, the lock, a background thread that opens and closes connections.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

from ._connect import connect
from ._oxpg import TRANS_ACTIVE, TRANS_IDLE, TRANS_INERROR, TRANS_INTRANS, InterfaceError, OperationalError
from ._pool_policy import CHECK_AFTER_IDLE, PoolPolicy, PoolStats, Slot
from .client import Client

__all__ = ["Pool", "PoolStats", "PoolTimeout", "check_pool_arguments"]

log = logging.getLogger("oxpg")

# How long the ROLLBACK of a connection returned inside a transaction may take.
RESET_TIMEOUT = 5.0


class PoolTimeout(OperationalError):
    """No connection could be lent within the pool's timeout."""


def check_pool_arguments(min_size: int, max_size: int, timeout: float, max_lifetime: float, max_idle: float) -> None:
    """Refuse what cannot work, before any connection is opened."""
    for name, value in (("min_size", min_size), ("max_size", max_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= min_size <= max_size or max_size < 1:
        raise ValueError(f"need 0 <= min_size <= max_size and max_size >= 1 (got {min_size} and {max_size})")
    for name, seconds in (("timeout", timeout), ("max_lifetime", max_lifetime), ("max_idle", max_idle)):
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
            raise ValueError(f"{name} must be a number of seconds above 0, not {seconds!r}")


def timeout_message(policy: PoolPolicy, waited: float, last_error: BaseException | None) -> str:
    stats = policy.snapshot()
    message = (
        f"no connection within {waited:g} s: {stats.size} open (max_size={policy.max_size}), "
        f"{stats.busy} busy, {stats.idle} idle, {stats.opening} opening, {stats.waiting} waiting"
    )
    if last_error is not None and policy.failures_in_a_row:
        message += f"; the last connect failed: {last_error}"
    return message


def call_hook(hook: Callable[[Client], object], client: Client) -> None:
    """A configure/check/reset hook of the sync pool: a coroutine function would
    never run here, so it is refused instead of being skipped."""
    result = hook(client)
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()
        raise TypeError(f"{hook!r} is a coroutine function: oxpg.Pool calls hooks synchronously (use oxpg.aio.AsyncPool)")


def resolve(value: Any) -> Any:
    """A DSN or password may be a callable, called at each connect (rotating credentials)."""
    return value() if callable(value) else value


class Pool:
    """Connections shared by threads: borrow one with ``with pool.connection() as client:``."""

    def __init__(
        self,
        dsn: str | Callable[[], str] | None = None,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
        max_lifetime: float = 3600.0,
        max_idle: float = 600.0,
        check: Callable[[Client], object] | None = None,
        configure: Callable[[Client], object] | None = None,
        reset: Callable[[Client], object] | None = None,
        **connect_options: Any,
    ) -> None:
        """Pool(dsn=None, *, min_size=1, max_size=10, timeout=30, max_lifetime=3600,
        max_idle=600, check=None, configure=None, reset=None, **connect_options)

        dsn and connect_options are oxpg.connect()'s; dsn and password may be
        callables, called at each connect. timeout: seconds an acquire may wait.
        max_lifetime: a connection is closed (and replaced) after about this long;
        max_idle: idle connections above min_size are closed after this long.
        check(client): the round trip that tells a connection is alive (default: an
        empty query), run before lending one that sat idle for a second or was
        opened before a failure. configure(client): run on each new connection.
        reset(client): run on each returned one (a raise closes it).
        """
        check_pool_arguments(min_size, max_size, timeout, max_lifetime, max_idle)
        self._dsn = dsn
        self._connect_options = connect_options
        self._timeout = float(timeout)
        self._check = check
        self._configure = configure
        self._reset = reset
        self._sizes = (min_size, max_size, float(max_lifetime), float(max_idle))
        self._start()

    def _start(self) -> None:
        self._fork_pending = False
        _POOLS.add(self)
        self._lock = threading.Lock()
        self._available = threading.Condition(self._lock)  # acquirers wait here
        self._work = threading.Condition(self._lock)  # the maintainer waits here
        self._policy = PoolPolicy(*self._sizes)
        self._closed = False
        self._last_error: BaseException | None = None
        self._maintainer = threading.Thread(target=self._maintain, name="oxpg-pool", daemon=True)
        self._maintainer.start()

    def _forked(self) -> None:
        # A child process must not touch its parent's connections: it starts afresh
        # (the C core never closes a connection it inherited). The parent's lock may
        # have been held by one of its threads at the fork: new ones at once.
        self._lock = threading.Lock()
        self._available = threading.Condition(self._lock)
        self._work = threading.Condition(self._lock)
        self._fork_pending = True

    # ---- borrowing ----

    def connection(self, timeout: float | None = None) -> Lease:
        """connection(timeout=None)

        ``with pool.connection() as client:`` lends a Client and takes it back at
        the end of the block, rolled back if it was left inside a transaction.
        timeout: seconds to wait for one (None: the pool's); PoolTimeout after.
        """
        return Lease(self, self._timeout if timeout is None else timeout)

    def _acquire(self, timeout: float) -> Slot:
        if self._fork_pending:
            self._start()
        policy = self._policy
        # The fast path: an idle connection used a moment ago, nobody waiting before
        # us, its socket still open (it was returned outside any transaction, and
        # nothing runs on it since).
        with self._lock:
            if policy.idle and not policy.waiting and not self._closed:
                slot = policy.idle.pop()
                now = time.monotonic()
                if (
                    now < slot.expires
                    and now - slot.last_used <= CHECK_AFTER_IDLE
                    and slot.generation == policy.generation
                    and slot.client._core._consume_input()
                ):
                    policy.lent[id(slot.client)] = slot
                    policy.stats.served += 1
                    return slot
                policy.idle.append(slot)  # the slow path looks at it
        return self._acquire_waiting(timeout)

    def _acquire_waiting(self, timeout: float) -> Slot:
        started = time.monotonic()
        deadline = started + timeout
        policy = self._policy
        while True:
            to_close: list[Slot] = []
            try:
                with self._lock:
                    policy.waiting += 1
                    try:
                        while True:
                            if self._closed:
                                raise InterfaceError("the pool is closed")
                            slot, expired = policy.take(time.monotonic())
                            to_close += expired
                            if slot is not None:
                                break
                            if policy.want_connect():
                                self._work.notify()
                            left = deadline - time.monotonic()
                            if left <= 0:
                                policy.stats.timeouts += 1
                                raise PoolTimeout(timeout_message(policy, timeout, self._last_error))
                            self._available.wait(left)
                    finally:
                        policy.waiting -= 1
                        policy.stats.discarded += len(to_close)
                    policy.lend(slot)
                    policy.stats.wait_time += time.monotonic() - started
                    started = time.monotonic()  # a retry after a failed check counts its own wait
            finally:
                for dead in to_close:  # expired on the way, whatever happens next
                    dead.client.close()
            if self._usable(slot):
                return slot

    def _usable(self, slot: Slot) -> bool:
        """Cheap checks first (socket, transaction state); a round trip when the
        connection sat idle or was opened before a failure. A connection that fails
        is closed and counted lost."""
        client = slot.client
        core = client._core
        ok = not core.closed and core._consume_input() and core._transaction_status == TRANS_IDLE
        if ok and self._policy.needs_round_trip(slot, time.monotonic()):
            try:
                if self._check is not None:
                    call_hook(self._check, client)
                else:
                    client.execute("", timeout=self._timeout)
            except Exception as exc:
                log.info("oxpg.Pool: a connection failed its check (%r) and was replaced", exc)
                ok = False
            except BaseException:
                # Ctrl-C during the check: the connection is not known good, so it goes.
                self._drop(slot, lost=False)
                raise
        if ok:
            return True
        self._drop(slot, lost=True)
        return False

    def _drop(self, slot: Slot, lost: bool) -> None:
        """A lent connection will not come back: count it, close it, tell whoever waits."""
        with self._lock:
            if lost:
                self._policy.lost(slot)
            else:
                self._policy.dropped(slot)
            self._work.notify()
            self._available.notify_all()  # close() may wait for the last one
        slot.client.close()

    def _release(self, slot: Slot) -> None:
        client = slot.client
        if client._core._transaction_status == TRANS_IDLE and self._reset is None:
            # The fast path: clean, nothing to run; kept unless it expired.
            policy = self._policy
            with self._lock:
                if not self._closed and policy.lent.get(id(client)) is slot:
                    now = time.monotonic()
                    if now < slot.expires:
                        del policy.lent[id(client)]
                        slot.last_used = now
                        policy.idle.append(slot)
                        if policy.waiting:
                            self._available.notify()
                        return
        self._release_slowly(slot)

    def _release_slowly(self, slot: Slot) -> None:
        usable = False
        try:
            usable = self._clean_up(slot.client)
        finally:
            # Whatever happened (Ctrl-C during the ROLLBACK included), the connection
            # is taken back or closed: never left counted as lent.
            self._put_back(slot, usable)

    def _clean_up(self, client: Client) -> bool:
        """Roll back what a returned connection left open and run reset(); False when
        it cannot be kept."""
        if client.closed:
            return False
        status = client._transaction_status
        if status == TRANS_ACTIVE:
            return False  # mid-statement: nothing can tell how it would end
        if status in (TRANS_INTRANS, TRANS_INERROR):
            try:
                client.execute("ROLLBACK", timeout=RESET_TIMEOUT)
            except Exception:
                return False
        if self._reset is not None:
            try:
                call_hook(self._reset, client)
            except Exception as exc:
                log.warning("oxpg.Pool: reset(client) raised %r; the connection was closed", exc)
                return False
        return True

    def _put_back(self, slot: Slot, usable: bool) -> None:
        client = slot.client
        with self._lock:
            if self._policy.lent.get(id(client)) is not slot and not self._closed:
                return  # not lent by this pool's state (a parent's, returned after fork): forgotten
            if client.broken:
                self._policy.lost(slot)
                keep = False
            else:
                keep = not self._closed and self._policy.returned(slot, time.monotonic(), usable)
                if self._closed:
                    self._policy.lent.pop(id(client), None)
            if keep:
                self._available.notify()
            else:
                self._work.notify()
                self._available.notify_all()  # close() may wait for the last one
        if not keep:
            client.close()

    # ---- one call on a borrowed client ----

    def query(self, sql: str, /, *params: Any, timeout: float | None = None) -> list[dict[str, Any]]:
        """query(sql, *params, timeout=None): Client.query on a borrowed client."""
        slot = self._acquire(self._timeout)
        try:
            return slot.client.query(sql, *params, timeout=timeout)  # type: ignore[no-any-return]
        finally:
            self._release(slot)

    def query_tuples(self, sql: str, /, *params: Any, timeout: float | None = None) -> list[tuple[Any, ...]]:
        """query_tuples(sql, *params, timeout=None): Client.query_tuples on a borrowed client."""
        slot = self._acquire(self._timeout)
        try:
            return slot.client.query_tuples(sql, *params, timeout=timeout)  # type: ignore[no-any-return]
        finally:
            self._release(slot)

    def query_one(self, sql: str, /, *params: Any, timeout: float | None = None) -> dict[str, Any] | None:
        """query_one(sql, *params, timeout=None): Client.query_one on a borrowed client."""
        with self.connection() as client:
            return client.query_one(sql, *params, timeout=timeout)

    def query_value(self, sql: str, /, *params: Any, timeout: float | None = None) -> Any:
        """query_value(sql, *params, timeout=None): Client.query_value on a borrowed client."""
        with self.connection() as client:
            return client.query_value(sql, *params, timeout=timeout)

    def execute(self, sql: str, /, *params: Any, timeout: float | None = None) -> int:
        """execute(sql, *params, timeout=None): Client.execute on a borrowed client."""
        slot = self._acquire(self._timeout)
        try:
            return slot.client.execute(sql, *params, timeout=timeout)  # type: ignore[no-any-return]
        finally:
            self._release(slot)

    def executemany(self, sql: str, seq_of_params: Iterable[Sequence[Any]], /, *, timeout: float | None = None) -> int:
        """executemany(sql, seq_of_params, *, timeout=None): Client.executemany on a borrowed client."""
        with self.connection() as client:
            return client.executemany(sql, seq_of_params, timeout=timeout)

    # ---- the background thread: opening and closing connections ----

    def _maintain(self) -> None:
        policy = self._policy
        while True:
            to_close: list[Slot] = []
            with self._lock:
                while not self._closed and not self._fork_pending:
                    now = time.monotonic()
                    if policy.want_connect():
                        delay = policy.connect_delay(now)
                        if delay <= 0:
                            policy.connecting()
                            break
                        self._work.wait(delay)
                        continue
                    to_close = policy.sweep(now)
                    if to_close:
                        break
                    self._work.wait(policy.next_sweep_in(now))
                else:
                    return
            if to_close:
                for slot in to_close:
                    slot.client.close()
                continue
            self._open_one()

    def _open_one(self) -> None:
        started = time.monotonic()
        try:
            client = connect(resolve(self._dsn), **self._options())
            if self._configure is not None:
                try:
                    call_hook(self._configure, client)
                except BaseException:
                    client.close()
                    raise
        except Exception as exc:
            with self._lock:
                self._last_error = exc
                self._policy.connect_failed(time.monotonic(), time.monotonic() - started)
            return
        with self._lock:
            slot = self._policy.connected(client, time.monotonic(), time.monotonic() - started)
            if self._closed:
                keep = False
            else:
                keep = True
                self._policy.add_idle(slot)
                self._available.notify()
        if not keep:
            client.close()

    def _options(self) -> dict[str, Any]:
        options = dict(self._connect_options)
        if "password" in options:
            options["password"] = resolve(options["password"])
        return options

    # ---- the pool itself ----

    def stats(self) -> PoolStats:
        """stats(): sizes now and counters since the pool was made (oxpg.PoolStats)."""
        with self._lock:
            return self._policy.snapshot()

    def close(self, timeout: float = 5.0) -> None:
        """close(timeout=5.0)

        Close every connection. Lent ones are waited for up to timeout seconds;
        then their statements are cancelled and they are closed too. Acquires
        waiting now, and later ones, raise InterfaceError.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle = list(self._policy.idle)
            self._policy.idle.clear()
            self._available.notify_all()
            self._work.notify_all()
        for slot in idle:
            slot.client.close()
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._policy.lent and time.monotonic() < deadline:
                self._available.wait(deadline - time.monotonic())
            lent = list(self._policy.lent.values())
            self._policy.lent.clear()
        for slot in lent:
            try:
                slot.client.cancel()
            except Exception:
                pass
            slot.client.close()
        self._maintainer.join(timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        stats = self.stats()
        return f"<oxpg.Pool {stats.size} open, {stats.busy} busy, max_size={self._policy.max_size}>"


# Every pool of this process, to start afresh in a forked child.
_POOLS: weakref.WeakSet[Pool] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for pool in list(_POOLS):
        pool._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Lease:
    """``with pool.connection() as client:``: lends a client, takes it back."""

    __slots__ = ("_pool", "_timeout", "_slot")

    def __init__(self, pool: Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        self._slot: Slot | None = None

    def __enter__(self) -> Client:
        if self._slot is not None:
            raise InterfaceError("this pool.connection() block is already entered")
        self._slot = self._pool._acquire(self._timeout)
        return self._slot.client  # type: ignore[no-any-return]

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        slot, self._slot = self._slot, None
        if slot is not None:
            self._pool._release(slot)
