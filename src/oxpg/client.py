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
    ) -> Transaction:
        """transaction(isolation=None, *, readonly=False, deferrable=False)

        A transaction block: ``with client.transaction():`` commits on normal exit
        and rolls back on an exception. Nested blocks are savepoints. See
        oxpg.transaction for the rules.
        """
        return Transaction(self, isolation, readonly, deferrable)

    def cursor(self, sql: str, /, *params: Any, scrollable: bool = False, hold: bool = False) -> Cursor:
        """cursor(sql, *params, scrollable=False, hold=False)

        Declare a server-side cursor over sql and return it, to fetch the result in
        parts. Without hold=True it needs a transaction block. See oxpg.cursor.
        """
        return Cursor(self, sql, params, scrollable=scrollable, hold=hold)

    def pipeline(self) -> Pipeline:
        """pipeline()

        ``with client.pipeline() as p:`` queues statements without waiting (one
        round trip for the batch); p.query/p.execute return results claimed in order.
        See oxpg.pipeline for the rules.
        """
        return Pipeline(self)

    def query_one(self, sql: str, /, *params: Any, timeout: float | None = None) -> dict[str, Any] | None:
        """query_one(sql, *params, timeout=None)

        The first row as a dict, or None when the statement returns no row (like
        asyncpg's fetchrow: further rows are ignored; add LIMIT 1 to not fetch them).
        """
        rows = self.query(sql, *params, timeout=timeout)
        return rows[0] if rows else None

    def query_value(self, sql: str, /, *params: Any, timeout: float | None = None) -> Any:
        """query_value(sql, *params, timeout=None)

        The first column of the first row, or None when there is no row.
        """
        rows = self.query_tuples(sql, *params, timeout=timeout)
        if not rows:
            return None
        if not rows[0]:
            raise ProgrammingError("query_value(): the statement returns no columns")
        return rows[0][0]
