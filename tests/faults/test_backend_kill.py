"""RELIABILITY row 1: the server backend is killed (pg_terminate_backend) under a Client.

Mid-query: OperationalError soon after the kill, the Client reports closed and broken,
later use fails cleanly, a new connection works. Idle: the next query fails the same way.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest

import oxpg

# RELIABILITY.md asks for 0.5 s; the issue allows ~1 s. A loaded CI machine gets the latter.
DETECT_SECONDS = 1.0


def wait_until_running(admin: oxpg.Client, pid: int, needle: str, timeout: float = 5.0) -> None:
    """Wait until backend pid is active on a query containing needle."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = admin.query(
            "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND strpos(query, $2) > 0",
            pid,
            needle,
        )
        if rows:
            return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} never started running {needle!r}")


def assert_dead(client: oxpg.Client) -> None:
    assert client.closed
    assert client.broken
    # Every later use fails at once, with a clear error.
    for _ in range(3):
        start = time.monotonic()
        with pytest.raises((oxpg.OperationalError, oxpg.InterfaceError)):
            client.query("SELECT 1")
        with pytest.raises((oxpg.OperationalError, oxpg.InterfaceError)):
            client.execute("SELECT 1")
        assert time.monotonic() - start < 0.5
    with pytest.raises((oxpg.OperationalError, oxpg.InterfaceError)):
        client.backend_pid  # noqa: B018
    client.close()  # closing a broken client is fine, and idempotent
    client.close()
    assert client.closed


def assert_new_connection_works(dsn: str) -> None:
    with oxpg.connect(dsn) as fresh:
        assert fresh.query("SELECT 1 + $1::int AS n", 1) == [{"n": 2}]


@pytest.mark.parametrize("how", ["query", "query_params", "execute"])
def test_backend_killed_mid_query(dsn: str, admin: oxpg.Client, how: str) -> None:
    client = oxpg.connect(dsn)
    pid = client.backend_pid
    marker = f"kill_{uuid.uuid4().hex}"
    sql = f"SELECT pg_sleep(5) AS {marker}"
    killed_at: list[float] = []
    problems: list[BaseException] = []

    def killer() -> None:
        try:
            wait_until_running(admin, pid, marker)
            killed_at.append(time.monotonic())
            assert admin.query("SELECT pg_terminate_backend($1) AS ok", pid) == [{"ok": True}]
        except BaseException as e:  # reported by the main thread
            problems.append(e)

    thread = threading.Thread(target=killer, daemon=True)
    start = time.monotonic()
    thread.start()
    try:
        with pytest.raises(oxpg.OperationalError) as info:
            if how == "query":
                client.query(sql)
            elif how == "query_params":
                client.query(f"SELECT pg_sleep($1) AS {marker}", 5.0)
            else:
                client.execute(sql)
        failed_at = time.monotonic()
    finally:
        thread.join(10)
    assert not problems, problems
    assert killed_at, "the killer thread never ran"
    assert failed_at - killed_at[0] < DETECT_SECONDS, f"error {failed_at - killed_at[0]:.2f} s after the kill"
    assert failed_at - start < 4.5, "the query was not interrupted by the kill"
    exc = info.value
    # Either the server's FATAL (57P01 admin_shutdown) or a plain connection-lost error.
    assert exc.sqlstate in (None, "57P01"), exc.sqlstate
    assert str(exc)  # a message, not an empty error
    assert_dead(client)
    assert_new_connection_works(dsn)


def test_idle_backend_killed(dsn: str, terminate: Callable[[int], None]) -> None:
    client = oxpg.connect(dsn)
    assert client.query("SELECT 1 AS one") == [{"one": 1}]
    terminate(client.backend_pid)
    start = time.monotonic()
    with pytest.raises(oxpg.OperationalError) as info:
        client.query("SELECT 1")
    assert time.monotonic() - start < DETECT_SECONDS
    assert info.value.sqlstate in (None, "57P01")
    assert_dead(client)
    assert_new_connection_works(dsn)


