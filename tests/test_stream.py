"""Client.stream() (issue 5, "Streaming large results"; RELIABILITY row 27).

One statement in libpq's single-row mode, decoded a chunk of rows at a time: memory is
bounded by the chunk, not the result. Ending early (break, an exception in the loop,
dropping the iterator, close()) cancels and drains the rest so the client runs the
next statement. Another statement on the client ends the stream, and the stream says so
(InterfaceError) instead of ending silently. Timeouts, cancel(), Ctrl-C and a killed
backend are in tests/faults/test_stream_faults.py.
"""

from __future__ import annotations

import gc
import hashlib
import json
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import oxpg

# n = 1, 2, ..., 10**8 in order, arriving at once (each generate_series materializes
# only its own 1000 rows; LATERAL fixes the nesting): a statement still running when
# a test ends it early.
ENDLESS = (
    "SELECT b.j AS n FROM generate_series(0, 99999) a(i), "
    "LATERAL generate_series(a.i * 1000 + 1, a.i * 1000 + 1000) b(j)"
)


@pytest.fixture
def other(dsn: str) -> Iterator[oxpg.Client]:
    """A second session, to look at the first one from outside."""
    c = oxpg.connect(dsn)
    try:
        yield c
    finally:
        c.close()


def wait_idle(other: oxpg.Client, pid: int, timeout: float = 5.0) -> None:
    """The backend pid has finished its statement (state 'idle' in pg_stat_activity)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = other.query("SELECT state, query FROM pg_stat_activity WHERE pid = $1", pid)
        if rows and rows[0]["state"] == "idle":
            return
        assert time.monotonic() < deadline, f"backend {pid} still busy: {rows}"
        time.sleep(0.01)


def series(n: int) -> str:
    return f"SELECT i, md5(i::text) AS m FROM generate_series(1, {n}) i"


def assert_usable(client: oxpg.Client) -> None:
    assert client.query("SELECT $1::int AS answer", 42) == [{"answer": 42}]
    assert client.transaction_status == oxpg.TransactionStatus.IDLE
    assert not client.closed


# ---- it works -------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 7, 1000, 100_000])
def test_yields_every_row_in_order(client: oxpg.Client, chunk_size: int) -> None:
    rows = list(client.stream(series(2500), chunk_size=chunk_size))
    assert len(rows) == 2500
    assert rows[0] == {"i": 1, "m": "c4ca4238a0b923820dcc509a6f75849b"}
    assert [r["i"] for r in rows] == list(range(1, 2501))
    assert rows == client.query(series(2500))
    assert_usable(client)


def test_is_an_iterator_and_a_context_manager(client: oxpg.Client) -> None:
    s = client.stream(series(3))
    assert type(s).__name__ == "Stream"
    assert isinstance(s, oxpg._oxpg.Stream)
    assert iter(s) is s
    assert next(s) == {"i": 1, "m": "c4ca4238a0b923820dcc509a6f75849b"}
    with s as entered:
        assert entered is s
        assert next(s)["i"] == 2
    # Leaving the block closed it: the third row is not handed out.
    assert list(s) == []
    assert_usable(client)


def test_tuples(client: oxpg.Client) -> None:
    rows = list(client.stream("SELECT i, i * 2 AS d, NULL::text AS z FROM generate_series(1, 3) i", tuples=True))
    assert rows == [(1, 2, None), (2, 4, None), (3, 6, None)]
    # A dict row cannot hold two columns of one name; a tuple can.
    with pytest.raises(oxpg.ProgrammingError, match="two columns named 'a'"):
        list(client.stream("SELECT 1 AS a, 2 AS a"))
    assert list(client.stream("SELECT 1 AS a, 2 AS a", tuples=True)) == [(1, 2)]
    assert_usable(client)


def test_parameters(client: oxpg.Client) -> None:
    import datetime
    import decimal

    when = datetime.datetime(2024, 5, 6, 7, 8, 9)
    rows = list(
        client.stream(
            "SELECT i, $2::text || i AS s, $3::numeric AS d, $4::timestamp AS t, $5::bytea AS b, $6::int AS z "
            "FROM generate_series(1, $1) i",
            4,
            "row ",
            decimal.Decimal("1.50"),
            when,
            b"\x00\xff",
            None,
            chunk_size=3,
        )
    )
    assert rows == [
        {"i": i, "s": f"row {i}", "d": decimal.Decimal("1.50"), "t": when, "b": b"\x00\xff", "z": None}
        for i in range(1, 5)
    ]


def test_statements_without_rows(client: oxpg.Client, other: oxpg.Client) -> None:
    table = f"st_{uuid.uuid4().hex[:12]}"
    try:
        assert list(client.stream(f"CREATE TABLE {table} (id int)")) == []
        assert list(client.stream(f"INSERT INTO {table} SELECT generate_series(1, 3)")) == []
        assert list(client.stream(f"INSERT INTO {table} VALUES (7), (8) RETURNING id", tuples=True)) == [(7,), (8,)]
        assert list(client.stream(f"SELECT id FROM {table} WHERE id > $1", 100)) == []
        assert other.query(f"SELECT count(*) AS n FROM {table}") == [{"n": 5}]
    finally:
        client.execute(f"DROP TABLE IF EXISTS {table}")
    assert_usable(client)


def test_session_time_zone_applies(client: oxpg.Client) -> None:
    client.execute("SET TIME ZONE 'Asia/Kathmandu'")
    sql = "SELECT '2024-01-01 00:00+00'::timestamptz AS t"
    streamed = list(client.stream(sql))
    assert streamed == client.query(sql)
    assert streamed[0]["t"].utcoffset().total_seconds() == 5 * 3600 + 45 * 60


# ---- bad calls are refused before anything is sent --------------------------------------


@pytest.mark.parametrize("chunk_size", [0, -1, True, False, 10**8, 2**70, 1.5, "3", None])
def test_bad_chunk_size(client: oxpg.Client, chunk_size: Any) -> None:
    # OverflowError (2**70) is what int arguments of the standard library raise too.
    with pytest.raises((ValueError, TypeError, OverflowError)):
        client.stream("SELECT 1", chunk_size=chunk_size)
    assert_usable(client)


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda c: c.stream("SELECT 1", chunk_size=0), ValueError),
        (lambda c: c.stream("SELECT 1", timeout=0), ValueError),
        (lambda c: c.stream("SELECT 1", timeout="1"), TypeError),
        (lambda c: c.stream("SELECT 1", chunksize=10), TypeError),
        (lambda c: c.stream(), TypeError),
        (lambda c: c.stream(b"SELECT 1"), TypeError),
        (lambda c: c.stream("SELECT 1\x00"), oxpg.DataError),
        (lambda c: c.stream("SELECT $1::text AS a", object()), oxpg.DataError),
        (lambda c: c.stream("SELECT $1::int AS a", 1, 2), oxpg.ProgrammingError),
    ],
    ids=["chunk_size", "timeout-zero", "timeout-str", "unknown-keyword", "no-sql", "bytes-sql", "nul", "bad-param",
         "param-count"],
)
def test_a_refused_call_leaves_the_running_stream_alone(
    client: oxpg.Client, call: Callable[[oxpg.Client], object], error: type[Exception]
) -> None:
    running = client.stream(series(50), chunk_size=10)
    assert next(running)["i"] == 1
    with pytest.raises(error):
        call(client)
    assert [r["i"] for r in running] == list(range(2, 51))
    assert_usable(client)


def test_closed_client(dsn: str) -> None:
    c = oxpg.connect(dsn)
    c.close()
    with pytest.raises(oxpg.InterfaceError, match="closed"):
        c.stream("SELECT 1")


def test_inside_a_pipeline(client: oxpg.Client) -> None:
    with client.pipeline() as p:
        with pytest.raises(oxpg.InterfaceError, match="pipeline"):
            client.stream("SELECT 1")
        r = p.query("SELECT 1 AS one")
    assert r.result() == [{"one": 1}]
    assert list(client.stream("SELECT 2 AS two")) == [{"two": 2}]


# ---- ending early -----------------------------------------------------------------------


def test_break_cancels_the_rest(client: oxpg.Client, other: oxpg.Client) -> None:
    pid = client.backend_pid
    start = time.monotonic()
    for row in client.stream(ENDLESS):
        if row["n"] == 5:
            break
    # The dropped iterator cancelled its statement (10**8 rows would take a minute).
    wait_idle(other, pid)
    assert client.query("SELECT pg_backend_pid() AS pid") == [{"pid": pid}]
    assert time.monotonic() - start < 3
    assert_usable(client)


def test_exception_in_the_loop_body(client: oxpg.Client, other: oxpg.Client) -> None:
    pid = client.backend_pid
    with pytest.raises(ZeroDivisionError):
        for row in client.stream(ENDLESS):
            if row["n"] == 3:
                1 / 0  # noqa: B018
    wait_idle(other, pid)
    assert_usable(client)


def test_exception_in_the_loop_body_with_the_stream_still_referenced(client: oxpg.Client) -> None:
    """An iterator that outlives the loop (a variable holds it) is not ended by the
    exception: it goes on where it was, or the next statement ends it."""
    s = client.stream(ENDLESS, chunk_size=10)
    with pytest.raises(ZeroDivisionError):
        for row in s:
            if row["n"] == 3:
                1 / 0  # noqa: B018
    assert next(s) == {"n": 4}
    assert_usable(client)
    with pytest.raises(oxpg.InterfaceError, match="another statement"):
        list(s)


def test_dropping_the_iterator(client: oxpg.Client, other: oxpg.Client) -> None:
    pid = client.backend_pid
    s = client.stream(ENDLESS)
    assert next(s) == {"n": 1}
    del s
    # Finalized at once (no gc.collect needed): the statement is gone from the server
    # before the client sends anything else.
    wait_idle(other, pid)
    assert_usable(client)


def test_iterator_in_a_reference_cycle(client: oxpg.Client, other: oxpg.Client) -> None:
    class Holder:
        pass

    holder = Holder()
    holder.stream = client.stream(ENDLESS)  # type: ignore[attr-defined]
    holder.me = holder  # type: ignore[attr-defined]
    assert next(holder.stream) == {"n": 1}  # type: ignore[attr-defined]
    del holder
    # Not collected yet: the next statement ends the orphaned stream itself.
    assert_usable(client)
    gc.collect()
    assert_usable(client)


def test_close_ends_quietly(client: oxpg.Client, other: oxpg.Client) -> None:
    pid = client.backend_pid
    s = client.stream(ENDLESS, chunk_size=10)
    assert next(s) == {"n": 1}
    s.close()
    wait_idle(other, pid)
    assert list(s) == []  # the buffered rows are dropped too; no error
    s.close()  # again: nothing
    assert_usable(client)
    # close() on a finished stream does nothing either.
    done = client.stream(series(2))
    assert len(list(done)) == 2
    done.close()
    assert_usable(client)


def test_with_block_ends_the_stream_on_error(client: oxpg.Client, other: oxpg.Client) -> None:
    pid = client.backend_pid
    with pytest.raises(KeyError):
        with client.stream(ENDLESS) as s:
            next(s)
            raise KeyError("body")
    wait_idle(other, pid)
    assert list(s) == []
    assert_usable(client)


def test_many_abandoned_streams(client: oxpg.Client) -> None:
    """Break out of 50 streams in a row: each leaves the client clean for the next."""
    for k in range(50):
        for row in client.stream("SELECT i FROM generate_series($1::int, $1::int + 100000) i", k):
            assert row == {"i": k}
            break
    assert_usable(client)


def test_break_inside_a_transaction_aborts_it(client: oxpg.Client) -> None:
    """Ending a stream early cancels its statement; inside a transaction block the
    server then aborts the transaction (as with psycopg's stream()). Documented in the
    README: finish the loop, or LIMIT the query, when the transaction must go on."""
    client.execute("BEGIN")
    for _ in client.stream(ENDLESS):
        break
    assert client.transaction_status == oxpg.TransactionStatus.IN_ERROR
    with pytest.raises(oxpg.errors.InFailedSqlTransaction):
        client.query("SELECT 1")
    client.execute("ROLLBACK")
    # A statement that already finished is not cancelled: the transaction goes on.
    client.execute("BEGIN")
    for _ in client.stream(series(3)):
        break
    assert client.query("SELECT 1 AS one") == [{"one": 1}]
    assert client.transaction_status == oxpg.TransactionStatus.IN_TRANSACTION
    client.execute("ROLLBACK")
    assert_usable(client)


# ---- another statement takes the connection ----------------------------------------------

TAKEOVERS: dict[str, Callable[[oxpg.Client], object]] = {
    "query": lambda c: c.query("SELECT 1 AS one"),
    "query_tuples": lambda c: c.query_tuples("SELECT $1::int AS one", 1),
    "execute": lambda c: c.execute("SELECT $1::int", 1),
    "execute-simple": lambda c: c.execute("SELECT 1; SELECT 2"),
    "executemany": lambda c: c.executemany("SELECT $1::int", [(1,), (2,)]),
    "stream": lambda c: list(c.stream("SELECT 1 AS one")),
    "pipeline": lambda c: c.pipeline().__enter__().__exit__(None, None, None),
    "transaction": lambda c: c.transaction().__enter__().rollback(),
}


@pytest.mark.parametrize("takeover", list(TAKEOVERS), ids=list(TAKEOVERS))
def test_another_statement_ends_the_stream_loudly(client: oxpg.Client, other: oxpg.Client, takeover: str) -> None:
    pid = client.backend_pid
    s = client.stream(ENDLESS, chunk_size=10)
    assert next(s) == {"n": 1}
    TAKEOVERS[takeover](client)
    wait_idle(other, pid)
    # The rows already read are handed out, then the stream says it was cut short:
    # never a silent early end that looks like the whole result.
    got = []
    with pytest.raises(oxpg.InterfaceError, match="another statement"):
        for row in s:
            got.append(row["n"])
    assert got == list(range(2, 11))
    assert list(s) == []  # said once; then it is simply over
    assert_usable(client)


def test_a_finished_stream_is_not_cut(client: oxpg.Client) -> None:
    """Its whole result was read with the first chunk: later statements take nothing."""
    s = client.stream(series(5))
    assert next(s)["i"] == 1
    assert client.query("SELECT 1 AS one") == [{"one": 1}]
    assert [r["i"] for r in s] == [2, 3, 4, 5]


def test_closing_the_client_ends_the_stream(dsn: str) -> None:
    c = oxpg.connect(dsn)
    s = c.stream(ENDLESS, chunk_size=3)
    assert next(s) == {"n": 1}
    c.close()
    got = []
    with pytest.raises(oxpg.InterfaceError):
        for row in s:
            got.append(row["n"])
    assert got == [2, 3]
    assert c.closed and not c.broken
    s.close()  # nothing left to end


# ---- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 2, 1000])
def test_server_error_after_some_rows(client: oxpg.Client, chunk_size: int) -> None:
    """Division by zero at row 3: rows 1 and 2 are yielded first, then the error; no
    row ever comes after the error."""
    s = client.stream("SELECT 10 / (3 - i) AS v FROM generate_series(1, 5) i", chunk_size=chunk_size)
    got = []
    with pytest.raises(oxpg.errors.DivisionByZero) as excinfo:
        for row in s:
            got.append(row["v"])
    assert got == [5, 10], "the rows before the failing one must be yielded before the error"
    assert excinfo.value.sqlstate == "22012"
    assert list(s) == [], "rows handed out after the statement's error"
    assert_usable(client)


def test_server_error_before_the_first_row(client: oxpg.Client) -> None:
    s = client.stream("SELECT 1 / (i - 1) AS v FROM generate_series(1, 5) i")
    with pytest.raises(oxpg.errors.DivisionByZero):
        next(s)
    with pytest.raises(StopIteration):
        next(s)
    with pytest.raises(oxpg.errors.UndefinedTable):
        list(client.stream("SELECT * FROM oxpg_no_such_table"))
    with pytest.raises(oxpg.errors.SyntaxError_):
        list(client.stream("SELEC 1"))
    assert_usable(client)


def test_error_inside_a_transaction(client: oxpg.Client) -> None:
    client.execute("BEGIN")
    with pytest.raises(oxpg.errors.DivisionByZero):
        list(client.stream("SELECT 10 / (3 - i) AS v FROM generate_series(1, 5) i"))
    assert client.transaction_status == oxpg.TransactionStatus.IN_ERROR
    client.execute("ROLLBACK")
    assert_usable(client)


def test_type_without_binary_decoder(client: oxpg.Client) -> None:
    """The stream describes its statement first: a type the client has not looked up
    yet is looked up before the rows arrive, and a type without a binary decoder
    comes back as its text form, as query() returns it (tests/test_parity.py)."""
    enum = f"mood_{uuid.uuid4().hex[:12]}"
    client.execute(f"CREATE TYPE {enum} AS ENUM ('sad', 'happy')")
    try:
        sql = f"SELECT i, (CASE WHEN i % 2 = 0 THEN 'happy' ELSE 'sad' END)::{enum} AS m FROM generate_series(1, 5) i"
        assert [r["m"] for r in client.stream(sql)] == ["sad", "happy", "sad", "happy", "sad"]
        assert_usable(client)
        assert client.query(sql)[1] == {"i": 2, "m": "happy"}
        tsv = "SELECT i, 'a fat cat'::tsvector AS v FROM generate_series(1, 2) i"
        assert list(client.stream(tsv)) == client.query(tsv) == [{"i": 1, "v": "'a' 'cat' 'fat'"},
                                                                 {"i": 2, "v": "'a' 'cat' 'fat'"}]
        assert_usable(client)
        # Read in text form, a column whose text does not give its binary value is refused.
        with pytest.raises(oxpg.DataError, match="cast one of them to text"):
            list(client.stream("SELECT 1.5::float4 AS f, 'a'::tsvector AS v"))
        assert_usable(client)
    finally:
        client.execute(f"DROP TYPE IF EXISTS {enum}")


def test_copy_is_refused_without_hanging(dsn: str) -> None:
    """COPY through stream() must fail like query() does (NotSupportedError), never spin.
    Run in a child process: a hang must fail the test, not stall the suite."""
    child = textwrap.dedent(
        """
        import json, sys, oxpg
        c = oxpg.connect(sys.argv[1])
        c.execute("CREATE TEMP TABLE t (i int)")
        out = {}
        for sql in ("COPY t TO STDOUT", "COPY t FROM STDIN"):
            try:
                out[sql] = ["rows", list(c.stream(sql))]
            except Exception as e:
                out[sql] = [type(e).__name__, str(e)]
            out[sql].append(c.query("SELECT 1 AS one"))
        print(json.dumps(out))
        """
    )
    try:
        proc = subprocess.run([sys.executable, "-c", child, dsn], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("stream('COPY ...') hung (still running after 10 s)")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for sql, (kind, _message, after) in out.items():
        assert kind == "NotSupportedError", (sql, out[sql])
        assert after == [{"one": 1}]


# ---- memory: the acceptance --------------------------------------------------------

MEMORY_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import oxpg

    def status(field):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])  # KiB
        raise RuntimeError(field)

    c = oxpg.connect(sys.argv[1])
    # Warm up every code path once, so the measure sees only what the result costs.
    for row in c.stream("SELECT i, md5(i::text) FROM generate_series(1, 20000) i", chunk_size=1000):
        pass
    out = {"start_hwm": status("VmHWM"), "start_blocks": sys.getallocatedblocks()}
    n = 0
    started = time.monotonic()
    for row in c.stream("SELECT i, md5(i::text) FROM generate_series(1, 5000000) i", chunk_size=1000):
        n += 1
    out.update(rows=n, seconds=round(time.monotonic() - started, 2), last=row)
    del row
    out.update(stream_hwm=status("VmHWM"), stream_rss=status("VmRSS"), stream_blocks=sys.getallocatedblocks())
    # For comparison: what a tenth of that result costs through query().
    rows = c.query("SELECT i, md5(i::text) FROM generate_series(1, 500000) i")
    out.update(query_rows=len(rows), query_hwm=status("VmHWM"))
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_five_million_rows_in_bounded_memory(dsn: str, record_property: Callable[[str, object], None]) -> None:
    proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, dsn], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    assert m["rows"] == 5_000_000
    assert m["last"] == {"i": 5_000_000, "md5": hashlib.md5(b"5000000").hexdigest()}
    stream_growth = (m["stream_hwm"] - m["start_hwm"]) / 1024
    query_growth = (m["query_hwm"] - m["stream_hwm"]) / 1024
    summary = (
        f"5,000,000 rows streamed in {m['seconds']} s: peak RSS {m['start_hwm'] / 1024:.1f} -> "
        f"{m['stream_hwm'] / 1024:.1f} MiB (+{stream_growth:.2f} MiB), Python blocks "
        f"{m['start_blocks']} -> {m['stream_blocks']}; query() of 500,000 rows: +{query_growth:.1f} MiB"
    )
    record_property("stream_memory", summary)
    print(summary)
    assert stream_growth < 20, summary
    assert m["stream_blocks"] - m["start_blocks"] < 10_000, summary  # no Python objects left behind
    assert query_growth > 50, summary  # the comparison measures something
    assert stream_growth < 0.1 * query_growth, summary


def test_undecodable_value_reports_its_row_after_the_rows_before_it(client: oxpg.Client) -> None:
    """A date Python cannot hold at row 2500 of 3000: the 2499 rows before it come out
    first (also those in its own chunk), then DataError naming row 2500."""
    sql = (
        "SELECT i, CASE WHEN i = 2500 THEN date '10000-01-01' ELSE date '2000-01-01' END AS d "
        "FROM generate_series(1, 3000) i"
    )
    got = []
    with pytest.raises(oxpg.DataError, match=r"row 2500\b"):
        for row in client.stream(sql):
            got.append(row["i"])
    assert got == list(range(1, 2500))
    assert_usable(client)


def test_anonymous_record_fields_of_user_types(client: oxpg.Client, other: oxpg.Client) -> None:
    """A stream cannot stop for a catalog lookup when a record field's type turns up, so
    describing a statement with an anonymous record looks up every user type first.
    A type created since by another session is refused with DataError, never
    guessed, and the next statement learns it."""
    name = f"pg_temp_mood_{uuid.uuid4().hex[:8]}"
    other.execute(f"CREATE TYPE {name} AS ENUM ('happy', 'sad')")
    try:
        sql = f"SELECT ROW(g, 'sad'::{name}, ARRAY['happy'::{name}]) AS v FROM generate_series(1, 3) g"
        with client.stream(sql, chunk_size=2) as rows:
            assert [r["v"] for r in rows] == [(g, "sad", ["happy"]) for g in (1, 2, 3)]
        assert client.query(sql) == [{"v": (g, "sad", ["happy"])} for g in (1, 2, 3)]
        later = f"{name}_later"
        other.execute(f"CREATE TYPE {later} AS ENUM ('x')")
        try:
            with pytest.raises(oxpg.DataError, match="cannot look it up"):
                with client.stream(f"SELECT ROW(1, 'x'::{later}) AS v") as rows:
                    list(rows)
            # The next describe looks the user types up again.
            with client.stream(f"SELECT ROW(2, 'x'::{later}) AS v") as rows:
                assert [r["v"] for r in rows] == [(2, "x")]
        finally:
            other.execute(f"DROP TYPE {later}")
    finally:
        other.execute(f"DROP TYPE {name}")
