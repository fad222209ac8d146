"""oxpg.testing.TempCluster, checked with psql so that it holds even when the driver is broken."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxpg import testing
from oxpg.testing import TempCluster

try:
    testing.find_pg_bin()
except RuntimeError as e:
    pytest.skip(f"no PostgreSQL server binaries: {e}", allow_module_level=True)


def psql(cluster: TempCluster, sql: str, *, password: str | None = None, **conninfo: str) -> str:
    """Run sql, return psql's unaligned output; the password goes by environment."""
    params = {"host": cluster.host, "port": str(cluster.port), "user": cluster.user, "dbname": "oxpg_test"}
    params |= conninfo
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSWORD"] = cluster.password if password is None else password
    env["PGCONNECT_TIMEOUT"] = "10"
    result = subprocess.run(
        [str(cluster.pg_bin / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1",
         " ".join(f"{k}={v}" for k, v in params.items()), "-c", sql],
        capture_output=True, text=True, env=env, timeout=30, stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return result.stdout.strip()


@pytest.fixture(scope="module")
def tc() -> Iterator[TempCluster]:
    # Its own cluster, not the suite's: these tests restart and stop it.
    with TempCluster() as cluster:
        yield cluster


def test_password_login_over_tcp(tc: TempCluster) -> None:
    assert psql(tc, "SELECT current_user, current_database()") == "oxpg_test|oxpg_test"


def test_dsn_names_everything(tc: TempCluster) -> None:
    assert tc.dsn == f"postgresql://oxpg_test:{tc.password}@127.0.0.1:{tc.port}/oxpg_test"
    assert tc.superuser_dsn.startswith("postgresql://postgres:")
    assert tc.superuser_dsn.endswith(f"@127.0.0.1:{tc.port}/postgres")


def test_psql_accepts_the_dsns(tc: TempCluster) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for dsn, user in ((tc.dsn, "oxpg_test"), (tc.superuser_dsn, "postgres")):
        out = subprocess.run(
            [str(tc.pg_bin / "psql"), "-X", "-At", dsn, "-c", "SELECT current_user"],
            capture_output=True, text=True, env=env, timeout=30, stdin=subprocess.DEVNULL, check=True,
        ).stdout
        assert out.strip() == user


def test_wrong_password_is_refused(tc: TempCluster) -> None:
    with pytest.raises(RuntimeError, match="password authentication failed"):
        psql(tc, "SELECT 1", password="wrong")


def test_test_role_is_superuser_and_owns_its_database(tc: TempCluster) -> None:
    out = psql(
        tc,
        "SELECT r.rolsuper, pg_get_userbyid(d.datdba) FROM pg_roles r, pg_database d "
        "WHERE r.rolname = current_user AND d.datname = current_database()",
    )
    assert out == "t|oxpg_test"


def test_settings(tc: TempCluster) -> None:
    out = psql(
        tc,
        "SELECT current_setting('listen_addresses'), current_setting('fsync'), "
        "current_setting('password_encryption'), current_setting('server_encoding'), "
        "current_setting('port')",
    )
    assert out == f"127.0.0.1|off|scram-sha-256|UTF8|{tc.port}"


def test_unix_socket_needs_a_password_too(tc: TempCluster) -> None:
    socket_dir = str(tc.datadir.parent)
    assert psql(tc, "SELECT 1", host=socket_dir) == "1"
    with pytest.raises(RuntimeError, match="password authentication failed"):
        psql(tc, "SELECT 1", host=socket_dir, password="wrong")


def test_tls_verifies_against_ca_file(tc: TempCluster) -> None:
    if tc.ca_file is None:
        pytest.skip("no openssl: the cluster runs without TLS")
    sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    assert psql(tc, sql, sslmode="verify-full", sslrootcert=str(tc.ca_file)) == "t"
    assert psql(tc, sql, sslmode="verify-full", sslrootcert=str(tc.ca_file), host="localhost") == "t"
    assert psql(tc, sql, sslmode="disable") == "f"


def test_server_never_runs_as_root(tc: TempCluster) -> None:
    pid = tc.postmaster_pid
    assert pid is not None
    uid = os.stat(f"/proc/{pid}").st_uid
    if os.geteuid() == 0:
        assert uid != 0
    else:
        assert uid == os.geteuid()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_restart_keeps_data(tc: TempCluster, mode: str) -> None:
    psql(tc, f"CREATE TABLE restart_{mode} (x int); INSERT INTO restart_{mode} VALUES (42)")
    before = tc.postmaster_pid
    tc.restart(mode)  # type: ignore[arg-type]
    assert tc.postmaster_pid not in (None, before)
    assert psql(tc, f"SELECT x FROM restart_{mode}") == "42"


def test_stop_server_then_start_server(tc: TempCluster) -> None:
    tc.stop_server()
    assert tc.postmaster_pid is None
    with pytest.raises(RuntimeError):
        psql(tc, "SELECT 1")
    tc.start_server()
    assert psql(tc, "SELECT 1") == "1"


def gone(pid: int | str) -> bool:
    return not testing._alive(int(pid))


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_stop_removes_everything() -> None:
    cluster = TempCluster().start()
    base, pid, port = cluster.datadir.parent, cluster.postmaster_pid, cluster.port
    assert base.is_dir() and pid is not None
    cluster.stop()
    assert not base.exists()
    assert gone(pid)
    assert port_is_free(port)
    cluster.stop()  # idempotent
    with pytest.raises(RuntimeError, match="not started"):
        cluster.datadir


def test_failed_start_raises_with_server_log() -> None:
    class Broken(TempCluster):
        def _write_settings(self) -> None:
            super()._write_settings()
            with open(self.datadir / "oxpg.conf", "a") as conf:
                conf.write("shared_buffers = 'plenty'\n")

    before = set(Path(tempfile.gettempdir()).glob(testing.DIR_PREFIX + "*"))
    with pytest.raises(RuntimeError, match='invalid value for parameter "shared_buffers"'):
        Broken().start()
    after = set(Path(tempfile.gettempdir()).glob(testing.DIR_PREFIX + "*"))
    assert after <= before  # nothing left behind


def test_port_taken_meanwhile_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        real_free_port = testing._free_port
        monkeypatch.setattr(testing, "_free_port", lambda: next(ports, None) or real_free_port())
        with TempCluster() as cluster:
            assert cluster.port != taken.getsockname()[1]
            assert psql(cluster, "SELECT 1") == "1"


def run_python(code: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def test_cluster_of_a_crashed_process_is_removed_later() -> None:
    crashed = run_python(
        "import os; from oxpg.testing import TempCluster\n"
        "c = TempCluster().start(); print(c.datadir.parent, c.postmaster_pid, flush=True); os._exit(1)"
    )
    out, err = crashed.communicate(timeout=60)
    base, pid = out.split()
    assert Path(base).is_dir() and not gone(pid), err
    with TempCluster():
        assert not Path(base).exists()
        assert gone(pid)


def test_cluster_is_removed_at_exit() -> None:
    proc = run_python(
        "from oxpg.testing import TempCluster\n"
        "c = TempCluster().start(); print(c.datadir.parent, c.postmaster_pid)"
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    base, pid = out.split()
    assert not Path(base).exists()
    assert gone(pid)


def test_forked_child_leaves_parent_cluster_alone() -> None:
    # The child's sys.exit runs atexit handlers, its copy of TempCluster's included.
    proc = run_python(
        "import os, sys; from oxpg.testing import TempCluster\n"
        "c = TempCluster().start()\n"
        "pid = os.fork()\n"
        "if pid == 0: sys.exit(0)\n"
        "os.waitpid(pid, 0); print(c.postmaster_pid is not None and c.datadir.is_dir()); c.stop()"
    )
    out, err = proc.communicate(timeout=60)
    assert out.strip() == "True", err


def test_main_prints_dsn_and_cleans_up_on_sigterm() -> None:
    proc = run_python("from oxpg.testing import main; main()")
    assert proc.stdout is not None
    dsn = proc.stdout.readline().strip()
    assert dsn.startswith("postgresql://oxpg_test:")
    port = int(dsn.rsplit(":", 1)[1].split("/")[0])
    assert not port_is_free(port)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert port_is_free(port)
