"""RELIABILITY row 10: fork with an open Client.

A child using the parent's Client gets InterfaceError (never traffic on the parent's
socket); a child that exits, closes or garbage-collects it leaves the parent's session
alone (no Terminate sent: psycopg2#829, psycopg#300).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest

import oxpg

SCRIPT_TIMEOUT = 30


def run_fork_script(script: Callable[..., tuple[list[str], dict[str, str]]], mode: str) -> dict[str, Any]:
    argv, env = script("fork_child.py", mode)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    result: dict[str, Any] = json.loads(lines[-1].split(" ", 1)[1])
    return result


def assert_parent_intact(result: dict[str, Any]) -> None:
    assert "parent_error" not in result, result
    assert result["rows"] == [{"pid": result["pid_before"], "s": "parent"}]
    assert result["pid_after"] == result["pid_before"]
    assert result["closed"] is False
    assert result["broken"] is False


@pytest.mark.parametrize("mode", ["exit", "gc", "close", "mp"])
def test_child_leaves_parent_connection_alone(script: Callable[..., Any], mode: str) -> None:
    result = run_fork_script(script, mode)
    assert result["child_exit"] == 0, result
    if mode == "close":
        assert result["child_report"] == "closed=True"
    assert_parent_intact(result)


@pytest.mark.parametrize("mode", ["use", "mp-use"])
def test_child_using_parent_client_gets_interface_error(script: Callable[..., Any], mode: str) -> None:
    result = run_fork_script(script, mode)
    assert result["child_exit"] == 0, result
    assert result["child_report"].startswith("InterfaceError: "), result["child_report"]
    assert_parent_intact(result)


# -- the same in this process, with os.fork ------------------------------------------


def fork_and_report(action: Callable[[], str], timeout: float = 20) -> str:
    """Run action in a forked child; return what it reported. The child never returns."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a process with threads (pytest-timeout's).
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: report, then leave without running pytest's cleanup
        code = 0
        try:
            os.close(read_end)
            os.write(write_end, action().encode())
        except BaseException as e:
            try:
                os.write(write_end, f"child failed: {type(e).__name__}: {e}".encode())
            except BaseException:
                pass
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    # A hung child (e.g. waiting for a lock copied in the locked state) must not hang
    # the read: wait for it first, then read what it wrote.
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(read_end)
            raise AssertionError(f"forked child hung for {timeout} s")
        time.sleep(0.01)
    with os.fdopen(read_end, "rb") as r:
        return r.read().decode()


def test_forked_child_query_raises_interface_error(dsn: str) -> None:
    client = oxpg.connect(dsn)
    try:
        pid_before = client.backend_pid

        def child() -> str:
            out = []
            for call in (
                lambda: client.query("SELECT 1"),
                lambda: client.execute("SELECT 1"),
                lambda: client.query_tuples("SELECT 1"),
                lambda: client.backend_pid,
            ):
                try:
                    call()
                    out.append("no error")
                except oxpg.InterfaceError as e:
                    out.append("InterfaceError" if "fork" in str(e) else f"InterfaceError without 'fork': {e}")
                except BaseException as e:
                    out.append(f"{type(e).__name__}: {e}")
            return ";".join(out)

        report = fork_and_report(child)
        assert report == ";".join(["InterfaceError"] * 4)
        assert client.query("SELECT pg_backend_pid() AS pid") == [{"pid": pid_before}]
        assert client.backend_pid == pid_before
    finally:
        client.close()


def test_forked_child_close_and_dealloc_keep_parent_session(dsn: str) -> None:
    holder = [oxpg.connect(dsn)]
    try:
        pid_before = holder[0].backend_pid

        def child() -> str:
            holder[0].close()
            closed = holder[0].closed
            holder.clear()  # the last reference: dealloc runs here
            import gc

            gc.collect()
            return f"closed={closed}"

        assert fork_and_report(child) == "closed=True"
        client = holder[0]
        assert not client.closed
        for i in range(3):
            assert client.query("SELECT pg_backend_pid() AS pid, $1::int AS i", i) == [{"pid": pid_before, "i": i}]
    finally:
        for c in holder:
            c.close()


def test_client_opened_in_child_works(dsn: str) -> None:
    def child() -> str:
        with oxpg.connect(dsn) as own:
            return str(own.query("SELECT 5 AS n"))

    assert fork_and_report(child) == "[{'n': 5}]"


def test_fork_while_another_thread_holds_the_client(dsn: str) -> None:
    """The child gets a copy of the Client's lock in the locked state: it must not wait on it."""
    client = oxpg.connect(dsn)
    try:
        pid_before = client.backend_pid
        results: list[object] = []
        thread = threading.Thread(
            target=lambda: results.append(client.query("SELECT 1 AS one FROM pg_sleep(1)")), daemon=True
        )
        thread.start()
        time.sleep(0.3)  # the thread is inside query(), holding the lock

        def child() -> str:
            start = time.monotonic()
            out = []
            try:
                client.query("SELECT 1")
                out.append("no error")
            except oxpg.InterfaceError:
                out.append("InterfaceError")
            client.close()
            out.append(f"closed={client.closed}")
            out.append("fast" if time.monotonic() - start < 1 else "slow")
            return ";".join(out)

        assert fork_and_report(child, timeout=5) == "InterfaceError;closed=True;fast"
        thread.join(10)
        assert results == [[{"one": 1}]]
        assert client.query("SELECT pg_backend_pid() AS pid") == [{"pid": pid_before}]
    finally:
        client.close()
