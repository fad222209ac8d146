"""Helpers for the fault tests: a second (superuser) connection and subprocess scripts.

Subprocess scripts live in tests/faults/scripts/ and read the server's DSN from
the OXPG_SCRIPT_DSN environment variable.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import oxpg

SCRIPTS = Path(__file__).resolve().parent / "scripts"


@pytest.fixture
def admin(pg) -> Iterator[oxpg.Client]:  # type: ignore[no-untyped-def]
    """A superuser connection: kills backends and looks at pg_stat_activity."""
    c = oxpg.connect(pg.superuser_dsn)
    try:
        yield c
    finally:
        c.close()


def backend_alive(admin: oxpg.Client, pid: int) -> bool:
    return bool(admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", pid))


@pytest.fixture
def terminate(admin: oxpg.Client) -> Callable[[int], None]:
    """terminate(pid): pg_terminate_backend, then wait until the backend is gone."""

    def kill(pid: int) -> None:
        assert admin.query("SELECT pg_terminate_backend($1) AS ok", pid) == [{"ok": True}]
        deadline = time.monotonic() + 10
        while backend_alive(admin, pid):
            assert time.monotonic() < deadline, f"backend {pid} still alive 10 s after pg_terminate_backend"
            time.sleep(0.01)

    return kill


@pytest.fixture
def script(pg) -> Callable[..., tuple[list[str], dict[str, str]]]:  # type: ignore[no-untyped-def]
    """script(name, *args) -> (argv, env) to run tests/faults/scripts/<name> on our server."""

    def make(name: str, *args: str) -> tuple[list[str], dict[str, str]]:
        env = dict(os.environ)
        env["OXPG_SCRIPT_DSN"] = pg.dsn
        env["PYTHONUNBUFFERED"] = "1"
        return [sys.executable, str(SCRIPTS / name), *args], env

    return make


class Child:
    """A script running in a subprocess, read line by line with deadlines."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[tuple[float, str | None]] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.monotonic(), line.rstrip("\n")))
        self.lines.put((time.monotonic(), None))  # EOF

    def expect(self, prefix: str, timeout: float) -> tuple[float, str]:
        """Wait for the next line; it must start with prefix. Returns (when read, line)."""
        try:
            when, line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no {prefix!r} line within {timeout} s; so far: {self.seen}") from None
        if line is None:
            raise AssertionError(f"child exited before {prefix!r}; output: {self.seen}; stderr: {self.stderr()}")
        self.seen.append(line)
        assert line.startswith(prefix), f"expected {prefix!r}, got {line!r}; stderr: {self.stderr()}"
        return when, line

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        return self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


@pytest.fixture
def spawn(script: Callable[..., tuple[list[str], dict[str, str]]]) -> Iterator[Callable[..., Child]]:
    """spawn(name, *args) starts tests/faults/scripts/<name>; killed at teardown."""
    children: list[Child] = []

    def start(name: str, *args: str) -> Child:
        child = Child(*script(name, *args))
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()
