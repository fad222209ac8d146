"""Client.cancel() from another thread (issue 5; RELIABILITY row 7) and Ctrl-C during
executemany (rows 6 and 12).

cancel() asks the server to cancel the running statement, which then raises
oxpg.errors.QueryCanceled (57014); the client stays usable. The Ctrl-C test runs in a
child process (tests/faults/scripts/executemany_ctrl_c.py) and checks the server from
here.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import oxpg


def active_sleep(admin: oxpg.Client, pid: int) -> bool:
    return bool(
        admin.query(
            "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND strpos(query, 'pg_sleep') > 0",
            pid,
        )
    )


def wait_until_sleeping(admin: oxpg.Client, pid: int, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not active_sleep(admin, pid):
        assert time.monotonic() < deadline, "the statement never started on the server"
        time.sleep(0.01)


class Later:
    """Runs fn in a thread after a delay; keeps its result or exception."""

    def __init__(self, delay: float, fn: Callable[[], object]) -> None:
        self.result: object = None
        self.error: BaseException | None = None
        self.done_at = 0.0

        def run() -> None:
            time.sleep(delay)
            try:
                self.result = fn()
            except BaseException as e:  # noqa: BLE001 - reported by join()
                self.error = e
            self.done_at = time.monotonic()

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def join(self) -> object:
        self.thread.join(10)
        assert not self.thread.is_alive(), "the helper thread hung"
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture
def table(dsn: str, client: oxpg.Client) -> Iterator[str]:
    name = f"cx_{uuid.uuid4().hex[:12]}"
    with oxpg.connect(dsn) as c:
        c.execute(f"CREATE TABLE {name} (id int PRIMARY KEY)")
    yield name
    if not client.closed and client.in_transaction:
        client.execute("ROLLBACK")
    with oxpg.connect(dsn, options="-c lock_timeout=5s") as c:
        c.execute(f"DROP TABLE IF EXISTS {name}")


# ---- cancel() from another thread ----------------------------------------------------

CALLS: dict[str, Callable[[oxpg.Client], object]] = {
    "query": lambda c: c.query("SELECT pg_sleep(5)"),
    "query_tuples": lambda c: c.query_tuples("SELECT pg_sleep($1)", 5),
    "execute-simple": lambda c: c.execute("SELECT pg_sleep(5)"),
    "executemany": lambda c: c.executemany("SELECT pg_sleep($1)", [(0,), (5,), (0,)]),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_cancel_from_another_thread(client: oxpg.Client, admin: oxpg.Client, call: str) -> None:
    pid = client.backend_pid
    helper = Later(0.5, client.cancel)
    start = time.monotonic()
    with pytest.raises(oxpg.errors.QueryCanceled) as excinfo:
        CALLS[call](client)
    elapsed = time.monotonic() - start
    assert helper.join() is True, "cancel() says the request reached the server"
    assert excinfo.value.sqlstate == "57014"
    assert isinstance(excinfo.value, oxpg.OperationalError)
    assert elapsed < 1.0, f"QueryCanceled {elapsed:.2f} s after the start (cancel at 0.5 s)"
    assert not active_sleep(admin, pid)
    assert not client.closed and not client.broken
    assert client.transaction_status == oxpg.TransactionStatus.IDLE
    assert client.query("SELECT $1::int AS x, pg_backend_pid() AS pid", 3) == [{"x": 3, "pid": pid}]


def test_cancel_inside_a_transaction(client: oxpg.Client, admin: oxpg.Client, table: str) -> None:
    client.execute("BEGIN")
    client.execute(f"INSERT INTO {table} VALUES (1)")
    helper = Later(0.3, client.cancel)
    with pytest.raises(oxpg.errors.QueryCanceled):
        client.query("SELECT pg_sleep(5)")
    helper.join()
    assert client.transaction_status == oxpg.TransactionStatus.IN_ERROR
    client.execute("ROLLBACK")
    assert client.query(f"SELECT count(*) AS n FROM {table}") == [{"n": 0}]


def test_cancel_mid_executemany_commits_nothing(client: oxpg.Client, admin: oxpg.Client, dsn: str, table: str) -> None:
    pid = client.backend_pid

    def cancel_when_running() -> bool:
        wait_until_sleeping(admin, pid)
        time.sleep(0.3)
        return client.cancel()

    helper = Later(0, cancel_when_running)
    with pytest.raises(oxpg.errors.QueryCanceled) as excinfo:
        client.executemany(f"INSERT INTO {table} SELECT $1 FROM pg_sleep(0.01)", ((i,) for i in range(1000)))
    assert helper.join() is True
    assert excinfo.value.executemany_row >= 1
    with oxpg.connect(dsn) as other:
        assert other.query(f"SELECT count(*) AS n FROM {table}") == [{"n": 0}]
    assert client.transaction_status == oxpg.TransactionStatus.IDLE
    assert client.executemany(f"INSERT INTO {table} VALUES ($1)", [(1,), (2,)]) == 2


def test_cancel_with_nothing_running_is_harmless(client: oxpg.Client) -> None:
    for _ in range(3):
        assert isinstance(client.cancel(), bool)
    # A late cancel must not hit the next statements.
    assert client.query("SELECT pg_sleep(0.3) AS s") == [{"s": None}]
    for i in range(20):
        assert client.query("SELECT $1::int AS x", i) == [{"x": i}]
    assert not client.closed


def test_cancel_on_a_closed_client(dsn: str) -> None:
    c = oxpg.connect(dsn)
    c.close()
    assert c.cancel() is False


def test_cancel_on_a_broken_client(dsn: str, terminate: Callable[[int], None]) -> None:
    c = oxpg.connect(dsn)
    terminate(c.backend_pid)
    with pytest.raises(oxpg.OperationalError):
        c.query("SELECT 1")
    assert c.broken
    assert c.cancel() is False
    c.close()


def test_cancel_storm_during_short_statements(client: oxpg.Client) -> None:
    """cancel() in a loop while short statements run: each either succeeds with the
    right answer or raises QueryCanceled; nothing else, and the client survives."""
    stop = threading.Event()
    sent = [0]

    def storm() -> None:
        while not stop.is_set():
            client.cancel()
            sent[0] += 1

    thread = threading.Thread(target=storm)
    thread.start()
    canceled = ok = 0
    try:
        deadline = time.monotonic() + 1.5
        i = 0
        while time.monotonic() < deadline:
            i += 1
            try:
                rows = client.query("SELECT $1::int AS x FROM pg_sleep(0.002)", i)
            except oxpg.errors.QueryCanceled:
                canceled += 1
            else:
                assert rows == [{"x": i}]
                ok += 1
    finally:
        stop.set()
        thread.join(10)
    assert sent[0] > 10 and ok + canceled > 10
    assert not client.closed and not client.broken
    assert client.query("SELECT pg_sleep(0.2) AS s") == [{"s": None}]


def test_cancel_racing_close(dsn: str) -> None:
    for _ in range(20):
        c = oxpg.connect(dsn)
        helper = Later(0, c.cancel)
        c.close()
        assert helper.join() in (True, False)
        assert c.closed


def test_cancel_is_callable_while_another_thread_waits_for_the_lock(client: oxpg.Client, admin: oxpg.Client) -> None:
    """Two threads queue on one client; cancel() reaches whichever statement runs."""
    pid = client.backend_pid
    first = Later(0, lambda: client.query("SELECT pg_sleep(5)"))
    wait_until_sleeping(admin, pid)
    second = Later(0, lambda: client.query("SELECT 2 AS two"))
    time.sleep(0.1)
    assert client.cancel() is True
    with pytest.raises(oxpg.errors.QueryCanceled):
        first.join()
    assert second.join() == [{"two": 2}]


# ---- Ctrl-C during executemany, in a child process -------------------------------------


@pytest.mark.parametrize("mode", ["autocommit", "transaction", "generator"])
def test_ctrl_c_during_executemany_commits_nothing(
    spawn: Callable[..., Any], admin: oxpg.Client, dsn: str, table: str, mode: str
) -> None:
    child = spawn("executemany_ctrl_c.py", table, mode)
    _, line = child.expect("PID", timeout=20)
    pid = int(line.split()[1])
    child.expect("READY", timeout=10)
    if mode == "generator":
        time.sleep(1.0)  # the child is producing rows
    else:
        wait_until_sleeping(admin, pid)
        time.sleep(0.5)

    child.proc.send_signal(signal.SIGINT)
    sent_at = time.monotonic()
    got_at, _ = child.expect("KeyboardInterrupt", timeout=5)
    assert got_at - sent_at < 1.0, f"KeyboardInterrupt {got_at - sent_at:.2f} s after SIGINT"

    _, line = child.expect("STATE", timeout=10)
    state = json.loads(line.split(" ", 1)[1])
    assert state["closed"] is False and state["broken"] is False
    assert state["status"] == ("in error" if mode == "transaction" else "idle")
    assert state["rows"] == [{"answer": 42, "pid": pid}], "the same connection ran the next query"
    assert state["count"] == 0
    child.expect("WAITING", timeout=5)

    # From here, another session: nothing committed, the child's backend idle.
    with oxpg.connect(dsn) as other:
        assert other.query(f"SELECT count(*) AS n FROM {table}") == [{"n": 0}]
    assert admin.query("SELECT state FROM pg_stat_activity WHERE pid = $1", pid) == [{"state": "idle"}]
    child.send("bye\n")
    assert child.wait(timeout=10) == 0
