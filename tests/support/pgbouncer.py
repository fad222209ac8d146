"""A PgBouncer in front of the suite's server, for tests/test_pgbouncer.py.

    with PgBouncer(host, port, user, password, database) as bouncer:
        client = oxpg.connect(bouncer.dsn)

Transaction pooling (pool_mode=transaction) over a small pool, so clients share
server sessions: the setting behind RELIABILITY row 15. It listens on a free port of
127.0.0.1, authenticates clients with SCRAM against a userlist holding the server
password in plain text (which PgBouncer also uses for SCRAM towards the server),
keeps its files in a temporary directory and is stopped by stop() or at exit.
PgBouncer refuses to run as root: as root it runs as "postgres" (or "nobody"), like
oxpg.testing.TempCluster's server.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

HOST = "127.0.0.1"
START_TIMEOUT = 15


def find_pgbouncer() -> str | None:
    """The pgbouncer binary (Debian puts it in /usr/sbin), or None."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None


def pgbouncer_version(binary: str) -> tuple[int, ...]:
    """(1, 18, 0) from `pgbouncer --version`."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    match = re.search(r"PgBouncer (\d+)\.(\d+)(?:\.(\d+))?", out)
    if match is None:
        raise RuntimeError(f"cannot read the version of {binary}: {out!r}")
    return tuple(int(part or 0) for part in match.groups())


def _account() -> pwd.struct_passwd | None:
    """The account to run as: None means the current one."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    raise RuntimeError("running as root, and there is no 'postgres' or 'nobody' user to run PgBouncer as")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _quote_userlist(text: str) -> str:
    # userlist.txt doubles a quote inside a quoted field.
    return '"' + text.replace('"', '""') + '"'


class PgBouncer:
    """A pgbouncer process in transaction pooling mode; start() and stop()."""

    def __init__(
        self,
        server_host: str,
        server_port: int,
        user: str,
        password: str,
        database: str,
        *,
        pool_size: int = 2,
        max_prepared_statements: int = 0,
    ) -> None:
        binary = find_pgbouncer()
        if binary is None:
            raise RuntimeError("pgbouncer not found: apt-get install pgbouncer (scripts/bootstrap.sh does)")
        self.binary = binary
        self.version = pgbouncer_version(binary)
        self._server = (server_host, server_port)
        self._user, self._password, self._database = user, password, database
        self._pool_size = pool_size
        self._max_prepared = max_prepared_statements
        self._account = _account()
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def dsn(self) -> str:
        return f"postgresql://{quote(self._user, safe='')}:{quote(self._password, safe='')}@{HOST}:{self.port}/{self._database}"

    @property
    def log_file(self) -> Path:
        assert self._dir is not None
        return self._dir / "pgbouncer.log"

    def start(self) -> PgBouncer:
        self._dir = Path(tempfile.mkdtemp(prefix="oxpg-pgbouncer-"))
        atexit.register(self.stop)
        try:
            self._chown(self._dir)
            userlist = self._dir / "userlist.txt"
            userlist.write_text(f"{_quote_userlist(self._user)} {_quote_userlist(self._password)}\n")
            userlist.chmod(0o600)
            self._chown(userlist)
            for attempt in range(3):
                self.port = _free_port()
                self._write_config()
                if self._launch():
                    return self
                if attempt == 2 or "Address already in use" not in self._log_tail():
                    raise RuntimeError(f"pgbouncer did not start:\n{self._log_tail()}")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self._proc is not None:
            self._terminate(self._proc)
            self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _write_config(self) -> None:
        assert self._dir is not None
        host, port = self._server
        settings = {
            "listen_addr": HOST,
            "listen_port": str(self.port),
            "unix_socket_dir": "",  # TCP only
            "auth_type": "scram-sha-256",
            "auth_file": str(self._dir / "userlist.txt"),
            "pool_mode": "transaction",
            "default_pool_size": str(self._pool_size),
            "min_pool_size": "0",
            "reserve_pool_size": "0",
            "max_client_conn": "200",
            "server_tls_sslmode": "disable",
            "logfile": str(self.log_file),
            "pidfile": str(self._dir / "pgbouncer.pid"),
            # The server sends these; a client's startup packet may carry them too.
            "ignore_startup_parameters": "extra_float_digits,options",
        }
        if self._max_prepared:
            settings["max_prepared_statements"] = str(self._max_prepared)
        text = (
            "; written by tests/support/pgbouncer.py\n[databases]\n"
            f"{self._database} = host={host} port={port} dbname={self._database}\n"
            "[pgbouncer]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())
        )
        path = self._dir / "pgbouncer.ini"
        path.write_text(text)
        self._chown(path)

    def _launch(self) -> bool:
        """Start the process; True once it accepts connections, False if it exited."""
        assert self._dir is not None
        prefix: list[str] = []
        if self._account is not None:
            # setpriv execs (no child process in between), so our pid is pgbouncer's.
            prefix = [
                "setpriv", f"--reuid={self._account.pw_uid}", f"--regid={self._account.pw_gid}",
                "--clear-groups", "--",
            ]  # fmt: skip
        self._proc = subprocess.Popen(
            [*prefix, self.binary, str(self._dir / "pgbouncer.ini")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self._dir,
            # A Ctrl-C meant for the test run must not stop it under the cleanup code.
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                return False
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.05)
        self._terminate(self._proc)
        self._proc = None
        raise RuntimeError(f"pgbouncer did not listen within {START_TIMEOUT} s:\n{self._log_tail()}")

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no pgbouncer log)"

    def _chown(self, path: Path) -> None:
        if self._account is not None:
            os.chown(path, self._account.pw_uid, self._account.pw_gid)
