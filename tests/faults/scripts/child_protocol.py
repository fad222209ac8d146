"""What the child scripts of tests/faults say to the test that spawned them: one
line per event on stdout, flushed at once; at the end the state it found, then it
waits for the parent (a line on stdin, or stdin closing) before it closes the
client, so the parent can look at the server session meanwhile."""

from __future__ import annotations

import json
import sys
from typing import Any

import oxpg


def say(*parts: object) -> None:
    print(*parts, flush=True)


def report_and_wait(state: dict[str, Any], client: oxpg.Client) -> int:
    say("STATE", json.dumps(state))
    say("WAITING")
    sys.stdin.readline()
    client.close()
    return 0
