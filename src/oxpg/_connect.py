"""oxpg.connect(): turns the user's arguments into libpq keyword/value arrays.

Values are never pasted into a conninfo string, so a password such as
"x host=evil" stays a password (conninfo injection).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from . import _oxpg
from ._oxpg import InterfaceError, OperationalError
from .client import Client

# Where a password can hide in a DSN, for scrubbing libpq's parse errors.
# libpq's URI userinfo runs to the first "@", so '?' and '#' may be in a password.
_URI_PASSWORD = re.compile(r"://[^:/@]*:([^@/]*)@")
_KV_PASSWORD = re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


class _Default:
    """Marks port/db as not given, so libpq's PGPORT/PGDATABASE can apply."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return self.value


_DEFAULT_PORT = _Default("5432")
_DEFAULT_DB = _Default("'postgres'")


def plan_connect(
    dsn: str | None = None,
    *,
    host: str | None = None,
    user: str | None = None,
    password: str | None = None,
    port: int | str = _DEFAULT_PORT,  # type: ignore[assignment]
    db: str = _DEFAULT_DB,  # type: ignore[assignment]
    statement_cache_size: int = 100,
    prepare_threshold: int = 2,
    command_timeout: float | None = None,
    **libpq_options: str | int | float,
) -> ConnectPlan:
    """The libpq arguments connect() and oxpg.aio.connect() open a connection with
    (see connect() for what the arguments mean); bad ones raise here, before any
    network traffic."""
    for name, setting in (("statement_cache_size", statement_cache_size), ("prepare_threshold", prepare_threshold)):
        if isinstance(setting, bool) or not isinstance(setting, int) or not 0 <= setting <= 1_000_000:
            raise InterfaceError(f"{name} must be an int between 0 and 1000000")
    if dsn is not None and (host is not None or user is not None or password is not None):
        raise InterfaceError("give either a DSN or host/user/password keywords, not both")
    if dsn is not None and not isinstance(dsn, str):
        raise InterfaceError(f"dsn must be a str, not {type(dsn).__name__}")

    keywords: list[str] = []
    values: list[str] = []

    def add(key: str, value: object) -> None:
        text = str(value)
        if "\x00" in text:
            raise InterfaceError(f"connection option {key!r} contains a NUL character")
        keywords.append(key)
        values.append(text)

    explicit_port = not isinstance(port, _Default)
    explicit_db = not isinstance(db, _Default)
    if dsn is not None:
        dsn_options = dict(_check_dsn(dsn))
        # With expand_dbname, libpq parses the dbname entry as a full connection string.
        add("dbname", dsn)
    else:
        dsn_options = {}
        # The documented defaults (port 5432, db "postgres") apply with the keyword
        # form; with no keywords at all, libpq's environment decides.
        keyword_form = host is not None or user is not None or password is not None
        for key, value in (("host", host), ("user", user), ("password", password)):
            if value is not None:
                add(key, value)
        if explicit_port or keyword_form:
            add("port", port if explicit_port else 5432)
        if explicit_db or keyword_form:
            add("dbname", db if explicit_db else "postgres")

    _check_options(libpq_options)
    for key, value in libpq_options.items():
        add(key, value)
    # Entries after dbname override what the DSN set: oxpg decodes text as UTF-8.
    add("client_encoding", "UTF8")

    effective = {**dsn_options, **dict(zip(keywords, values))}
    return ConnectPlan(
        keywords,
        values,
        dsn is not None,
        _per_host_attempts(effective),
        (statement_cache_size, prepare_threshold, command_timeout),
    )


def connect(
    dsn: str | None = None,
    *,
    host: str | None = None,
    user: str | None = None,
    password: str | None = None,
    port: int | str = _DEFAULT_PORT,  # type: ignore[assignment]
    db: str = _DEFAULT_DB,  # type: ignore[assignment]
    statement_cache_size: int = 100,
    prepare_threshold: int = 2,
    command_timeout: float | None = None,
    **libpq_options: str | int | float,
) -> Client:
    """connect(dsn=None, *, host=None, user=None, password=None, port=5432, db="postgres",
    command_timeout=None, **libpq_options)

    Open a connection. Either a DSN (``postgresql://user:pw@host:5432/db`` URI or
    ``key=value`` string) or the host/user/password/port/db keywords; with neither,
    libpq's environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, ...) and
    defaults apply. Any other keyword (sslmode, connect_timeout, application_name,
    options, ...) goes to libpq as is. Raises InterfaceError for a bad DSN or option
    and OperationalError when the server cannot be reached or refuses the login.

    Statements run prepare_threshold times are prepared on the server and kept in a
    per-client LRU of statement_cache_size entries; statement_cache_size=0 turns
    this off (PgBouncer in transaction mode, which cannot keep them).

    command_timeout (seconds) is the timeout of every call that takes timeout= and
    is not given one (None there means "the client's default"); a call's own
    timeout= overrides it, and timeout=float('inf') means none for that call.
    """
    plan = plan_connect(
        dsn,
        host=host,
        user=user,
        password=password,
        port=port,
        db=db,
        statement_cache_size=statement_cache_size,
        prepare_threshold=prepare_threshold,
        command_timeout=command_timeout,
        **libpq_options,
    )
    failures: list[str] = []
    for attempt, (keywords, values) in enumerate(plan.attempts()):
        try:
            return Client(_oxpg.connect(_oxpg.Client, keywords, values, plan.expand_dbname, *plan.options))
        except OperationalError as exc:
            if not plan.per_host:
                raise
            failures.append(plan.failure(attempt, exc))
    raise plan.all_failed(failures)


