"""Statistics over the timings, and the JSON + markdown written to bench/results/."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any


def stats(ns: list[int], round_medians: list[float]) -> dict[str, Any]:
    ordered = sorted(ns)
    n = len(ordered)
    return {
        "n": n,
        "median_ns": statistics.median(ordered),
        # Nearest rank: the smallest value with at least 90% of the ops at or below it.
        "p90_ns": ordered[max(0, -(-9 * n // 10) - 1)],
        "min_ns": ordered[0],
        "mean_ns": statistics.fmean(ordered),
        # One median per round shows drift (a noisy neighbour, thermal, autovacuum).
        "round_medians_ns": [round(m) for m in round_medians],
    }


# The columns of the ratio table; with --baseline, ratio_keys() adds the baseline's.
RATIO_KEYS = (
    "oxpg / best peer",
    "oxpg / floor prepared",
    "oxpg tuples / floor prepared",
    "oxpg async / asyncpg",
    "oxpg async / psycopg async",
    "oxpg pool / oxpg",
    "oxpg async pool / oxpg async",
)
# A pool's borrowed call against the plain call of the same client kind.
POOL_OF = {"oxpg pool": "oxpg", "oxpg async pool": "oxpg async"}
# The asyncio client is compared with the asyncio peers, one by one.
ASYNC_PEERS = ("asyncpg", "psycopg async")


def ratio_keys(drivers: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(the ratio table's columns, the before/after table's columns) for these drivers."""
    keys: list[str] = []
    after = []
    for key in RATIO_KEYS:
        keys.append(key)
        mine, against = key.split(" / ")
        # Each baseline's column right after the one of the build it is the baseline of.
        for label, d in drivers.items():
            if d.get("baseline_of") == mine:
                keys.append(f"{label} / {against}")
    for label, d in drivers.items():
        if d.get("baseline_of"):
            after.append(f"{d['baseline_of']} / {label}")
    return keys, after


