"""RELIABILITY row 2: the server restarts (pg_ctl restart -m fast|immediate) under a Client.

Only with the suite's own cluster (the `cluster` fixture skips with OXPG_TEST_DSN).
"""

from __future__ import annotations

import threading
import time

import pytest

import oxpg
from oxpg.testing import TempCluster


def assert_lost(client: oxpg.Client) -> None:
    assert client.closed
    assert client.broken
    with pytest.raises((oxpg.OperationalError, oxpg.InterfaceError)):
        client.query("SELECT 1")


def assert_new_connection_works(dsn: str) -> None:
    with oxpg.connect(dsn) as fresh:
        assert fresh.query("SELECT $1::text AS s", "back") == [{"s": "back"}]


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_restart_while_idle(cluster: TempCluster, dsn: str, mode: str) -> None:
    client = oxpg.connect(dsn)
    assert client.query("SELECT 1 AS one") == [{"one": 1}]
    cluster.restart(mode)  # type: ignore[arg-type]
    start = time.monotonic()
    with pytest.raises(oxpg.OperationalError) as info:
        client.query("SELECT 1")
    assert time.monotonic() - start < 1.0
    # 57P01 (admin_shutdown) when the server said goodbye, None for a bare lost socket.
    assert info.value.sqlstate in (None, "57P01", "08006")
    assert_lost(client)
    client.close()
    assert_new_connection_works(dsn)


def test_restart_while_idle_execute(cluster: TempCluster, dsn: str) -> None:
    client = oxpg.connect(dsn)
    cluster.restart("fast")
    with pytest.raises(oxpg.OperationalError):
        client.execute("CREATE TEMP TABLE t (a int)")
    assert_lost(client)
    assert_new_connection_works(dsn)


def test_restart_during_query(cluster: TempCluster, dsn: str, admin: oxpg.Client) -> None:
    client = oxpg.connect(dsn)
    pid = client.backend_pid
    stopped_at: list[float] = []
    problems: list[BaseException] = []

    def restart() -> None:
        try:
            deadline = time.monotonic() + 5
            while not admin.query(
                "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", pid
            ):
                assert time.monotonic() < deadline, "the query never started"
                time.sleep(0.01)
            admin.close()  # the restart kills it anyway
            stopped_at.append(time.monotonic())
            cluster.restart("fast")
        except BaseException as e:
            problems.append(e)

    thread = threading.Thread(target=restart, daemon=True)
    start = time.monotonic()
    thread.start()
    try:
        with pytest.raises(oxpg.OperationalError):
            client.query("SELECT pg_sleep(10)")
        failed_at = time.monotonic()
    finally:
        thread.join(30)
    assert not thread.is_alive()
    assert not problems, problems
    assert failed_at - stopped_at[0] < 1.5, f"error {failed_at - stopped_at[0]:.2f} s after the shutdown began"
    assert failed_at - start < 5
    assert_lost(client)
    assert_new_connection_works(dsn)


def test_server_down_then_up(cluster: TempCluster, dsn: str) -> None:
    client = oxpg.connect(dsn)
    cluster.stop_server("fast")
    try:
        with pytest.raises(oxpg.OperationalError):
            client.query("SELECT 1")
        assert_lost(client)
        start = time.monotonic()
        with pytest.raises(oxpg.OperationalError):
            oxpg.connect(dsn, connect_timeout=3)
        assert time.monotonic() - start < 3.5
    finally:
        cluster.start_server()
    assert_new_connection_works(dsn)
