"""Transaction blocks: client.transaction() (issue 5, "Transactions").

BEGIN with its options, COMMIT on normal exit, ROLLBACK on an exception; nested blocks
as savepoints; tx.commit()/rollback(); a swallowed error or a failing COMMIT never
passes as success; a lost connection is never masked by the block's exit. Effects are
checked from a second connection, and "nothing sent" from pg_stat_activity.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import oxpg
from oxpg import IsolationLevel, TransactionStatus, errors

from support.session import kill, last_statement, mark

IDLE = TransactionStatus.IDLE
IN_TRANSACTION = TransactionStatus.IN_TRANSACTION


@pytest.fixture
def other(dsn: str) -> Iterator[oxpg.Client]:
    """A second connection: sees only what was committed, watches the first one."""
    with oxpg.connect(dsn) as c:
        yield c


@pytest.fixture
def admin(pg) -> Iterator[oxpg.Client]:  # type: ignore[no-untyped-def]
    """A superuser connection, to terminate backends."""
    with oxpg.connect(pg.superuser_dsn) as c:
        yield c


@pytest.fixture
def table(other: oxpg.Client) -> Iterator[str]:
    """A real (not temporary) table, so that a second connection can look into it."""
    name = f"tx_{uuid.uuid4().hex[:12]}"
    other.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, note text)")
    yield name
    other.execute(f"DROP TABLE {name}")


def ids(observer: oxpg.Client, table: str) -> list[int]:
    return [row["id"] for row in observer.query(f"SELECT id FROM {table} ORDER BY id")]


def insert(client: oxpg.Client, table: str, *values: int) -> None:
    for value in values:
        client.execute(f"INSERT INTO {table} (id) VALUES ($1)", value)


# ---- commit, rollback -------------------------------------------------------------


def test_commit_on_normal_exit(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    assert client.transaction_status is IDLE
    with client.transaction() as tx:
        assert isinstance(tx, oxpg.Transaction)
        assert tx.active and tx.savepoint is None
        assert client.transaction_status is IN_TRANSACTION and client.in_transaction
        insert(client, table, 1, 2)
        assert ids(client, table) == [1, 2]
        assert ids(other, table) == []  # not committed yet
    assert not tx.active
    assert ids(other, table) == [1, 2]
    assert client.transaction_status is IDLE and not client.in_transaction


def test_exception_rolls_back_and_propagates(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with client.transaction():
            insert(client, table, 1)
            raise Boom
    assert ids(other, table) == []
    assert client.transaction_status is IDLE
    insert(client, table, 2)  # autocommit again
    assert ids(other, table) == [2]


def test_database_error_rolls_back_and_propagates(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with pytest.raises(errors.UniqueViolation):
        with client.transaction():
            insert(client, table, 1, 1)
    assert ids(other, table) == []
    assert client.transaction_status is IDLE


def test_keyboard_interrupt_rolls_back(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with pytest.raises(KeyboardInterrupt):
        with client.transaction():
            insert(client, table, 1)
            raise KeyboardInterrupt
    assert ids(other, table) == []
    assert client.transaction_status is IDLE


def test_autocommit_outside_blocks(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    insert(client, table, 1)
    assert client.transaction_status is IDLE
    assert ids(other, table) == [1]


def test_transaction_on_closed_client(client: oxpg.Client) -> None:
    tx = client.transaction()
    client.close()
    with pytest.raises(oxpg.InterfaceError):
        with tx:
            pass  # pragma: no cover


def test_a_block_is_entered_once(client: oxpg.Client) -> None:
    tx = client.transaction()
    with tx:
        pass
    with pytest.raises(oxpg.ProgrammingError, match="entered once"):
        with tx:
            pass  # pragma: no cover
    assert client.transaction_status is IDLE


def test_repr(client: oxpg.Client) -> None:
    tx = client.transaction()
    assert "not started" in repr(tx)
    with tx:
        assert repr(tx) == "<oxpg.Transaction transaction active>"
        with client.transaction() as inner:
            assert "savepoint" in repr(inner) and "active" in repr(inner)
    assert "committed" in repr(tx)


# ---- options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("isolation", "shown"),
    [
        (IsolationLevel.READ_UNCOMMITTED, "read uncommitted"),
        (IsolationLevel.READ_COMMITTED, "read committed"),
        (IsolationLevel.REPEATABLE_READ, "repeatable read"),
        (IsolationLevel.SERIALIZABLE, "serializable"),
        ("serializable", "serializable"),
        ("SERIALIZABLE", "serializable"),
        ("repeatable read", "repeatable read"),
        ("REPEATABLE_READ", "repeatable read"),
        ("Read Committed", "read committed"),
        ("read_uncommitted", "read uncommitted"),
        ("  repeatable   read ", "repeatable read"),
    ],
)
def test_isolation_applied(client: oxpg.Client, isolation: IsolationLevel | str, shown: str) -> None:
    with client.transaction(isolation) as tx:
        assert client.query("SHOW transaction_isolation") == [{"transaction_isolation": shown}]
        assert client.query("SHOW transaction_read_only") == [{"transaction_read_only": "off"}]
    assert tx.isolation is IsolationLevel(shown.upper())
    assert client.transaction_status is IDLE


def test_isolation_default_is_the_servers(client: oxpg.Client) -> None:
    client.execute("SET default_transaction_isolation = 'repeatable read'")
    with client.transaction(isolation=None):
        assert client.query("SHOW transaction_isolation") == [{"transaction_isolation": "repeatable read"}]


def test_readonly_applied(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with pytest.raises(errors.ReadOnlySqlTransaction) as info:
        with client.transaction(readonly=True):
            assert client.query("SHOW transaction_read_only") == [{"transaction_read_only": "on"}]
            assert ids(client, table) == []  # reading is fine
            insert(client, table, 1)
    assert isinstance(info.value, oxpg.InternalError)
    assert client.transaction_status is IDLE
    assert ids(other, table) == []


def test_deferrable_applied(client: oxpg.Client) -> None:
    with client.transaction(IsolationLevel.SERIALIZABLE, readonly=True, deferrable=True):
        assert client.query(
            "SELECT current_setting('transaction_isolation') AS i, current_setting('transaction_read_only') AS r, "
            "current_setting('transaction_deferrable') AS d"
        ) == [{"i": "serializable", "r": "on", "d": "on"}]
    with client.transaction():
        assert client.query("SHOW transaction_deferrable") == [{"transaction_deferrable": "off"}]


@pytest.mark.parametrize("bad", ["serialisable", "", "read", "repeatable-read", "SERIALIZABLE; DROP TABLE x"])
def test_bad_isolation_is_a_value_error_before_sending(client: oxpg.Client, other: oxpg.Client, bad: str) -> None:
    sent = mark(client)
    with pytest.raises(ValueError, match="isolation level"):
        client.transaction(bad)
    assert last_statement(other, client) == sent
    assert client.transaction_status is IDLE


@pytest.mark.parametrize("bad", [3, b"serializable", 1.5])
def test_isolation_of_another_type_is_a_type_error(client: oxpg.Client, other: oxpg.Client, bad: object) -> None:
    sent = mark(client)
    with pytest.raises(TypeError, match="isolation"):
        client.transaction(bad)  # type: ignore[arg-type]
    assert last_statement(other, client) == sent


@pytest.mark.parametrize("option", ["readonly", "deferrable"])
@pytest.mark.parametrize("bad", [1, 0, "yes", None])
def test_flags_must_be_bool(client: oxpg.Client, other: oxpg.Client, option: str, bad: object) -> None:
    sent = mark(client)
    with pytest.raises(TypeError, match=option):
        client.transaction(**{option: bad})  # type: ignore[arg-type]
    assert last_statement(other, client) == sent


def test_options_are_keyword_only(client: oxpg.Client) -> None:
    with pytest.raises(TypeError):
        client.transaction(None, True)  # type: ignore[misc]


def test_isolation_level_enum_is_exported() -> None:
    assert [level.name for level in oxpg.IsolationLevel] == [
        "READ_UNCOMMITTED",
        "READ_COMMITTED",
        "REPEATABLE_READ",
        "SERIALIZABLE",
    ]
    assert "IsolationLevel" in oxpg.__all__


# ---- nesting ----------------------------------------------------------------------


def test_nested_blocks_are_savepoints(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with client.transaction():
        insert(client, table, 1)
        with client.transaction() as inner:
            assert inner.savepoint is not None
            insert(client, table, 2)
        assert client.transaction_status is IN_TRANSACTION
        assert ids(other, table) == []  # a released savepoint commits nothing
    assert ids(other, table) == [1, 2]


def test_three_deep_with_an_inner_failure(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with client.transaction():
        insert(client, table, 1)
        with client.transaction() as level2:
            insert(client, table, 2)
            with pytest.raises(errors.UniqueViolation):
                with client.transaction() as level3:
                    insert(client, table, 3)
                    insert(client, table, 1)  # fails: duplicate key
            assert level2.savepoint != level3.savepoint
            # Rolled back to level 3's savepoint: level 2 goes on, row 3 is gone.
            assert client.transaction_status is IN_TRANSACTION
            insert(client, table, 4)
            assert ids(client, table) == [1, 2, 4]
    assert ids(other, table) == [1, 2, 4]
    assert client.transaction_status is IDLE


def test_inner_exception_through_every_level(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with pytest.raises(ZeroDivisionError):
        with client.transaction():
            insert(client, table, 1)
            with client.transaction():
                insert(client, table, 2)
                with client.transaction():
                    insert(client, table, 3)
                    1 / 0  # noqa: B018
    assert ids(other, table) == []
    assert client.transaction_status is IDLE


def test_any_depth(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    depth = 60
    with contextlib.ExitStack() as stack:
        blocks = [stack.enter_context(client.transaction()) for _ in range(depth)]
        insert(client, table, 1)
    assert len({b.savepoint for b in blocks}) == depth  # None for the outermost, then distinct names
    assert ids(other, table) == [1]
    with contextlib.ExitStack() as stack:
        for level in range(depth):
            if level == depth - 1:
                with pytest.raises(errors.UniqueViolation):
                    with client.transaction():
                        insert(client, table, 1)
            else:
                stack.enter_context(client.transaction())
                insert(client, table, 100 + level)
    assert ids(other, table) == [1] + [100 + level for level in range(depth - 1)]


def test_options_on_a_nested_block_are_refused(client: oxpg.Client, other: oxpg.Client) -> None:
    with client.transaction():
        for options in ({"isolation": "serializable"}, {"readonly": True}, {"deferrable": True}):
            sent = mark(client)
            with pytest.raises(oxpg.ProgrammingError, match="outermost"):
                with client.transaction(**options):  # type: ignore[arg-type]
                    pass  # pragma: no cover
            assert last_statement(other, client) == sent
        assert client.transaction_status is IN_TRANSACTION


def test_savepoint_names_are_quoted_identifiers(client: oxpg.Client, other: oxpg.Client) -> None:
    with client.transaction():
        with client.transaction() as inner:
            assert re.fullmatch(r"_oxpg_savepoint_\d+", inner.savepoint or "")
            assert last_statement(other, client) == f'SAVEPOINT "{inner.savepoint}"'


# ---- commit() and rollback() inside the block ---------------------------------------


def test_commit_early(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with client.transaction() as tx:
        insert(client, table, 1)
        tx.commit()
        assert not tx.active
        assert ids(other, table) == [1]
        assert client.transaction_status is IDLE
        insert(client, table, 2)  # autocommit from here on
        assert ids(other, table) == [1, 2]
        sent = mark(client)
    assert last_statement(other, client) == sent  # the exit sent nothing
    with pytest.raises(oxpg.ProgrammingError, match="already ended"):
        tx.commit()
    with pytest.raises(oxpg.ProgrammingError, match="already ended"):
        tx.rollback()


def test_second_commit_inside_the_block(client: oxpg.Client) -> None:
    with client.transaction() as tx:
        tx.commit()
        with pytest.raises(oxpg.ProgrammingError, match=r"already ended \(committed\)"):
            tx.commit()
    assert client.transaction_status is IDLE


def test_rollback_early(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with client.transaction() as tx:
        insert(client, table, 1)
        tx.rollback()
        assert client.transaction_status is IDLE
        insert(client, table, 2)
        sent = mark(client)
    assert last_statement(other, client) == sent
    assert ids(other, table) == [2]
    with pytest.raises(oxpg.ProgrammingError, match=r"rolled back"):
        tx.rollback()


def test_exception_after_rollback_propagates_alone(client: oxpg.Client, other: oxpg.Client) -> None:
    with pytest.raises(LookupError):
        with client.transaction() as tx:
            tx.rollback()
            sent = mark(client)
            raise LookupError
    assert last_statement(other, client) == sent


def test_commit_inside_a_nested_block_continues_in_the_outer(
    client: oxpg.Client, other: oxpg.Client, table: str
) -> None:
    with client.transaction() as outer:
        with client.transaction() as inner:
            insert(client, table, 1)
            inner.commit()  # RELEASE
            assert client.transaction_status is IN_TRANSACTION
            insert(client, table, 2)  # now in the outer block
        outer.rollback()
    assert ids(other, table) == []


def test_rollback_inside_a_nested_block(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with client.transaction():
        insert(client, table, 1)
        with client.transaction() as inner:
            insert(client, table, 2)
            inner.rollback()
            insert(client, table, 3)
    assert ids(other, table) == [1, 3]


def test_outer_commit_ends_the_inner_blocks(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with client.transaction() as outer:
        with client.transaction() as inner:
            insert(client, table, 1)
            outer.commit()
            assert not inner.active
            assert client.transaction_status is IDLE
            sent = mark(client)
        assert last_statement(other, client) == sent  # no RELEASE of a savepoint that is gone
    assert ids(other, table) == [1]
    with pytest.raises(oxpg.ProgrammingError):
        inner.commit()


def test_commit_before_the_block_starts(client: oxpg.Client) -> None:
    tx = client.transaction()
    with pytest.raises(oxpg.ProgrammingError, match="not started"):
        tx.commit()
    with pytest.raises(oxpg.ProgrammingError, match="not started"):
        tx.rollback()


# ---- failures that must not pass as success -------------------------------------------


def test_swallowed_error_raises_on_exit(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with pytest.raises(errors.InFailedSqlTransaction, match="nothing in it was committed") as info:
        with client.transaction():
            insert(client, table, 1)
            try:
                insert(client, table, 1)
            except errors.UniqueViolation:
                pass  # swallowed
    assert isinstance(info.value, oxpg.InternalError)
    assert info.value.sqlstate == "25P02"
    assert ids(other, table) == []
    assert client.transaction_status is IDLE
    insert(client, table, 5)
    assert ids(other, table) == [5]


def test_swallowed_error_in_a_savepoint(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with client.transaction():
        insert(client, table, 1)
        with pytest.raises(errors.InFailedSqlTransaction):
            with client.transaction():
                insert(client, table, 2)
                with contextlib.suppress(oxpg.DatabaseError):
                    client.execute("SELECT * FROM no_such_table_anywhere")
        # Rolled back to the savepoint: the outer block is healthy.
        assert client.transaction_status is IN_TRANSACTION
        insert(client, table, 3)
    assert ids(other, table) == [1, 3]


def test_commit_after_a_swallowed_error(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with client.transaction() as tx:
        insert(client, table, 1)
        with contextlib.suppress(oxpg.IntegrityError):
            insert(client, table, 1)
        with pytest.raises(errors.InFailedSqlTransaction):
            tx.commit()
        assert client.transaction_status is IDLE
        sent = mark(client)
    assert last_statement(other, client) == sent
    assert ids(other, table) == []


@pytest.fixture
def deferred(other: oxpg.Client) -> Iterator[str]:
    name = f"tx_deferred_{uuid.uuid4().hex[:12]}"
    other.execute(f"CREATE TABLE {name} (id int UNIQUE DEFERRABLE INITIALLY DEFERRED)")
    yield name
    other.execute(f"DROP TABLE {name}")


def test_deferred_constraint_failing_at_commit(client: oxpg.Client, other: oxpg.Client, deferred: str) -> None:
    with pytest.raises(oxpg.IntegrityError) as info:
        with client.transaction():
            client.execute(f"INSERT INTO {deferred} VALUES (1), (1)")  # checked at COMMIT only
            assert client.transaction_status is IN_TRANSACTION
    assert isinstance(info.value, errors.UniqueViolation)
    assert client.transaction_status is IDLE
    assert other.query(f"SELECT count(*) AS n FROM {deferred}") == [{"n": 0}]


def test_deferred_constraint_failing_at_explicit_commit(client: oxpg.Client, other: oxpg.Client, deferred: str) -> None:
    with client.transaction() as tx:
        client.execute(f"INSERT INTO {deferred} VALUES (1), (1)")
        with pytest.raises(errors.UniqueViolation):
            tx.commit()
        assert client.transaction_status is IDLE
        sent = mark(client)
    assert last_statement(other, client) == sent
    with pytest.raises(oxpg.ProgrammingError, match="rolled back"):
        tx.commit()


def test_deferred_constraint_in_a_savepoint_fails_at_the_outer_commit(
    client: oxpg.Client, other: oxpg.Client, deferred: str
) -> None:
    with pytest.raises(errors.UniqueViolation):
        with client.transaction():
            with client.transaction():
                client.execute(f"INSERT INTO {deferred} VALUES (1), (1)")
            assert client.transaction_status is IN_TRANSACTION  # RELEASE does not check
    assert other.query(f"SELECT count(*) AS n FROM {deferred}") == [{"n": 0}]


def test_serialization_failure_at_commit(client: oxpg.Client, dsn: str, other: oxpg.Client, table: str) -> None:
    # Write skew: each transaction reads what the other one writes. The first to
    # commit wins; the second one's COMMIT is refused.
    with oxpg.connect(dsn) as rival:
        with pytest.raises(errors.SerializationFailure) as info:
            with client.transaction("serializable"):
                with rival.transaction(IsolationLevel.SERIALIZABLE):
                    client.query(f"SELECT count(*) FROM {table} WHERE id < 100")
                    rival.query(f"SELECT count(*) FROM {table} WHERE id >= 100")
                    insert(client, table, 100)
                    insert(rival, table, 1)
                # rival committed first
                assert client.transaction_status is IN_TRANSACTION
        assert isinstance(info.value, oxpg.OperationalError)
        assert info.value.sqlstate == "40001"
        assert client.transaction_status is IDLE
        assert rival.transaction_status is IDLE
    assert ids(other, table) == [1]


# ---- transactions begun by hand ----------------------------------------------------------


def test_manual_begin_commit_still_works(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    client.execute("BEGIN")
    insert(client, table, 1)
    assert client.transaction_status is IN_TRANSACTION
    client.execute("COMMIT")
    assert client.transaction_status is IDLE
    assert ids(other, table) == [1]
    client.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
    insert(client, table, 2)
    client.execute("ROLLBACK")
    assert ids(other, table) == [1]


def test_block_inside_a_manual_transaction_is_a_savepoint(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    client.execute("BEGIN")
    insert(client, table, 1)
    with client.transaction() as tx:
        assert tx.savepoint is not None
        insert(client, table, 2)
    assert client.transaction_status is IN_TRANSACTION  # still the caller's to end
    with pytest.raises(errors.UniqueViolation):
        with client.transaction():
            insert(client, table, 3)
            insert(client, table, 1)
    assert client.transaction_status is IN_TRANSACTION
    assert ids(other, table) == []
    client.execute("COMMIT")
    assert ids(other, table) == [1, 2]


def test_block_inside_a_failed_manual_transaction(client: oxpg.Client) -> None:
    client.execute("BEGIN")
    with pytest.raises(oxpg.ProgrammingError):
        client.execute("SELECT * FROM no_such_table_anywhere")
    with pytest.raises(errors.InFailedSqlTransaction):
        with client.transaction():
            pass  # pragma: no cover
    client.execute("ROLLBACK")
    with client.transaction():
        pass
    assert client.transaction_status is IDLE


def test_manual_commit_inside_a_block_is_reported(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with pytest.raises(oxpg.ProgrammingError, match="through execute"):
        with client.transaction():
            insert(client, table, 1)
            client.execute("COMMIT")
            insert(client, table, 2)  # autocommit: the block no longer holds it
    assert client.transaction_status is IDLE
    assert ids(other, table) == [1, 2]
    with client.transaction():  # the client is fine for the next block
        insert(client, table, 3)
    assert ids(other, table) == [1, 2, 3]


def test_block_left_open_by_a_manual_rollback_does_not_poison_the_next(client: oxpg.Client) -> None:
    outer = client.transaction()
    outer.__enter__()
    client.execute("ROLLBACK")
    with client.transaction() as fresh:  # a new top-level block, not a savepoint
        assert fresh.savepoint is None
    with pytest.raises(oxpg.ProgrammingError, match="through execute"):
        outer.__exit__(None, None, None)


# ---- lost and closed connections -------------------------------------------------------------


def test_backend_killed_inside_a_block(client: oxpg.Client, admin: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with pytest.raises(oxpg.OperationalError) as info:
        with client.transaction():
            insert(client, table, 1)
            kill(admin, client.backend_pid)
            insert(client, table, 2)
    assert not getattr(info.value, "__notes__", None)  # the exit added nothing to it
    assert client.closed and client.broken
    assert client.transaction_status is TransactionStatus.UNKNOWN
    assert ids(other, table) == []


def test_backend_killed_then_another_exception(
    client: oxpg.Client, admin: oxpg.Client, other: oxpg.Client, table: str
) -> None:
    # The body fails for its own reason; the ROLLBACK then finds the connection gone.
    with pytest.raises(KeyError) as info:
        with client.transaction():
            insert(client, table, 1)
            kill(admin, client.backend_pid)
            raise KeyError("the body's own error")
    assert any("rolling back the transaction block failed too" in note for note in info.value.__notes__)
    assert client.broken
    assert ids(other, table) == []


def test_backend_killed_and_the_error_swallowed(
    client: oxpg.Client, admin: oxpg.Client, other: oxpg.Client, table: str
) -> None:
    with pytest.raises(oxpg.OperationalError, match="nothing was committed"):
        with client.transaction():
            insert(client, table, 1)
            kill(admin, client.backend_pid)
            with contextlib.suppress(oxpg.OperationalError):
                insert(client, table, 2)
    assert client.broken
    assert ids(other, table) == []


def test_client_closed_inside_a_block(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with pytest.raises(oxpg.InterfaceError, match="closed inside the transaction block"):
        with client.transaction():
            insert(client, table, 1)
            client.close()
    assert client.closed and not client.broken
    assert ids(other, table) == []


def test_client_closed_inside_a_block_then_an_exception(client: oxpg.Client) -> None:
    with pytest.raises(RuntimeError):
        with client.transaction() as tx:
            client.close()
            raise RuntimeError("mine")
    with pytest.raises(oxpg.ProgrammingError, match="rolled back"):
        tx.commit()


# ---- the README's examples ---------------------------------------------------------------------


README = Path(__file__).resolve().parent.parent / "README.md"


def readme_block(section: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)
    assert blocks, f"no Python example in the README's {section!r} section"
    return "\n".join(blocks)


@pytest.fixture
def users_table(other: oxpg.Client) -> Iterator[None]:
    other.execute("DROP TABLE IF EXISTS users")
    other.execute("CREATE TABLE users (id serial PRIMARY KEY, username text NOT NULL, active bool DEFAULT false)")
    other.execute("INSERT INTO users (username) VALUES ('alice'), ('bob')")
    yield
    other.execute("DROP TABLE users")


def test_readme_transactions_example(client: oxpg.Client, other: oxpg.Client, users_table: None) -> None:
    exec(compile(readme_block("Transactions"), str(README), "exec"), {"client": client, "oxpg": oxpg})
    assert client.transaction_status is IDLE
    assert [r["username"] for r in other.query("SELECT username FROM users ORDER BY id")] == ["alice", "bob", "carol"]


# ---- timeouts -----------------------------------------------------------------------------
# BEGIN, SAVEPOINT, RELEASE, COMMIT and ROLLBACK take timeout=: the block's timeout=,
# overridden by commit(timeout=) / rollback(timeout=), defaulting to command_timeout.
# A COMMIT is made slow by a deferred constraint trigger; behind a network black hole,
# every one of them: tests/faults/test_timeout.py.


@pytest.fixture
def slow_commit(other: oxpg.Client) -> Iterator[str]:
    """A table whose rows make COMMIT sleep for their `sleep` column's seconds."""
    name = f"txs_{uuid.uuid4().hex[:12]}"
    other.execute(
        f"CREATE TABLE {name} (id int PRIMARY KEY, sleep float8);"
        f"CREATE FUNCTION {name}_sleep() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN PERFORM pg_sleep(NEW.sleep); RETURN NULL; END$$;"
        f"CREATE CONSTRAINT TRIGGER {name}_slow AFTER INSERT ON {name} "
        f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {name}_sleep()"
    )
    yield name
    other.execute(f"DROP TABLE {name}; DROP FUNCTION {name}_sleep()")


