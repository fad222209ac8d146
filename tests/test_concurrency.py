"""RELIABILITY row 11 and DESIGN section 5: threads.

One Client shared by many threads: calls are serialized by the Client's lock and each
thread gets its own results. Several Clients in several threads: the GIL is released
while waiting, so their queries overlap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal

import pytest

import oxpg

JOIN_SECONDS = 30


def run_threads(n: int, target: Callable[[int], None]) -> float:
    """Start n threads together on target(index); re-raise the first failure. Returns seconds."""
    barrier = threading.Barrier(n + 1)
    failures: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait(10)
            target(i)
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait(10)
    start = time.monotonic()
    for t in threads:
        t.join(JOIN_SECONDS)
    elapsed = time.monotonic() - start
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    if failures:
        raise failures[0]
    return elapsed


def test_one_client_eight_threads(client: oxpg.Client) -> None:
    threads, per_thread = 8, 50
    done = [0] * threads

    def work(t: int) -> None:
        for i in range(per_thread):
            key = t * 1000 + i
            label = f"thread-{t}-query-{i}-" + "é" * (i % 7)
            if i % 3 == 0:
                rows = client.query(
                    "SELECT $1::int AS key, $2::text AS label, $3::float8 * 2 AS twice, $4::numeric AS dec",
                    key, label, key / 4, Decimal(f"{key}.25"),
                )  # fmt: skip
                assert rows == [{"key": key, "label": label, "twice": key / 2, "dec": Decimal(f"{key}.25")}]
            elif i % 3 == 1:
                # A result whose size depends on the thread: rows must not mix.
                rows = client.query("SELECT g, $2::int AS t FROM generate_series(1, $1) g", i + 1, t)
                assert rows == [{"g": g, "t": t} for g in range(1, i + 2)]
            else:
                tuples = client.query_tuples("SELECT $1::int, $2::bytea", key, label.encode())
                assert tuples == [(key, label.encode())]
                assert client.execute("SELECT generate_series(1, $1)", t + 1) == t + 1
            done[t] += 1

    run_threads(threads, work)
    assert done == [per_thread] * threads
    assert client.query("SELECT 1 AS one") == [{"one": 1}]


def test_one_client_threads_with_errors(client: oxpg.Client) -> None:
    """Errors in some threads leave the shared Client usable for the others."""

    def work(t: int) -> None:
        for i in range(30):
            if (i + t) % 4 == 0:
                with pytest.raises(oxpg.errors.DivisionByZero):
                    client.query("SELECT $1::int / 0", i)
            else:
                assert client.query("SELECT $1::int AS v", t * 100 + i) == [{"v": t * 100 + i}]

    run_threads(6, work)
    assert not client.closed


def test_one_client_serializes_calls(client: oxpg.Client) -> None:
    elapsed = run_threads(2, lambda i: client.query("SELECT pg_sleep(0.3)"))
    # The lock serializes: two 0.3 s queries on one connection take 0.6 s.
    assert elapsed >= 0.55, f"{elapsed:.2f} s: calls on one connection overlapped"


def test_two_clients_two_threads_release_the_gil(dsn: str) -> None:
    clients = [oxpg.connect(dsn), oxpg.connect(dsn)]
    try:
        for c in clients:  # warm up: the first query pays for catalog lookups
            c.query("SELECT pg_sleep(0)")
        elapsed = run_threads(2, lambda i: clients[i].query("SELECT pg_sleep(0.5)"))
    finally:
        for c in clients:
            c.close()
    assert elapsed >= 0.5
    assert elapsed < 0.9, f"{elapsed:.2f} s: the waits did not overlap (GIL held?)"


def test_python_runs_while_a_query_waits(client: oxpg.Client) -> None:
    finished = threading.Event()

    def sleeper(i: int) -> None:
        client.query("SELECT pg_sleep(0.5)")
        finished.set()

    t = threading.Thread(target=sleeper, args=(0,), daemon=True)
    t.start()
    spins = 0
    start = time.monotonic()
    while not finished.is_set() and time.monotonic() - start < 5:
        spins += 1
    t.join(JOIN_SECONDS)
    assert finished.is_set()
    # With the GIL held for the whole query this loop would barely run.
    assert spins > 10_000


def test_connect_in_threads(dsn: str) -> None:
    pids: list[int] = []

    def work(i: int) -> None:
        with oxpg.connect(dsn) as c:
            pids.append(c.backend_pid)
            assert c.query("SELECT $1::int AS i", i) == [{"i": i}]

    run_threads(6, work)
    assert len(set(pids)) == 6


def test_close_while_another_thread_queries(dsn: str) -> None:
    client = oxpg.connect(dsn)
    outcome: list[object] = []

    def sleeper() -> None:
        try:
            outcome.append(client.query("SELECT 1 AS one FROM pg_sleep(0.5)"))
        except oxpg.Error as e:
            outcome.append(e)

    t = threading.Thread(target=sleeper, daemon=True)
    t.start()
    time.sleep(0.1)
    client.close()  # waits for the running call (the lock), then closes
    t.join(JOIN_SECONDS)
    assert not t.is_alive()
    assert client.closed
    assert len(outcome) == 1
    result = outcome[0]
    assert result == [{"one": 1}] or isinstance(result, oxpg.InterfaceError), result
    with pytest.raises(oxpg.InterfaceError):
        client.query("SELECT 1")
