"""RELIABILITY rows 27 and 29, short form: no growth of objects, memory or fds.

After a warm-up, further batches of queries must not grow the number of GC-tracked
objects, the number of allocated Python memory blocks (which also sees leaked str,
int, bytes: objects the GC does not track), or the process RSS (which sees leaked
PGresults and other C memory). Connect/close churn must not leak file descriptors.
Bounds are generous: a leak of one object per iteration still trips them.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import sys
import uuid
import warnings
from collections.abc import Callable
from decimal import Decimal

import pytest

import oxpg

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")

PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024

MIXED = (
    "SELECT $1::int AS i, $2::text AS t, $3::float8 AS f, $4::numeric AS n, $5::bytea AS b, "
    "$6::date AS d, $7::timestamptz AS ts, $8::uuid AS u, $9::bool AS ok, $10::interval AS iv, "
    "$11::int8 AS big, NULL::text AS nothing, '{\"k\": [1, 2.5, null, \"s\"]}'::jsonb AS j, "
    "ARRAY[1, 2]::int[] AS arr, g FROM generate_series(1, 3) g"
)


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def snapshot() -> tuple[int, int, int]:
    """(GC-tracked objects, allocated blocks, RSS bytes), after a full collection."""
    gc.collect()
    gc.collect()
    return len(gc.get_objects()), sys.getallocatedblocks(), rss()


def check_stable(step: Callable[[int], None], warmup: int, batch: int, batches: int) -> None:
    for i in range(warmup):
        step(i)
    base_objects, base_blocks, base_rss = snapshot()
    history = []
    for b in range(batches):
        for i in range(batch):
            step(warmup + b * batch + i)
        history.append(snapshot())
    objects, blocks, resident = history[-1]
    total = batch * batches
    detail = f"baseline {(base_objects, base_blocks, base_rss)}, after each batch {history}"
    # A leak of one object per iteration would show as `total` more.
    assert objects - base_objects < total // 20, f"GC objects grew: {detail}"
    assert blocks - base_blocks < total // 10, f"allocated blocks grew: {detail}"
    assert resident - base_rss < 2 * MB, f"RSS grew by {(resident - base_rss) / MB:.2f} MB: {detail}"


def test_queries_with_mixed_types_do_not_leak(client: oxpg.Client) -> None:
    tz = dt.timezone(dt.timedelta(hours=2))

    def step(i: int) -> None:
        params = (
            i, f"text {i} é", i / 3, Decimal(f"{i}.125"), b"\x00\x01" * (i % 50), dt.date(2024, 1, 1 + i % 28),
            dt.datetime(2024, 5, 6, 7, 8, 9, i % 1000, tzinfo=tz), uuid.UUID(int=i), i % 2 == 0,
            dt.timedelta(days=i % 9, seconds=i % 60), 2**40 + i,
        )  # fmt: skip
        kind = i % 10
        if kind < 6:
            rows = client.query(MIXED, *params)
            assert len(rows) == 3 and rows[0]["i"] == i and rows[2]["g"] == 3
        elif kind == 6:
            rows = client.query_tuples(MIXED, *params)
            assert rows[0][0] == i
        elif kind == 7:
            assert client.execute("SELECT g FROM generate_series(1, $1) g", i % 5 + 1) == i % 5 + 1
        elif kind == 8:
            # The error path: exception object with every diagnostic attribute.
            with pytest.raises(oxpg.errors.DivisionByZero):
                client.query("SELECT $1::int / 0", i)
        else:
            with pytest.raises(oxpg.DataError):
                client.query("SELECT $1::text", "nul\x00byte")  # refused before sending

    check_stable(step, warmup=2000, batch=2500, batches=2)


def test_large_results_do_not_leak(client: oxpg.Client) -> None:
    def step(i: int) -> None:
        rows = client.query_tuples("SELECT g, repeat('x', 200) AS s FROM generate_series(1, 500) g")
        assert len(rows) == 500

    check_stable(step, warmup=50, batch=100, batches=2)


def test_connect_close_churn_leaks_no_fds(dsn: str) -> None:
    def cycle() -> None:
        c = oxpg.connect(dsn)
        assert c.query("SELECT 1 AS one") == [{"one": 1}]
        c.close()

    for _ in range(10):
        cycle()
    base_fds = fd_count()
    _, base_blocks, base_rss = snapshot()
    for _ in range(200):
        cycle()
    _, blocks, resident = snapshot()
    assert fd_count() <= base_fds
    assert blocks - base_blocks < 100, (base_blocks, blocks)
    assert resident - base_rss < 4 * MB, f"RSS grew by {(resident - base_rss) / MB:.2f} MB"


def test_unclosed_clients_are_freed(dsn: str) -> None:
    """A Client dropped without close() closes its socket when collected."""
    base_fds = fd_count()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        for _ in range(30):
            c = oxpg.connect(dsn)
            c.query("SELECT 1")
            del c
        gc.collect()
    assert fd_count() <= base_fds


def test_failed_connects_leak_no_fds(pg) -> None:  # type: ignore[no-untyped-def]
    with oxpg.connect(pg.dsn) as good:
        host, port, db, user = good.host, good.port, good.dbname, good.user
    for _ in range(3):
        with pytest.raises(oxpg.OperationalError):
            oxpg.connect(host=host, port=port, user=user, password="wrong", db=db)
    base_fds = fd_count()
    for _ in range(30):
        with pytest.raises(oxpg.OperationalError):
            oxpg.connect(host=host, port=port, user=user, password="wrong", db=db)
    assert fd_count() <= base_fds
