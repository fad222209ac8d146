"""oxpg.Client: the C core's connection plus the policy that lives in Python."""

from __future__ import annotations

import enum

from . import _oxpg


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

    __slots__ = ()

    @property
    def transaction_status(self) -> TransactionStatus:
        return _BY_LIBPQ_CODE[self._transaction_status]

    @property
    def in_transaction(self) -> bool:
        """True inside a transaction block, failed or not."""
        return self.transaction_status in (TransactionStatus.IN_TRANSACTION, TransactionStatus.IN_ERROR)
