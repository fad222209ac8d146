"""Child process for tests/faults/test_signals.py: a signal handler that uses the Client
whose query it interrupted. The nested call must fail at once (the Client is busy in
this very thread), not wait forever for a lock its own thread holds.

Prints one line: RESULT <json>. DSN from OXPG_SCRIPT_DSN.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import oxpg


def main() -> int:
    client = oxpg.connect(os.environ["OXPG_SCRIPT_DSN"])
    out: dict[str, object] = {}

    def handler(signum: int, frame: object) -> None:
        start = time.monotonic()
        try:
            out["nested"] = client.query("SELECT 2 AS two")
        except oxpg.Error as e:
            out["nested_error"] = type(e).__name__
            out["nested_class"] = [c.__name__ for c in type(e).__mro__]
        out["nested_seconds"] = round(time.monotonic() - start, 3)

    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        out["outer"] = client.query("SELECT 1 AS one FROM pg_sleep(0.5)")
    except BaseException as e:
        out["outer_error"] = f"{type(e).__name__}: {e}"
    signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        out["after"] = client.query("SELECT 3 AS three")
    except BaseException as e:
        out["after_error"] = f"{type(e).__name__}: {e}"
    client.close()
    print("RESULT", json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
