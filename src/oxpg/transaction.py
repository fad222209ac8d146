"""Transaction blocks: ``with client.transaction(): ...``.

The outermost block sends BEGIN (with its isolation level and access mode) and
COMMIT or ROLLBACK; a block opened inside a transaction becomes a SAVEPOINT,
released on success and rolled back to on an exception. Outside any block the
Client is in autocommit: every statement commits on its own.

Rules that keep a block from ever reporting success for work that was not kept:

- A statement failed inside the block and its exception was caught: leaving the
  block normally rolls it back and raises ``errors.InFailedSqlTransaction`` (the
  server would have answered COMMIT with a silent ROLLBACK).
- A failing COMMIT (deferred constraint, serialization failure) raises its error.
- A block whose transaction was ended behind its back (COMMIT or ROLLBACK sent
  through ``execute()``) raises ``ProgrammingError`` when it is left normally.
- Leaving on an exception never replaces that exception: if the ROLLBACK fails as
  well (connection lost), its error is attached as a note.

A block opened while a transaction started by hand (``execute("BEGIN")``) is open
becomes a savepoint inside it; that transaction stays the caller's to end.

Every statement a block sends (BEGIN, SAVEPOINT, RELEASE, COMMIT, ROLLBACK) has a
timeout: commit(timeout=) / rollback(timeout=) for theirs, else the block's
(``client.transaction(timeout=)``), else the client's command_timeout;
float('inf') means none. A COMMIT that times out was cancelled: the transaction is
rolled back and QueryTimeoutError raised.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import errors
from ._oxpg import Error, InterfaceError, OperationalError, ProgrammingError

if TYPE_CHECKING:
    from .client import Client

__all__ = ["IsolationLevel", "Transaction", "TransactionBlock", "run_steps"]

# What a block does is written once, as steps: generators that yield each statement
# to send and get its outcome back (None, or the exception thrown in). Transaction
# runs them with the sync client; oxpg.aio's AsyncTransaction awaits each one.
Steps = Generator[str, None, None]


def run_steps(steps: Steps, execute: Callable[..., Any], timeout: float | None) -> None:
    """Run a block's steps with a sync execute(sql, timeout=)."""
    try:
        sql = next(steps)
        while True:
            try:
                execute(sql, timeout=timeout)
            except BaseException as exc:
                sql = steps.throw(exc)
            else:
                sql = steps.send(None)
    except StopIteration:
        return

# libpq's PGTransactionStatusType, as Client._transaction_status returns it. Read as
# ints (not the TransactionStatus enum) to spare an enum lookup per block.
_IDLE = 0
_IN_TRANSACTION = 2
_IN_ERROR = 3


class IsolationLevel(enum.Enum):
    """A transaction isolation level; the value is its SQL spelling."""

    READ_UNCOMMITTED = "READ UNCOMMITTED"
    READ_COMMITTED = "READ COMMITTED"
    REPEATABLE_READ = "REPEATABLE READ"
    SERIALIZABLE = "SERIALIZABLE"


def _isolation_level(value: IsolationLevel | str | None) -> IsolationLevel | None:
    """The level named by value: an IsolationLevel or a case-insensitive name."""
    if value is None or isinstance(value, IsolationLevel):
        return value
    if not isinstance(value, str):
        raise TypeError(f"isolation must be an oxpg.IsolationLevel, a str or None, not {type(value).__name__}")
    # "repeatable read", "REPEATABLE_READ" and "Repeatable  Read" all name one level.
    spelled = " ".join(value.replace("_", " ").split()).upper()
    try:
        return IsolationLevel(spelled)
    except ValueError:
        names = ", ".join(repr(level.value.lower()) for level in IsolationLevel)
        raise ValueError(f"unknown isolation level {value!r}: use an oxpg.IsolationLevel or one of {names}") from None


def _quote_ident(name: str) -> str:
    # What PQescapeIdentifier produces for a valid UTF-8 name. Only oxpg's own
    # generated names (ASCII letters, digits, underscores) come here.
    return '"' + name.replace('"', '""') + '"'


class _State(enum.Enum):
    NEW = "not started"
    ACTIVE = "active"
    COMMITTED = "committed"  # for a savepoint: released into the enclosing block
    ROLLED_BACK = "rolled back"
    ENDED_OUTSIDE = "ended outside the block"  # a COMMIT/ROLLBACK sent through execute()


