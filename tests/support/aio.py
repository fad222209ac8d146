"""Running the asyncio client's tests: each test body is a coroutine run to its end on
a new event loop of the kind under test (asyncio's own, and uvloop's when it is
installed), bounded so that a hang fails the test instead of the suite."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is in requirements-dev.txt
    uvloop = None


def loop_factories() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The event loops oxpg.aio is tested on, by name."""
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.SelectorEventLoop}
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


def run(factory: Callable[[], asyncio.AbstractEventLoop], main: Callable[[], Awaitable[T]], limit: float = 60) -> T:
    """Run main() on a new loop made by factory, failing after limit seconds."""

    async def bounded() -> T:
        return await asyncio.wait_for(main(), limit)

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(bounded())


