"""Looking at a client's server session from another connection: recognizable
statements, what the backend last received, ending a backend."""

from __future__ import annotations

import time
import uuid

import oxpg


def mark(client: oxpg.Client) -> str:
    """Run a recognizable statement; returns its text."""
    sql = f"SELECT 'mark_{uuid.uuid4().hex}'"
    client.execute(sql)
    return sql


def last_statement(observer: oxpg.Client, client: oxpg.Client) -> str:
    """The last statement client's backend received, as the server reports it."""
    rows = observer.query("SELECT query FROM pg_stat_activity WHERE pid = $1", client.backend_pid)
    return rows[0]["query"]


def kill(admin: oxpg.Client, pid: int) -> None:
    """Terminate backend pid and wait until it is gone."""
    assert admin.query("SELECT pg_terminate_backend($1) AS ok", pid) == [{"ok": True}]
    deadline = time.monotonic() + 10
    while admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", pid):
        assert time.monotonic() < deadline, f"backend {pid} still alive 10 s after pg_terminate_backend"
        time.sleep(0.01)
