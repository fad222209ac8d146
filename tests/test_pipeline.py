"""Client.pipeline() (issue 5, "Pipelines"; RELIABILITY row 13).

Statements queued in a pipeline are sent without waiting for each other; results are
read back in order. Up to a sync() (or the end of the block) everything is one implicit
transaction: a failing statement keeps the earlier results but rolls their effects
back, and the later statements raise PipelineAborted. "Committed" is always checked
from a second connection. Cancel, Ctrl-C and a killed backend are in
tests/faults/test_stream_faults.py.
"""

from __future__ import annotations

import datetime
import decimal
import heapq
import json
import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

import oxpg


@pytest.fixture
def other(dsn: str) -> Iterator[oxpg.Client]:
    c = oxpg.connect(dsn)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def table(dsn: str) -> Iterator[str]:
    name = f"pl_{uuid.uuid4().hex[:12]}"
    with oxpg.connect(dsn) as c:
        c.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text)")
    yield name
    with oxpg.connect(dsn) as c:
        c.execute(f"DROP TABLE IF EXISTS {name}")


def ids(c: oxpg.Client, table: str) -> list[int]:
    return [r[0] for r in c.query_tuples(f"SELECT id FROM {table} ORDER BY id")]


def assert_idle_and_usable(client: oxpg.Client) -> None:
    assert client.transaction_status == oxpg.TransactionStatus.IDLE
    assert client.query("SELECT $1::int AS answer", 42) == [{"answer": 42}]
    assert not client.closed


# ---- it works -------------------------------------------------------------------------


