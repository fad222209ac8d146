"""oxpg.aio: the asyncio client.

    client = await oxpg.aio.connect("postgresql://user:pw@localhost/mydb")
    rows = await client.query("SELECT id, username FROM users WHERE id = $1", 1)

An AsyncClient holds the same C core as oxpg.Client and runs the same operations
(src/_oxpg/ops/): the socket is registered with the event loop, and each time it is
ready the call's operation is stepped; nothing here knows the protocol. So values,
errors, the statement cache, timeouts and their grace are the sync client's.

One call runs at a time on a client; a second call from another task waits its
turn (first come, first served). Cancelling a task (task.cancel(), asyncio.timeout(),
wait_for) cancels its statement on the server and reads what is left of it before
the cancellation goes on, so the client stays usable; a server that does not answer
within the grace costs the connection, never more time.
"""

from __future__ import annotations

import asyncio
import collections
import time
import weakref
from types import TracebackType
from typing import Any, Iterable, Sequence

from . import _oxpg
from ._connect import plan_connect
from ._oxpg import InterfaceError, OperationalError, ProgrammingError
from .client import CoreFacts
from .transaction import IsolationLevel, Steps, TransactionBlock

__all__ = ["AsyncClient", "AsyncTransaction", "connect"]

_IO_DONE = _oxpg.IO_DONE
_IO_WANT_WRITE = _oxpg.IO_WANT_WRITE

_NO_ADD_READER = (
    "oxpg.aio needs an event loop that watches sockets (loop.add_reader); this one does not "
    "(on Windows, the Proactor loop): use asyncio.SelectorEventLoop"
)


async def connect(dsn: str | None = None, **kwargs: Any) -> AsyncClient:
    """connect(dsn=None, **kwargs)

    Open a connection without blocking the event loop; the arguments are
    oxpg.connect()'s. connect_timeout (seconds) bounds the attempt. Host names
    are resolved by libpq, which blocks the loop while it does: give an IP
    address (or hostaddr=) where that matters.
    """
    plan = plan_connect(dsn, **kwargs)
    loop = asyncio.get_running_loop()
    failures: list[str] = []
    for attempt, (keywords, values) in enumerate(plan.attempts()):
        connecting = _oxpg.connect_start(_oxpg.Client, keywords, values, plan.expand_dbname, *plan.options)
        try:
            core = await _open(loop, connecting)
        except OperationalError as exc:
            if not plan.per_host:
                raise
            failures.append(plan.failure(attempt, exc))
            continue
        return AsyncClient(core, loop)
    raise plan.all_failed(failures)


async def _open(loop: asyncio.AbstractEventLoop, connecting: _oxpg.Connecting) -> _oxpg.Client:
    """Drive the connect operation: libpq may change sockets between steps, so each
    wait registers the socket of that step."""
    waiting: list[asyncio.Future[bool]] = []  # the wait in progress, for the deadline to end

    def expire() -> None:
        if waiting and not waiting[0].done():
            waiting[0].set_result(True)

    deadline = connecting.deadline
    timer = loop.call_later(max(0.0, deadline - time.monotonic()), expire) if deadline is not None else None
    try:
        while (io := connecting.step()) != _IO_DONE:
            ready: asyncio.Future[bool] = loop.create_future()
            waiting[:] = [ready]
            fd = connecting.fileno()
            writing = io == _IO_WANT_WRITE
            try:
                (loop.add_writer if writing else loop.add_reader)(fd, _resolve, ready)
            except NotImplementedError:
                raise InterfaceError(_NO_ADD_READER) from None
            if deadline is not None and time.monotonic() >= deadline:
                expire()
            try:
                timed_out = await ready
            finally:
                (loop.remove_writer if writing else loop.remove_reader)(fd)
            if timed_out:
                connecting.time_out()  # raises OperationalError naming connect_timeout
        return connecting.result()
    except BaseException:
        connecting.close()
        raise
    finally:
        if timer is not None:
            timer.cancel()


def _resolve(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)


