"""Client CPU instructions per operation, counted by valgrind, for two oxpg builds.

Wall-time ratios on a shared machine move by several percent from run to run; the
instructions the client process executes do not. This counts them with cachegrind
for a few operations, taking the difference of a run of n and one of 3n operations (so starting Python,
connecting and the first runs cancel out), for this tree and for a build of another commit:

    .venv/bin/python bench/instructions.py --baseline 78b1731 --dsn postgresql://...

The baseline is built by bench/run.py's --baseline machinery (build/bench-baseline/).
What it does not count: the server's work and the kernel's (system calls).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# One operation per workload, run n times by the child.
CHILD = r"""
import sys
from datetime import datetime, timezone
from decimal import Decimal
import oxpg

dsn, workload, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = oxpg.connect(dsn)
c.execute("CREATE TEMP TABLE ins (id int4, name text, email text, age int4, score float8, active bool, "
          "created_at timestamptz, balance numeric(12,2))")
row = (1, "user_1", "u@example.com", 18, 1.5, True, datetime(2024, 1, 1, tzinfo=timezone.utc), Decimal("1.50"))
insert = "INSERT INTO ins VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
params = (1, 0, 200, -1.0, 1e9, True, datetime(2000, 1, 1, tzinfo=timezone.utc), Decimal("0.00"), "user_%", "")
select_params = ("SELECT $1::int4 AS a, $2::int4 AS b, $3::int4 AS c, $4::float8 AS d, $5::float8 AS e, "
                 "$6::bool AS f, $7::timestamptz AS g, $8::numeric AS h, $9::text AS i, $10::text AS j")
for i in range(n):
    if workload == "select_1":
        c.query("SELECT $1::int4 AS id, 'user' AS name", i)
    elif workload == "select_100":
        c.query("SELECT g AS id, 'user_' || g AS name FROM generate_series($1::int4, $1::int4 + 99) g", i)
    elif workload == "select_params":
        c.query(select_params, *params)
    elif workload == "insert_1":
        c.execute(insert, *row)
    elif workload == "insert_batch":
        c.executemany(insert, [row] * 100)
c.close()
"""

WORKLOADS = ["select_1", "select_100", "select_params", "insert_1", "insert_batch"]


def count(pythonpath: Path, dsn: str, workload: str, n: int, child: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    out = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, str(child), dsn, workload, str(n)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def per_op(pythonpath: Path, dsn: str, workload: str, n: int, child: Path) -> float:
    # The difference of n and 3n operations: start-up, connecting and the first
    # (preparing) runs cancel out.
    return (count(pythonpath, dsn, workload, 3 * n, child) - count(pythonpath, dsn, workload, n, child)) / (2 * n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="git commit to compare with (built under build/)")
    parser.add_argument("--dsn", required=True, help="a server to run against (temporary tables only)")
    parser.add_argument("-n", type=int, default=1000, help="operations per count (default 1000)")
    parser.add_argument("--only", default=",".join(WORKLOADS))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    import baseline  # type: ignore[import-not-found]

    base_src = baseline.prepare(args.baseline, print).src
    with tempfile.TemporaryDirectory() as tmp:
        child = Path(tmp) / "child.py"
        child.write_text(CHILD)
        print(f"| workload | this tree | {args.baseline} | ratio |")
        print("|---|---|---|---|")
        for workload in args.only.split(","):
            mine = per_op(ROOT / "src", args.dsn, workload, args.n, child)
            theirs = per_op(base_src, args.dsn, workload, args.n, child)
            print(f"| {workload} | {mine:,.0f} | {theirs:,.0f} | {mine / theirs:.3f}x |")


if __name__ == "__main__":
    main()