def test_heterogeneous_statements(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
    with client.pipeline() as p:
        ins = p.execute(f"INSERT INTO {table} (id, v) VALUES ($1, $2), ($3, $4)", 1, "one", 2, "two")
        sel = p.query(f"SELECT id, v FROM {table} ORDER BY id")
        tup = p.query_tuples("SELECT $1::numeric AS d, $2::timestamptz AS t, $3::bytea AS b, $4::int AS z",
                             decimal.Decimal("1.50"), when, b"\x00\x01", None)
        upd = p.execute(f"UPDATE {table} SET v = upper(v) WHERE id >= $1", 1)
        empty = p.query(f"SELECT id FROM {table} WHERE id > $1", 100)
        plain = p.execute("SELECT 1 UNION ALL SELECT 2")
        ddl = p.execute("SET application_name = 'oxpg-pipeline-test'")
        assert not any(r.done for r in (ins, sel, tup, upd, empty, plain, ddl))
    assert all(r.done for r in (ins, sel, tup, upd, empty, plain, ddl))
    assert ins.result() == 2
    assert sel.result() == [{"id": 1, "v": "one"}, {"id": 2, "v": "two"}]  # sees the INSERT before it
    assert tup.result() == [(decimal.Decimal("1.50"), when, b"\x00\x01", None)]
    assert upd.result() == 2
    assert empty.result() == []
    assert plain.result() == 2
    assert ddl.result() == 0
    assert ins.result() == 2  # claiming again gives the same value
    assert other.query_tuples(f"SELECT id, v FROM {table} ORDER BY id") == [(1, "ONE"), (2, "TWO")]
    assert_idle_and_usable(client)


def test_reading_a_result_reads_everything_before_it(client: oxpg.Client) -> None:
    with client.pipeline() as p:
        results = [p.query("SELECT $1::int AS i", i) for i in range(10)]
        assert results[6].result() == [{"i": 6}]
        assert [r.done for r in results] == [True] * 7 + [False] * 3
        assert results[2].result() == [{"i": 2}]  # read already, in order
        later = p.query_tuples("SELECT 'later' AS s")
        assert later.result() == [("later",)]
        assert all(r.done for r in results)
    assert [r.result() for r in results] == [[{"i": i}] for i in range(10)]


def test_a_thousand_statements_in_order(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with client.pipeline() as p:
        inserts = [p.execute(f"INSERT INTO {table} (id, v) VALUES ($1, $2)", i, str(i)) for i in range(500)]
        selects = [p.query_tuples("SELECT $1::int * 2", i) for i in range(500)]
        count = p.query(f"SELECT count(*) AS n FROM {table}")
    assert [r.result() for r in inserts] == [1] * 500
    assert [r.result() for r in selects] == [[(i * 2,)] for i in range(500)]
    assert count.result() == [{"n": 500}]
    assert ids(other, table) == list(range(500))
    assert_idle_and_usable(client)


def test_empty_pipeline(client: oxpg.Client) -> None:
    with client.pipeline():
        pass
    with client.pipeline() as p:
        p.sync()
        p.sync()
    assert_idle_and_usable(client)


def test_results_survive_the_block_and_the_pipeline_closes(client: oxpg.Client) -> None:
    with client.pipeline() as p:
        r = p.query("SELECT 1 AS one")
    for call in (lambda: p.query("SELECT 1"), lambda: p.query_tuples("SELECT 1"), lambda: p.execute("SELECT 1"),
                 p.sync):
        with pytest.raises(oxpg.InterfaceError, match="closed"):
            call()
    assert r.result() == [{"one": 1}]
    # A new block works on the same client.
    with client.pipeline() as p2:
        r2 = p2.query("SELECT 2 AS two")
    assert r2.result() == [{"two": 2}]


def test_type_without_binary_decoder(client: oxpg.Client) -> None:
    """Described before it is queued, a statement with a column oxpg has no binary
    decoder for comes in text, so that column is the text form query() fetches."""
    with client.pipeline() as p:
        before = p.query("SELECT 1 AS a")
        fts = p.query("SELECT 'a fat cat'::tsvector AS v")
        after = p.query("SELECT 'a fat cat'::tsvector::text AS v")
        assert after.result() == [{"v": "'a' 'cat' 'fat'"}]
        assert fts.result() == [{"v": "'a' 'cat' 'fat'"}]
    assert client.query("SELECT 'a fat cat'::tsvector AS v") == fts.result()
    assert before.result() == [{"a": 1}]
    assert_idle_and_usable(client)


# ---- refused before anything is queued ----------------------------------------------------


def test_bad_parameters_are_refused_at_queue_time(client: oxpg.Client) -> None:
    with client.pipeline() as p:
        first = p.query("SELECT 1 AS one")
        with pytest.raises(oxpg.DataError, match=r"\$1"):
            p.query("SELECT $1::text AS a", object())
        with pytest.raises(oxpg.ProgrammingError, match="only"):
            p.execute("SELECT $1::int", 1, 2)
        with pytest.raises(oxpg.DataError, match="NUL"):
            p.query_tuples("SELECT 1\x00")
        last = p.query("SELECT 2 AS two")
    # Nothing was queued for the refused calls: the results line up.
    assert first.result() == [{"one": 1}]
    assert last.result() == [{"two": 2}]
    assert_idle_and_usable(client)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.query("SELECT 1"),
        lambda c: c.query_tuples("SELECT 1"),
        lambda c: c.execute("SELECT 1"),
        lambda c: c.execute("SELECT $1::int", 1),
        lambda c: c.executemany("SELECT $1::int", [(1,)]),
        lambda c: c.stream("SELECT 1"),
        lambda c: c.transaction().__enter__(),
        lambda c: c.pipeline().__enter__(),
    ],
    ids=["query", "query_tuples", "execute", "execute-params", "executemany", "stream", "transaction", "nested"],
)
def test_client_calls_inside_an_open_pipeline(client: oxpg.Client, call: Callable[[oxpg.Client], object]) -> None:
    with client.pipeline() as p:
        first = p.query("SELECT 1 AS one")
        with pytest.raises(oxpg.InterfaceError, match="pipeline"):
            call(client)
        second = p.query("SELECT 2 AS two")
        assert first.result() == [{"one": 1}]
    assert second.result() == [{"two": 2}]
    assert_idle_and_usable(client)