class AsyncClient(CoreFacts):
    """A connection to PostgreSQL for asyncio. Create one with oxpg.aio.connect()."""

    __slots__ = (
        "_core", "_loop", "_fd", "_op", "_future", "_writing", "_timer", "_busy", "_waiters", "_blocks",
        "_free_cursor_ids", "__weakref__",
    )  # fmt: skip

    def __init__(self, core: _oxpg.Client, loop: asyncio.AbstractEventLoop) -> None:
        self._core = core
        self._loop = loop
        self._op: _oxpg.Operation | None = None  # the call in flight
        self._future: asyncio.Future[None] | None = None  # resolved when it ends
        self._writing = False  # the socket is also watched for writing
        self._timer: asyncio.TimerHandle | None = None  # its deadline, or its drain's
        self._busy = False  # a call holds the client
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._blocks: list[TransactionBlock] = []  # open transaction blocks, outermost first
        self._free_cursor_ids: list[int] = []
        # The socket is watched for the client's whole life, not once per call (that
        # costs two system calls a statement); when no call runs, what arrives is
        # taken in. The loop holds only a weak reference: an AsyncClient nobody
        # holds is collected (and its connection closed) as a Client is.
        self._fd = core._socket()
        if self._fd >= 0:
            try:
                loop.add_reader(self._fd, _on_ready, weakref.ref(self))
            except NotImplementedError:
                raise InterfaceError(_NO_ADD_READER) from None

    def __del__(self) -> None:
        # Before the core closes the socket: a closed socket still watched by the
        # loop would break the next one to get its number.
        try:
            self._forget_socket()
        except Exception:  # the loop may be closed already
            pass

    def __repr__(self) -> str:
        return repr(self._core).replace("<oxpg.Client", "<oxpg.aio.AsyncClient", 1)

    def _check_timeout(self, timeout: float | None) -> None:
        self._core._check_timeout(timeout)

    def statement_cache_info(self) -> dict[str, int]:
        """statement_cache_info()

        The statement cache's size and counters, as Client.statement_cache_info().
        """
        return self._core.statement_cache_info()

    def take_notices(self) -> list[Any]:
        """take_notices()

        The server notices received so far (and forget them), as Client.take_notices().
        """
        return self._core.take_notices()

    # ---- the calls -------------------------------------------------------------------

    async def query(self, sql: str, /, *params: Any, timeout: float | None = None) -> list[dict[str, Any]]:
        """query(sql, *params, timeout=None)

        Run one statement with $1, $2, ... bound to params and return its rows as
        a list of dicts, as Client.query(). timeout: seconds after which the
        statement is cancelled on the server and QueryTimeoutError is raised; None
        uses the client's command_timeout, float('inf') means none.
        """
        if self._busy:
            await self._wait_turn()
        else:
            self._busy = True
        try:
            if timeout is None:
                op = self._core._start_query(True, sql, *params)
            else:
                op = self._core._start_query(True, sql, *params, timeout=timeout)
            return await self._run(op)  # type: ignore[no-any-return]
        finally:
            self._pass_turn()

    async def query_tuples(self, sql: str, /, *params: Any, timeout: float | None = None) -> list[tuple[Any, ...]]:
        """query_tuples(sql, *params, timeout=None)

        Like query() but each row is a tuple in column order.
        """
        if self._busy:
            await self._wait_turn()
        else:
            self._busy = True
        try:
            if timeout is None:
                op = self._core._start_query(False, sql, *params)
            else:
                op = self._core._start_query(False, sql, *params, timeout=timeout)
            return await self._run(op)  # type: ignore[no-any-return]
        finally:
            self._pass_turn()

    async def query_one(self, sql: str, /, *params: Any, timeout: float | None = None) -> dict[str, Any] | None:
        """query_one(sql, *params, timeout=None)

        The first row as a dict, or None when the statement returns no row.
        """
        rows = await self.query(sql, *params, timeout=timeout)
        return rows[0] if rows else None

    async def query_value(self, sql: str, /, *params: Any, timeout: float | None = None) -> Any:
        """query_value(sql, *params, timeout=None)

        The first column of the first row, or None when there is no row.
        """
        rows = await self.query_tuples(sql, *params, timeout=timeout)
        if not rows:
            return None
        if not rows[0]:
            raise ProgrammingError("query_value(): the statement returns no columns")
        return rows[0][0]

    async def execute(self, sql: str, /, *params: Any, timeout: float | None = None) -> int:
        """execute(sql, *params, timeout=None)

        Run a statement and return the number of rows it affected, as
        Client.execute(). Without params, sql may hold several statements.
        """
        if self._busy:
            await self._wait_turn()
        else:
            self._busy = True
        try:
            if timeout is None:
                op = self._core._start_execute(sql, *params)
            else:
                op = self._core._start_execute(sql, *params, timeout=timeout)
            return await self._run(op)  # type: ignore[no-any-return]
        finally:
            self._pass_turn()

    async def executemany(
        self, sql: str, seq_of_params: Iterable[Sequence[Any]], /, *, timeout: float | None = None
    ) -> int:
        """executemany(sql, seq_of_params, *, timeout=None)

        Run one statement once per row of parameters in a single pipeline, as
        Client.executemany(): outside a transaction all or nothing, a failing row
        named by exc.executemany_row. seq_of_params is a (sync) iterable, pulled
        while the batch is sent. Returns the total number of rows affected.
        """
        if self._busy:
            await self._wait_turn()
        else:
            self._busy = True
        try:
            if timeout is None:
                op = self._core._start_executemany(sql, seq_of_params)
            else:
                op = self._core._start_executemany(sql, seq_of_params, timeout=timeout)
            return await self._run(op)  # type: ignore[no-any-return]
        finally:
            self._pass_turn()

    def transaction(
        self,
        isolation: IsolationLevel | str | None = None,
        *,
        readonly: bool = False,
        deferrable: bool = False,
        timeout: float | None = None,
    ) -> AsyncTransaction:
        """transaction(isolation=None, *, readonly=False, deferrable=False, timeout=None)

        ``async with client.transaction():`` commits on normal exit and rolls back
        on an exception; nested blocks are savepoints. The rules are
        oxpg.transaction's.
        """
        return AsyncTransaction(self, isolation, readonly, deferrable, timeout=timeout)

    async def cancel(self) -> None:
        """cancel()

        Ask the server to cancel the statement this client runs now (from another
        task); the call running it raises QueryCanceled. Sending the request opens
        a connection of its own, so it runs in the loop's default executor.
        """
        await self._loop.run_in_executor(None, self._core.cancel)

    async def close(self) -> None:
        """close()

        Close the connection once the call in flight (if any) is over. Calling it
        again does nothing.
        """
        if self._core.closed:
            return
        if self._busy:
            await self._wait_turn()
        else:
            self._busy = True
        try:
            self._forget_socket()
            self._core.close()
        finally:
            self._pass_turn()

    def terminate(self) -> None:
        """terminate()

        Close the connection now, giving up the call in flight (it raises).
        """
        op = self._op
        self._forget_socket()
        if op is not None and not op.done:
            try:
                op.abandon()
            except BaseException as exc:  # the call's outcome: it gets it
                self._settle(exc)
            else:
                self._settle(OperationalError("the client was terminated"))
        self._core.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---- taking turns ----------------------------------------------------------------

    async def _wait_turn(self) -> None:
        """Another call holds the client: wait until it is handed to this one (the
        calls check _busy themselves, to spare a coroutine when it is free)."""
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._pass_turn()  # handed the turn just as this task was cancelled
            elif waiter in self._waiters:  # _pass_turn may have dropped it already
                self._waiters.remove(waiter)
            raise

    def _pass_turn(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the client stays busy: it is that task's now
                return
        self._busy = False

    # ---- driving an operation --------------------------------------------------------

    async def _run(self, op: _oxpg.Operation) -> Any:
        """Step op on the loop until it is done; its result, or its exception."""
        try:
            io = op.step()  # sends the statement
        except BaseException:
            self._forget_socket_if_closed()
            raise
        if io == _IO_DONE:
            return op.result()
        future = self._loop.create_future()
        self._op = op
        self._future = future
        try:
            if io == _IO_WANT_WRITE:
                self._watch_writes(True)
            deadline = op.deadline
            if deadline is not None:
                self._timer = self._loop.call_later(max(0.0, deadline - time.monotonic()), self._on_deadline)
            try:
                await future
            except asyncio.CancelledError:
                if not op.done:
                    await self._drain_cancelled(op)
                raise
            return op.result()
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._writing:
                self._watch_writes(False)
            self._op = None
            self._future = None
            self._forget_socket_if_closed()

    def _ready(self) -> None:
        """The socket is ready: step the call's op, or take in what came between calls."""
        op = self._op
        if op is None:
            if not self._core._consume_input():
                self._forget_socket()
            return
        if self._future is None or self._future.done():
            return
        try:
            io = op.step()
        except BaseException as exc:
            # The step may have closed the connection: unwatch its socket now, before
            # another connection can get its number.
            self._forget_socket_if_closed()
            self._settle(exc)
            return
        if io == _IO_DONE:
            self._forget_socket_if_closed()
            self._settle(None)
        elif (io == _IO_WANT_WRITE) != self._writing:
            self._watch_writes(io == _IO_WANT_WRITE)

    def _on_deadline(self) -> None:
        """The call's timeout: cancel on the server, then drain within the grace."""
        op = self._op
        self._timer = None
        if op is None or op.done or op.draining:
            return
        if not self._interrupt(op.time_out):
            return
        self._arm_drain_timer(op)
        self._ready()  # the cancel is sent: read what has come

    def _on_drain_deadline(self) -> None:
        """The grace is spent: the connection goes, the call raises its exception."""
        op = self._op
        self._timer = None
        if op is None or op.done:
            return
        self._forget_socket()
        try:
            op.abandon()
        except BaseException as exc:
            self._settle(exc)
        else:
            self._settle(OperationalError("the statement could not be ended in time: the connection was closed"))

    def _arm_drain_timer(self, op: _oxpg.Operation) -> None:
        drain_deadline = op.drain_deadline
        if drain_deadline is not None:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_later(max(0.0, drain_deadline - time.monotonic()), self._on_drain_deadline)

    async def _drain_cancelled(self, op: _oxpg.Operation) -> None:
        """The awaiting task was cancelled mid-statement: cancel it on the server and
        read the rest before the cancellation goes on, so the client stays usable.
        More cancellations meanwhile wait for the drain (bounded by its grace)."""
        future = self._loop.create_future()
        self._future = future
        if self._interrupt(op.interrupt):
            self._arm_drain_timer(op)
            self._ready()
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                continue
            except BaseException:
                break
        if not future.cancelled():
            future.exception()  # QueryCanceled, expected: the task's cancellation is what counts

    def _interrupt(self, how: Any) -> bool:
        """op.time_out or op.interrupt: True when the op now drains; False when it
        could not (the connection went), and the call has its exception."""
        try:
            how()
        except BaseException as exc:
            self._forget_socket_if_closed()
            self._settle(exc)
            return False
        self._forget_socket_if_closed()
        return True

    def _settle(self, exc: BaseException | None) -> None:
        future = self._future
        if future is None or future.done():
            return
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(exc)

    def _watch_writes(self, on: bool) -> None:
        if self._fd < 0:
            return
        if on:
            self._loop.add_writer(self._fd, _on_ready, weakref.ref(self))
        else:
            self._loop.remove_writer(self._fd)
        self._writing = on

    def _forget_socket(self) -> None:
        """Stop watching the socket: before the client closes it, or once it did."""
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        self._loop.remove_reader(fd)
        if self._writing:
            self._loop.remove_writer(fd)
            self._writing = False

    def _forget_socket_if_closed(self) -> None:
        if self._fd >= 0 and self._core.closed:
            self._forget_socket()


def _on_ready(client_ref: weakref.ref[AsyncClient]) -> None:
    client = client_ref()
    if client is not None:
        client._ready()


async def run_steps(steps: Steps, execute: Any, timeout: float | None) -> None:
    """oxpg.transaction.run_steps, awaiting each statement."""
    try:
        sql = next(steps)
        while True:
            try:
                await execute(sql, timeout=timeout)
            except BaseException as exc:
                sql = steps.throw(exc)
            else:
                sql = steps.send(None)
    except StopIteration:
        return


class AsyncTransaction(TransactionBlock):
    """A transaction block or savepoint of an AsyncClient: ``async with
    client.transaction():``. The rules are oxpg.transaction's."""

    __slots__ = ()

    async def __aenter__(self) -> AsyncTransaction:
        await run_steps(self._enter_steps(), self.client.execute, self.timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await run_steps(self._exit_steps(exc), self.client.execute, self.timeout)

    async def commit(self, *, timeout: float | None = None) -> None:
        """Commit now (RELEASE for a savepoint) and end the block."""
        self._check_can_end("commit")
        await run_steps(self._end_steps(commit=True), self.client.execute, self._timeout_for(timeout))

    async def rollback(self, *, timeout: float | None = None) -> None:
        """Roll back now (to the savepoint for a nested block) and end the block."""
        self._check_can_end("roll back")
        await run_steps(self._end_steps(commit=False), self.client.execute, self._timeout_for(timeout))


# The pool of AsyncClients lives in its own module (it needs the names above).
from .aio_pool import AsyncPool  # noqa: E402

__all__ += ["AsyncPool"]
