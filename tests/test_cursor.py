"""Server-side cursors: client.cursor() (issue 5, "Streaming large results").

DECLARE with bound parameters, fetch sizes, iteration in batches, scroll (absolute and
relative) only when scrollable, WITH HOLD outside a transaction, close() idempotent and
quiet when the server or the connection already dropped the cursor.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import oxpg
from oxpg import TransactionStatus, errors

from support.session import kill, last_statement, mark

SERIES = "SELECT g AS n FROM generate_series(1, $1) g ORDER BY g"


@pytest.fixture
def other(dsn: str) -> Iterator[oxpg.Client]:
    """A second connection, to watch the first one from the server's side."""
    with oxpg.connect(dsn) as c:
        yield c


@pytest.fixture
def admin(pg) -> Iterator[oxpg.Client]:  # type: ignore[no-untyped-def]
    with oxpg.connect(pg.superuser_dsn) as c:
        yield c


@pytest.fixture
def tx(client: oxpg.Client) -> Iterator[oxpg.Transaction]:
    """The test body runs inside a transaction block of `client`."""
    with client.transaction() as block:
        yield block


def numbers(rows: list[dict[str, int]]) -> list[int]:
    return [row["n"] for row in rows]


def open_cursors(client: oxpg.Client) -> list[str]:
    # pg_cursors lists the session's cursors, with the unnamed portal of this query.
    return [r["name"] for r in client.query("SELECT name FROM pg_cursors WHERE name <> '' ORDER BY name")]


# ---- declaring --------------------------------------------------------------------------