def test_closed_client(dsn: str) -> None:
    c = oxpg.connect(dsn)
    c.close()
    with pytest.raises(oxpg.InterfaceError, match="closed"):
        with c.pipeline():
            pass


def test_entering_a_pipeline_ends_a_running_stream(client: oxpg.Client) -> None:
    s = client.stream("SELECT i FROM generate_series(1, 10000000) i", chunk_size=2)
    assert next(s) == {"i": 1}
    with client.pipeline() as p:
        r = p.execute("SELECT 1")
    assert r.result() == 1
    assert next(s) == {"i": 2}
    with pytest.raises(oxpg.InterfaceError, match="another statement"):
        next(s)


@pytest.mark.parametrize("ended", ["finished", "abandoned"])
def test_first_query_after_a_stream_gets_all_its_rows(client: oxpg.Client, ended: str) -> None:
    """stream() puts libpq in single-row mode for its statement; the pipeline's first
    statement must not inherit it (it would come back as [] with no error)."""
    s = client.stream("SELECT i FROM generate_series(1, 100000) i", chunk_size=10)
    if ended == "finished":
        assert len(list(s)) == 100000
    else:
        assert next(s) == {"i": 1}
    with client.pipeline() as p:
        first = p.query("SELECT g FROM generate_series(1, 3) g")
        second = p.query_tuples("SELECT g FROM generate_series(1, 2) g")
    assert first.result() == [{"g": 1}, {"g": 2}, {"g": 3}]
    assert second.result() == [(1,), (2,)]
    assert_idle_and_usable(client)


# ---- errors and the implicit transaction ----------------------------------------------------


