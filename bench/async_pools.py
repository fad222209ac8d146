"""Async pools under concurrency: the MagicStack pgbench shape (issue 9, workload b).

A pool of 10 connections and 10 tasks, each awaiting 1-row SELECTs back to back for a
few seconds, for oxpg.aio.AsyncPool, asyncpg's pool and psycopg_pool's
AsyncConnectionPool, each in its own child process, in alternating rounds on one
uvloop loop each. Prints queries per second per driver (median over the rounds) and
each peer's figure over oxpg's. Absolute figures on a shared machine mean little;
ratios from one run do.

    .venv/bin/python bench/async_pools.py --dsn postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

SQL = "SELECT $1::int AS v"
DRIVERS = ("oxpg", "asyncpg", "psycopg")


async def open_pool(driver: str, dsn: str, size: int) -> tuple[Callable[[int], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    """(one query, close) for the driver's pool of size connections."""
    if driver == "oxpg":
        import oxpg.aio

        oxpg_pool = oxpg.aio.AsyncPool(dsn, min_size=size, max_size=size)
        while oxpg_pool.stats().idle < size:
            await asyncio.sleep(0.01)
        return (lambda i: oxpg_pool.query(SQL, i)), oxpg_pool.close
    if driver == "asyncpg":
        import asyncpg

        asyncpg_pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size)
        return (lambda i: asyncpg_pool.fetch(SQL, i)), asyncpg_pool.close
    import psycopg_pool

    psycopg = psycopg_pool.AsyncConnectionPool(dsn, min_size=size, max_size=size, open=False,
                                               kwargs={"autocommit": True})
    await psycopg.open(wait=True)

    async def query(i: int) -> Any:
        async with psycopg.connection() as conn:
            cur = await conn.execute(SQL.replace("$1", "%s"), (i,))
            return await cur.fetchall()

    return query, psycopg.close


async def measure(driver: str, dsn: str, tasks: int, seconds: float) -> float:
    query, close = await open_pool(driver, dsn, tasks)
    try:
        for i in range(200):  # warm: statements prepared, connections used
            await query(i)
        count = 0
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal count
            i = 0
            while time.perf_counter() < stop:
                await query(i)
                i += 1
                count += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(tasks)))
        return count / (time.perf_counter() - started)
    finally:
        await close()


def child(driver: str, dsn: str, tasks: int, seconds: float) -> None:
    try:
        import uvloop

        rate = uvloop.run(measure(driver, dsn, tasks, seconds))
    except ImportError:
        rate = asyncio.run(measure(driver, dsn, tasks, seconds))
    print(json.dumps({"qps": rate}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--tasks", type=int, default=10, help="pool size and concurrent tasks")
    parser.add_argument("--seconds", type=float, default=3.0, help="per driver per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.dsn, args.tasks, args.seconds)
        return 0
    rates: dict[str, list[float]] = {d: [] for d in DRIVERS}
    skipped: dict[str, str] = {}
    for _ in range(args.rounds):
        for driver in DRIVERS:
            if driver in skipped:
                continue
            proc = subprocess.run(
                [sys.executable, __file__, "--child", driver, "--dsn", args.dsn, "--tasks", str(args.tasks),
                 "--seconds", str(args.seconds)],
                capture_output=True, text=True,
            )
            if proc.returncode != 0:
                skipped[driver] = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
                continue
            rates[driver].append(json.loads(proc.stdout)["qps"])
    print(f"{args.tasks} tasks on a pool of {args.tasks} connections, 1-row SELECT, "
          f"{args.rounds} rounds of {args.seconds:g} s per driver")
    print("| driver | queries/s (median) | oxpg / driver |")
    print("|---|---|---|")
    mine = statistics.median(rates["oxpg"]) if rates["oxpg"] else None
    for driver in DRIVERS:
        if driver in skipped or not rates[driver]:
            print(f"| {driver} | skipped: {skipped.get(driver, 'no result')} | |")
            continue
        qps = statistics.median(rates[driver])
        ratio = f"{mine / qps:.2f}x" if mine else "–"
        print(f"| {driver} | {qps:,.0f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