class ConnectPlan(NamedTuple):
    """What to hand libpq, worked out once for the sync and the asyncio connect."""

    keywords: list[str]
    values: list[str]
    expand_dbname: bool
    per_host: list[tuple[str, str]]  # (host, port) to try one by one; empty: libpq walks the list
    options: tuple[int, int, float | None]  # statement_cache_size, prepare_threshold, command_timeout

    def attempts(self) -> Iterator[tuple[list[str], list[str]]]:
        """The keyword/value arrays of each connection attempt, in order."""
        if not self.per_host:
            yield self.keywords, self.values
            return
        for host, port in self.per_host:
            # Later entries override earlier ones (and the DSN's).
            yield [*self.keywords, "host", "port"], [*self.values, host, port]

    def failure(self, attempt: int, exc: OperationalError) -> str:
        host, port = self.per_host[attempt]
        return f"{host}:{port or 'default port'}: {exc}"

    def all_failed(self, failures: list[str]) -> OperationalError:
        return OperationalError("could not connect to any host:\n" + "\n".join(failures))


def _per_host_attempts(options: dict[str, str]) -> list[tuple[str, str]]:
    """(host, port) pairs to try one by one, when connect_timeout is set.

    libpq applies connect_timeout per host, but its non-blocking connect (which oxpg
    uses to stay interruptible) cannot be told to give up on one host and move on;
    so with several hosts and a timeout, oxpg tries them itself, each with the full
    timeout. Without a timeout, libpq walks the list on its own.
    """
    timeout = options.get("connect_timeout", os.environ.get("PGCONNECT_TIMEOUT", ""))
    hosts = options.get("host", os.environ.get("PGHOST", ""))
    if not timeout.strip().lstrip("-").isdigit() or int(timeout) <= 0 or "," not in hosts:
        return []
    if "hostaddr" in options or "PGHOSTADDR" in os.environ:
        return []
    host_list = hosts.split(",")
    ports = options.get("port", os.environ.get("PGPORT", "")).split(",")
    if len(ports) == 1:
        ports = ports * len(host_list)
    if len(ports) != len(host_list):
        return []  # libpq will report the mismatch itself
    return list(zip(host_list, ports))


def _check_dsn(dsn: str) -> list[tuple[str, str]]:
    try:
        pairs = _oxpg.conninfo_parse(dsn)
    except InterfaceError as exc:
        raise InterfaceError(_scrub(str(exc), dsn)) from None
    for key, value in pairs:
        if key == "client_encoding" and value.upper().replace("-", "") not in ("UTF8", "UNICODE"):
            raise InterfaceError("oxpg requires client_encoding UTF8")
    return pairs


def _check_options(options: dict[str, object]) -> None:
    known = _oxpg.conninfo_keywords()
    for key in ("dbname", "host", "user", "password", "port"):
        if key in options:
            raise InterfaceError(f"pass {key!r} as a DSN or as its own keyword, not in **libpq_options")
    unknown = sorted(set(options) - known)
    if unknown:
        raise InterfaceError(f"unknown connection option(s): {', '.join(unknown)}")
    encoding = options.get("client_encoding")
    if encoding is not None and str(encoding).upper().replace("-", "") not in ("UTF8", "UNICODE"):
        raise InterfaceError("oxpg requires client_encoding UTF8")


def _scrub(message: str, dsn: str) -> str:
    """libpq's parse errors may quote the DSN: never let a password through."""
    secrets: Iterable[str] = [m.group(1) for m in _URI_PASSWORD.finditer(dsn)]
    secrets = [*secrets, *(m.group(1).strip("'") for m in _KV_PASSWORD.finditer(dsn))]
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message
