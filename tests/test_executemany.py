"""Client.executemany (issue 4; RELIABILITY rows 12 and 29).

One statement, many rows of parameters, one pipeline with one Sync: outside a
transaction all or nothing, and a failure names its row. "Committed" is always checked
from a second connection. Timeouts, cancel and Ctrl-C during a batch are in
tests/faults/test_timeout.py and tests/faults/test_cancel.py.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

import oxpg


@pytest.fixture
def other(dsn: str) -> Iterator[oxpg.Client]:
    """A second connection: sees only what was committed."""
    c = oxpg.connect(dsn)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def table(dsn: str, client: oxpg.Client) -> Iterator[str]:
    name = f"em_{uuid.uuid4().hex[:12]}"
    with oxpg.connect(dsn) as c:
        c.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text, big bigint, f float8)")
    yield name
    # A failed test may leave the client inside a transaction that holds a lock.
    if not client.closed and client.in_transaction:
        client.execute("ROLLBACK")
    with oxpg.connect(dsn, options="-c lock_timeout=5s") as c:
        c.execute(f"DROP TABLE IF EXISTS {name}")


def committed(other: oxpg.Client, table: str) -> int:
    return other.query(f"SELECT count(*) AS n FROM {table}")[0]["n"]


def insert(table: str) -> str:
    return f"INSERT INTO {table} (id, v) VALUES ($1, $2)"


# ---- it works -------------------------------------------------------------------------


def rows_as_list(n: int) -> list[tuple[int, str]]:
    return [(i, f"v{i}") for i in range(n)]


@pytest.mark.parametrize(
    "make_rows",
    [
        rows_as_list,
        lambda n: [[i, f"v{i}"] for i in range(n)],
        lambda n: tuple((i, f"v{i}") for i in range(n)),
        lambda n: ((i, f"v{i}") for i in range(n)),
        lambda n: map(lambda i: (i, f"v{i}"), range(n)),
        lambda n: iter(rows_as_list(n)),
    ],
    ids=["list-of-tuples", "list-of-lists", "tuple-of-tuples", "generator", "map", "iterator"],
)
def test_inserts_every_row(
    client: oxpg.Client, other: oxpg.Client, table: str, make_rows: Callable[[int], object]
) -> None:
    assert client.executemany(insert(table), make_rows(1000)) == 1000
    assert committed(other, table) == 1000
    rows = other.query_tuples(f"SELECT id, v FROM {table} ORDER BY id")
    assert rows == rows_as_list(1000)
    assert client.transaction_status == oxpg.TransactionStatus.IDLE


@pytest.mark.parametrize("empty", [[], (), iter([]), (x for x in [])], ids=["list", "tuple", "iterator", "generator"])
def test_empty_input_returns_zero(client: oxpg.Client, other: oxpg.Client, table: str, empty: object) -> None:
    assert client.executemany(insert(table), empty) == 0
    assert committed(other, table) == 0
    # Not even parsed: a statement the server would refuse is not an error.
    assert client.executemany("INSERT INTO oxpg_no_such_table VALUES ($1)", []) == 0
    assert client.transaction_status == oxpg.TransactionStatus.IDLE
    assert client.query("SELECT 1 AS one") == [{"one": 1}]


def test_empty_input_sends_nothing(client: oxpg.Client, other: oxpg.Client) -> None:
    """With the backend gone, a call that talks to the server would notice: this one must not."""
    pid = client.backend_pid
    assert other.query("SELECT pg_terminate_backend($1) AS ok", pid) == [{"ok": True}]
    deadline = time.monotonic() + 10
    while other.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", pid):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert client.executemany("INSERT INTO oxpg_no_such_table VALUES ($1)", []) == 0
    assert not client.closed


def test_none_and_growing_ints(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    rows = [
        (1, None, None, None),
        (2, "b", 5, 1),  # int4 for big and f
        (3, None, 2**40, 1.5),  # int8, float8
        (4, "d", None, None),
        (5, "e", 2**62, -7),
        (6, None, -(2**63), None),
        (7, "g", 3, 2.25),  # back to int4
        (8, "", 2**63 - 1, float("inf")),
    ]
    sql = f"INSERT INTO {table} (id, v, big, f) VALUES ($1, $2, $3, $4)"
    assert client.executemany(sql, rows) == len(rows)
    got = other.query_tuples(f"SELECT id, v, big, f FROM {table} ORDER BY id")
    assert got == [(i, v, b, None if f is None else float(f)) for i, v, b, f in rows]


def test_ints_growing_in_a_where_clause(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    """The int4 statement must not receive an int8 value (it would fail or be cut)."""
    client.executemany(f"INSERT INTO {table} (id, big) VALUES ($1, $2)", [(1, 2**40), (2, 7)])
    sql = f"UPDATE {table} SET v = 'hit' WHERE big = $1"
    assert client.executemany(sql, [(7,), (2**40,), (2**40 + 2**32,), (7,)]) == 3
    assert other.query_tuples(f"SELECT id, v FROM {table} ORDER BY id") == [(1, "hit"), (2, "hit")]


def test_update_and_delete_counts_are_summed(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    client.executemany(insert(table), rows_as_list(10))
    assert client.executemany(f"UPDATE {table} SET v = $1 WHERE id < $2", [("a", 2), ("b", 5), ("c", 0)]) == 7
    assert client.executemany(f"DELETE FROM {table} WHERE id = $1", [(1,), (2,), (99,), (3,)]) == 3
    assert committed(other, table) == 7


def test_hundred_thousand_rows(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    n = 100_000
    assert client.executemany(insert(table), ((i, str(i)) for i in range(n))) == n
    assert other.query("SELECT count(*) AS n, sum(id) AS s, max(v::int) AS m FROM " + table) == [
        {"n": n, "s": n * (n - 1) // 2, "m": n - 1}
    ]


def test_inside_a_transaction_commits_with_it(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    client.execute("BEGIN")
    assert client.executemany(insert(table), rows_as_list(10)) == 10
    assert client.transaction_status == oxpg.TransactionStatus.IN_TRANSACTION
    assert committed(other, table) == 0, "executemany must not commit the caller's transaction"
    assert client.query(f"SELECT count(*) AS n FROM {table}") == [{"n": 10}]
    client.execute("COMMIT")
    assert committed(other, table) == 10


# ---- failures: all or nothing, and the error names the row ------------------------------


@pytest.mark.parametrize("bad_row", [2, 3, 500, 1000])
def test_unique_violation_commits_nothing(client: oxpg.Client, other: oxpg.Client, table: str, bad_row: int) -> None:
    rows = rows_as_list(1000)
    rows[bad_row - 1] = (0, "same id as row 1")
    with pytest.raises(oxpg.errors.UniqueViolation) as excinfo:
        client.executemany(insert(table), rows)
    exc = excinfo.value
    assert str(exc).startswith(f"executemany row {bad_row}:"), str(exc)
    assert exc.executemany_row == bad_row
    assert exc.sqlstate == "23505"
    assert exc.constraint_name == f"{table}_pkey"
    assert isinstance(exc, oxpg.IntegrityError)
    assert committed(other, table) == 0
    assert client.transaction_status == oxpg.TransactionStatus.IDLE
    assert client.query("SELECT 1 AS one") == [{"one": 1}]


def test_failure_at_row_3_of_1000(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    """RELIABILITY row 12, verbatim."""
    rows = rows_as_list(1000)
    rows[2] = (0, "same id as row 1")
    with pytest.raises(oxpg.errors.UniqueViolation) as excinfo:
        client.executemany(insert(table), rows)
    assert str(excinfo.value).startswith("executemany row 3:")
    assert excinfo.value.executemany_row == 3
    assert committed(other, table) == 0


def test_generator_exception_propagates_as_itself(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    boom = RuntimeError("the generator broke")

    def rows() -> Iterator[tuple[int, str]]:
        for i in range(1000):
            if i == 500:
                raise boom
            yield (i, str(i))

    with pytest.raises(RuntimeError) as excinfo:
        client.executemany(insert(table), rows())
    assert excinfo.value is boom
    assert excinfo.value.executemany_row == 501
    assert str(excinfo.value) == "the generator broke"
    assert committed(other, table) == 0
    assert client.transaction_status == oxpg.TransactionStatus.IDLE
    assert client.executemany(insert(table), rows_as_list(3)) == 3


def test_bad_parameter_names_the_row(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    rows: list[tuple[object, ...]] = list(rows_as_list(5))
    rows[1] = (1, object())
    with pytest.raises(oxpg.DataError) as excinfo:
        client.executemany(insert(table), rows)
    message = str(excinfo.value)
    assert message.startswith("executemany row 2:"), message
    assert "$2" in message and "object" in message
    assert excinfo.value.executemany_row == 2
    assert committed(other, table) == 0
    assert client.transaction_status == oxpg.TransactionStatus.IDLE


def test_nul_in_a_text_parameter_names_the_row(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    rows = rows_as_list(5)
    rows[3] = (3, "a\x00b")
    with pytest.raises(oxpg.DataError) as excinfo:
        client.executemany(insert(table), rows)
    assert excinfo.value.executemany_row == 4
    assert committed(other, table) == 0


@pytest.mark.parametrize("row", [5, None, {"x", "y"}, {"x": 1, "y": 2}, "xy"], ids=repr)
def test_row_that_is_not_a_sequence_is_refused(client: oxpg.Client, row: object) -> None:
    """The message says rows must be sequences. A set or a dict has no parameter order
    (a dict would send its keys), and a str is a classic slip for a 1-tuple: sending
    them as if they were rows stores values nobody meant."""
    client.execute("DROP TABLE IF EXISTS pg_temp.pairs; CREATE TEMP TABLE pairs (a text, b text)")
    with pytest.raises(TypeError) as excinfo:
        client.executemany("INSERT INTO pairs VALUES ($1, $2)", [("a", "b"), row, ("e", "f")])
    assert excinfo.value.executemany_row == 2
    assert client.query("SELECT a, b FROM pairs") == []


def test_wrong_parameter_count_names_the_row(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with pytest.raises(oxpg.ProgrammingError) as excinfo:
        client.executemany(insert(table), [(0, "a"), (1, "b"), (2, "c", "surplus")])
    assert excinfo.value.executemany_row == 3
    assert committed(other, table) == 0
    # Too few parameters: the server refuses the row (08P01/42P02), still nothing committed.
    with pytest.raises(oxpg.DatabaseError):
        client.executemany(insert(table), [(0, "a"), (1,)])
    assert committed(other, table) == 0
    assert client.transaction_status == oxpg.TransactionStatus.IDLE


def test_statement_error_commits_nothing(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with pytest.raises(oxpg.errors.SyntaxError_):
        client.executemany(f"INSERT INTO {table} (id, v) VALUES ($1, $2", rows_as_list(10))
    with pytest.raises(oxpg.errors.DivisionByZero) as excinfo:
        client.executemany(f"INSERT INTO {table} (id, v) VALUES (10 / $1, 'x')", [(1,), (2,), (0,), (5,)])
    assert excinfo.value.executemany_row == 3
    assert committed(other, table) == 0
    assert client.transaction_status == oxpg.TransactionStatus.IDLE


def gen_failing_at(n: int) -> Iterator[tuple[int, str]]:
    for i in range(10):
        if i == n:
            raise ValueError("no more rows")
        yield (100 + i, "x")


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        (lambda: [(100, "a"), (1, "dup of the row inserted before")], oxpg.errors.UniqueViolation),
        (lambda: gen_failing_at(5), ValueError),
        (lambda: [(100, "a"), (101, object())], oxpg.DataError),
    ],
    ids=["unique-violation", "generator-error", "bad-parameter"],
)
def test_failure_inside_a_transaction_leaves_it_failed(
    client: oxpg.Client, other: oxpg.Client, table: str, rows: Callable[[], object], error: type[BaseException]
) -> None:
    client.execute("BEGIN")
    client.execute(f"INSERT INTO {table} (id, v) VALUES (1, 'before')")
    with pytest.raises(error):
        client.executemany(insert(table), rows())
    assert client.transaction_status == oxpg.TransactionStatus.IN_ERROR
    with pytest.raises(oxpg.errors.InFailedSqlTransaction):
        client.query("SELECT 1")
    client.execute("ROLLBACK")
    assert client.transaction_status == oxpg.TransactionStatus.IDLE
    assert client.query(f"SELECT count(*) AS n FROM {table}") == [{"n": 0}]
    assert committed(other, table) == 0


# ---- misuse ---------------------------------------------------------------------------


def test_bad_arguments(client: oxpg.Client, table: str) -> None:
    with pytest.raises(TypeError):
        client.executemany(insert(table))  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        client.executemany(insert(table), 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.executemany(b"SELECT 1", [])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.executemany(insert(table), [], unknown=1)  # type: ignore[call-arg]
    with pytest.raises(oxpg.DataError):
        client.executemany("SELECT $1\x00", [(1,)])
    assert client.query("SELECT 1 AS one") == [{"one": 1}]


def test_closed_client(dsn: str, table: str) -> None:
    c = oxpg.connect(dsn)
    c.close()
    with pytest.raises(oxpg.InterfaceError):
        c.executemany(insert(table), rows_as_list(2))


# ---- the backend dies mid-batch ---------------------------------------------------------


def test_backend_killed_mid_batch(pg, client: oxpg.Client, other: oxpg.Client, table: str) -> None:  # type: ignore[no-untyped-def]
    pid = client.backend_pid
    errors: list[BaseException] = []

    def kill() -> None:
        try:
            with oxpg.connect(pg.superuser_dsn) as admin:
                deadline = time.monotonic() + 10
                # Wait until the batch runs on the server, then a little more.
                while not admin.query(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", pid
                ):
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                time.sleep(0.3)
                admin.query("SELECT pg_terminate_backend($1)", pid)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    killer = threading.Thread(target=kill)
    killer.start()
    sql = f"INSERT INTO {table} (id, v) SELECT $1, $2 FROM pg_sleep(0.01)"
    start = time.monotonic()
    with pytest.raises(oxpg.OperationalError):
        client.executemany(sql, ((i, str(i)) for i in range(1000)))  # about 10 s if not killed
    elapsed = time.monotonic() - start
    killer.join(10)
    assert not errors, errors
    assert elapsed < 3, f"the error came {elapsed:.2f} s after the start"
    assert client.closed and client.broken
    with pytest.raises(oxpg.OperationalError):
        client.query("SELECT 1")
    assert committed(other, table) == 0


# ---- memory (RELIABILITY row 29, short form) --------------------------------------------


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_repeated_batches_do_not_leak(client: oxpg.Client, table: str) -> None:
    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    sql = f"INSERT INTO {table} (id, v, big) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET v = excluded.v"

    def batch(i: int) -> None:
        rows = [(j, f"row {j} of batch {i}", j * 2**33 if j % 2 else None) for j in range(200)]
        if i % 4 == 3:
            rows[150] = (1, object())  # a failing batch: the error path too
            with pytest.raises(oxpg.DataError):
                client.executemany(sql, rows)
        else:
            assert client.executemany(sql, rows) == 200

    for i in range(100):
        batch(i)
    gc.collect()
    blocks, base = sys.getallocatedblocks(), rss()
    for i in range(400):
        batch(i)
    gc.collect()
    grown = (rss() - base) / 2**20
    assert grown < 1.5, f"RSS grew by {grown:.2f} MiB over 400 batches"
    assert sys.getallocatedblocks() - blocks < 2000


# ---- COPY -----------------------------------------------------------------------------


@pytest.mark.timeout(15)
@pytest.mark.parametrize(
    "sql",
    [
        "COPY {t} (id) FROM STDIN",
        "COPY {t} TO STDOUT",
        "  -- a comment\n /* and /* a nested */ one */ copy (SELECT 1) TO STDOUT",
    ],
)
def test_copy_is_refused_and_the_client_stays_usable(
    client: oxpg.Client, other: oxpg.Client, table: str, sql: str
) -> None:
    # It used to spin forever in the result loop, holding the GIL.
    with pytest.raises(oxpg.NotSupportedError, match="COPY"):
        client.executemany(sql.format(t=table), [()])
    assert client.query_value("SELECT 41 + 1") == 42
    assert committed(other, table) == 0

