"""oxpg: a fast PostgreSQL client for Python, in C over libpq.

    import oxpg
    client = oxpg.connect("postgresql://user:pw@localhost:5432/mydb")
    rows = client.query("SELECT id, username FROM users WHERE id = $1", 1)
    n = client.execute("UPDATE users SET active = $1 WHERE id = $2", True, 1)
"""

from __future__ import annotations

from . import _oxpg
from ._connect import connect
from ._oxpg import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InvalidCachedStatementError,
    InternalError,
    NotSupportedError,
    OperationalError,
    PipelineAborted,
    ProgrammingError,
    QueryTimeoutError,
    Warning,
)
from .client import Client, TransactionStatus
from .types import Json, Jsonb, Range
from .cursor import Cursor
from .pool import Pool, PoolStats, PoolTimeout
from .transaction import IsolationLevel, Transaction
from . import errors  # registers the SQLSTATE classes with the C core

__version__ = "0.1.0"

# PEP 249 module globals: parameters are numbered ($1, $2, ...), connections may be
# shared between threads (calls are serialized by a per-client lock).
apilevel = "2.0"
threadsafety = 2
paramstyle = "numeric_dollar"

__all__ = [
    "Client",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InvalidCachedStatementError",
    "InternalError",
    "IsolationLevel",
    "Json",
    "Jsonb",
    "NotSupportedError",
    "OperationalError",
    "PipelineAborted",
    "Pool",
    "PoolStats",
    "PoolTimeout",
    "ProgrammingError",
    "QueryTimeoutError",
    "Range",
    "Transaction",
    "TransactionStatus",
    "Warning",
    "connect",
    "errors",
    "libpq_version",
]


def libpq_version() -> int:
    """Version of the linked libpq, e.g. 150020 for 15.20."""
    return _oxpg.libpq_version()
