"""Fixtures shared by the whole suite: one PostgreSQL server per session.

By default the suite starts its own throw-away server (oxpg.testing.TempCluster).
OXPG_TEST_DSN=postgresql://... runs it against an existing server instead; its user
must be a superuser (see docker-compose.test.yaml). OXPG_TEST_SUPERUSER_DSN may name a
different superuser connection; it defaults to OXPG_TEST_DSN.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

import pytest
from support.pgbouncer import PgBouncer
from support.proxy import Proxy

from oxpg.testing import TempCluster

if TYPE_CHECKING:
    import oxpg


# A shell that starts a job in the background without job control (`cmd &` in a
# script) starts it with SIGINT ignored, and Python then leaves it ignored: Ctrl-C
# tests (_thread.interrupt_main, SIGINT sent to a child script) would hang. The suite
# needs Python's own handler, and child processes then inherit the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@dataclass(frozen=True)
class PgServer:
    dsn: str
    superuser_dsn: str
    # The cluster when the suite started it; None with OXPG_TEST_DSN, where tests that
    # restart or break the server are skipped.
    cluster: TempCluster | None


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    dsn = os.environ.get("OXPG_TEST_DSN")
    if dsn:
        yield PgServer(dsn, os.environ.get("OXPG_TEST_SUPERUSER_DSN", dsn), None)
        return
    with TempCluster() as cluster:
        yield PgServer(cluster.dsn, cluster.superuser_dsn, cluster)


PgBouncerFactory = Callable[..., PgBouncer]


@pytest.fixture(scope="session")
def make_pgbouncer(pg: PgServer) -> Iterator[PgBouncerFactory]:
    """make_pgbouncer(**options): a started transaction-mode PgBouncer in front of
    the suite's server (options: see tests/support/pgbouncer.py), stopped at the end
    of the session."""
    if pg.cluster is not None:
        target = (pg.cluster.host, pg.cluster.port, pg.cluster.user, pg.cluster.password, pg.cluster.database)
    else:
        url = urlsplit(pg.dsn)
        if url.scheme not in ("postgresql", "postgres") or not (url.hostname and url.username and url.password):
            pytest.skip("PgBouncer needs OXPG_TEST_DSN as a URI with host, user and password")
        target = (url.hostname, url.port or 5432, unquote(url.username), unquote(url.password), url.path.lstrip("/"))
    started: list[PgBouncer] = []

    def make(**options: int) -> PgBouncer:
        bouncer = PgBouncer(*target, **options)
        started.append(bouncer)
        return bouncer.start()

    yield make
    for bouncer in started:
        bouncer.stop()


@pytest.fixture(scope="session")
def pgbouncer(make_pgbouncer: PgBouncerFactory) -> PgBouncer:
    """The suite's transaction-mode PgBouncer: a pool of 2 server sessions."""
    return make_pgbouncer(pool_size=2)


@pytest.fixture
def cluster(pg: PgServer) -> TempCluster:
    """The suite's own server, for fault tests (restart, stop_server); skips otherwise."""
    if pg.cluster is None:
        pytest.skip("needs a server the suite started itself (OXPG_TEST_DSN is set)")
    return pg.cluster


@pytest.fixture
def dsn(pg: PgServer) -> str:
    return pg.dsn


@pytest.fixture
def proxied(dsn: str) -> Iterator[tuple[Proxy, str]]:
    """A fault proxy in front of the server and the DSN that goes through it."""
    if "://" not in dsn:
        pytest.skip("needs a URI DSN to point at the proxy")
    parts = urlsplit(dsn)
    assert parts.hostname is not None and parts.port is not None
    proxy = Proxy(parts.hostname, parts.port)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{proxy.port}"
    yield proxy, urlunsplit(parts._replace(netloc=netloc))
    proxy.close()


@pytest.fixture
def client(dsn: str) -> Iterator[oxpg.Client]:
    import oxpg

    c = oxpg.connect(dsn)
    try:
        yield c
    finally:
        c.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests using the `cluster` fixture get the marker, so `-m "not cluster"` selects
    # what can run against any server.
    for item in items:
        if "cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)
