"""RELIABILITY rows 5 and 9: Ctrl-C during a query, and signals that must not disturb one.

Ctrl-C runs in a child process (tests/faults/scripts/ctrl_c.py): a real SIGINT, a real
KeyboardInterrupt, and the parent checks the server through pg_stat_activity.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest

import oxpg


# -- Ctrl-C ------------------------------------------------------------------------


def sleeping_backends(admin: oxpg.Client, pid: int | None = None) -> list[dict[str, object]]:
    return admin.query(
        "SELECT pid, state, query FROM pg_stat_activity "
        "WHERE state <> 'idle' AND strpos(query, 'pg_sleep(10)') > 0 AND pid <> pg_backend_pid() "
        "AND ($1::int IS NULL OR pid = $1::int)",
        pid,
    )


@pytest.mark.parametrize("mode", ["autocommit", "transaction"])
def test_ctrl_c_cancels_query_and_keeps_the_client(
    spawn: Callable[..., Any], admin: oxpg.Client, mode: str
) -> None:
    child = spawn("ctrl_c.py", mode)
    _, line = child.expect("PID", timeout=20)
    pid = int(line.split()[1])
    child.expect("READY", timeout=10)
    # Wait for the query to be running on the server, then one more second.
    deadline = time.monotonic() + 5
    while not sleeping_backends(admin, pid):
        assert time.monotonic() < deadline, "the child's query never started"
        time.sleep(0.01)
    time.sleep(1.0)

    child.proc.send_signal(signal.SIGINT)
    sent_at = time.monotonic()
    got_at, line = child.expect("KeyboardInterrupt", timeout=5)
    assert got_at - sent_at < 1.0, f"KeyboardInterrupt {got_at - sent_at:.2f} s after SIGINT"

    _, line = child.expect("STATE", timeout=10)
    state = json.loads(line.split(" ", 1)[1])
    assert state["closed"] is False
    assert state["broken"] is False
    assert state["rows"] == [{"answer": 42, "pid": pid}], "the same connection ran the next query"
    if mode == "transaction":
        assert state["in_failed_transaction"] is True
    child.expect("WAITING", timeout=5)

    # The child is still connected: its backend must be idle, not sleeping.
    assert sleeping_backends(admin) == []
    rows = admin.query("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)
    assert rows == [{"state": "idle"}]

    child.send("bye\n")
    assert child.wait(timeout=10) == 0


def test_ctrl_c_during_connect(spawn: Callable[..., Any]) -> None:
    # A server that accepts TCP connections (the kernel's backlog) and never answers.
    with socket.socket() as deaf:
        deaf.bind(("127.0.0.1", 0))
        deaf.listen(8)
        child = spawn("ctrl_c.py", "connect", str(deaf.getsockname()[1]))
        child.expect("READY", timeout=20)
        time.sleep(1.0)
        child.proc.send_signal(signal.SIGINT)
        sent_at = time.monotonic()
        got_at, _ = child.expect("KeyboardInterrupt", timeout=5)
        assert got_at - sent_at < 1.0, f"KeyboardInterrupt {got_at - sent_at:.2f} s after SIGINT"
        _, line = child.expect("STATE", timeout=10)
        assert json.loads(line.split(" ", 1)[1]) == {"rows": [{"one": 1}]}
        assert child.wait(timeout=10) == 0


# -- signals that only run a handler: EINTR must not leak out ----------------------


@pytest.fixture
def alarm() -> Iterator[Callable[[float], list[int]]]:
    """alarm(interval): SIGALRM every interval seconds with a counting Python handler."""
    counts: list[int] = []
    old = signal.getsignal(signal.SIGALRM)

    def start(interval: float) -> list[int]:
        def handler(signum: int, frame: FrameType | None) -> None:
            counts.append(signum)

        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, interval, interval)
        return counts

    yield start
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


def test_sigalrm_during_pg_sleep(client: oxpg.Client, alarm: Callable[[float], list[int]]) -> None:
    fired = alarm(0.05)
    start = time.monotonic()
    rows = client.query("SELECT $1::int AS x, 'done' AS s FROM pg_sleep(1)", 42)
    elapsed = time.monotonic() - start
    signal.setitimer(signal.ITIMER_REAL, 0)
    assert rows == [{"x": 42, "s": "done"}]
    assert len(fired) >= 10, "the handler did not run during the query"
    assert 0.9 < elapsed < 3
    assert client.query("SELECT 1 AS one") == [{"one": 1}]


def test_sigalrm_during_execute(client: oxpg.Client, alarm: Callable[[float], list[int]]) -> None:
    fired = alarm(0.05)
    assert client.execute("SELECT pg_sleep(0.5); SELECT 1") == 1
    signal.setitimer(signal.ITIMER_REAL, 0)
    assert len(fired) >= 5


def test_fast_signals_during_large_result(client: oxpg.Client, alarm: Callable[[float], list[int]]) -> None:
    n = 100_000
    fired = alarm(0.001)
    rows = client.query_tuples("SELECT g, repeat('x', 50) || g AS s FROM generate_series(1, $1) g", n)
    signal.setitimer(signal.ITIMER_REAL, 0)
    assert len(rows) == n
    assert rows[0] == (1, "x" * 50 + "1")
    assert rows[-1] == (n, "x" * 50 + str(n))
    assert all(r[0] == i for i, r in enumerate(rows, 1))
    assert fired


def test_fast_signals_during_connect(dsn: str, alarm: Callable[[float], list[int]]) -> None:
    alarm(0.001)
    for _ in range(5):
        with oxpg.connect(dsn) as c:
            assert c.query("SELECT 1 AS one") == [{"one": 1}]


# -- a signal handler that raises: same path as Ctrl-C, in process --------------------


class Interrupted(Exception):
    pass


def test_raising_signal_handler_cancels_query(client: oxpg.Client, admin: oxpg.Client) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted

    pid = client.backend_pid
    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        start = time.monotonic()
        with pytest.raises(Interrupted):
            client.query("SELECT pg_sleep(10)")
        elapsed = time.monotonic() - start
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert elapsed < 1.3, f"the handler's exception took {elapsed:.2f} s"
    assert not client.closed and not client.broken
    assert admin.query("SELECT state FROM pg_stat_activity WHERE pid = $1", pid) == [{"state": "idle"}]
    assert client.query("SELECT $1::text AS s", "after") == [{"s": "after"}]
    assert client.backend_pid == pid


def test_signal_handler_using_the_busy_client_does_not_deadlock(
    script: Callable[..., tuple[list[str], dict[str, str]]],
) -> None:
    """Re-entering the Client from a handler that interrupted its own query must raise, not hang."""
    argv, env = script("reentrant_handler.py")
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=8)
    except subprocess.TimeoutExpired:
        pytest.fail("deadlock: the nested query waited forever for the lock its own thread holds")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    result = json.loads(lines[0].split(" ", 1)[1])
    assert "Error" in result.get("nested_class", []), result  # an oxpg.Error, raised at once
    assert result["nested_seconds"] < 0.5, result
    assert result.get("outer") == [{"one": 1}], result
    assert result.get("after") == [{"three": 3}], result
