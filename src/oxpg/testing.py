"""A throw-away PostgreSQL server for tests and demos.

    with TempCluster() as pg:
        client = oxpg.connect(pg.dsn)

The cluster lives in a new temporary directory: initdb, a random free port on
127.0.0.1, SCRAM password authentication, TLS with a self-signed certificate when
`openssl` is available, durability switched off for speed. It is stopped and deleted
by `stop()`, on leaving the `with` block, or at interpreter exit.

The server binaries come from $OXPG_PG_BIN, else the directory of `initdb` on PATH,
else the newest /usr/lib/postgresql/*/bin (Debian/Ubuntu). PostgreSQL refuses to run
as root, so as root the server runs as the "postgres" user (or "nobody").

`python -m oxpg.testing` starts one, prints its DSN and waits for Ctrl-C.
"""

from __future__ import annotations

import atexit
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import quote

__all__ = ["TempCluster", "find_pg_bin", "main"]

TEST_USER = "oxpg_test"
TEST_DATABASE = "oxpg_test"
SUPERUSER = "postgres"
HOST = "127.0.0.1"
DIR_PREFIX = "oxpg-pg-"
# Generous: a loaded CI machine can take a while for initdb or crash recovery.
COMMAND_TIMEOUT = 120

ShutdownMode = Literal["fast", "immediate"]


