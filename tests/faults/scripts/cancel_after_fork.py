"""Child process for tests/faults/test_cancel_bounded.py: cancelling in a forked child.

The parent times out one statement first, so that the cancel helper (on libpq < 17)
has a thread waiting for work; then it forks. The child, whose copy of the process has
none of the parent's threads, opens its own client and times out a statement too: the
cancel must reach the server (the client stays usable). Prints one line:
RESULT <json>. DSN from OXPG_SCRIPT_DSN.
"""

from __future__ import annotations

import json
import os
import sys

import oxpg

DSN = os.environ["OXPG_SCRIPT_DSN"]


def time_out_once() -> dict[str, object]:
    with oxpg.connect(DSN) as c:
        try:
            c.query("SELECT pg_sleep(10)", timeout=0.5)
        except oxpg.QueryTimeoutError:
            pass
        else:
            return {"error": "no timeout"}
        usable = not c.broken and c.query("SELECT 1 AS one") == [{"one": 1}]
        return {"usable": usable}


def main() -> None:
    result: dict[str, object] = {"parent": time_out_once()}
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            report = json.dumps(time_out_once())
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            report = json.dumps({"error": f"{type(e).__name__}: {e}"})
        os.write(write_end, report.encode())
        os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    result["child_exit"] = os.waitstatus_to_exitcode(status)
    result["child"] = json.loads(b"".join(chunks) or b"null")
    print("RESULT " + json.dumps(result))
    sys.stdout.flush()


main()
