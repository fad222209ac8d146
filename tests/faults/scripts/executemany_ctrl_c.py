"""Child process for tests/faults/test_cancel.py: Ctrl-C during a long executemany.

argv[1]: the table to insert into (id int primary key); argv[2]: "autocommit",
"transaction" (the batch runs inside BEGIN) or "generator" (the rows come from a slow
generator, so the SIGINT lands in Python code called by executemany). DSN from
OXPG_SCRIPT_DSN. Lines on stdout: PID <backend pid>, READY, then KeyboardInterrupt
<seconds> (or FAILED ...), then STATE <json>, then WAITING; it exits when the parent
writes a line (or closes) stdin. An alarm bounds its life if the parent goes away.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import oxpg
from child_protocol import report_and_wait, say


def main() -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.alarm(30)
    table, mode = sys.argv[1], sys.argv[2]
    client = oxpg.connect(os.environ["OXPG_SCRIPT_DSN"], application_name="oxpg-executemany-ctrl-c")
    say("PID", client.backend_pid)
    if mode == "transaction":
        client.execute("BEGIN")

    if mode == "generator":
        # Fast statements, slow rows: about 20 s of rows, each given 10 ms apart.
        sql = f"INSERT INTO {table} (id) VALUES ($1)"

        def slow_rows():  # type: ignore[no-untyped-def]
            for i in range(2000):
                time.sleep(0.01)
                yield (i,)

        rows = slow_rows()
    else:
        # Slow statements: 2000 rows x 10 ms on the server.
        sql = f"INSERT INTO {table} (id) SELECT $1 FROM pg_sleep(0.01)"
        rows = ((i,) for i in range(2000))

    say("READY")
    start = time.monotonic()
    try:
        client.executemany(sql, rows)
    except KeyboardInterrupt:
        say("KeyboardInterrupt", f"{time.monotonic() - start:.3f}")
    except BaseException as e:
        say("FAILED", type(e).__name__, repr(str(e)))
        return 1
    else:
        say("FAILED", "executemany was not interrupted")
        return 1

    state: dict[str, object] = {
        "closed": client.closed,
        "broken": client.broken,
        "status": client.transaction_status.value,
    }
    try:
        if client.in_transaction:
            client.execute("ROLLBACK")
        state["rows"] = client.query("SELECT $1::int AS answer, pg_backend_pid() AS pid", 42)
        state["count"] = client.query(f"SELECT count(*) AS n FROM {table}")[0]["n"]
    except BaseException as e:
        say("FAILED", type(e).__name__, repr(str(e)))
        return 1
    return report_and_wait(state, client)


if __name__ == "__main__":
    sys.exit(main())
