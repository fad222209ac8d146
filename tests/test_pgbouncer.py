"""Clients behind PgBouncer in transaction mode (RELIABILITY row 15).

Transaction pooling hands each transaction (each statement, in autocommit) to
whichever server session of a small pool is free, so clients share server sessions
and see each other's prepared statements. Bug: every client named its statements
_oxpg_1, _oxpg_2, ..., and a client ran another client's statement of the same name:
an int query answered with a Decimal. Here 8 clients (one thread each) run typed
queries whose answers identify the caller, and every answer must be the caller's own,
of the right type: with the statement cache off, on, and on with PgBouncer's own
prepared-statement support (max_prepared_statements, PgBouncer 1.21+).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from support.pgbouncer import PgBouncer

import oxpg

CLIENTS = 8
ROUNDS = 300
# Both take an int4 and differ in their result type: a client running the other one
# gets a Decimal for an int or the reverse. Half the clients run them in the other
# order, so their statements of the same number are different statements.
QUERIES: list[tuple[str, type, Callable[[int], Any]]] = [
    ("SELECT $1::int + 1 AS v", int, lambda x: x + 1),
    ("SELECT $1::numeric / 4 AS v", Decimal, lambda x: Decimal(x) / 4),
]


@dataclass
class Outcome:
    wrong: list[str] = field(default_factory=list)  # answers that were not the caller's
    errors: list[BaseException] = field(default_factory=list)


def run_client(dsn: str, k: int, start: threading.Barrier, in_transaction: bool, **options: int) -> Outcome:
    out = Outcome()
    order = QUERIES if k % 2 == 0 else QUERIES[::-1]
    with oxpg.connect(dsn, **options) as c:
        start.wait(timeout=30)
        for r in range(ROUNDS):
            x = k * 1_000_000 + r
            try:
                if in_transaction:
                    c.execute("BEGIN")
                for sql, kind, expected in order:
                    got = c.query_value(sql, x)
                    if type(got) is not kind or got != expected(x):
                        out.wrong.append(f"client {k} round {r}: {sql!r} with {x} gave {got!r}")
                if in_transaction:
                    c.execute("COMMIT")
            except oxpg.Error as e:
                out.errors.append(e)
                if c.in_transaction:
                    c.execute("ROLLBACK")
    return out


def run_clients(dsn: str, in_transaction: bool = False, **options: int) -> Outcome:
    start = threading.Barrier(CLIENTS)
    outcomes: list[Outcome | BaseException | None] = [None] * CLIENTS

    def worker(k: int) -> None:
        try:
            outcomes[k] = run_client(dsn, k, start, in_transaction, **options)
        except BaseException as e:
            outcomes[k] = e
            start.abort()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=50)
    total = Outcome()
    for k, o in enumerate(outcomes):
        assert isinstance(o, Outcome), f"client {k} failed: {o!r}"
        total.wrong += o.wrong
        total.errors += o.errors
    return total


def describe(errors: list[BaseException]) -> str:
    return "\n".join(f"{type(e).__name__} {getattr(e, 'sqlstate', None)}: {e}" for e in errors[:5])


def test_clients_share_server_sessions(pgbouncer: PgBouncer) -> None:
    """The premise: 8 clients really run on the pool's 2 server sessions."""
    clients = [oxpg.connect(pgbouncer.dsn) for _ in range(4)]
    try:
        pids = {c.query_value("SELECT pg_backend_pid()") for c in clients for _ in range(3)}
        assert 1 <= len(pids) <= 2, pids
    finally:
        for c in clients:
            c.close()


def test_cache_off(pgbouncer: PgBouncer) -> None:
    out = run_clients(pgbouncer.dsn, statement_cache_size=0)
    assert out.wrong == [], f"{len(out.wrong)} answers of another client: {out.wrong[:5]}"
    assert out.errors == [], describe(out.errors)


def test_cache_on_autocommit(pgbouncer: PgBouncer, caplog: pytest.LogCaptureFixture) -> None:
    """Statements move between server sessions: the cache recovers from 26000 by
    running them unprepared, so nothing reaches the caller, and the log says what to
    do (once per client)."""
    with caplog.at_level(logging.WARNING, logger="oxpg"):
        out = run_clients(pgbouncer.dsn)
    assert out.wrong == [], f"{len(out.wrong)} answers of another client: {out.wrong[:5]}"
    assert out.errors == [], describe(out.errors)
    warned = [r for r in caplog.records if r.name == "oxpg" and "statement_cache_size=0" in r.getMessage()]
    # The premise: statements did get lost (8 clients on 2 sessions, each statement
    # prepared in one transaction and run in later ones).
    assert 1 <= len(warned) <= CLIENTS, len(warned)


def test_cache_on_in_transactions(pgbouncer: PgBouncer) -> None:
    """Inside a transaction a lost statement aborts it: the error says to roll back
    and to set statement_cache_size=0; never another client's answer."""
    out = run_clients(pgbouncer.dsn, in_transaction=True)
    assert out.wrong == [], f"{len(out.wrong)} answers of another client: {out.wrong[:5]}"
    unexplained = [
        e for e in out.errors
        if not (isinstance(e, oxpg.InvalidCachedStatementError) and "statement_cache_size=0" in str(e))
    ]  # fmt: skip
    assert unexplained == [], describe(unexplained)


def test_cache_on_with_pgbouncer_prepared_statements(make_pgbouncer: Callable[..., PgBouncer]) -> None:
    """PgBouncer 1.21+ tracks protocol-level prepared statements itself
    (max_prepared_statements): then nothing is lost, in or out of transactions."""
    from support.pgbouncer import find_pgbouncer, pgbouncer_version

    binary = find_pgbouncer()
    assert binary is not None
    version = pgbouncer_version(binary)
    if version < (1, 21):
        pytest.skip(f"PgBouncer {'.'.join(map(str, version))} has no max_prepared_statements (1.21+)")
    bouncer = make_pgbouncer(pool_size=2, max_prepared_statements=200)
    for in_transaction in (False, True):
        out = run_clients(bouncer.dsn, in_transaction=in_transaction)
        assert out.wrong == [], f"{len(out.wrong)} answers of another client: {out.wrong[:5]}"
        assert out.errors == [], describe(out.errors)
