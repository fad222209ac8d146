"""--baseline REF: another commit of oxpg, built once and timed beside this one.

Two builds of oxpg cannot share a process (both are `oxpg._oxpg`), so with a baseline
every oxpg driver runs in a child process of its own (`run.py --serve-driver LABEL`): the
baseline's with PYTHONPATH pointing at its build, this tree's with the usual import. Both
sides then pay the same process and pipe costs, which sit outside the timed ops anyway:
the child times its ops itself, as the floor does, and only the timings cross the pipe.
"""

from __future__ import annotations

import gc
import io
import os
import pickle
import subprocess
import sys
import sysconfig
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from drivers import FACTORIES, Driver, Unavailable
from workloads import BY_NAME, Workload

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = ROOT / "build" / "bench-baseline"


def git(*args: str) -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def build_flags(tree: Path) -> list[str] | None:
    """The flags setup.py last built with (it records them), without -Werror, which
    changes no generated code; None when that tree's setup.py records none."""
    path = tree / "build" / "oxpg-flags.txt"
    if not path.is_file():
        return None
    return [f for f in path.read_text().splitlines() if f != "-Werror"]


@dataclass(frozen=True)
class Build:
    """One oxpg source tree whose extension is built in place."""

    ref: str  # as the user gave it, for the report
    sha: str
    short: str
    tree: Path  # holds src/oxpg/_oxpg*.so after the build

    @property
    def src(self) -> Path:
        return self.tree / "src"

    def describe(self) -> dict[str, str]:
        return {"ref": self.ref, "sha": self.sha, "tree": str(self.tree.relative_to(ROOT))}

    def env(self) -> dict[str, str]:
        """The environment a child needs to import this build's oxpg."""
        env = dict(os.environ)
        if self.tree != ROOT:
            # Ahead of site-packages, so ahead of the editable install's .pth as well.
            env["PYTHONPATH"] = os.pathsep.join(
                [str(self.src), *filter(None, [env.get("PYTHONPATH")])]
            )
        return env


def current() -> Build:
    sha = git("rev-parse", "HEAD")
    # Only what goes into the build: an edit under bench/ changes no oxpg code.
    dirty = bool(git("status", "--porcelain", "--", "src", "include", "setup.py"))
    ref = "the working tree" + (" (with uncommitted changes)" if dirty else "")
    return Build(ref, sha, git("rev-parse", "--short", sha), ROOT)


def prepare(ref: str, say: Any) -> Build:
    """Extracts REF into build/bench-baseline/<sha>/ once, then builds it there.

    build_ext is incremental, so a second run with the same baseline only checks
    timestamps; it also rebuilds when the flags or the Python version changed.
    """
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"--baseline {ref}: no such commit in {ROOT}")
    sha = proc.stdout.strip()
    b = Build(ref, sha, git("rev-parse", "--short", sha), CACHE / sha)
    stamp = b.tree / ".extracted"
    if not stamp.is_file():
        say(f"extracting oxpg at {b.short} ({ref}) into {b.tree.relative_to(ROOT)}...")
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", sha],
            capture_output=True,
            check=True,
        ).stdout
        b.tree.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(b.tree, filter="data")
        stamp.touch()
    # The same compiler and flags as this tree's build: setup.py reads them from the
    # environment (CC, CFLAGS, OXPG_CFLAGS, ...), which the child inherits. -Werror is
    # dropped: a warning a newer compiler finds in an old commit must not stop a
    # measurement, and it changes no generated code.
    env = {k: v for k, v in os.environ.items() if k != "OXPG_WERROR"}
    say(f"building oxpg at {b.short} (incremental)...")
    proc = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=b.tree,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-20:])
        sys.exit(f"building oxpg at {b.short} ({ref}) failed:\n{tail}")
    return b


def flag_notes(base: Build) -> list[str]:
    mine, theirs = build_flags(ROOT), build_flags(base.tree)
    if mine is None or theirs is None:
        return [f"oxpg@{base.short}: cannot compare its build flags with this tree's"]
    if mine != theirs:
        return [
            f"oxpg@{base.short} was built with other flags than this tree: {theirs} against"
            f" {mine}; set the same OXPG_CFLAGS for both"
        ]
    return []


