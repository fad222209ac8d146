"""Builds bench/floor.c and drives it: the floor drivers and the admin connection.

The binary is compiled on every run into a temporary directory, so it always matches
floor.c and the machine's libpq, and no binary is ever committed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers import Driver, Unavailable
from workloads import Workload

HERE = Path(__file__).resolve().parent


@dataclass
class FloorBuild:
    path: Path
    command: str  # the compile command, for the report
    cc_version: str


def build(workdir: Path) -> FloorBuild:
    cc = os.environ.get("CC", "cc")
    if shutil.which("pg_config") is None:
        raise Unavailable("pg_config not found: install libpq-dev to build the floor")
    if shutil.which(cc) is None:
        raise Unavailable(f"C compiler {cc!r} not found: the floor needs one")

    def pg_config(flag: str) -> str:
        return subprocess.run(
            ["pg_config", flag], check=True, capture_output=True, text=True
        ).stdout.strip()

    inc, lib = pg_config("--includedir"), pg_config("--libdir")
    out = workdir / "floor"
    # -O2 without -march=native: the optimisation level a distribution build gets,
    # which is what a wheel of oxpg gets too.
    cmd = [
        cc, "-O2", "-std=c11", "-Wall", "-Wextra", f"-I{inc}", str(HERE / "floor.c"),
        f"-L{lib}", f"-Wl,-rpath,{lib}", "-lpq", "-lm", "-o", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise Unavailable(f"compiling the floor failed:\n{proc.stderr.strip()}")
    ver = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    return FloorBuild(out, shlex.join(cmd), ver.splitlines()[0] if ver else cc)


def build_in_tempdir() -> tuple[FloorBuild, tempfile.TemporaryDirectory[str]]:
    tmp = tempfile.TemporaryDirectory(prefix="oxpg-bench-")
    try:
        return build(Path(tmp.name)), tmp
    except BaseException:
        tmp.cleanup()
        raise


def list_sql(binary: Path) -> dict[str, str]:
    out = subprocess.run([str(binary), "--list"], check=True, capture_output=True, text=True)
    return dict(line.split("\t", 1) for line in out.stdout.splitlines())


class FloorError(RuntimeError):
    pass


class FloorProcess:
    """One floor process in serve mode: one connection, commands over a pipe."""

    def __init__(self, binary: Path, dsn: str) -> None:
        self.proc = subprocess.Popen(
            [str(binary), "--serve", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(dsn + "\n")  # on stdin, so no password shows in ps
        self.proc.stdin.flush()
        hello = self._line()
        if not hello.startswith("hello "):
            self.close()
            raise FloorError(hello.removeprefix("error "))
        pid, libpq, server = (int(x) for x in hello.split()[1:4])
        self.pid, self.libpq_version, self.server_version = pid, libpq, server

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise FloorError(f"the floor exited (status {self.proc.wait()})")
        return line.rstrip("\n")

    def _ask(self, command: str) -> list[str]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        lines = []
        while (line := self._line()) != "end":
            if line.startswith("error "):
                raise FloorError(line[6:])
            lines.append(line)
        return lines

    def sql(self, sql: str) -> list[list[str]]:
        """Runs SQL (simple protocol, text results); returns the rows as strings."""
        lines = self._ask("sql " + " ".join(sql.split()))
        return [line[4:].split("\t") for line in lines if line.startswith("row ")]

    def run(self, workload: str, mode: str, first: int, n: int) -> list[int]:
        lines = self._ask(f"run {workload} {mode} {n} {first}")
        return [int(x) for x in lines[0].split()[1:]]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


class FloorDriver(Driver):
    """The floor as a contender; exec and prepared share one process and connection."""

    family = "floor"

    def __init__(self, proc: FloorProcess, mode: str) -> None:
        self.proc, self.mode = proc, mode
        self.label = f"floor {mode}"
        self.detail = (
            "libpq C loop, "
            + ("PQprepare + PQexecPrepared" if mode == "prepared" else "PQexecParams")
            + ", pipeline mode for batches"
        )

    def run(self, w: Workload, first: int, params: list[Any]) -> list[int]:
        # The floor builds the same parameters from the op index itself.
        return self.proc.run(w.name, self.mode, first, len(params))

    def count_rows(self, w: Workload, p: Any) -> int | None:
        return None  # floor.c checks every result's row count itself

    def backend_pid(self) -> int | None:
        return self.proc.pid

    def close(self) -> None:
        pass  # run.py closes the shared process


def run_once(binary: Path, dsn: str, workload: str, mode: str, n: int) -> dict[str, Any]:
    """A one-shot floor run in a fresh process (for peak RSS); parses its output."""
    out = subprocess.run(
        [str(binary), "-", workload, mode, str(n)],
        input=dsn + "\n",
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fields = {line.split(" ", 1)[0]: line.split()[1:] for line in out.splitlines()}
    before, after = (int(x) for x in fields["rss_kib"])
    return {"ns": [int(x) for x in fields["ns"]], "rss_before_kib": before, "rss_peak_kib": after}
