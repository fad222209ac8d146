"""Driving an _oxpg.Operation from Python with select.poll, the way an event loop
drives it (tests/test_operation.py, tests/test_parity.py)."""

from __future__ import annotations

import select
import time

from oxpg import _oxpg


def drive(op: _oxpg.Operation, timeout: float = 10.0) -> tuple[object, list[int]]:
    """Step op to the end, waiting with select.poll for what it asks; returns its
    result and the statuses seen."""
    poller = select.poll()
    fd = op.fileno()
    seen = []
    deadline = time.monotonic() + timeout
    while (status := op.step()) != _oxpg.IO_DONE:
        seen.append(status)
        events = select.POLLIN if status == _oxpg.IO_WANT_READ else select.POLLIN | select.POLLOUT
        poller.register(fd, events)
        assert poller.poll(max(0.0, deadline - time.monotonic()) * 1000), "the operation stalled"
        poller.unregister(fd)
    return op.result(), seen
