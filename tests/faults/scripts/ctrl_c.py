"""Child process for tests/faults/test_signals.py: Ctrl-C during a long query.

argv[1]: "autocommit" or "transaction", or "connect" (argv[2]: the port of a server that
never answers; the child is interrupted inside connect). DSN from OXPG_SCRIPT_DSN. Talks to the parent
in lines on stdout: PID <backend pid>, READY, then KeyboardInterrupt (or a failure
line), then what the next statements returned, then WAITING; it exits when the parent
writes a line (or closes) stdin. An alarm bounds its life if the parent goes away.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import oxpg
from child_protocol import report_and_wait, say


def interrupt_connect(port: int) -> int:
    say("READY")
    start = time.monotonic()
    try:
        oxpg.connect(host="127.0.0.1", port=port, user="u", password="p", connect_timeout=20)
    except KeyboardInterrupt:
        say("KeyboardInterrupt", f"{time.monotonic() - start:.3f}")
    except BaseException as e:
        say("FAILED", type(e).__name__, repr(str(e)))
        return 1
    else:
        say("FAILED", "connected to a server that never answers")
        return 1
    # The interpreter and oxpg still work: a real connection now.
    with oxpg.connect(os.environ["OXPG_SCRIPT_DSN"]) as client:
        say("STATE", json.dumps({"rows": client.query("SELECT 1 AS one")}))
    return 0


def main() -> int:
    # Python leaves SIGINT ignored when it was ignored at startup (background jobs).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.alarm(30)  # never outlive a broken parent
    mode = sys.argv[1]
    if mode == "connect":
        return interrupt_connect(int(sys.argv[2]))
    client = oxpg.connect(os.environ["OXPG_SCRIPT_DSN"], application_name="oxpg-ctrl-c")
    say("PID", client.backend_pid)
    if mode == "transaction":
        client.execute("BEGIN")
    say("READY")
    start = time.monotonic()
    try:
        client.query("SELECT pg_sleep(10)")
    except KeyboardInterrupt:
        say("KeyboardInterrupt", f"{time.monotonic() - start:.3f}")
    except BaseException as e:
        say("FAILED", type(e).__name__, repr(str(e)))
        return 1
    else:
        say("FAILED", "the query was not interrupted")
        return 1
    state = {"closed": client.closed, "broken": client.broken}
    try:
        if mode == "transaction":
            try:
                client.query("SELECT 1")
            except oxpg.errors.InFailedSqlTransaction:
                state["in_failed_transaction"] = True
            client.execute("ROLLBACK")
        rows = client.query("SELECT $1::int AS answer, pg_backend_pid() AS pid", 42)
        state["rows"] = rows
    except BaseException as e:
        say("FAILED", type(e).__name__, repr(str(e)))
        return 1
    return report_and_wait(state, client)


if __name__ == "__main__":
    sys.exit(main())