def test_declare_with_parameters(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    with client.cursor("SELECT $1::int AS n, $2 AS s, $3::date AS d", 7, "x", datetime.date(2024, 2, 29)) as cur:
        assert isinstance(cur, oxpg.Cursor)
        assert cur.fetchall() == [{"n": 7, "s": "x", "d": datetime.date(2024, 2, 29)}]


def test_declared_statement(client: oxpg.Client, other: oxpg.Client, tx: oxpg.Transaction) -> None:
    cur = client.cursor("SELECT 1 AS n")
    assert re.fullmatch(r"_oxpg_cursor_[0-9a-f]{16}_\d+", cur.name)
    assert last_statement(other, client) == f'DECLARE "{cur.name}" NO SCROLL CURSOR FOR SELECT 1 AS n'
    assert open_cursors(client) == [cur.name]
    scrolling = client.cursor("SELECT 1 AS n", scrollable=True, hold=True)
    assert last_statement(other, client) == f'DECLARE "{scrolling.name}" SCROLL CURSOR WITH HOLD FOR SELECT 1 AS n'
    assert cur.scrollable is False and cur.hold is False
    assert scrolling.scrollable is True and scrolling.hold is True
    scrolling.close()
    cur.close()


def test_cursor_names_differ_between_clients(dsn: str) -> None:
    """Behind a transaction-mode pooler, WITH HOLD cursors of several clients live in
    the same server sessions: a FETCH must never read another client's cursor."""
    with oxpg.connect(dsn) as a, oxpg.connect(dsn) as b:
        first, second = a.cursor("SELECT 1 AS n", hold=True), b.cursor("SELECT 2 AS n", hold=True)
        try:
            assert first.name != second.name
        finally:
            first.close()
            second.close()


def test_without_hold_outside_a_transaction_is_refused(client: oxpg.Client, other: oxpg.Client) -> None:
    sent = mark(client)
    with pytest.raises(oxpg.ProgrammingError, match="hold=True"):
        client.cursor("SELECT 1")
    assert last_statement(other, client) == sent
    assert client.transaction_status is TransactionStatus.IDLE


def test_inside_a_manual_transaction(client: oxpg.Client) -> None:
    client.execute("BEGIN")
    cur = client.cursor(SERIES, 3)
    assert numbers(cur.fetch(5)) == [1, 2, 3]
    client.execute("COMMIT")  # the server drops the cursor; oxpg cannot know
    cur.close()  # CLOSE fails in autocommit, harmlessly: no error
    assert cur.closed


def test_one_statement_only(client: oxpg.Client) -> None:
    with pytest.raises(oxpg.ProgrammingError, match="multiple commands"):
        with client.transaction():
            client.cursor("SELECT 1; SELECT 2")


def test_bad_sql_then_the_name_is_reused(client: oxpg.Client) -> None:
    with pytest.raises(errors.UndefinedTable):
        with client.transaction():
            client.cursor("SELECT * FROM no_such_table_anywhere")
    with client.transaction():
        first = client.cursor("SELECT 1 AS n")
        first.close()
        second = client.cursor("SELECT 2 AS n")
        assert second.name == first.name  # same name: the cache prepares FETCH once
        assert second.fetchall() == [{"n": 2}]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((b"SELECT 1",), {}), (("SELECT 1",), {"scrollable": 1}), (("SELECT 1",), {"hold": "yes"})],
)
def test_argument_types(
    client: oxpg.Client, tx: oxpg.Transaction, args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    with pytest.raises(TypeError):
        client.cursor(*args, **kwargs)


# ---- fetching ---------------------------------------------------------------------------


def test_fetch_sizes(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    with client.cursor(SERIES, 10) as cur:
        assert numbers(cur.fetch(1)) == [1]
        assert numbers(cur.fetch(3)) == [2, 3, 4]
        assert cur.fetchone() == {"n": 5}
        assert numbers(cur.fetch(100)) == [6, 7, 8, 9, 10]
        assert cur.fetch(5) == []
        assert cur.fetchone() is None
        assert cur.fetchall() == []


def test_fetchall(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    with client.cursor(SERIES, 2500) as cur:
        assert numbers(cur.fetch(2)) == [1, 2]
        assert numbers(cur.fetchall()) == list(range(3, 2501))
        assert cur.fetchall() == []


def test_empty_result(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    with client.cursor("SELECT 1 AS n WHERE false") as cur:
        assert cur.fetchone() is None
        assert list(cur) == []


@pytest.mark.parametrize(
    ("bad", "error"), [(0, ValueError), (-1, ValueError), ("3", TypeError), (2.0, TypeError), (True, TypeError)]
)
def test_fetch_count_checked(client: oxpg.Client, tx: oxpg.Transaction, bad: object, error: type[Exception]) -> None:
    with client.cursor(SERIES, 3) as cur:
        with pytest.raises(error):
            cur.fetch(bad)  # type: ignore[arg-type]
        assert numbers(cur.fetch(1)) == [1]


def test_same_name_different_columns(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    """Reused names make FETCH texts repeat; the cached description must not leak."""
    for _ in range(4):
        with client.cursor(SERIES, 3) as cur:
            assert numbers(cur.fetch(2)) == [1, 2]
        with client.cursor("SELECT 'x' AS s, $1::date AS d", datetime.date(2020, 1, 1)) as cur:
            assert cur.fetch(2) == [{"s": "x", "d": datetime.date(2020, 1, 1)}]


# ---- iteration --------------------------------------------------------------------------


def test_iteration_in_batches(client: oxpg.Client, other: oxpg.Client, tx: oxpg.Transaction) -> None:
    with client.cursor(SERIES, 25) as cur:
        assert cur.itersize == 1000
        cur.itersize = 7
        seen = []
        for row in cur:
            seen.append(row["n"])
            if row["n"] == 3:
                # The server saw one FETCH of itersize rows, not one per row.
                assert last_statement(other, client) == f'FETCH FORWARD 7 FROM "{cur.name}"'
        assert seen == list(range(1, 26))
        assert list(cur) == []


def test_iteration_default_batch(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    with client.cursor(SERIES, 100_000) as cur:
        total = 0
        count = 0
        for row in cur:
            total += row["n"]
            count += 1
    assert count == 100_000 and total == 100_000 * 100_001 // 2


def test_leaving_the_loop_early_loses_no_row(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    with client.cursor(SERIES, 20) as cur:
        cur.itersize = 8
        for row in cur:
            if row["n"] == 3:
                break
        assert cur.fetchone() == {"n": 4}  # from the rows read ahead
        assert numbers(cur.fetch(6)) == [5, 6, 7, 8, 9, 10]  # read ahead, then fetched
        assert numbers(list(cur)) == list(range(11, 21))


@pytest.mark.parametrize(("bad", "error"), [(0, ValueError), (-5, ValueError), ("10", TypeError), (None, TypeError)])
def test_itersize_checked(client: oxpg.Client, tx: oxpg.Transaction, bad: object, error: type[Exception]) -> None:
    with client.cursor("SELECT 1 AS n") as cur:
        with pytest.raises(error):
            cur.itersize = bad  # type: ignore[assignment]
        assert cur.itersize == 1000


# ---- scrolling --------------------------------------------------------------------------


def test_scroll_refused_without_scrollable(client: oxpg.Client, other: oxpg.Client, tx: oxpg.Transaction) -> None:
    with client.cursor(SERIES, 5) as cur:
        cur.fetch(2)
        sent = mark(client)
        for value, mode in ((1, "relative"), (-1, "relative"), (0, "absolute")):
            with pytest.raises(oxpg.ProgrammingError, match="scrollable=True"):
                cur.scroll(value, mode)  # type: ignore[arg-type]
        assert last_statement(other, client) == sent
        assert numbers(cur.fetch(1)) == [3]


def test_scroll_absolute(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    with client.cursor(SERIES, 10, scrollable=True) as cur:
        cur.scroll(4, "absolute")
        assert numbers(cur.fetch(2)) == [5, 6]
        cur.scroll(0, "absolute")
        assert numbers(cur.fetch(1)) == [1]
        cur.scroll(9, "absolute")
        assert numbers(cur.fetch(5)) == [10]
        cur.scroll(10, "absolute")
        assert cur.fetch(1) == []
        cur.scroll(50, "absolute")  # beyond the end: clamped
        assert cur.fetch(1) == []
        cur.scroll(-1)
        assert numbers(cur.fetch(1)) == [10]


def test_scroll_relative(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    with client.cursor(SERIES, 10, scrollable=True) as cur:
        cur.scroll(2)
        assert numbers(cur.fetch(2)) == [3, 4]
        cur.scroll(-3)
        assert numbers(cur.fetch(1)) == [2]
        cur.scroll(0)
        assert numbers(cur.fetch(1)) == [3]
        cur.scroll(-100)  # before the start: clamped to the first row
        assert numbers(cur.fetch(1)) == [1]
        cur.scroll(100)  # past the end
        assert cur.fetch(1) == []
        cur.scroll(-2)
        assert numbers(cur.fetch(5)) == [9, 10]


def test_scroll_after_fetching_everything(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    with client.cursor(SERIES, 5, scrollable=True) as cur:
        assert numbers(cur.fetchall()) == [1, 2, 3, 4, 5]
        cur.scroll(-1)
        assert cur.fetchone() == {"n": 5}
        cur.scroll(-2)
        assert numbers(cur.fetchall()) == [4, 5]
        assert numbers(cur.fetch(10)) == []
        cur.scroll(-5)
        assert numbers(cur.fetch(2)) == [1, 2]


def test_scroll_after_a_short_fetch(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    with client.cursor(SERIES, 5, scrollable=True) as cur:
        assert numbers(cur.fetch(10)) == [1, 2, 3, 4, 5]
        cur.scroll(-2)
        assert numbers(cur.fetch(10)) == [4, 5]


def test_scroll_counts_the_rows_read_ahead(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    with client.cursor(SERIES, 30, scrollable=True) as cur:
        cur.itersize = 10
        for row in cur:
            if row["n"] == 4:
                break
        cur.scroll(1)  # skip 5
        assert cur.fetchone() == {"n": 6}
        for row in cur:
            if row["n"] == 28:
                break  # rows 29, 30 are read ahead; the server stands after the end
        cur.scroll(-3)
        assert numbers(cur.fetch(2)) == [26, 27]
        for row in cur:
            if row["n"] == 28:
                break
        cur.scroll(3, "absolute")
        assert numbers(list(cur))[:2] == [4, 5]


@pytest.mark.parametrize(
    ("value", "mode", "error"),
    [
        (1, "forward", ValueError),
        (-1, "absolute", ValueError),
        ("1", "relative", TypeError),
        (1.0, "absolute", TypeError),
    ],
)
def test_scroll_arguments_checked(
    client: oxpg.Client, tx: oxpg.Transaction, value: object, mode: str, error: type[Exception]
) -> None:
    with client.cursor(SERIES, 3, scrollable=True) as cur:
        with pytest.raises(error):
            cur.scroll(value, mode)  # type: ignore[arg-type]
        assert numbers(cur.fetch(1)) == [1]


# ---- WITH HOLD and the end of transactions --------------------------------------------------


def test_hold_outside_a_transaction(client: oxpg.Client) -> None:
    with client.cursor(SERIES, 5, hold=True) as cur:
        assert client.transaction_status is TransactionStatus.IDLE
        assert numbers(cur.fetch(2)) == [1, 2]
        assert numbers(list(cur)) == [3, 4, 5]
        assert open_cursors(client) == [cur.name]
    assert open_cursors(client) == []


def test_hold_cursor_survives_commit(client: oxpg.Client) -> None:
    with client.transaction():
        held = client.cursor(SERIES, 5, hold=True, scrollable=True)
        plain = client.cursor(SERIES, 5)
        assert numbers(held.fetch(1)) == [1]
    assert numbers(held.fetch(2)) == [2, 3]
    held.scroll(0, "absolute")
    assert numbers(held.fetchall()) == [1, 2, 3, 4, 5]
    with pytest.raises(errors.InvalidCursorName, match="hold=True"):
        plain.fetch(1)  # dropped at COMMIT: said before anything is sent
    plain.close()  # no error, no CLOSE
    held.close()
    assert open_cursors(client) == []


def test_rollback_drops_even_a_hold_cursor(client: oxpg.Client) -> None:
    with client.transaction() as block:
        held = client.cursor(SERIES, 5, hold=True)
        block.rollback()
    with pytest.raises(errors.InvalidCursorName, match="rolled back"):
        held.fetch(1)
    held.close()
    assert open_cursors(client) == []


def test_cursor_of_a_rolled_back_savepoint(client: oxpg.Client, other: oxpg.Client) -> None:
    with client.transaction():
        kept = client.cursor(SERIES, 3)
        with pytest.raises(ZeroDivisionError):
            with client.transaction():
                dropped = client.cursor(SERIES, 3)
                1 / 0  # noqa: B018
        sent = mark(client)
        dropped.close()  # nothing sent: a failed CLOSE would abort the transaction
        assert last_statement(other, client) == sent
        assert client.transaction_status is TransactionStatus.IN_TRANSACTION
        assert numbers(kept.fetch(5)) == [1, 2, 3]


def test_cursor_of_a_released_savepoint_lives_on(client: oxpg.Client) -> None:
    with client.transaction():
        with client.transaction():
            cur = client.cursor(SERIES, 3)
        assert numbers(cur.fetch(5)) == [1, 2, 3]
        cur.close()
        assert open_cursors(client) == []


def test_close_inside_a_failed_transaction(client: oxpg.Client, other: oxpg.Client) -> None:
    with pytest.raises(errors.InFailedSqlTransaction):
        with client.transaction():
            cur = client.cursor(SERIES, 3)
            try:
                client.execute("SELECT * FROM no_such_table_anywhere")
            except oxpg.ProgrammingError:
                pass
            sent = last_statement(other, client)
            cur.close()  # goes with the failed transaction; CLOSE would only fail
            assert last_statement(other, client) == sent
    assert client.transaction_status is TransactionStatus.IDLE


# ---- closing ------------------------------------------------------------------------------


def test_close_is_idempotent(client: oxpg.Client, other: oxpg.Client, tx: oxpg.Transaction) -> None:
    cur = client.cursor(SERIES, 3)
    assert not cur.closed
    cur.close()
    assert cur.closed
    assert last_statement(other, client) == f'CLOSE "{cur.name}"'
    sent = mark(client)
    cur.close()
    cur.close()
    assert last_statement(other, client) == sent
    assert open_cursors(client) == []
    for use in (lambda: cur.fetch(1), cur.fetchone, cur.fetchall, lambda: list(cur)):
        with pytest.raises(oxpg.InterfaceError, match="closed"):
            use()
    assert "closed" in repr(cur)


def test_context_manager_closes(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    with client.cursor(SERIES, 3) as cur:
        assert "open" in repr(cur)
        assert open_cursors(client) == [cur.name]
    assert cur.closed
    assert open_cursors(client) == []


def test_error_in_the_body_propagates_and_closes(client: oxpg.Client) -> None:
    with client.transaction():
        with pytest.raises(LookupError):
            with client.cursor(SERIES, 3) as cur:
                raise LookupError
        assert cur.closed
        assert open_cursors(client) == []


def test_close_failing_does_not_mask_the_body(client: oxpg.Client) -> None:
    cur = client.cursor(SERIES, 3, hold=True)
    client.execute("BEGIN")
    with pytest.raises(oxpg.ProgrammingError):
        client.execute("SELECT * FROM no_such_table_anywhere")
    with pytest.raises(KeyError) as info:
        with cur:
            raise KeyError("mine")  # CLOSE then fails: the transaction is aborted
    assert any("closing the cursor failed too" in note for note in info.value.__notes__)
    client.execute("ROLLBACK")


def test_many_cursors_at_once(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    cursors = [client.cursor("SELECT $1::int AS n", i) for i in range(20)]
    assert len({c.name for c in cursors}) == 20
    assert [c.fetchone() for c in cursors] == [{"n": i} for i in range(20)]
    for c in cursors:
        c.close()
    assert open_cursors(client) == []


# ---- lost and closed connections -------------------------------------------------------------


def test_cursor_on_a_closed_client(client: oxpg.Client) -> None:
    client.close()
    with pytest.raises(oxpg.InterfaceError):
        client.cursor("SELECT 1", hold=True)


def test_cursor_on_a_broken_connection(client: oxpg.Client, admin: oxpg.Client) -> None:
    cur = client.cursor(SERIES, 10, hold=True)
    assert numbers(cur.fetch(2)) == [1, 2]
    kill(admin, client.backend_pid)
    with pytest.raises(oxpg.OperationalError):
        cur.fetch(2)
    assert client.broken
    cur.close()  # no second error
    cur.close()
    assert cur.closed
    with pytest.raises(oxpg.OperationalError):
        client.cursor("SELECT 1", hold=True)


def test_cursor_closed_after_the_connection_broke_silently(client: oxpg.Client, admin: oxpg.Client) -> None:
    with pytest.raises(oxpg.OperationalError):
        with client.transaction():
            with client.cursor(SERIES, 10) as cur:
                kill(admin, client.backend_pid)
                cur.fetch(1)
    assert cur.closed and client.broken


# ---- the README's example --------------------------------------------------------------------


README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def users_table(other: oxpg.Client) -> Iterator[None]:
    other.execute("DROP TABLE IF EXISTS users")
    other.execute("CREATE TABLE users (id serial PRIMARY KEY, username text NOT NULL, active bool DEFAULT false)")
    other.execute("INSERT INTO users (username) VALUES ('alice'), ('bob')")
    yield
    other.execute("DROP TABLE users")


def test_readme_cursor_example(client: oxpg.Client, users_table: None, capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text()
    start = text.index("\n## Server-side cursors\n")
    section = text[start : text.find("\n## ", start + 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks
    namespace: dict[str, object] = {"client": client, "oxpg": oxpg}
    exec(compile("\n".join(blocks), str(README), "exec"), namespace)
    assert namespace["first"] == {"id": 1, "username": "alice"}
    assert capsys.readouterr().out == "bob\n"
    assert namespace["page"] == namespace["again"] == [{"id": 1}, {"id": 2}]
    assert open_cursors(client) == []
    assert client.transaction_status is TransactionStatus.IDLE


# ---- timeouts -----------------------------------------------------------------------------
# Each statement a cursor sends takes timeout=; the cursor's own timeout= is the default
# for them (iteration included), the client's command_timeout the default for that.
# Behind a network black hole: tests/faults/test_timeout.py.

SLEEPY = "SELECT pg_sleep(5) AS s FROM generate_series(1, 3)"

FETCHES = {
    "fetch": lambda cur, **kw: cur.fetch(2, **kw),
    "fetchone": lambda cur, **kw: cur.fetchone(**kw),
    "fetchall": lambda cur, **kw: cur.fetchall(**kw),
    "scroll": lambda cur, **kw: cur.scroll(2, **kw),
}


@pytest.mark.parametrize("call", list(FETCHES))
def test_fetch_timeout_cancels_and_the_client_goes_on(client: oxpg.Client, call: str) -> None:
    start = time.monotonic()
    with pytest.raises(oxpg.QueryTimeoutError):
        with client.transaction():
            cur = client.cursor(SLEEPY, scrollable=True)
            FETCHES[call](cur, timeout=0.3)
    assert time.monotonic() - start < 0.3 + 2
    assert client.transaction_status == TransactionStatus.IDLE
    assert client.query("SELECT 1 AS one") == [{"one": 1}]


def test_the_cursor_timeout_is_the_default_for_its_fetches(client: oxpg.Client) -> None:
    with pytest.raises(oxpg.QueryTimeoutError):
        with client.transaction():
            cur = client.cursor(SLEEPY, timeout=0.3)
            next(iter(cur))
    with client.transaction():
        cur = client.cursor("SELECT pg_sleep(0.4) AS s", timeout=0.1)
        assert cur.fetchall(timeout=5) == [{"s": None}], "a call's own timeout overrides the cursor's"
    assert client.query("SELECT 1 AS one") == [{"one": 1}]


def test_declare_timeout_of_a_hold_cursor(client: oxpg.Client) -> None:
    """WITH HOLD in autocommit: the server computes the whole result at DECLARE."""
    start = time.monotonic()
    with pytest.raises(oxpg.QueryTimeoutError):
        client.cursor("SELECT pg_sleep(5)", hold=True, timeout=0.3)
    assert time.monotonic() - start < 0.3 + 2
    assert open_cursors(client) == []
    assert client.query("SELECT 1 AS one") == [{"one": 1}]


def test_command_timeout_applies_to_cursors(dsn: str) -> None:
    with oxpg.connect(dsn, command_timeout=0.3) as c:
        with pytest.raises(oxpg.QueryTimeoutError):
            with c.transaction():
                c.cursor(SLEEPY).fetchone()
        with c.transaction():
            cur = c.cursor("SELECT pg_sleep(0.5) AS s", timeout=float("inf"))
            assert cur.fetchone() == {"s": None}


# A date Python cannot hold (its max is year 9999) at row 2500 of 3000.
BAD_AT_2500 = (
    "SELECT g AS n, CASE WHEN g = 2500 THEN date '10000-01-01' ELSE date '2000-01-01' END AS d "
    "FROM generate_series(1, 3000) g ORDER BY g"
)
ROW_2500 = r"column 'd' \(date\), row 2500\b"


def test_undecodable_row_comes_after_the_rows_before_it(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    """Iteration hands out rows 1-2499 (499 of them from the bad row's own batch), then
    raises DataError naming the row's number in the result, not in its batch; the
    rows after it follow."""
    with client.cursor(BAD_AT_2500) as cur:
        got = []
        with pytest.raises(oxpg.DataError, match=ROW_2500):
            for row in cur:
                got.append(row["n"])
        assert got == list(range(1, 2500))
        assert [row["n"] for row in cur] == list(range(2501, 3001))


def test_undecodable_row_through_fetch(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    with client.cursor(BAD_AT_2500) as cur:
        assert numbers(cur.fetch(2000)) == list(range(1, 2001))
        # Never fewer than asked before the end (that would look like the end): the
        # fetch that would include the row raises, and the rows before it stay.
        with pytest.raises(oxpg.DataError, match=ROW_2500):
            cur.fetch(1000)
        assert numbers(cur.fetch(499)) == list(range(2001, 2500))
        assert cur.fetchone() == {"n": 2501, "d": datetime.date(2000, 1, 1)}
        assert numbers(cur.fetch(10)) == list(range(2502, 2512))


def test_undecodable_row_through_fetchall(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    with client.cursor(BAD_AT_2500) as cur:
        assert numbers(cur.fetch(3)) == [1, 2, 3]
        # A single fetchall() never looks complete without the bad row: it raises, and
        # every other row comes with the next one, in order.
        with pytest.raises(oxpg.DataError, match=ROW_2500):
            cur.fetchall()
        assert numbers(cur.fetchall()) == list(range(4, 2500)) + list(range(2501, 3001))
        assert cur.fetchall() == []


def test_undecodable_row_numbered_after_scrolling(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    """The row's number stays right whichever way the cursor got to it."""
    with client.cursor(BAD_AT_2500, scrollable=True) as cur:
        cur.scroll(2400, "absolute")
        got = []
        with pytest.raises(oxpg.DataError, match=ROW_2500):
            for row in cur:
                got.append(row["n"])
        assert got == list(range(2401, 2500))
        cur.scroll(-2)  # rows 2501-3000 are read ahead: back to 2499
        assert cur.fetchone() == {"n": 2499, "d": datetime.date(2000, 1, 1)}
        with pytest.raises(oxpg.DataError, match=ROW_2500):
            cur.fetchone()
        cur.scroll(5000, "absolute")  # past the end
        cur.scroll(-600)
        assert numbers(cur.fetch(99)) == list(range(2401, 2500))
        with pytest.raises(oxpg.DataError, match=ROW_2500):
            cur.fetch(5)
        cur.scroll(-2501)  # before the start
        cur.scroll(2497)
        with pytest.raises(oxpg.DataError, match=ROW_2500):
            cur.fetch(10)
        assert numbers(cur.fetch(10)) == [2498, 2499, *range(2501, 2509)]
        cur.scroll(0, "absolute")
        cur.itersize = 7
        with pytest.raises(oxpg.DataError, match=ROW_2500):
            for row in cur:
                pass
        assert row["n"] == 2499


def test_undecodable_row_in_a_hold_cursor(client: oxpg.Client) -> None:
    with client.cursor(BAD_AT_2500, hold=True) as cur:
        cur.itersize = 300
        assert numbers(cur.fetch(2450)) == list(range(1, 2451))
        with pytest.raises(oxpg.DataError, match=ROW_2500):
            for row in cur:
                pass
        assert row["n"] == 2499
    assert client.query_value("SELECT 1") == 1


def test_rows_after_an_undecodable_one_keep_their_text_forms(client: oxpg.Client, tx: oxpg.Transaction) -> None:
    """tsvector comes as its text form, fetched for the whole batch: the bad row's
    form is skipped, not handed to the row after it."""
    sql = (
        "SELECT g AS n, CASE WHEN g = 2 THEN date '10000-01-01' ELSE date '2000-01-01' END AS d, "
        "('x' || g)::tsvector AS t FROM generate_series(1, 4) g ORDER BY g"
    )
    with client.cursor(sql) as cur:
        with pytest.raises(oxpg.DataError, match=r"column 'd' \(date\), row 2\b"):
            cur.fetch(4)
        assert [row["t"] for row in cur.fetch(4)] == ["'x1'", "'x3'", "'x4'"]