def stale_build_note() -> str | None:
    """This tree's extension older than its C sources measures the wrong code."""
    # The module this interpreter imports: builds for other Pythons may sit beside it.
    built = ROOT / "src" / "oxpg" / ("_oxpg" + sysconfig.get_config_var("EXT_SUFFIX"))
    if not built.is_file():
        return None
    sources = [*(ROOT / "src" / "_oxpg").rglob("*.[ch]"), *(ROOT / "include").rglob("*.h")]
    newest = max((p.stat().st_mtime for p in sources), default=0.0)
    if built.stat().st_mtime < newest:
        return f"{built.relative_to(ROOT)} is older than its sources: run `make build`"
    return None


# ---- the child process and its proxy ----


class ChildError(Exception):
    """An exception inside the child; the message names its type."""


def _send(out: BinaryIO, msg: object) -> None:
    pickle.dump(msg, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()


class ChildDriver(Driver):
    """A driver that runs in a child process; each call goes over a pipe."""

    def __init__(self, build: Build, base_label: str, dsn: str, is_baseline: bool) -> None:
        self.label = f"{base_label}@{build.short}" if is_baseline else base_label
        self.family = "oxpg"
        self.base_label = base_label
        self.build = build
        self.baseline_of = base_label if is_baseline else None
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "run.py"), "--serve-driver", base_label],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=dict(build.env(), OXPG_BENCH_DSN=dsn),  # not argv: no password in ps
        )
        status, hello = self._recv()
        if status != "ok":
            self._reap()
            raise Unavailable(hello)
        found = Path(hello["oxpg_file"]).resolve()
        if not found.is_relative_to(build.src.resolve()):
            self._reap()
            # Two columns from one build would look like a change with no effect.
            sys.exit(f"{self.label}: the child imported oxpg from {found}, not from {build.src}")
        self.detail = f"{hello['detail']}; {build.ref} at {build.short}, in its own process"

    def _recv(self) -> tuple[str, Any]:
        assert self.proc.stdout is not None
        try:
            msg: tuple[str, Any] = pickle.load(self.proc.stdout)
        except EOFError:
            raise ChildError(f"{self.label}: the child exited ({self.proc.wait()})") from None
        return msg

    def _call(self, *msg: object) -> Any:
        assert self.proc.stdin is not None
        _send(self.proc.stdin, msg)
        status, value = self._recv()
        if status != "ok":
            raise ChildError(value)
        return value

    def skip_reason(self, w: Workload) -> str | None:
        reason: str | None = self._call("skip_reason", w.name)
        return reason

    def run(self, w: Workload, first: int, params: list[Any]) -> list[int]:
        ns: list[int] = self._call("run", w.name, first, params)
        return ns

    def count_rows(self, w: Workload, p: Any) -> int | None:
        n: int | None = self._call("count_rows", w.name, p)
        return n

    def backend_pid(self) -> int | None:
        pid: int | None = self._call("backend_pid")
        return pid

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._call("close")
            except (ChildError, OSError):
                pass
        self._reap()

    def _reap(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def serve(label: str) -> None:
    """The child's side: one driver, calls in and results out as pickles."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not land inside the pickle stream
    inp = sys.stdin.buffer
    try:
        d: Driver = FACTORIES[label](os.environ["OXPG_BENCH_DSN"])
    except Unavailable as e:
        _send(out, ("unavailable", str(e)))
        return
    _send(out, ("ok", {"detail": d.detail, "oxpg_file": sys.modules["oxpg"].__file__}))
    while True:
        try:
            name, *args = pickle.load(inp)
        except EOFError:
            break
        try:
            if name == "run":
                gc.collect()  # as run.py does in-process before each batch
                result: object = d.run(BY_NAME[args[0]], args[1], args[2])
            elif name == "count_rows":
                result = d.count_rows(BY_NAME[args[0]], args[1])
            elif name == "skip_reason":
                result = d.skip_reason(BY_NAME[args[0]])
            elif name == "backend_pid":
                result = d.backend_pid()
            elif name == "close":
                d.close()
                _send(out, ("ok", None))
                break
            else:
                raise ValueError(f"unknown call {name!r}")
        except Exception as e:  # reported to the parent, which drops the driver
            _send(out, ("error", f"{type(e).__name__}: {e}"))
            continue
        _send(out, ("ok", result))
