"""What the numbers were measured on, and where client and server ran.

Client and server share one small machine, and whether a round trip wakes a process on
the same CPU or on the other one changes its latency a lot, so placement is recorded
for every run and can be pinned.
"""

from __future__ import annotations

import os
import platform
import resource
import socket
import sys
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def info() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "memory": memory_total(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        # Other work on the machine shows up in every timing; this makes it visible.
        "load_before": os.getloadavg()[0],
    }


def parse_cpus(spec: str) -> set[int]:
    """'1', '0,1' or '0-3' -> a set of CPU numbers."""
    cpus: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def fmt_cpus(cpus: set[int] | None) -> str:
    return "?" if cpus is None else ",".join(map(str, sorted(cpus)))


def last_cpu(pid: int) -> int | None:
    """The CPU a process last ran on (field 39 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces; fields are counted after its closing paren.
    return int(stat.rsplit(")", 1)[1].split()[36])


def is_local_postgres(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() in ("postgres", "postmaster")
    except OSError:
        return False


def placement(pid: int, backend: bool = False) -> dict[str, Any]:
    """Where a process may run and last ran. A backend pid is only looked up when it is a
    local postgres process: a remote server's pid may name something else here."""
    if backend and not is_local_postgres(pid):
        return {"pid": pid, "note": "not on this machine"}
    try:
        allowed: set[int] | None = os.sched_getaffinity(pid)
    except (OSError, AttributeError):  # AttributeError: not Linux
        allowed = None
    return {"pid": pid, "allowed": fmt_cpus(allowed), "last_cpu": last_cpu(pid)}


def pin(pid: int, cpus: set[int]) -> str | None:
    """Pins a process; returns why it could not, or None."""
    if pid != os.getpid() and not is_local_postgres(pid):
        return f"pid {pid} is not a PostgreSQL backend on this machine"
    if not hasattr(os, "sched_setaffinity"):
        return "this OS has no sched_setaffinity"
    try:
        os.sched_setaffinity(pid, cpus)
    except OSError as e:
        return f"pid {pid}: {e.strerror}"
    return None


def peak_rss_kib() -> int:
    """This process's peak RSS. VmHWM rather than ru_maxrss, which Linux carries across
    exec: a child started from a big parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