def drift_notes(entries: list[dict[str, Any]], limit: float = 1.5) -> list[str]:
    """Warns when a workload's round medians moved a lot: something else was running.

    The spread is the 90th over the 10th percentile of the round medians, so one slow
    round (a checkpoint, a stray wake-up) does not trip it but a shift that lasts does.
    """
    out = []
    for e in entries:
        spreads = []
        for x, r in e["results"].items():
            rounds = sorted(r["round_medians_ns"])
            lo, hi = rounds[len(rounds) // 10], rounds[-1 - len(rounds) // 10]
            if len(rounds) > 2 and lo > 0:
                spreads.append((hi / lo, x))
        if spreads and max(spreads)[0] > limit:
            spread, who = max(spreads)
            out.append(
                f"{e['name']}: the round medians of {who} spread {spread:.2f}x (p90/p10);"
                " the machine was probably busy, so rerun before quoting this workload"
            )
    return out


def _best(results: dict[str, Any], labels: list[str]) -> tuple[str, float] | None:
    have = [(results[x]["median_ns"], x) for x in labels if x in results]
    return (min(have)[1], min(have)[0]) if have else None


def ratios(
    entry: dict[str, Any], families: dict[str, str], baselines: dict[str, str]
) -> dict[str, Any]:
    """oxpg against the fastest peer and the prepared floor, median over median; each
    baseline build (label -> the label it is the baseline of) against the floor too,
    and this build over the baseline (below 1.00x: the change made it faster)."""
    res = entry["results"]
    peers = [x for x, f in families.items() if f == "peer"]
    out: dict[str, Any] = {}
    best = _best(res, peers)
    if best:
        out["best_peer"] = best[0]
    floor = res.get("floor prepared", {}).get("median_ns")
    for label in [x for x, f in families.items() if f == "oxpg"]:
        if label not in res:
            continue
        mine = res[label]["median_ns"]
        if best:
            out[f"{label} / best peer"] = mine / best[1]
        if floor:
            out[f"{label} / floor prepared"] = mine / floor
    if "oxpg async" in res:
        for peer in ASYNC_PEERS:
            if peer in res:
                out[f"oxpg async / {peer}"] = res["oxpg async"]["median_ns"] / res[peer]["median_ns"]
    for pooled, plain in POOL_OF.items():
        if pooled in res and plain in res:
            out[f"{pooled} / {plain}"] = res[pooled]["median_ns"] / res[plain]["median_ns"]
    for label, of in baselines.items():
        if label in res and of in res:
            out[f"{of} / {label}"] = res[of]["median_ns"] / res[label]["median_ns"]
    return out


def _us(ns: float | None) -> str:
    if ns is None:
        return "–"
    us = ns / 1000
    return f"{us:.1f}" if us < 100 else f"{us:,.0f}"


def _mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def _ratio(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}x"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def markdown(doc: dict[str, Any]) -> str:
    labels = list(doc["drivers"])
    m, srv = doc["machine"], doc["server"]
    out = [
        f"# oxpg benchmark: {doc['date']} on {m['host']} ({doc['mode']})",
        "",
        f"Command: `{doc['command']}`. Times are per operation, in microseconds, measured"
        " by the client around each call; drivers ran interleaved round by round on one"
        " connection each. See bench/README.md for the workloads and how to read this.",
        "",
        "## Machine",
        "",
    ]
    out += _table(
        ["", ""],
        [
            ["CPU", f"{m['cpu']} ({m['cpus']} CPUs), {m['memory']}"],
            ["Kernel", m["kernel"]],
            ["Load average (1 min)", f"{m['load_before']:.2f} before, {m['load_after']:.2f} after"],
            ["Python", m["python"]],
            ["Server", f"PostgreSQL {srv.get('version', '?')}, {srv.get('where', '?')}"],
            ["Server settings", srv.get("settings", "?")],
            ["libpq (floor, oxpg)", doc["floor"].get("libpq", "–")],
            ["Floor build", f"`{doc['floor'].get('command', '–')}`"],
            ["Placement", doc["placement"]["summary"]],
        ],
    )
    out += ["", "## Drivers", ""]
    out += _table(["driver", "what ran"], [[x, d["detail"]] for x, d in doc["drivers"].items()])

    wl = doc["workloads"]
    keys, after = ratio_keys(doc["drivers"])
    out += ["", "## Median per op (µs, lower is better)", ""]
    out += _table(
        ["workload", "ops/driver"] + labels,
        [
            [w["name"], str(w["plan"]["batch"] * w["plan"]["rounds"])]
            + [_us(w["results"].get(x, {}).get("median_ns")) for x in labels]
            for w in wl
        ],
    )
    out += ["", "## Ratios (median / median; below 1.00x means oxpg is faster)", ""]
    out += _table(
        ["workload", "best peer", *keys],
        [
            [w["name"], w["ratios"].get("best_peer", "–")]
            + [_ratio(w["ratios"].get(k)) for k in keys]
            for w in wl
        ],
    )
    if after:
        builds = ", ".join(f"{b['sha'][:12]} ({b['ref']})" for b in doc["baselines"])
        out += [
            "",
            "## This tree against the baseline" + ("s" if len(doc["baselines"]) > 1 else ""),
            "",
            f"Baseline builds: {builds}. Median over median: below 1.00x, this tree is"
            " faster than that build.",
            "",
        ]
        out += _table(
            ["workload", *after],
            [[w["name"]] + [_ratio(w["ratios"].get(k)) for k in after] for w in wl],
        )
    out += ["", "## p90 per op (µs)", ""]
    out += _table(
        ["workload"] + labels,
        [[w["name"]] + [_us(w["results"].get(x, {}).get("p90_ns")) for x in labels] for w in wl],
    )
    if doc.get("rss"):
        out += ["", "## Peak RSS, fetch_100k (a fresh process per driver)", ""]
        out += _table(
            ["driver", "peak RSS (MiB)", "growth during the fetch (MiB)"],
            [
                [x, _mib(r["peak_kib"]), _mib(r["peak_kib"] - r["baseline_kib"])]
                for x, r in doc["rss"].items()
            ],
        )
    out += ["", "## Workloads", ""]
    out += [f"- `{w['name']}`: {w['description']}" for w in wl]
    out += ["", "## Placement", ""]
    out += _table(
        ["process", "pid", "allowed CPUs", "last CPU"],
        [
            [
                name,
                str(p.get("pid", "?")),
                p.get("allowed", p.get("note", "?")),
                str(p.get("last_cpu", "?")),
            ]
            for name, p in doc["placement"]["processes"].items()
        ],
    )
    if doc["notes"]:
        out += ["", "## Notes", ""] + [f"- {n}" for n in doc["notes"]]
    return "\n".join(out) + "\n"


def write(doc: dict[str, Any], directory: Path, stem: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    js, md = directory / f"{stem}.json", directory / f"{stem}.md"
    js.write_text(json.dumps(doc, indent=1) + "\n")
    md.write_text(markdown(doc))
    return js, md