COMMITS = {
    "block-timeout": lambda client, table, sql: _commit_at_exit(client, sql, timeout=0.3),
    "commit-timeout": lambda client, table, sql: _commit_explicitly(client, sql, timeout=0.3),
}


def _commit_at_exit(client: oxpg.Client, sql: str, timeout: float) -> None:
    with client.transaction(timeout=timeout):
        client.execute(sql)


def _commit_explicitly(client: oxpg.Client, sql: str, timeout: float) -> None:
    with client.transaction() as tx:
        client.execute(sql)
        tx.commit(timeout=timeout)


@pytest.mark.parametrize("how", list(COMMITS))
def test_commit_timeout_commits_nothing(client: oxpg.Client, other: oxpg.Client, slow_commit: str, how: str) -> None:
    start = time.monotonic()
    with pytest.raises(oxpg.QueryTimeoutError):
        COMMITS[how](client, slow_commit, f"INSERT INTO {slow_commit} VALUES (1, 5)")
    assert time.monotonic() - start < 0.3 + 2
    assert ids(other, slow_commit) == []
    assert client.transaction_status == TransactionStatus.IDLE
    with client.transaction():  # the client goes on
        client.execute(f"INSERT INTO {slow_commit} VALUES (2, 0)")
    assert ids(other, slow_commit) == [2]


def test_command_timeout_applies_to_commit(dsn: str, other: oxpg.Client, slow_commit: str) -> None:
    with oxpg.connect(dsn, command_timeout=0.3) as c:
        with pytest.raises(oxpg.QueryTimeoutError):
            with c.transaction():
                c.execute(f"INSERT INTO {slow_commit} VALUES (1, 5)")
        assert ids(other, slow_commit) == []
        # float('inf'): no timeout for this COMMIT, whatever the client's default.
        with c.transaction() as tx:
            c.execute(f"INSERT INTO {slow_commit} VALUES (2, 0.5)")
            tx.commit(timeout=float("inf"))
        with c.transaction(timeout=5):
            c.execute(f"INSERT INTO {slow_commit} VALUES (3, 0.5)")
    assert ids(other, slow_commit) == [2, 3]


def test_bad_commit_timeout_keeps_the_block(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with client.transaction() as tx:
        insert(client, table, 1)
        with pytest.raises(ValueError, match="timeout"):
            tx.commit(timeout=-1)
        assert tx.active
    assert ids(other, table) == [1]
