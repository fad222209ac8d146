"""What a pool decides, written once for oxpg.Pool (threads) and oxpg.AsyncPool
(asyncio): which connection to lend, when to open or close one, how long to back
off after a failed connect, what the statistics say. Nothing here waits, locks or
talks to the server; the pools do that around it, holding their own lock.
"""

from __future__ import annotations

import collections
import dataclasses
import random
from typing import Any

# A connection that sat idle longer than this (seconds) gets a round trip before it is
# lent: below it, the cheap checks (socket, transaction status) are enough.
CHECK_AFTER_IDLE = 1.0
# Reconnect backoff: the first retry after BACKOFF_FIRST seconds, doubling up to
# BACKOFF_MAX, each delay drawn in [50%, 100%] of its value (no reconnect storm of
# several processes in step).
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 10.0
# max_lifetime is cut by up to this fraction per connection, so connections opened
# together do not all expire together.
LIFETIME_JITTER = 0.1


@dataclasses.dataclass(eq=False)
class Slot:
    """One pooled connection and what the pool knows of it."""

    client: Any
    created: float
    expires: float  # when max_lifetime (with its jitter) is up
    generation: int  # the pool's failure generation when it was opened
    last_used: float = 0.0  # when it was last returned (or opened)


@dataclasses.dataclass
class PoolStats:
    """pool.stats(): sizes right now and counters since the pool was opened."""

    size: int = 0  # connections open or opening
    idle: int = 0
    busy: int = 0  # lent out
    opening: int = 0
    waiting: int = 0  # callers waiting for a connection
    served: int = 0  # connections lent
    timeouts: int = 0  # acquires that timed out
    connects: int = 0  # connections opened
    connect_errors: int = 0
    lost: int = 0  # connections found broken (returned broken, or failing their check)
    discarded: int = 0  # closed by the pool: expired, idle too long, returned unusable
    connect_time: float = 0.0  # seconds spent opening connections, in all
    wait_time: float = 0.0  # seconds callers spent waiting in acquire, in all


class PoolPolicy:
    """The pool's state and decisions. Not thread-safe: the pool holds its lock."""

    def __init__(self, min_size: int, max_size: int, max_lifetime: float, max_idle: float) -> None:
        self.min_size = min_size
        self.max_size = max_size
        self.max_lifetime = max_lifetime
        self.max_idle = max_idle
        self.idle: collections.deque[Slot] = collections.deque()  # most recently returned last
        self.lent: dict[int, Slot] = {}  # by id(client)
        self.opening = 0
        self.waiting = 0
        # Bumped when a connection is found broken: the server may have restarted, so
        # every connection opened before is checked with a round trip before use.
        self.generation = 0
        self.failures_in_a_row = 0  # failed connects since the last one that worked
        self.next_connect_at = 0.0
        self.stats = PoolStats()

    @property
    def size(self) -> int:
        return len(self.idle) + len(self.lent) + self.opening

    # ---- lending ----

    def take(self, now: float) -> tuple[Slot | None, list[Slot]]:
        """An idle connection to lend (the most recently returned: the others may
        age out), and the idle ones found expired on the way, to close."""
        expired = []
        while self.idle:
            slot = self.idle.pop()
            if now >= slot.expires:
                expired.append(slot)
                continue
            return slot, expired
        return None, expired

    def needs_round_trip(self, slot: Slot, now: float) -> bool:
        """Only a round trip can tell whether the server is still there."""
        return slot.generation < self.generation or now - slot.last_used > CHECK_AFTER_IDLE

    def lend(self, slot: Slot) -> None:
        self.lent[id(slot.client)] = slot
        self.stats.served += 1

    def slot_of(self, client: Any) -> Slot | None:
        return self.lent.get(id(client))

    # ---- opening ----

    def want_connect(self) -> bool:
        """Another connection should be opened now: callers wait and none is idle,
        or the pool is below min_size; never beyond max_size. One at a time, so a
        server that refuses connections sees one attempt per backoff delay."""
        if self.opening > 0 or self.size >= self.max_size:
            return False
        return self.size < self.min_size or self.waiting > len(self.idle)

    def connect_delay(self, now: float) -> float:
        """Seconds to wait before the next connect (backoff after failures)."""
        return max(0.0, self.next_connect_at - now)

    def connecting(self) -> None:
        self.opening += 1

    def connected(self, client: Any, now: float, took: float) -> Slot:
        self.opening -= 1
        self.failures_in_a_row = 0
        self.next_connect_at = 0.0
        self.stats.connects += 1
        self.stats.connect_time += took
        lifetime = self.max_lifetime * (1 - random.uniform(0, LIFETIME_JITTER))
        return Slot(client, now, now + lifetime, self.generation, last_used=now)

    def connect_failed(self, now: float, took: float) -> None:
        self.opening -= 1
        self.failures_in_a_row += 1
        self.stats.connect_errors += 1
        self.stats.connect_time += took
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self.failures_in_a_row - 1))
        self.next_connect_at = now + delay * random.uniform(0.5, 1.0)

    def add_idle(self, slot: Slot) -> None:
        self.idle.append(slot)

    # ---- returning ----

    def returned(self, slot: Slot, now: float, usable: bool) -> bool:
        """The connection came back (cleaned up by the pool when it could be);
        True to keep it idle, False to close it."""
        self.lent.pop(id(slot.client), None)
        if not usable:
            self.stats.discarded += 1
            return False
        if now >= slot.expires:
            self.stats.discarded += 1
            return False
        slot.last_used = now
        self.idle.append(slot)
        return True

    def lost(self, slot: Slot | None) -> None:
        """A connection was found broken: it is dropped, and every connection opened
        before now is checked before it is lent (the server may have restarted)."""
        if slot is not None:
            self.lent.pop(id(slot.client), None)
        self.stats.lost += 1
        self.generation += 1

    def dropped(self, slot: Slot) -> None:
        """A lent or checked connection that will not come back (closed by the pool)."""
        self.lent.pop(id(slot.client), None)
        self.stats.discarded += 1

    # ---- housekeeping ----

    def sweep(self, now: float) -> list[Slot]:
        """Idle connections to close: expired, or idle longer than max_idle while the
        pool holds more than min_size."""
        keep: collections.deque[Slot] = collections.deque()
        out = []
        spare = self.size - self.min_size
        for slot in self.idle:  # oldest returned first
            if now >= slot.expires or (spare > 0 and now - slot.last_used > self.max_idle):
                out.append(slot)
                spare -= 1
            else:
                keep.append(slot)
        self.idle = keep
        self.stats.discarded += len(out)
        return out

    def next_sweep_in(self, now: float) -> float:
        """Seconds until sweep() may have something to do."""
        soonest = min(self.max_idle, self.max_lifetime)
        for slot in self.idle:
            soonest = min(soonest, max(0.0, slot.expires - now), max(0.0, slot.last_used + self.max_idle - now))
        return max(0.05, soonest)

    def snapshot(self) -> PoolStats:
        stats = dataclasses.replace(self.stats)
        stats.size, stats.idle, stats.busy = self.size, len(self.idle), len(self.lent)
        stats.opening, stats.waiting = self.opening, self.waiting
        return stats