def _open_blocks(client: Any) -> list[TransactionBlock]:
    """The client's open blocks, outermost first (kept in a Client slot)."""
    return client._blocks


def innermost_block(client: Any) -> TransactionBlock | None:
    """The block statements run in now, or None (autocommit or a transaction begun by hand)."""
    blocks = _open_blocks(client)
    return blocks[-1] if blocks else None


def cursor_dropped(block: TransactionBlock | None, hold: bool) -> str | None:
    """Why the server has certainly dropped a cursor declared in block, else None.

    Rolling back a block or a savepoint closes every cursor declared inside it;
    COMMIT closes the cursors declared without WITH HOLD. None means "as far as the
    blocks know it is open": it may still be gone (a transaction begun by hand).
    """
    while block is not None:
        if block._state is _State.ROLLED_BACK:
            return "its transaction block was rolled back"
        if block.savepoint is None:  # the block holding the whole transaction
            if block._state is _State.COMMITTED and not hold:
                return "its transaction was committed (use hold=True to keep a cursor after COMMIT)"
            return None
        block = block._parent  # a released savepoint hands its cursors to its parent
    return None


class TransactionBlock:
    """What a transaction block or savepoint does, as steps (see run_steps); the
    sync Transaction and oxpg.aio's AsyncTransaction drive it."""

    __slots__ = ("client", "isolation", "readonly", "deferrable", "timeout", "savepoint", "_state", "_parent")

    def __init__(
        self,
        client: Any,
        isolation: IsolationLevel | str | None = None,
        readonly: bool = False,
        deferrable: bool = False,
        *,
        timeout: float | None = None,
    ) -> None:
        # Everything is checked here, before anything can be sent.
        for name, flag in (("readonly", readonly), ("deferrable", deferrable)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, not {type(flag).__name__}")
        client._check_timeout(timeout)
        self.client = client
        self.isolation = _isolation_level(isolation)
        self.readonly = readonly
        self.deferrable = deferrable
        self.timeout = timeout  # the default of each statement the block sends
        self.savepoint: str | None = None  # the savepoint's name when the block is nested
        self._state = _State.NEW
        self._parent: TransactionBlock | None = None  # the enclosing block of ours, if any

    def __repr__(self) -> str:
        kind = f"savepoint {self.savepoint}" if self.savepoint else "transaction"
        return f"<oxpg.Transaction {kind} {self._state.value}>"

    @property
    def active(self) -> bool:
        """True between entering the block and its end (exit, commit() or rollback())."""
        return self._state is _State.ACTIVE

    def _enter_steps(self) -> Steps:
        if self._state is not _State.NEW:
            raise ProgrammingError("a transaction block can be entered once; call client.transaction() again")
        client = self.client
        blocks = _open_blocks(client)
        status = client._transaction_status
        if status == _IN_TRANSACTION or status == _IN_ERROR:
            if self.isolation is not None or self.readonly or self.deferrable:
                raise ProgrammingError(
                    "isolation, readonly and deferrable apply to a whole transaction: "
                    "give them to the outermost block (this one is nested, a savepoint)"
                )
            # Depth-based names: unique among the open savepoints, and the same
            # SQL text every time. The outermost savepoint under a transaction
            # begun by hand has no parent of ours.
            name = f"_oxpg_savepoint_{len(blocks) + 1}"
            yield f"SAVEPOINT {_quote_ident(name)}"
            self.savepoint = name
            self._parent = blocks[-1] if blocks else None
        else:
            if status == _IDLE:
                # Blocks still on the list while the server is idle lost their
                # transaction to a COMMIT/ROLLBACK sent through execute().
                for stale in blocks:
                    stale._state = _State.ENDED_OUTSIDE
                blocks.clear()
            yield self._begin_statement()  # a closed client raises here
        self._state = _State.ACTIVE
        blocks.append(self)

    def _exit_steps(self, exc: BaseException | None) -> Steps:
        if exc is None:
            if self._state is _State.ACTIVE:
                yield from self._end_steps(commit=True)
            elif self._state is _State.ENDED_OUTSIDE:
                raise self._ended_outside_error()
            return  # ended early by commit()/rollback() or by an enclosing block
        if self._state is not _State.ACTIVE:
            return
        try:
            yield from self._end_steps(commit=False)
        except Error as rollback_error:
            # The body's exception is the one to see; keep the other next to it.
            exc.add_note(f"oxpg: rolling back the transaction block failed too: {rollback_error!r}")

    def _timeout_for(self, timeout: float | None) -> float | None:
        """The call's timeout, else the block's; checked before the block ends."""
        if timeout is None:
            timeout = self.timeout
        self.client._check_timeout(timeout)
        return timeout

    def _begin_statement(self) -> str:
        modes = []
        if self.isolation is not None:
            modes.append(f"ISOLATION LEVEL {self.isolation.value}")
        if self.readonly:  # False keeps the server's default_transaction_read_only
            modes.append("READ ONLY")
        if self.deferrable:
            modes.append("DEFERRABLE")
        return " ".join(["BEGIN", ", ".join(modes)]) if modes else "BEGIN"

    def _check_can_end(self, action: str) -> None:
        if self._state is _State.NEW:
            raise ProgrammingError(f"cannot {action}: the transaction block has not started (enter it with 'with')")
        if self._state is _State.ENDED_OUTSIDE:
            raise self._ended_outside_error()
        if self._state is not _State.ACTIVE:
            raise ProgrammingError(f"cannot {action}: the transaction block has already ended ({self._state.value})")

    def _ended_outside_error(self) -> ProgrammingError:
        self._state = _State.ENDED_OUTSIDE
        return ProgrammingError(
            "the transaction was ended inside the block by a COMMIT or ROLLBACK sent through execute(); "
            "use the block's commit() or rollback() instead"
        )

    def _end_steps(self, commit: bool) -> Steps:
        """End this block and those still open inside it: commit or roll back."""
        client = self.client
        blocks = _open_blocks(client)
        inner = blocks[blocks.index(self) :]
        del blocks[blocks.index(self) :]

        def settle(state: _State) -> None:
            for block in inner:
                block._state = state

        if client.closed:
            # The server rolled back when the session ended.
            settle(_State.ROLLED_BACK)
            if commit:
                if client.broken:
                    raise OperationalError("the connection was lost in the transaction block: nothing was committed")
                raise InterfaceError("the Client was closed inside the transaction block: nothing was committed")
            return
        status = client._transaction_status
        if status == _IDLE:
            settle(_State.ENDED_OUTSIDE)
            if commit:
                raise self._ended_outside_error()
            return
        if not commit or status == _IN_ERROR:
            settle(_State.ROLLED_BACK)  # also true if the ROLLBACK fails: the connection is then gone
            if self.savepoint is None:
                yield "ROLLBACK"
            else:
                name = _quote_ident(self.savepoint)
                yield f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}"
            if commit:
                raise errors.InFailedSqlTransaction(
                    "a statement failed inside the transaction block and its exception was caught: "
                    "the block was rolled back and nothing in it was committed"
                )
            return
        try:
            yield "COMMIT" if self.savepoint is None else f"RELEASE SAVEPOINT {_quote_ident(self.savepoint)}"
        except BaseException:
            # A COMMIT that fails has rolled the transaction back; a RELEASE that
            # fails leaves the enclosing transaction failed, for it to roll back.
            # (An interrupted COMMIT's outcome is unknown: assume the worse one.)
            settle(_State.ROLLED_BACK)
            raise
        settle(_State.COMMITTED)


class Transaction(TransactionBlock):
    """A transaction block or savepoint; create it with ``client.transaction()``."""

    __slots__ = ()

    def __enter__(self) -> Transaction:
        run_steps(self._enter_steps(), self.client.execute, self.timeout)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        run_steps(self._exit_steps(exc), self.client.execute, self.timeout)

    def commit(self, *, timeout: float | None = None) -> None:
        """Commit now (RELEASE for a savepoint) and end the block; the rest of the
        with-body runs in the enclosing block, or in autocommit. timeout: of the
        COMMIT (None: the block's)."""
        self._check_can_end("commit")
        run_steps(self._end_steps(commit=True), self.client.execute, self._timeout_for(timeout))

    def rollback(self, *, timeout: float | None = None) -> None:
        """Roll back now (to the savepoint for a nested block) and end the block."""
        self._check_can_end("roll back")
        run_steps(self._end_steps(commit=False), self.client.execute, self._timeout_for(timeout))
