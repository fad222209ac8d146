"""oxpg.connect(): turns the user's arguments into libpq keyword/value arrays.

Values are never pasted into a conninfo string, so a password such as
"x host=evil" stays a password (conninfo injection).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from . import _oxpg
from ._oxpg import Client, InterfaceError

# Where a password can hide in a DSN, for scrubbing libpq's parse errors.
_URI_PASSWORD = re.compile(r"://[^:/@?#]*:([^@/?#]*)@")
_KV_PASSWORD = re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def connect(
    dsn: str | None = None,
    *,
    host: str | None = None,
    user: str | None = None,
    password: str | None = None,
    port: int | str = 5432,
    db: str = "postgres",
    **libpq_options: str | int | float,
) -> Client:
    """connect(dsn=None, *, host=None, user=None, password=None, port=5432, db="postgres", **libpq_options)

    Open a connection. Either a DSN (``postgresql://user:pw@host:5432/db`` URI or
    ``key=value`` string) or the host/user/password/port/db keywords; with neither,
    libpq's environment (PGHOST, PGUSER, PGPASSWORD, PGDATABASE, ...) and defaults
    apply. Any other keyword (sslmode, connect_timeout, application_name, options,
    ...) goes to libpq as is. Raises InterfaceError for a bad DSN or option and
    OperationalError when the server cannot be reached or refuses the login.
    """
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

    if dsn is not None:
        _check_dsn(dsn)
        # With expand_dbname, libpq parses the dbname entry as a full connection string.
        add("dbname", dsn)
    else:
        if host is not None:
            add("host", host)
        if user is not None:
            add("user", user)
        if password is not None:
            add("password", password)
        if port is not None:
            add("port", port)
        if db is not None:
            add("dbname", db)

    _check_options(libpq_options)
    for key, value in libpq_options.items():
        add(key, value)
    # Entries after dbname override what the DSN set: oxpg decodes text as UTF-8.
    add("client_encoding", "UTF8")

    return _oxpg.connect(keywords, values, dsn is not None)


def _check_dsn(dsn: str) -> None:
    try:
        pairs = _oxpg.conninfo_parse(dsn)
    except InterfaceError as exc:
        raise InterfaceError(_scrub(str(exc), dsn)) from None
    for key, value in pairs:
        if key == "client_encoding" and value.upper().replace("-", "") not in ("UTF8", "UNICODE"):
            raise InterfaceError("oxpg requires client_encoding UTF8")


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
