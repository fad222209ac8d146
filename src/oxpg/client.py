"""oxpg.Client: the C core's connection plus the policy that lives in Python."""

from __future__ import annotations

import enum
from typing import Any

from . import _oxpg
from ._oxpg import ProgrammingError
from .cursor import Cursor
from .pipeline import Pipeline
from .transaction import IsolationLevel, Transaction


class TransactionStatus(enum.Enum):
    """Where the session stands, as libpq reports it."""

    IDLE = "idle"  # no transaction open (autocommit between statements)
    ACTIVE = "active"  # a statement is running
    IN_TRANSACTION = "in transaction"  # inside BEGIN ... , statements succeeding
    IN_ERROR = "in error"  # inside a failed transaction: only ROLLBACK works
    UNKNOWN = "unknown"  # the connection is closed or lost


_BY_LIBPQ_CODE = {
    _oxpg.TRANS_IDLE: TransactionStatus.IDLE,
    _oxpg.TRANS_ACTIVE: TransactionStatus.ACTIVE,
    _oxpg.TRANS_INTRANS: TransactionStatus.IN_TRANSACTION,
    _oxpg.TRANS_INERROR: TransactionStatus.IN_ERROR,
    _oxpg.TRANS_UNKNOWN: TransactionStatus.UNKNOWN,
}


# The C core's methods a Client hands on as they are: bound once per Client, so a
# call goes from the caller straight into C (no Python frame in between).
_CORE_METHODS = (
    "query", "query_tuples", "execute", "executemany", "stream", "cancel", "take_notices",
    "statement_cache_info", "_cursor_fetch", "_start_query", "_start_execute", "_start_executemany",
    "_pipeline_enter", "_pipeline_send", "_pipeline_sync",
    "_pipeline_next", "_pipeline_exit", "_pipeline_active", "_check_timeout", "_set_type_decoder", "_set_type_encoder",
    "_type_encoders",
)  # fmt: skip


class CoreFacts:
    """What a client (sync or asyncio) reads straight from its C core: none of it
    waits for a running statement."""

    __slots__ = ()
    _core: _oxpg.Client

    closed = property(lambda self: self._core.closed, doc="True once closed or once the connection was lost.")
    broken = property(lambda self: self._core.broken, doc="True when the connection was lost (not closed by you).")
    server_version = property(lambda self: self._core.server_version, doc="Server version as an int (e.g. 150004).")
    backend_pid = property(lambda self: self._core.backend_pid, doc="Process id of the server backend.")
    host = property(lambda self: self._core.host, doc="Server host (or socket directory) connected to.")
    port = property(lambda self: self._core.port, doc="Server port, as libpq reports it (str).")
    dbname = property(lambda self: self._core.dbname, doc="Database name.")
    user = property(lambda self: self._core.user, doc="User name.")
    command_timeout = property(
        lambda self: self._core.command_timeout,
        doc="The default timeout of every call in seconds (connect(command_timeout=)), None for none.",
    )
    _name_token = property(lambda self: self._core._name_token)
    _transaction_status = property(lambda self: self._core._transaction_status)

    @property
    def transaction_status(self) -> TransactionStatus:
        return _BY_LIBPQ_CODE[self._transaction_status]

    @property
    def in_transaction(self) -> bool:
        """True inside a transaction block, failed or not."""
        return self.transaction_status in (TransactionStatus.IN_TRANSACTION, TransactionStatus.IN_ERROR)


class Client(CoreFacts):
    """A connection to PostgreSQL. Create one with oxpg.connect()."""

    # The C core (the connection: mechanism only) is held, not inherited: the policy
    # here (transactions, cursors, pipelines) composes it, and an asynchronous client
    # can hold the same core without inheriting a blocking method.
    __slots__ = ("_core", "_blocks", "_free_cursor_ids", "__weakref__", *_CORE_METHODS)
    _blocks: list[Transaction]
    _free_cursor_ids: list[int]

    def __init__(self, core: _oxpg.Client) -> None:
        self._core = core
        self._blocks = []  # open transaction blocks, outermost first
        self._free_cursor_ids = []  # cursor names free for reuse
        for name in _CORE_METHODS:
            setattr(self, name, getattr(core, name))

    def close(self) -> None:
        """close()

        Close the connection. Calling it again does nothing.
        """
        self._core.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> bool:
        self._core.close()
        return False

    def __repr__(self) -> str:
        return repr(self._core)

    def transaction(
        self,
        isolation: IsolationLevel | str | None = None,
        *,
        readonly: bool = False,
        deferrable: bool = False,
        timeout: float | None = None,
    ) -> Transaction:
        """transaction(isolation=None, *, readonly=False, deferrable=False, timeout=None)

        A transaction block: ``with client.transaction():`` commits on normal exit
        and rolls back on an exception. Nested blocks are savepoints. timeout bounds
        each statement the block sends (BEGIN, SAVEPOINT, COMMIT, ROLLBACK, ...).
        See oxpg.transaction for the rules.
        """
        return Transaction(self, isolation, readonly, deferrable, timeout=timeout)

    def cursor(
        self, sql: str, /, *params: Any, scrollable: bool = False, hold: bool = False, timeout: float | None = None
    ) -> Cursor:
        """cursor(sql, *params, scrollable=False, hold=False, timeout=None)

        Declare a server-side cursor over sql and return it, to fetch the result in
        parts. Without hold=True it needs a transaction block. timeout bounds the
        DECLARE and is the default of each fetch. See oxpg.cursor.
        """
        return Cursor(self, sql, params, scrollable=scrollable, hold=hold, timeout=timeout)

    def pipeline(self, *, timeout: float | None = None) -> Pipeline:
        """pipeline(*, timeout=None)

        ``with client.pipeline() as p:`` queues statements without waiting (one
        round trip for the batch); p.query/p.execute return results claimed in order.
        timeout bounds each call of the pipeline that waits for the server. See
        oxpg.pipeline for the rules.
        """
        return Pipeline(self, timeout)

    def query_one(self, sql: str, /, *params: Any, timeout: float | None = None) -> dict[str, Any] | None:
        """query_one(sql, *params, timeout=None)

        The first row as a dict, or None when the statement returns no row (like
        asyncpg's fetchrow: further rows are ignored; add LIMIT 1 to not fetch them).
        timeout as for query(): None uses the client's command_timeout,
        float('inf') means none.
        """
        rows = self.query(sql, *params, timeout=timeout)
        return rows[0] if rows else None

    def query_value(self, sql: str, /, *params: Any, timeout: float | None = None) -> Any:
        """query_value(sql, *params, timeout=None)

        The first column of the first row, or None when there is no row. timeout as
        for query().
        """
        rows = self.query_tuples(sql, *params, timeout=timeout)
        if not rows:
            return None
        if not rows[0]:
            raise ProgrammingError("query_value(): the statement returns no columns")
        return rows[0][0]