def find_pg_bin() -> Path:
    """The directory holding initdb and pg_ctl."""
    if os.environ.get("OXPG_PG_BIN"):
        candidates = [Path(os.environ["OXPG_PG_BIN"])]
    else:
        candidates = []
        initdb = shutil.which("initdb")
        if initdb:
            candidates.append(Path(initdb).resolve().parent)
        debian = Path("/usr/lib/postgresql").glob("*/bin")
        candidates += sorted(debian, key=lambda p: _version_key(p.parent.name), reverse=True)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install them "
        "(Debian/Ubuntu: apt-get install postgresql), put them on PATH or set OXPG_PG_BIN"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_port() -> int:
    # Another process may take the port before the server binds it; start() retries.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _server_account() -> pwd.struct_passwd | None:
    """The account to run the server as: None means the current one."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    raise RuntimeError("running as root, and there is no 'postgres' or 'nobody' user to run PostgreSQL as")


def _clean_env() -> dict[str, str]:
    # PG* variables of the caller (PGDATA, PGPORT, PGHOST, PGOPTIONS...) must not leak
    # into our commands; LC_ALL=C keeps server messages in English for the tests.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _alive(pid: int) -> bool:
    if not Path("/proc/self").exists():  # no /proc (macOS): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    # A zombie counts as dead: an exited server stays one until its new parent reaps it.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _remove_stale_clusters() -> None:
    """Delete clusters whose creator died without cleaning up.

    A segfault in the extension, a SIGKILL or pytest-timeout ending the run with
    os._exit all skip atexit; without this their servers would pile up on the machine.
    """
    for base in Path(tempfile.gettempdir()).glob(DIR_PREFIX + "*"):
        try:
            if _alive(int((base / "owner.pid").read_text())):
                continue
        except (OSError, ValueError):
            continue  # not ours to judge: unreadable, or still being set up
        try:
            pid = int((base / "data" / "postmaster.pid").read_text().split("\n", 1)[0])
            # The PID may have been reused: only signal the postmaster of this datadir.
            if str(base / "data").encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown
                deadline = time.monotonic() + 10
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
        except (OSError, ValueError):
            pass  # no server running
        shutil.rmtree(base, ignore_errors=True)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


class TempCluster:
    """A PostgreSQL cluster in a temporary directory, deleted when stopped."""

    def __init__(self, *, ssl: bool = True, pg_bin: str | Path | None = None) -> None:
        """ssl: serve TLS too (needs `openssl`; plain TCP is accepted as well)."""
        self._pg_bin = Path(pg_bin) if pg_bin else find_pg_bin()
        self._want_ssl = ssl
        self._account = _server_account()
        self._base: Path | None = None
        self._port = 0
        self._password = secrets.token_urlsafe(18)
        self._superuser_password = secrets.token_urlsafe(18)
        self._ca_file: Path | None = None
        self._owner_pid = os.getpid()

    # -- the public surface ------------------------------------------------------

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self._port

    @property
    def user(self) -> str:
        return TEST_USER

    @property
    def password(self) -> str:
        return self._password

    @property
    def database(self) -> str:
        return TEST_DATABASE

    @property
    def dsn(self) -> str:
        """The test role (a superuser) on its own database, password auth over TCP."""
        return self._url(TEST_USER, self._password, TEST_DATABASE)

    @property
    def superuser_dsn(self) -> str:
        return self._url(SUPERUSER, self._superuser_password, "postgres")

    @property
    def pg_bin(self) -> Path:
        return self._pg_bin

    @property
    def datadir(self) -> Path:
        return self._dir() / "data"

    @property
    def log_file(self) -> Path:
        return self._dir() / "server.log"

    @property
    def ca_file(self) -> Path | None:
        """The self-signed server certificate, to verify with sslmode=verify-full; None without TLS."""
        return self._ca_file

    @property
    def postmaster_pid(self) -> int | None:
        """PID of the running server, or None when it is not running."""
        try:
            return int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError, RuntimeError):
            return None

    def start(self) -> TempCluster:
        """Create the cluster and start the server; idempotent."""
        if self._base is not None:
            return self
        _remove_stale_clusters()
        self._base = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
        atexit.register(self._at_exit)
        try:
            (self._base / "owner.pid").write_text(f"{os.getpid()}\n")
            self._chown(self._base)
            self._initdb()
            if self._want_ssl and shutil.which("openssl"):
                self._make_certificate()
            self._write_hba()
            self._start_on_free_port()
            self._create_test_role()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and delete the cluster; idempotent."""
        if self._base is None:
            return
        atexit.unregister(self._at_exit)
        try:
            if self.postmaster_pid is not None:
                self.stop_server("fast")
        except RuntimeError:
            self.stop_server("immediate")
        finally:
            shutil.rmtree(self._base, ignore_errors=True)
            self._base = None

    def restart(self, mode: ShutdownMode = "fast") -> None:
        """Restart the server; "immediate" makes it go through crash recovery."""
        self.stop_server(mode)
        self.start_server()

    def stop_server(self, mode: ShutdownMode = "fast") -> None:
        """Stop the server but keep the cluster, for start_server() later."""
        self._pg_ctl("stop", "-m", mode)

    def start_server(self) -> None:
        self._pg_ctl("start", "-l", str(self.log_file))

    def __enter__(self) -> TempCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self._port} dir={self._base}" if self._base else "stopped"
        return f"<TempCluster {state}>"

    # -- the steps ---------------------------------------------------------------

    def _dir(self) -> Path:
        if self._base is None:
            raise RuntimeError("TempCluster is not started")
        return self._base

    def _url(self, user: str, password: str, database: str) -> str:
        return f"postgresql://{user}:{quote(password, safe='')}@{HOST}:{self._port}/{database}"

    def _initdb(self) -> None:
        pwfile = self._dir() / "pwfile"
        pwfile.write_text(self._superuser_password + "\n")
        pwfile.chmod(0o600)
        self._chown(pwfile)
        try:
            self._run_as_server(
                self._pg_bin / "initdb",
                "-D", self.datadir,
                "--username", SUPERUSER,
                "--pwfile", pwfile,
                "-A", "scram-sha-256",
                "-E", "UTF8",
                "--locale", "C",
                "--no-sync",  # the cluster is thrown away; fsync of every file costs seconds
            )
        finally:
            pwfile.unlink()
        # Our settings go to their own file, rewritten when a port must be picked again.
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write("\ninclude 'oxpg.conf'\n")

    def _write_settings(self) -> None:
        settings = {
            "listen_addresses": f"'{HOST}'",
            "port": str(self._port),
            "unix_socket_directories": f"'{self._dir()}'",
            "max_connections": "100",
            "password_encryption": "'scram-sha-256'",
            # Durability against power loss is worthless here and slows every test.
            # synchronous_commit stays on: with fsync off a commit costs only a write(),
            # and "off" would lose the last commits in restart("immediate").
            "fsync": "off",
            "full_page_writes": "off",
        }
        if self._ca_file is not None:
            settings |= {
                "ssl": "on",
                "ssl_cert_file": f"'{self._dir() / 'server.crt'}'",
                "ssl_key_file": f"'{self._dir() / 'server.key'}'",
            }
        text = "".join(f"{name} = {value}\n" for name, value in settings.items())
        path = self.datadir / "oxpg.conf"
        path.write_text("# written by oxpg.testing.TempCluster\n" + text)
        self._chown(path)

    def _write_hba(self) -> None:
        (self.datadir / "pg_hba.conf").write_text(
            "# written by oxpg.testing.TempCluster: passwords (SCRAM) everywhere\n"
            "local   all  all                 scram-sha-256\n"
            f"hostssl all  all  {HOST}/32    scram-sha-256\n"
            f"host    all  all  {HOST}/32    scram-sha-256\n"
        )

    def _make_certificate(self) -> None:
        cert, key = self._dir() / "server.crt", self._dir() / "server.key"
        _run(
            "openssl", "req", "-x509", "-nodes", "-days", "3650",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",  # fast to generate
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", key, "-out", cert,
        )
        # The server refuses a key that others can read.
        key.chmod(0o600)
        cert.chmod(0o644)
        self._chown(key)
        self._chown(cert)
        self._ca_file = cert

    def _start_on_free_port(self) -> None:
        for attempt in range(3):
            self._port = _free_port()
            self._write_settings()
            try:
                self.start_server()
                return
            except RuntimeError:
                if attempt == 2 or "could not bind" not in _tail(self.log_file, 10):
                    raise

    def _create_test_role(self) -> None:
        # SQL on stdin and the password in the environment: neither shows up in `ps`.
        sql = (
            f"CREATE ROLE {TEST_USER} SUPERUSER LOGIN PASSWORD '{self._password}';\n"
            f"CREATE DATABASE {TEST_DATABASE} OWNER {TEST_USER};\n"
        )
        psql = self._pg_bin / "psql"
        _run(
            psql if psql.is_file() else "psql",
            "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", HOST, "-p", str(self._port), "-U", SUPERUSER, "-d", "postgres", "-f", "-",
            input=sql,
            extra_env={"PGPASSWORD": self._superuser_password, "PGCONNECT_TIMEOUT": "10"},
        )

    # -- running commands --------------------------------------------------------

    def _pg_ctl(self, *args: str) -> None:
        try:
            self._run_as_server(self._pg_bin / "pg_ctl", "-D", self.datadir, "-w", "-t", "60", *args)
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n--- server log ({self.log_file}) ---\n{_tail(self.log_file)}") from None

    def _run_as_server(self, *cmd: str | Path) -> None:
        prefix: list[str] = []
        if self._account is not None:
            if shutil.which("runuser"):
                prefix = ["runuser", "-u", self._account.pw_name, "--"]
            else:
                prefix = [
                    "setpriv", f"--reuid={self._account.pw_uid}", f"--regid={self._account.pw_gid}",
                    "--clear-groups", "--",
                ]
        # cwd: the server user may not be allowed into ours (e.g. /root), and
        # initdb/pg_ctl fail when they cannot look at their working directory.
        _run(*prefix, *cmd, cwd=self._dir())

    def _chown(self, path: Path) -> None:
        if self._account is not None:
            os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def _at_exit(self) -> None:
        # A forked child inherits atexit handlers; only the creator cleans up.
        if os.getpid() == self._owner_pid:
            self.stop()


def _run(
    *cmd: str | Path,
    input: str | None = None,
    cwd: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> None:
    env = _clean_env() | (extra_env or {})
    argv = [str(c) for c in cmd]
    try:
        result = subprocess.run(
            argv,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=COMMAND_TIMEOUT,
            # The server is started from here: a Ctrl-C meant for the test run must
            # not reach it (it would shut down under the cleanup code).
            start_new_session=True,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"{argv[0]} failed: {e}") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise RuntimeError(f"{' '.join(argv)} exited with {result.returncode}:\n{output}")


def main() -> None:
    """Start a cluster, print its DSN, wait for Ctrl-C, delete it."""
    # SIGTERM too must leave through the `with` block, or the server outlives us.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with TempCluster() as cluster:
            print(cluster.dsn, flush=True)
            print(f"superuser: {cluster.superuser_dsn}", file=sys.stderr)
            if cluster.ca_file:
                print(f"CA file:   {cluster.ca_file} (sslmode=verify-full sslrootcert=...)", file=sys.stderr)
            print(f"log:       {cluster.log_file}", file=sys.stderr)
            print("Ctrl-C stops the server and deletes it.", file=sys.stderr, flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass

if __name__ == "__main__":
    main()
