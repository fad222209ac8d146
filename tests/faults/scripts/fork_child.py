"""Child process for tests/faults/test_fork.py: fork with an open Client.

argv[1] says what the forked child does with the parent's Client:
  exit   nothing; leaves through normal interpreter shutdown (finalizers run)
  gc     del + gc.collect(), then normal shutdown
  close  calls close() on it
  use    runs a query: must get InterfaceError
  mp     multiprocessing (fork context) child that just returns
  mp-use multiprocessing (fork context) child that uses it
The child reports through a pipe; the parent then checks its own connection and prints
one line: RESULT <json>. DSN from OXPG_SCRIPT_DSN.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import signal
import sys

import oxpg

client = oxpg.connect(os.environ["OXPG_SCRIPT_DSN"])


def use_it(conn: oxpg.Client) -> str:
    try:
        conn.query("SELECT 1")
    except oxpg.InterfaceError as e:
        return f"InterfaceError: {e}"
    except BaseException as e:
        return f"{type(e).__name__}: {e}"
    return "no error"


def mp_idle(conn: oxpg.Client) -> None:
    pass


def mp_use(conn: oxpg.Client, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(use_it(conn))


def fork_child(mode: str) -> tuple[int, str]:
    """Fork; the child acts per mode. Returns (child exit status, child's report)."""
    global client
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        report = "ok"
        if mode == "use":
            report = use_it(client)
        elif mode == "close":
            client.close()
            report = f"closed={client.closed}"
        elif mode == "gc":
            del client
            gc.collect()
        os.write(write_end, report.encode())
        os.close(write_end)
        sys.exit(0)  # normal shutdown: atexit, module teardown, finalizers
    os.close(write_end)
    with os.fdopen(read_end, "rb") as r:
        report = r.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), report


def main() -> None:
    signal.alarm(30)  # never hang the test run
    mode = sys.argv[1]
    pid_before = client.backend_pid
    client.query("SELECT 1")
    if mode in ("mp", "mp-use"):
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        if mode == "mp":
            proc = ctx.Process(target=mp_idle, args=(client,))
        else:
            proc = ctx.Process(target=mp_use, args=(client, queue))
        proc.start()
        report = queue.get(timeout=30) if mode == "mp-use" else "ok"
        proc.join(30)
        code = proc.exitcode
    else:
        code, report = fork_child(mode)
    out: dict[str, object] = {"child_exit": code, "child_report": report}
    try:
        out["rows"] = client.query("SELECT pg_backend_pid() AS pid, $1::text AS s", "parent")
        out["pid_before"] = pid_before
        out["pid_after"] = client.backend_pid
    except BaseException as e:
        out["parent_error"] = f"{type(e).__name__}: {e}"
    out["closed"] = client.closed
    out["broken"] = client.broken
    client.close()
    print("RESULT", json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
