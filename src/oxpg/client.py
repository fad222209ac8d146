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


_BY_LIBPQ_CODE = [
    TransactionStatus.IDLE,
    TransactionStatus.ACTIVE,
    TransactionStatus.IN_TRANSACTION,
    TransactionStatus.IN_ERROR,
    TransactionStatus.UNKNOWN,
]


class Client(_oxpg.Client):
    """A connection to PostgreSQL. Create one with oxpg.connect()."""

    # Python-side state, set on first use (the C core allocates Clients without
    # running __init__): the open transaction blocks, the cursor names free for reuse.
    __slots__ = ("_blocks", "_free_cursor_ids")
    _blocks: list[Transaction]
    _free_cursor_ids: list[int]

    @property
    def transaction_status(self) -> TransactionStatus:
        return _BY_LIBPQ_CODE[self._transaction_status]

    @property
    def in_transaction(self) -> bool:
        """True inside a transaction block, failed or not."""
        return self.transaction_status in (TransactionStatus.IN_TRANSACTION, TransactionStatus.IN_ERROR)

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