def test_idle_backend_killed_then_execute(dsn: str, terminate: Callable[[int], None]) -> None:
    client = oxpg.connect(dsn)
    terminate(client.backend_pid)
    with pytest.raises(oxpg.OperationalError):
        client.execute("SELECT 1")
    assert_dead(client)


def test_killed_inside_transaction_commits_nothing(dsn: str, terminate: Callable[[int], None]) -> None:
    table = f"kill_tx_{uuid.uuid4().hex[:10]}"
    with oxpg.connect(dsn) as setup:
        setup.execute(f"CREATE TABLE {table} (id int)")
    try:
        client = oxpg.connect(dsn)
        client.execute("BEGIN")
        assert client.execute(f"INSERT INTO {table} SELECT generate_series(1, 100)") == 100
        terminate(client.backend_pid)
        with pytest.raises(oxpg.OperationalError):
            client.execute("COMMIT")
        assert_dead(client)
        with oxpg.connect(dsn) as check:
            assert check.query(f"SELECT count(*) AS n FROM {table}") == [{"n": 0}]
    finally:
        with oxpg.connect(dsn) as cleanup:
            cleanup.execute(f"DROP TABLE {table}")


def test_other_clients_unaffected_by_a_kill(dsn: str, terminate: Callable[[int], None]) -> None:
    victim = oxpg.connect(dsn)
    bystander = oxpg.connect(dsn)
    try:
        terminate(victim.backend_pid)
        with pytest.raises(oxpg.OperationalError):
            victim.query("SELECT 1")
        assert bystander.query("SELECT 7 AS n") == [{"n": 7}]
        assert not bystander.closed and not bystander.broken
    finally:
        victim.close()
        bystander.close()


def test_kill_while_another_thread_waits_for_the_client(dsn: str, admin: oxpg.Client) -> None:
    """The thread queued behind the killed query gets a clear error too, not a hang."""
    client = oxpg.connect(dsn)
    pid = client.backend_pid
    marker = f"kill_{uuid.uuid4().hex}"
    outcomes: dict[str, object] = {}

    def call(name: str, sql: str) -> None:
        try:
            outcomes[name] = client.query(sql)
        except BaseException as e:
            outcomes[name] = e

    first = threading.Thread(target=call, args=("first", f"SELECT pg_sleep(5) AS {marker}"), daemon=True)
    first.start()
    wait_until_running(admin, pid, marker)
    second = threading.Thread(target=call, args=("second", "SELECT 1 AS one"), daemon=True)
    second.start()
    time.sleep(0.2)  # the second thread now waits for the Client's lock
    assert admin.query("SELECT pg_terminate_backend($1) AS ok", pid) == [{"ok": True}]
    first.join(5)
    second.join(5)
    assert not first.is_alive() and not second.is_alive()
    assert isinstance(outcomes["first"], oxpg.OperationalError), outcomes
    assert isinstance(outcomes["second"], (oxpg.OperationalError, oxpg.InterfaceError)), outcomes
    assert_dead(client)


def test_backend_killed_mid_query_keeps_the_servers_diagnostics(dsn: str, admin: oxpg.Client) -> None:
    """The server says why before it hangs up (FATAL 57P01): the exception must carry it.

    While the query runs, the ErrorResponse always reaches the client before the EOF,
    so this is deterministic (unlike the idle case, where the next send may hit a reset).
    """
    client = oxpg.connect(dsn)
    pid = client.backend_pid
    marker = f"kill_{uuid.uuid4().hex}"

    def killer() -> None:
        wait_until_running(admin, pid, marker)
        admin.query("SELECT pg_terminate_backend($1)", pid)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        with pytest.raises(oxpg.OperationalError) as info:
            client.query(f"SELECT pg_sleep(5) AS {marker}")
    finally:
        thread.join(10)
    exc = info.value
    assert client.closed and client.broken
    assert "terminating connection due to administrator command" in str(exc)
    assert exc.sqlstate == "57P01", f"{type(exc).__name__} without the server's SQLSTATE: {exc!r}"
    assert isinstance(exc, oxpg.errors.AdminShutdown)
    assert exc.severity == "FATAL"
