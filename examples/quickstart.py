"""oxpg in one page: connect, create, insert, query, update, handle an error.

    make demo                                   # starts a throw-away server for you
    OXPG_DSN=postgresql://me:pw@host/db python examples/quickstart.py
"""

from __future__ import annotations

import os
from contextlib import ExitStack

import oxpg
from oxpg.testing import TempCluster


def show(title: str, value: object) -> None:
    print(f"{title:<28} {value!r}")


def main() -> None:
    with ExitStack() as stack:
        dsn = os.environ.get("OXPG_DSN")
        if dsn is None:
            print("OXPG_DSN not set: starting a throw-away PostgreSQL server...")
            dsn = stack.enter_context(TempCluster()).dsn

        client = oxpg.connect(dsn)
        stack.callback(client.close)

        # TEMPORARY: the table vanishes with the connection, so pointing OXPG_DSN at
        # a real database never touches (or collides with) a real `users` table.
        client.execute(
            """
            CREATE TEMPORARY TABLE users (
                id       serial PRIMARY KEY,
                username text UNIQUE,
                email    text,
                active   bool DEFAULT false
            )
            """
        )

        # Parameters travel separately from the SQL text: no quoting, no injection.
        rows = client.query(
            "INSERT INTO users (username, email) VALUES ($1, $2) RETURNING id, username",
            "alice",
            "alice@example.com",
        )
        show("inserted:", rows)
        for username in ("bob", "carol"):
            rows = client.query(
                "INSERT INTO users (username, email) VALUES ($1, $2) RETURNING id, username",
                username,
                f"{username}@example.com",
            )
            show("inserted:", rows)

        # query() returns a list of dicts, one per row.
        rows = client.query("SELECT id, username FROM users WHERE id = $1", 1)
        show("user 1:", rows)

        # execute() returns the number of rows affected.
        n = client.execute("UPDATE users SET active = $1 WHERE id = $2", True, 1)
        show("rows updated:", n)

        rows = client.query("SELECT username, active FROM users ORDER BY id")
        show("all users:", rows)

        # Server errors are PEP 249 exceptions carrying the server's diagnostics.
        try:
            client.query("SELEC * FROM users")
        except oxpg.DatabaseError as e:
            print("DatabaseError:", e)


if __name__ == "__main__":
    main()
