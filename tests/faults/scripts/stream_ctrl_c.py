"""Child process for tests/faults/test_stream_faults.py: Ctrl-C during a stream or
while reading a pipeline result.

argv[1]: "stream-wait" (the signal lands while oxpg waits for the server: the statement
stalls in pg_sleep after its first rows), "stream-body" (it lands in the Python loop
body while rows flow) or "pipeline" (while result() waits for a sleeping statement).
DSN from OXPG_SCRIPT_DSN. Lines on stdout: PID <backend pid>, READY, then
KeyboardInterrupt <rows seen> (or FAILED ...), then STATE <json>, then WAITING; it exits
when the parent writes a line (or closes) stdin. An alarm bounds its life.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import oxpg
from child_protocol import report_and_wait, say

# 10**8 rows in order, flowing at once.
ENDLESS = (
    "SELECT b.j AS n FROM generate_series(0, 99999) a(i), "
    "LATERAL generate_series(a.i * 1000 + 1, a.i * 1000 + 1000) b(j)"
)
# 10000 rows (enough to fill the server's send buffer), then 30 s of sleep, then more.
STALLING = (
    "SELECT i AS n, md5(i::text) AS m, CASE WHEN i = 10000 THEN pg_sleep(30) END AS z "
    "FROM generate_series(1, 20000) i"
)


def main() -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.alarm(30)
    mode = sys.argv[1]
    client = oxpg.connect(os.environ["OXPG_SCRIPT_DSN"], application_name="oxpg-stream-ctrl-c")
    say("PID", client.backend_pid)
    seen: list[int] = []
    state: dict[str, object] = {}
    say("READY")
    try:
        if mode == "pipeline":
            # Described once, so queuing it does not wait for pg_sleep (a statement
            # the client has not run is described first: tests/test_pipeline.py).
            client.query("SELECT 2 AS two")
            with client.pipeline() as p:
                first = p.query("SELECT 1 AS one")
                p.sync()
                sleeping = p.query("SELECT pg_sleep(30) AS z")
                after = p.query("SELECT 2 AS two")
                seen.append(len(first.result()))
                sleeping.result()
        else:
            for row in client.stream(STALLING if mode == "stream-wait" else ENDLESS, chunk_size=100):
                seen.append(row["n"])
                if mode == "stream-body":
                    time.sleep(0.0005)
    except KeyboardInterrupt:
        say("KeyboardInterrupt", len(seen))
    except BaseException as e:
        say("FAILED", type(e).__name__, repr(str(e)))
        return 1
    else:
        say("FAILED", "not interrupted")
        return 1
    state.update(
        closed=client.closed,
        broken=client.broken,
        status=client.transaction_status.value,
        in_order=seen == list(range(1, len(seen) + 1)) if mode != "pipeline" else True,
    )
    if mode == "pipeline":
        try:
            after.result()
            state["after"] = "a value"
        except BaseException as e:
            state["after"] = type(e).__name__
    try:
        state["rows"] = client.query("SELECT $1::int AS answer, pg_backend_pid() AS pid", 42)
    except BaseException as e:
        say("FAILED", type(e).__name__, repr(str(e)))
        return 1
    return report_and_wait(state, client)


if __name__ == "__main__":
    sys.exit(main())
