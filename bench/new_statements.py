"""What a statement costs the first time a client runs it, beside a baseline build.

oxpg describes a statement before its first run on a client (docs/decisions.md, the
statement cache): one more round trip, once. This times query() over statements the
client has not seen (each text distinct) and over one statement run again, for this
tree and for a baseline tree built in place (bench/run.py --baseline builds one under
build/bench-baseline/), in alternating rounds in child processes, and prints the
ratios this/baseline. Absolute times on a shared machine mean little; ratios from
one run do.

    .venv/bin/python bench/new_statements.py --dsn postgresql://postgres@127.0.0.1/postgres \
        --baseline-src build/bench-baseline/<sha>/src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(dsn: str, n: int) -> None:
    import oxpg

    with oxpg.connect(dsn) as client:
        nonce = os.getpid() * 1_000_003 + time.monotonic_ns() % 1_000_003
        start = time.perf_counter()
        for i in range(n):
            client.query(f"SELECT $1::int AS v, {nonce + i} AS k", i)
        new = (time.perf_counter() - start) / n
        start = time.perf_counter()
        for i in range(n):
            client.query("SELECT $1::int AS v, 0 AS k", i)
        again = (time.perf_counter() - start) / n
    print(json.dumps({"new": new, "again": again}))


def run_child(src: Path, dsn: str, n: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--dsn", dsn, "-n", str(n)],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--baseline-src", type=Path, help="src/ of a baseline tree built in place")
    parser.add_argument("-n", type=int, default=2000, help="statements per measurement")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.dsn, args.n)
        return 0
    trees = {"this": ROOT / "src"}
    if args.baseline_src is not None:
        trees["baseline"] = args.baseline_src
    times: dict[str, dict[str, list[float]]] = {t: {"new": [], "again": []} for t in trees}
    for _ in range(args.rounds):
        for tree, src in trees.items():
            got = run_child(src, args.dsn, args.n)
            for kind in ("new", "again"):
                times[tree][kind].append(got[kind])
    for kind in ("new", "again"):
        line = f"{kind:6}"
        for tree in trees:
            line += f"  {tree}: {statistics.median(times[tree][kind]) * 1e6:7.1f} us"
        if "baseline" in trees:
            ratio = statistics.median(times["this"][kind]) / statistics.median(times["baseline"][kind])
            line += f"  this/baseline {ratio:.2f}x"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