def test_error_in_the_middle(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    other.execute(f"INSERT INTO {table} (id, v) VALUES (2, 'there before')")
    with client.pipeline() as p:
        a = p.execute(f"INSERT INTO {table} (id, v) VALUES ($1, $2)", 1, "a")
        seen = p.query(f"SELECT id FROM {table} ORDER BY id")
        dup = p.execute(f"INSERT INTO {table} (id, v) VALUES ($1, $2)", 2, "dup")
        c = p.execute(f"INSERT INTO {table} (id, v) VALUES ($1, $2)", 3, "c")
        d = p.query("SELECT 1 AS one")
        assert a.result() == 1
        assert seen.result() == [{"id": 1}, {"id": 2}]
        with pytest.raises(oxpg.errors.UniqueViolation) as excinfo:
            dup.result()
        for later in (c, d):
            with pytest.raises(oxpg.PipelineAborted, match="pipeline aborted"):
                later.result()
    assert isinstance(excinfo.value, oxpg.IntegrityError)
    assert excinfo.value.sqlstate == "23505"
    assert excinfo.value.constraint_name == f"{table}_pkey"
    assert issubclass(oxpg.PipelineAborted, oxpg.OperationalError)
    # One implicit transaction: the INSERT of row 1 ran, and was rolled back with it.
    assert ids(other, table) == [2]
    assert_idle_and_usable(client)
    assert ids(client, table) == [2]


def test_sync_ends_the_implicit_transaction(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with client.pipeline() as p:
        a = p.execute(f"INSERT INTO {table} (id, v) VALUES ($1, 'a')", 1)
        p.sync()  # row 1 commits here, whatever comes next
        b = p.execute(f"INSERT INTO {table} (id, v) VALUES ($1, 'b')", 2)
        dup = p.execute(f"INSERT INTO {table} (id, v) VALUES ($1, 'dup')", 1)
        c = p.execute(f"INSERT INTO {table} (id, v) VALUES ($1, 'c')", 3)
        p.sync()  # ends the failed segment
        d = p.execute(f"INSERT INTO {table} (id, v) VALUES ($1, 'd')", 4)
        assert d.result() == 1
        assert (a.result(), b.result()) == (1, 1)
        with pytest.raises(oxpg.errors.UniqueViolation):
            dup.result()
        with pytest.raises(oxpg.PipelineAborted):
            c.result()
    # Row 1 committed before the failure; row 2 was rolled back with it; row 4 ran in a
    # new segment after the sync.
    assert ids(other, table) == [1, 4]
    assert_idle_and_usable(client)


def test_committed_segment_is_visible_before_the_block_ends(
    client: oxpg.Client, other: oxpg.Client, table: str
) -> None:
    with client.pipeline() as p:
        p.execute(f"INSERT INTO {table} (id, v) VALUES (1, 'a')")
        p.sync()
        r = p.query("SELECT 1 AS one")
        assert r.result() == [{"one": 1}]
        assert ids(other, table) == [1]
        p.execute(f"INSERT INTO {table} (id, v) VALUES (2, 'b')")
        # Not synced yet: another session does not see row 2.
        assert p.query("SELECT 2 AS two").result() == [{"two": 2}]
        assert ids(other, table) == [1]
    assert ids(other, table) == [1, 2]


def test_unclaimed_error_is_raised_at_exit(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with pytest.raises(oxpg.errors.UniqueViolation):
        with client.pipeline() as p:
            a = p.execute(f"INSERT INTO {table} (id, v) VALUES (1, 'a')")
            p.sync()
            p.execute(f"INSERT INTO {table} (id, v) VALUES (1, 'dup')")
            after = p.query("SELECT 1 AS one")
    # Nothing lost: every statement has its outcome, and the client is clean.
    assert a.result() == 1
    assert after.done
    with pytest.raises(oxpg.PipelineAborted):
        after.result()
    assert ids(other, table) == [1]
    assert_idle_and_usable(client)


def test_claimed_errors_are_not_raised_again_at_exit(client: oxpg.Client, table: str) -> None:
    with client.pipeline() as p:
        dup = p.execute(f"INSERT INTO {table} (id, v) VALUES (1, 'a'), (1, 'dup')")
        after = p.query("SELECT 1 AS one")
        p.sync()
        fine = p.query("SELECT 2 AS two")
        with pytest.raises(oxpg.errors.UniqueViolation):
            dup.result()
        with pytest.raises(oxpg.PipelineAborted):
            after.result()
    assert fine.result() == [{"two": 2}]
    assert_idle_and_usable(client)


def test_an_unclaimed_aborted_statement_is_raised_at_exit(client: oxpg.Client) -> None:
    """Claiming the failure does not tell that a later statement never ran: the block
    says so when it ends (PipelineAborted), so no outcome goes unseen."""
    with pytest.raises(oxpg.PipelineAborted):
        with client.pipeline() as p:
            bad = p.execute("SELECT 1 / 0")
            never_ran = p.execute("SELECT 1")
            with pytest.raises(oxpg.errors.DivisionByZero):
                bad.result()
    assert never_ran.done
    assert_idle_and_usable(client)


def test_exception_in_the_body_drains_and_propagates(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with pytest.raises(KeyError, match="body"):
        with client.pipeline() as p:
            ins = p.execute(f"INSERT INTO {table} (id, v) VALUES (1, 'a')")
            p.execute(f"INSERT INTO {table} (id, v) VALUES (1, 'dup')")  # its error must not replace KeyError
            slow = p.query("SELECT pg_sleep(0.2) IS NULL AS slept")
            raise KeyError("body")
    assert ins.done and slow.done
    assert ins.result() == 1
    # The queued statements were synced and read; the failure rolled row 1 back.
    assert ids(other, table) == []
    assert_idle_and_usable(client)


def test_inside_a_transaction_block(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    client.execute("BEGIN")
    with client.pipeline() as p:
        p.execute(f"INSERT INTO {table} (id, v) VALUES (1, 'a')")
        p.sync()  # inside BEGIN a sync does not commit
        r = p.query(f"SELECT count(*) AS n FROM {table}")
    assert r.result() == [{"n": 1}]
    assert client.transaction_status == oxpg.TransactionStatus.IN_TRANSACTION
    assert ids(other, table) == []
    client.execute("INSERT INTO " + table + " (id, v) VALUES (2, 'b')")
    client.execute("COMMIT")
    assert ids(other, table) == [1, 2]

    # A failure inside the block leaves the transaction failed, as a failing execute() would.
    client.execute("BEGIN")
    with pytest.raises(oxpg.errors.UniqueViolation):
        with client.pipeline() as p:
            p.execute(f"INSERT INTO {table} (id, v) VALUES (3, 'c')")
            p.execute(f"INSERT INTO {table} (id, v) VALUES (1, 'dup')")
    assert client.transaction_status == oxpg.TransactionStatus.IN_ERROR
    client.execute("ROLLBACK")
    assert ids(other, table) == [1, 2]
    assert_idle_and_usable(client)


def test_inside_client_transaction(client: oxpg.Client, other: oxpg.Client, table: str) -> None:
    with client.transaction():
        with client.pipeline() as p:
            for i in range(5):
                p.execute(f"INSERT INTO {table} (id, v) VALUES ($1, 'x')", i)
        assert client.in_transaction
        assert ids(other, table) == []
    assert ids(other, table) == [0, 1, 2, 3, 4]
    with pytest.raises(oxpg.errors.UniqueViolation):
        with client.transaction():
            client.execute(f"DELETE FROM {table}")
            with client.pipeline() as p:
                p.execute(f"INSERT INTO {table} (id, v) VALUES (9, 'x'), (9, 'y')")
    assert ids(other, table) == [0, 1, 2, 3, 4]
    assert_idle_and_usable(client)


def test_copy_in_a_pipeline_fails_without_hanging(dsn: str) -> None:
    """COPY cannot run in a pipeline; it must fail (and the client stay usable), never
    spin. In a child process, so a hang fails the test instead of stalling the suite."""
    child = textwrap.dedent(
        """
        import json, sys, oxpg
        c = oxpg.connect(sys.argv[1])
        c.execute("CREATE TEMP TABLE t (i int)")
        out = {}
        for sql in ("COPY t TO STDOUT", "COPY t FROM STDIN"):
            try:
                with c.pipeline() as p:
                    r = p.query(sql)
                    after = p.query("SELECT 1 AS one")
                    try:
                        out[sql] = ["result", r.result()]
                    except Exception as e:
                        out[sql] = [type(e).__name__, str(e)]
            except Exception as e:
                out[sql] = ["at exit", type(e).__name__, str(e)]
            out[sql].append(c.query("SELECT 2 AS two"))
        print(json.dumps(out))
        """
    )
    try:
        proc = subprocess.run([sys.executable, "-c", child, dsn], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("COPY in a pipeline hung (still running after 10 s)")
    assert proc.returncode == 0, proc.stderr
    for sql, outcome in json.loads(proc.stdout).items():
        assert outcome[0] != "result", (sql, outcome)
        assert outcome[-1] == [{"two": 2}], (sql, outcome)


# ---- one round trip ---------------------------------------------------------------------


class LatencyProxy:
    """A TCP forwarder that delays every byte by `delay` seconds each way without
    limiting throughput: a round trip costs 2 * delay, however much is in flight."""

    def __init__(self, host: str, port: int, delay: float) -> None:
        self.target = (host, port)
        self.delay = delay
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            up = socket.create_connection(self.target)
            self.sockets += [down, up]
            for src, dst in ((down, up), (up, down)):
                queue: list[tuple[float, int, bytes]] = []
                ready = threading.Condition()
                threading.Thread(target=self._read, args=(src, queue, ready), daemon=True).start()
                threading.Thread(target=self._write, args=(dst, queue, ready), daemon=True).start()

    def _read(self, src: socket.socket, queue: list[tuple[float, int, bytes]], ready: threading.Condition) -> None:
        seq = 0
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            with ready:
                heapq.heappush(queue, (time.monotonic() + self.delay, seq, data))
                ready.notify()
            seq += 1
            if not data:
                return

    def _write(self, dst: socket.socket, queue: list[tuple[float, int, bytes]], ready: threading.Condition) -> None:
        while True:
            with ready:
                while not queue:
                    ready.wait()
                due, _, data = heapq.heappop(queue)
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture
def slow_url(dsn: str) -> Iterator[str]:
    if "://" not in dsn:
        pytest.skip("needs a URI DSN to point at the proxy")
    parts = urlsplit(dsn)
    assert parts.hostname is not None and parts.port is not None
    proxy = LatencyProxy(parts.hostname, parts.port, delay=0.025)
    yield urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0] + f":{proxy.port}"))
    proxy.close()


def test_one_round_trip_for_the_batch(slow_url: str, table: str, record_property: Callable[[str, Any], None]) -> None:
    """Through a link with 50 ms round trips, 1000 statements in a pipeline cost about
    one round trip; the same statements one by one would take 50 s."""
    with oxpg.connect(slow_url) as client:
        rtts = []
        for _ in range(3):
            start = time.monotonic()
            client.query("SELECT 1")
            rtts.append(time.monotonic() - start)
        rtt = statistics.median(rtts)
        assert rtt >= 0.045, f"the proxy does not delay ({rtt * 1000:.1f} ms)"

        start = time.monotonic()
        with client.pipeline() as p:
            results = [
                p.execute(f"INSERT INTO {table} (id, v) VALUES ($1, $2)", i, str(i))
                if i % 2
                else p.query("SELECT $1::int AS i", i)
                for i in range(1000)
            ]
        elapsed = time.monotonic() - start
        summary = f"1000 pipelined statements: {elapsed * 1000:.0f} ms; one round trip: {rtt * 1000:.0f} ms"
        record_property("pipeline_round_trips", summary)
        print(summary)
        assert [r.result() for r in results] == [1 if i % 2 else [{"i": i}] for i in range(1000)]
        # Coarse: a few round trips at most (sequentially it would be 1000).
        assert elapsed < 4 * rtt + 0.2, summary

        # Claiming a result mid-block costs one more round trip, not one per statement.
        start = time.monotonic()
        with client.pipeline() as p:
            first = [p.query("SELECT $1::int AS i", i) for i in range(300)]
            assert first[-1].result() == [{"i": 299}]
            second = [p.query("SELECT $1::int AS i", i) for i in range(300)]
        elapsed = time.monotonic() - start
        assert second[-1].result() == [{"i": 299}]
        assert elapsed < 6 * rtt + 0.2, f"{elapsed * 1000:.0f} ms for two batches; rtt {rtt * 1000:.0f} ms"


# ---- timeouts ------------------------------------------------------------------------------
# Against a server that is busy; against one that cannot be heard (a network black hole):
# tests/faults/test_timeout.py.


def still_sleeping(observer: oxpg.Client, pid: int) -> bool:
    sql = "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND strpos(query, 'pg_sleep') > 0"
    return bool(observer.query(sql, pid))


def warm(client: oxpg.Client, *sqls: str) -> None:
    """Run each statement once, so a pipeline finds it described and queues it
    without waiting for the statements before it."""
    for sql in sqls:
        client.query(sql.replace("pg_sleep(5)", "pg_sleep(0)"))


def test_result_timeout_cancels_and_the_client_goes_on(client: oxpg.Client, other: oxpg.Client) -> None:
    warm(client, "SELECT 2 AS two")
    with client.pipeline() as p:
        before = p.query("SELECT 1 AS one")
        p.sync()  # the server sends results at a sync (or a flush), so this one comes first
        slow = p.query("SELECT pg_sleep(5)")
        after = p.query("SELECT 2 AS two")
        start = time.monotonic()
        with pytest.raises(oxpg.QueryTimeoutError):
            slow.result(timeout=0.3)
        assert time.monotonic() - start < 0.3 + 2
        assert before.result() == [{"one": 1}], "read before the slow statement"
        with pytest.raises(oxpg.InterfaceError, match="interrupted"):
            after.result()
    assert not still_sleeping(other, client.backend_pid)
    assert_idle_and_usable(client)


def test_timeout_with_statements_queued_after_a_sync(client: oxpg.Client) -> None:
    """Giving the pipeline up reads to the end of what was queued, unsynced
    statements after the last sync included, so the client stays in step."""
    warm(client, "SELECT 2 AS two")
    with client.pipeline() as p:
        slow = p.query("SELECT pg_sleep(5)")
        p.sync()
        p.query("SELECT 2 AS two")
        with pytest.raises(oxpg.QueryTimeoutError):
            slow.result(timeout=0.3)
    assert_idle_and_usable(client)


def test_pipeline_timeout_bounds_the_read_at_exit(client: oxpg.Client) -> None:
    start = time.monotonic()
    with pytest.raises(oxpg.QueryTimeoutError):
        with client.pipeline(timeout=0.3) as p:
            p.execute("SELECT pg_sleep(5)")
    assert time.monotonic() - start < 0.3 + 2
    assert_idle_and_usable(client)


def test_result_timeout_covers_the_results_before_it(client: oxpg.Client) -> None:
    """result() reads the results queued before its own: its timeout covers them all,
    not each one. (The syncs make the server send each result as it is ready: each
    arrives well within the timeout, all of them do not.)"""
    warm(client, "SELECT 1 AS one")
    with client.pipeline() as p:
        for _ in range(3):
            p.execute("SELECT pg_sleep(0.2)")
            p.sync()
        last = p.query("SELECT 1 AS one")
        start = time.monotonic()
        with pytest.raises(oxpg.QueryTimeoutError):
            last.result(timeout=0.5)
        assert time.monotonic() - start < 0.5 + 2
    assert_idle_and_usable(client)


def test_a_new_statement_waits_for_the_ones_before_it_within_the_timeout(client: oxpg.Client) -> None:
    """A statement this client has not run is described before it is queued (its
    result format and types must be known first), which needs the results of what
    is queued before it: queuing it waits for them, bounded by the pipeline's
    timeout, and a statement already described is queued at once."""
    warm(client, "SELECT 2 AS two")
    with client.pipeline(timeout=0.5) as p:
        p.query("SELECT pg_sleep(5)")
        start = time.monotonic()
        p.query("SELECT 2 AS two")
        assert time.monotonic() - start < 0.4, "a described statement is queued without waiting"
        with pytest.raises(oxpg.QueryTimeoutError):
            p.query("SELECT 3 AS three")  # new: waits for pg_sleep, up to the timeout
        assert time.monotonic() - start < 0.5 + 2
    assert_idle_and_usable(client)
    with client.pipeline() as p:
        first = p.query("SELECT 1 AS one")
        new = p.query("SELECT 4 AS four")
    assert first.result() == [{"one": 1}] and new.result() == [{"four": 4}]


def test_command_timeout_applies_to_pipelines(dsn: str) -> None:
    with oxpg.connect(dsn, command_timeout=0.3) as c:
        with c.pipeline() as p:
            slow = p.query("SELECT pg_sleep(5)")
            with pytest.raises(oxpg.QueryTimeoutError):
                slow.result()
        assert_idle_and_usable(c)
        # A call's own timeout, or the pipeline's, overrides it; inf is none.
        with c.pipeline(timeout=float("inf")) as p:
            done = p.query("SELECT pg_sleep(0.5) AS s")
        assert done.result() == [{"s": None}]
        with c.pipeline() as p:
            done = p.query("SELECT pg_sleep(0.5) AS s")
            assert done.result(timeout=5) == [{"s": None}]


def test_bad_timeout_leaves_the_pipeline_running(client: oxpg.Client) -> None:
    with client.pipeline() as p:
        r = p.query("SELECT 1 AS one")
        with pytest.raises(ValueError, match="timeout"):
            r.result(timeout=0)
        with pytest.raises(TypeError, match="timeout must be a number of seconds"):
            p.sync(timeout="1")
        assert not r.done
        assert r.result() == [{"one": 1}]
        p.sync(timeout=5)
        assert p.query("SELECT 2 AS two").result(timeout=5) == [{"two": 2}]
    assert_idle_and_usable(client)
