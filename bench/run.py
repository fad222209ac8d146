#!/usr/bin/env python3
"""oxpg beside psycopg 3, asyncpg, psycopg2 and a raw libpq C loop (the floor).

    python bench/run.py --quick            under a minute; what `make bench` runs
    python bench/run.py                    the full run, for bench/results/
    python bench/run.py --only select_1    one workload (repeatable, or comma-separated)
    python bench/run.py --baseline HEAD~1  this tree's oxpg beside another commit's

The server is --dsn, else $OXPG_BENCH_DSN, else a throw-away cluster from
oxpg.testing.TempCluster. Results go to bench/results/<date>-<host>[-quick].{md,json}.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import baseline
import floor
import machine
import report
from drivers import FACTORIES, Driver, Unavailable, dist_version, load
from workloads import (
    BY_NAME,
    CHECK_EXPECTED,
    CHECK_SQL,
    COUNT_INSERTS,
    TABLES_EXIST_SQL,
    WORKLOADS,
    Workload,
    setup_statements,
)

HERE = Path(__file__).resolve().parent
FLOOR_LABELS = ("floor exec", "floor prepared")
ALL_LABELS = (*FACTORIES, *FLOOR_LABELS)
OXPG_LABELS = ("oxpg", "oxpg tuples")
VERSIONS_OF = ("oxpg", "psycopg", "psycopg-binary", "asyncpg", "uvloop", "psycopg2-binary")


def say(msg: str) -> None:
    print(msg, flush=True)


# ---- the server ----


@contextlib.contextmanager
def server_dsn(arg: str | None) -> Iterator[str]:
    dsn = arg or os.environ.get("OXPG_BENCH_DSN")
    if dsn:
        yield dsn
        return
    try:
        TempCluster = load("oxpg.testing", "").TempCluster
    except (Unavailable, AttributeError) as e:
        sys.exit(
            f"no server: pass --dsn or set OXPG_BENCH_DSN, or build oxpg so that"
            f" oxpg.testing.TempCluster can start a throw-away one ({e})"
        )
    say("starting a throw-away PostgreSQL (oxpg.testing.TempCluster)...")
    with contextlib.ExitStack() as stack:
        cluster: Any = TempCluster()
        if hasattr(cluster, "__enter__"):
            entered = stack.enter_context(cluster)
            cluster = entered if entered is not None else cluster
        else:
            cluster.start()
            stack.callback(cluster.stop)
        found = cluster if isinstance(cluster, str) else getattr(cluster, "dsn", None)
        found = found() if callable(found) else found
        if not isinstance(found, str):
            sys.exit("oxpg.testing.TempCluster gave no .dsn; pass --dsn instead")
        yield found


class Admin(Protocol):
    def sql(self, sql: str) -> list[list[str]]: ...


class PyAdmin:
    """Setup through a Python driver, for when the floor cannot be built."""

    def __init__(self, dsn: str) -> None:
        self.oxpg: Any = None
        self.conn: Any = None
        with contextlib.suppress(Unavailable):
            self.oxpg = load("oxpg", "").connect(dsn)
            return
        with contextlib.suppress(Unavailable):
            self.conn = load("psycopg", "").connect(dsn, autocommit=True)
            return
        self.conn = load("psycopg2", "no driver to set the tables up with").connect(dsn)
        self.conn.autocommit = True

    def sql(self, sql: str) -> list[list[str]]:
        if self.oxpg is not None:
            rows = [list(r.values()) for r in self.oxpg.query(sql)]
        else:
            cur = self.conn.cursor()
            cur.execute(sql)
            rows = cur.fetchall() if cur.description else []
        # As the floor prints them: NULL is an empty string.
        return [["" if v is None else str(v) for v in r] for r in rows]

    def close(self) -> None:
        (self.oxpg or self.conn).close()


def ensure_tables(admin: Admin) -> None:
    if admin.sql(TABLES_EXIST_SQL)[0][0] == "true":
        if admin.sql(CHECK_SQL)[0] == CHECK_EXPECTED:
            return
    say("creating the bench_* tables (10,000 and 100,000 rows)...")
    for stmt in setup_statements():
        admin.sql(stmt)


def server_info(admin: Admin) -> dict[str, str]:
    row = admin.sql(
        "SELECT current_setting('server_version'), coalesce(host(inet_server_addr()),"
        " 'unix socket'), current_setting('port'), current_database(),"
        " current_setting('fsync'), current_setting('synchronous_commit'),"
        " current_setting('shared_buffers'), current_setting('jit')"
    )[0]
    return {
        "version": row[0],
        "where": f"{row[1]} port {row[2]}, database {row[3]}",
        "settings": f"fsync={row[4]} synchronous_commit={row[5]}"
        f" shared_buffers={row[6]} jit={row[7]}",
    }


# ---- running a workload ----


def run_workload(
    w: Workload,
    contenders: list[Driver],
    admin: Admin,
    quick: bool,
    notes: list[str],
) -> dict[str, Any]:
    plan = w.plan(quick)
    active: list[Driver] = []
    skipped: dict[str, str] = {}
    for d in contenders:
        reason = d.skip_reason(w)
        if reason:
            skipped[d.label] = reason
            notes.append(f"{w.name}: {d.label} skipped: {reason}")
        else:
            active.append(d)

    def drop(d: Driver, why: str) -> None:
        skipped[d.label] = why
        notes.append(f"{w.name}: {d.label} {why}")
        active.remove(d)

    def batch(d: Driver, first: int, params: list[Any]) -> list[int] | None:
        if w.reset_sql:
            admin.sql(w.reset_sql)
        gc.collect()  # so no driver pays for another's garbage
        try:
            return d.run(w, first, params)
        except Exception as e:  # one broken driver must not end the whole run
            drop(d, f"failed: {type(e).__name__}: {e}")
            return None

    def verify(d: Driver, warmed: int) -> None:
        # A driver that sent a parameter with the wrong type could match no rows and
        # look fast; the count is checked once, outside the timings.
        if w.kind == "rows":
            try:
                got, want = d.count_rows(w, w.params(0)), w.rows_per_op
            except Exception as e:
                return drop(d, f"failed: {type(e).__name__}: {e}")
        else:
            got, want = int(admin.sql(COUNT_INSERTS)[0][0]), warmed * w.rows_per_op
        if got is not None and got != want:
            drop(d, f"gave a wrong result ({got} rows, expected {want})")

    # Warm-up: connections, statement caches and lazily built structures settle before
    # anything is timed; op indices start after it, the same for every driver.
    warm = [w.params(i) for i in range(plan.warmup)]
    for d in list(active):
        if batch(d, 0, warm) is not None:
            verify(d, len(warm))

    samples: dict[str, list[int]] = {d.label: [] for d in active}
    round_medians: dict[str, list[float]] = {d.label: [] for d in active}
    first = plan.warmup
    for r in range(plan.rounds):
        params = [w.params(first + j) for j in range(plan.batch)]
        # A B C, then B C A: no driver always runs right after the same neighbour.
        order = active[r % len(active) :] + active[: r % len(active)] if active else []
        for d in order:
            times = batch(d, first, params)
            if times is not None:
                samples[d.label] += times
                round_medians[d.label].append(statistics.median(times))
        first += plan.batch

    results = {
        x: report.stats(samples[x], round_medians[x])
        for x in samples
        if samples[x] and x not in skipped
    }
    line = "  ".join(f"{x} {results[x]['median_ns'] / 1000:.1f}" for x in results)
    say(f"  {w.name:<16} median µs: {line}")
    return {
        "name": w.name,
        "description": w.description,
        "plan": {"warmup": plan.warmup, "batch": plan.batch, "rounds": plan.rounds},
        "results": results,
        "skipped": skipped,
    }


# ---- peak RSS, each driver in a fresh process ----


def rss_child(label: str) -> None:
    """Runs in the child: one fetch_100k, prints peak RSS before and after as JSON."""
    dsn = os.environ["OXPG_BENCH_DSN"]
    d = FACTORIES[label](dsn)
    d.backend_pid()  # the baseline is a connected, used driver, before any big fetch
    w = BY_NAME["fetch_100k"]
    baseline = machine.peak_rss_kib()
    ns = d.run(w, 0, [w.params(0)])
    peak = machine.peak_rss_kib()
    d.close()
    print(json.dumps({"baseline_kib": baseline, "peak_kib": peak, "ns": ns[0]}))


def measure_rss(
    labels: list[str],
    floor_bin: Path | None,
    dsn: str,
    repeats: int,
    notes: list[str],
    builds: dict[str, tuple[str, dict[str, str]]],
) -> dict[str, Any]:
    """builds maps a report label to the driver the child runs and its environment
    (an oxpg baseline is the "oxpg" driver with its own build on PYTHONPATH)."""
    out: dict[str, Any] = {}
    for label in labels:
        child_label, child_env = builds.get(label, (label, dict(os.environ)))
        env = dict(child_env, OXPG_BENCH_DSN=dsn)
        runs = []
        for _ in range(repeats):
            if label == "floor prepared":
                assert floor_bin is not None
                try:
                    r = floor.run_once(floor_bin, dsn, "fetch_100k", "prepared", 1)
                except subprocess.CalledProcessError as e:
                    notes.append(f"peak RSS: the floor failed: {e.stderr.strip()}")
                    break
                runs.append({"baseline_kib": r["rss_before_kib"], "peak_kib": r["rss_peak_kib"]})
                continue
            proc = subprocess.run(
                [sys.executable, str(HERE / "run.py"), "--rss-child", child_label],
                env=env,
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
                notes.append(f"peak RSS: {label} failed: {tail[0]}")
                break
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        if runs:
            out[label] = {
                "peak_kib": statistics.median(r["peak_kib"] for r in runs),
                "baseline_kib": statistics.median(r["baseline_kib"] for r in runs),
                "runs": len(runs),
            }
            mib = out[label]["peak_kib"] / 1024
            say(f"  peak RSS {label:<16} {mib:.1f} MiB")
    return out


# ---- the whole run ----


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="under a minute: fewer ops")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="WORKLOAD",
        help="run only these workloads: " + ", ".join(BY_NAME),
    )
    p.add_argument(
        "--drivers",
        default=",".join(ALL_LABELS),
        help="comma-separated subset of: " + ", ".join(ALL_LABELS),
    )
    p.add_argument("--dsn", help="server to use (default: $OXPG_BENCH_DSN, else TempCluster)")
    p.add_argument(
        "--pin",
        default="same",
        metavar="MODE",
        help="CPU placement: same (client and server backends on one CPU, the"
        "\ndefault), split (one CPU each), none, or CLIENT:SERVER CPU lists"
        "\nsuch as 1:0 or 0-1:0",
    )
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="REF",
        help="also time oxpg as built from this git commit (e.g. HEAD~1), as"
        "\n'oxpg@<sha>' beside 'oxpg'; it is built once in build/bench-baseline/"
        "\n(repeatable: several commits side by side)",
    )
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS processes")
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    p.add_argument("--no-save", action="store_true", help="print only, write no results")
    p.add_argument("--rss-child", help=argparse.SUPPRESS)
    p.add_argument("--serve-driver", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def pin_plan(mode: str) -> tuple[set[int] | None, set[int] | None]:
    """--pin MODE -> (client CPUs, server CPUs); None leaves that side alone.

    same: one CPU for both, so a round trip is a context switch on that CPU; small ops
    are then the most repeatable, and client and server time add up as they would on
    separate machines minus the network. split: the wake-up crosses CPUs, which on a VM
    costs a variable few microseconds, but a big result is produced and consumed in
    parallel. The last CPU is used for the client, away from CPU 0's housekeeping.
    """
    if mode == "none":
        return None, None
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    if mode == "same":
        return {cpus[-1]}, {cpus[-1]}
    if mode == "split":
        if len(cpus) < 2:
            sys.exit("--pin split needs two CPUs")
        return {cpus[-1]}, {cpus[0]}
    client, sep, server = mode.partition(":")
    if not sep:
        sys.exit(f"--pin takes same, split, none or CLIENT:SERVER, not {mode!r}")
    return machine.parse_cpus(client), machine.parse_cpus(server)


def redact_dsn(argv: list[str]) -> list[str]:
    """The command line for the report, without a DSN that may hold a password."""
    out = []
    for i, a in enumerate(argv):
        if i and argv[i - 1] == "--dsn":
            a = "DSN"
        elif a.startswith("--dsn="):
            a = "--dsn=DSN"
        out.append(a)
    return out


def selected_workloads(only: list[str]) -> list[Workload]:
    names = [n for arg in only for n in arg.split(",") if n]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        sys.exit(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    return [w for w in WORKLOADS if not names or w.name in names]


def start_floor(
    stack: contextlib.ExitStack, dsn: str, notes: list[str]
) -> tuple[Path | None, dict[str, str], floor.FloorProcess | None]:
    """Builds the floor and opens its admin process; (None, {}, None) if it cannot build."""
    try:
        built, tmp = floor.build_in_tempdir()
    except Unavailable as e:
        say(f"note: the floor is left out: {e}")
        notes.append(f"floor left out: {e}")
        return None, {}, None
    stack.callback(tmp.cleanup)
    listed = floor.list_sql(built.path)
    mismatch = [w.name for w in WORKLOADS if listed.get(w.name) != w.sql]
    if mismatch:
        sys.exit(f"floor.c and workloads.py disagree on: {', '.join(mismatch)}")
    try:
        admin = floor.FloorProcess(built.path, dsn)
    except floor.FloorError as e:
        sys.exit(f"cannot connect to the server: {e}")
    stack.callback(admin.close)
    lib = admin.libpq_version
    info = {
        "command": built.command,
        "cc": built.cc_version,
        "libpq": f"{lib // 10000}.{lib % 10000}",
    }
    return built.path, info, admin


def open_contenders(
    labels: list[str],
    dsn: str,
    floor_proc: floor.FloorProcess | None,
    notes: list[str],
    bases: list[baseline.Build],
) -> list[Driver]:
    """The drivers, in the order asked for; with baselines, each oxpg driver runs in a
    child process, followed by its twins from the baseline builds."""
    out: list[Driver] = []
    for label in labels:
        if label in FLOOR_LABELS:
            if floor_proc is not None:
                out.append(floor.FloorDriver(floor_proc, label.split()[1]))
            continue
        makers: list[tuple[str, Any]] = [(label, lambda: FACTORIES[label](dsn))]
        if bases and label in OXPG_LABELS:
            mine = baseline.current()
            makers = [(label, lambda: baseline.ChildDriver(mine, label, dsn, is_baseline=False))]
            makers += [
                (
                    f"{label}@{b.short}",
                    lambda b=b: baseline.ChildDriver(b, label, dsn, is_baseline=True),
                )
                for b in bases
            ]
        for name, make in makers:
            try:
                out.append(make())
            except Unavailable as e:
                say(f"note: {name} left out: {e}")
                notes.append(f"{name} left out: {e}")
    return out


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child)
        return 0
    if args.serve_driver:
        baseline.serve(args.serve_driver)
        return 0

    workloads = selected_workloads(args.only)
    labels = [x.strip() for x in args.drivers.split(",") if x.strip()]
    bad = [x for x in labels if x not in ALL_LABELS]
    if bad:
        sys.exit(f"unknown driver(s) {', '.join(bad)}; choose from {', '.join(ALL_LABELS)}")
    bases: list[baseline.Build] = []
    notes: list[str] = []
    stale = baseline.stale_build_note()
    if stale:
        say(f"note: {stale}")
        notes.append(stale)
    if args.baseline:
        if not any(x in OXPG_LABELS for x in labels):
            sys.exit("--baseline compares oxpg builds: --drivers must name oxpg or oxpg tuples")
        for ref in args.baseline:
            b = baseline.prepare(ref, say)
            if all(b.sha != x.sha for x in bases):
                bases.append(b)
                notes += baseline.flag_notes(b)
    machine_info = machine.info()
    if machine_info["load_before"] > 0.5:
        say(f"note: load average is {machine_info['load_before']:.2f}: timings will be noisy")
    pins: dict[str, str] = {}
    client_cpus, server_cpus = pin_plan(args.pin)
    if client_cpus:
        # Before anything is spawned, so the floor and the RSS children inherit it.
        err = machine.pin(os.getpid(), client_cpus)
        pins["client"] = f"not pinned ({err})" if err else f"CPU {machine.fmt_cpus(client_cpus)}"
        if err:
            notes.append(f"could not pin the client: {err}")

    # The stack closes every connection before server_dsn stops a throw-away server.
    with server_dsn(args.dsn) as dsn, contextlib.ExitStack() as stack:
        floor_bin, floor_info, admin_proc = start_floor(stack, dsn, notes)
        floor_proc = None
        admin: Admin
        if admin_proc is not None:
            admin = admin_proc
        else:
            py_admin = PyAdmin(dsn)
            stack.callback(py_admin.close)
            admin = py_admin
        try:
            ensure_tables(admin)
        except floor.FloorError as e:
            sys.exit(f"setting up the bench_* tables failed: {e}")
        server = server_info(admin)

        if floor_bin is not None and any(x in FLOOR_LABELS for x in labels):
            floor_proc = floor.FloorProcess(floor_bin, dsn)
            stack.callback(floor_proc.close)
        contenders = open_contenders(labels, dsn, floor_proc, notes, bases)
        for d in contenders:
            stack.callback(d.close)
        if not contenders:
            sys.exit("no driver could run")

        backends = {d.label: d.backend_pid() for d in contenders}
        if server_cpus:
            admin_pid = int(admin.sql("SELECT pg_backend_pid()")[0][0])
            errors = [
                err
                for pid in {*backends.values(), admin_pid}
                if pid is not None and (err := machine.pin(pid, server_cpus))
            ]
            pins["server backends"] = f"CPU {machine.fmt_cpus(server_cpus)}"
            if errors:
                pins["server backends"] = "not pinned (see notes)"
                notes.append("could not pin the server backends: " + "; ".join(errors))

        mode = "quick" if args.quick else "full"
        say(f"{mode} run: {', '.join(d.label for d in contenders)}")
        started = time.monotonic()
        entries = [run_workload(w, contenders, admin, args.quick, notes) for w in workloads]

        # Where everything ran, sampled at the end: with no pinning this shows where the
        # scheduler put the processes, which explains one run differing from the next.
        procs = {"client (python)": machine.placement(os.getpid())}
        if floor_proc is not None:
            procs["client (floor)"] = machine.placement(floor_proc.proc.pid)
        children = [d for d in contenders if isinstance(d, baseline.ChildDriver)]
        for child in children:
            procs[f"client ({child.label})"] = machine.placement(child.proc.pid)
        seen: set[int] = set()
        for d in contenders:
            pid = backends[d.label]
            if pid is not None and pid not in seen:  # the two floor modes share one
                seen.add(pid)
                name = "floor" if d.family == "floor" else d.label
                procs[f"server backend ({name})"] = machine.placement(pid, backend=True)

        rss: dict[str, Any] = {}
        if any(w.name == "fetch_100k" for w in workloads) and not args.no_rss:
            rss_labels = [d.label for d in contenders if d.family != "floor"]
            if floor_bin is not None and "floor prepared" in labels:
                rss_labels.append("floor prepared")
            builds = {c.label: (c.base_label, c.build.env()) for c in children}
            repeats = 1 if args.quick else 3
            rss = measure_rss(rss_labels, floor_bin, dsn, repeats, notes, builds)
        say(f"done in {time.monotonic() - started:.0f} s")

    notes += report.drift_notes(entries)
    families = {d.label: d.family for d in contenders}
    baselines = {c.label: c.baseline_of for c in children if c.baseline_of}
    for entry in entries:
        entry["ratios"] = report.ratios(entry, families, baselines)
    now = datetime.datetime.now()
    doc: dict[str, Any] = {
        "date": now.strftime("%Y-%m-%d %H:%M"),
        "mode": mode,
        "command": "python bench/run.py " + shlex.join(redact_dsn(argv)),
        "machine": dict(machine_info, load_after=os.getloadavg()[0]),
        "server": server,
        "floor": floor_info,
        "drivers": {
            d.label: {"family": d.family, "detail": d.detail}
            | ({"baseline_of": baselines[d.label]} if d.label in baselines else {})
            for d in contenders
        },
        "baselines": [b.describe() for b in bases],
        "versions": {name: dist_version(name) for name in VERSIONS_OF},
        "placement": {
            "mode": args.pin,
            "summary": f"--pin {args.pin}: "
            + ("; ".join(f"{k} {v}" for k, v in pins.items()) or "nothing pinned"),
            "pins": pins,
            "processes": procs,
        },
        "workloads": entries,
        "rss": rss,
        "notes": notes,
    }
    text = report.markdown(doc)
    if args.no_save:
        print(text)
    else:
        stem = f"{now:%Y-%m-%d}-{doc['machine']['host']}" + ("-quick" if args.quick else "")
        js, md = report.write(doc, args.out_dir, stem)
        print(text)
        say(f"wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
