"""The Client surface: query, query_tuples, execute, close, state, repr, notices.

The acceptance list of issue 2 ("API"), plus RELIABILITY.md rows 16 (NUL in the query),
18 (client_encoding changed with SET), 25 (empty query), 26 (no stderr spam) and 30
(ResourceWarning for unclosed connections).
"""

from __future__ import annotations

import gc
import threading
import time
import warnings

import pytest

import oxpg
from oxpg import _oxpg


@pytest.fixture
def other(dsn: str):
    """A second connection, for looking at the first one from the server's side."""
    with oxpg.connect(dsn) as c:
        yield c


@pytest.fixture
def table(client: oxpg.Client) -> str:
    """A temporary table private to `client` (temp tables are per session)."""
    client.execute("CREATE TEMP TABLE items (id int PRIMARY KEY, name text)")
    return "items"


def backend_alive(observer: oxpg.Client, pid: int) -> bool:
    return observer.query_tuples("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) == [(1,)]


def wait_backend_gone(observer: oxpg.Client, pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not backend_alive(observer, pid):
            return True
        time.sleep(0.05)
    return False


# ---- query / query_tuples ------------------------------------------------------------


def test_query_returns_a_list_of_dicts(client):
    rows = client.query("SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, 'y'")
    assert rows == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert type(rows) is list and all(type(r) is dict for r in rows)


def test_query_tuples_returns_a_list_of_tuples(client):
    rows = client.query_tuples("SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, 'y'")
    assert rows == [(1, "x"), (2, "y")]
    assert type(rows) is list and all(type(r) is tuple for r in rows)


def test_query_with_no_rows_returns_empty_list(client):
    assert client.query("SELECT 1 AS a WHERE false") == []
    assert client.query_tuples("SELECT 1 AS a WHERE false") == []


def test_query_binds_parameters(client):
    assert client.query("SELECT $1::int + $2::int AS s", 2, 3) == [{"s": 5}]


def test_query_on_a_command_returns_empty_list(client):
    assert client.query("CREATE TEMP TABLE q_cmd (x int)") == []
    assert client.query("INSERT INTO q_cmd VALUES (1)") == []
    assert client.query_tuples("UPDATE q_cmd SET x = 2") == []


def test_query_keeps_column_order(client):
    names = [f"c{i}" for i in range(19, -1, -1)]  # c19 .. c0: not sorted, not insertion-hashed
    sql = "SELECT " + ", ".join(f"{i} AS {name}" for i, name in enumerate(names))
    (row,) = client.query(sql)
    assert list(row) == names
    assert list(row.values()) == list(range(20))


def test_query_tuples_keeps_column_order(client):
    names = [f"c{i}" for i in range(19, -1, -1)]
    sql = "SELECT " + ", ".join(f"{i} AS {name}" for i, name in enumerate(names))
    assert client.query_tuples(sql) == [tuple(range(20))]


def test_query_keeps_select_star_column_order(client):
    client.execute("CREATE TEMP TABLE order_t (zeta int, alpha int, mid int)")
    client.execute("INSERT INTO order_t VALUES (1, 2, 3)")
    (row,) = client.query("SELECT * FROM order_t")
    assert list(row.items()) == [("zeta", 1), ("alpha", 2), ("mid", 3)]


def test_duplicate_column_names_in_query_raise_programming_error(client):
    with pytest.raises(oxpg.ProgrammingError):
        client.query("SELECT 1 AS a, 2 AS a")


def test_duplicate_column_names_from_a_join_raise_programming_error(client):
    with pytest.raises(oxpg.ProgrammingError):
        client.query("SELECT * FROM (SELECT 1 AS id) x JOIN (SELECT 1 AS id) y USING (id), (SELECT 2 AS id) z")


def test_duplicate_column_names_leave_the_client_usable(client):
    with pytest.raises(oxpg.ProgrammingError):
        client.query("SELECT 1 AS a, 2 AS a")
    assert client.query("SELECT 3 AS a") == [{"a": 3}]


def test_duplicate_column_names_in_query_tuples_keep_both_values(client):
    assert client.query_tuples("SELECT 1 AS a, 2 AS a") == [(1, 2)]


def test_returning_goes_through_query(client, table):
    rows = client.query(f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b') RETURNING id, name")
    assert rows == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    assert client.query(f"UPDATE {table} SET name = $1 WHERE id = 2 RETURNING name", "z") == [{"name": "z"}]
    assert client.query_tuples(f"DELETE FROM {table} WHERE id = 1 RETURNING id") == [(1,)]


# ---- execute ----------------------------------------------------------------------------


@pytest.fixture
def filled(client: oxpg.Client, table: str) -> str:
    client.execute(f"INSERT INTO {table} SELECT g, 'n' || g FROM generate_series(1, 5) g")
    return table


@pytest.mark.parametrize("with_params", [False, True], ids=["simple", "params"])
def test_execute_insert_returns_rowcount(client, table, with_params):
    if with_params:
        assert client.execute(f"INSERT INTO {table} SELECT g, 'x' FROM generate_series(1, $1) g", 3) == 3
    else:
        assert client.execute(f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b'), (3, 'c')") == 3


@pytest.mark.parametrize("with_params", [False, True], ids=["simple", "params"])
def test_execute_update_returns_rowcount(client, filled, with_params):
    if with_params:
        assert client.execute(f"UPDATE {filled} SET name = 'u' WHERE id <= $1", 2) == 2
    else:
        assert client.execute(f"UPDATE {filled} SET name = 'u' WHERE id <= 2") == 2


@pytest.mark.parametrize("with_params", [False, True], ids=["simple", "params"])
def test_execute_delete_returns_rowcount(client, filled, with_params):
    if with_params:
        assert client.execute(f"DELETE FROM {filled} WHERE id > $1", 1) == 4
    else:
        assert client.execute(f"DELETE FROM {filled} WHERE id > 1") == 4


def test_execute_update_matching_nothing_returns_zero(client, filled):
    assert client.execute(f"UPDATE {filled} SET name = 'u' WHERE id > 100") == 0


@pytest.mark.parametrize("with_params", [False, True], ids=["simple", "params"])
def test_execute_select_returns_row_count(client, with_params):
    if with_params:
        assert client.execute("SELECT * FROM generate_series(1, $1)", 4) == 4
    else:
        assert client.execute("SELECT * FROM generate_series(1, 4)") == 4


def test_execute_create_returns_zero(client):
    assert client.execute("CREATE TEMP TABLE created_t (x int)") == 0


@pytest.mark.parametrize("sql", ["SET search_path TO public", "BEGIN", "DO $$ BEGIN END $$"])
def test_execute_commands_without_a_count_return_zero(client, sql):
    assert client.execute(sql) == 0


def test_execute_returns_an_int(client, filled):
    assert type(client.execute(f"UPDATE {filled} SET name = 'u'")) is int


def test_execute_runs_several_statements_without_params(client):
    n = client.execute(
        "CREATE TEMP TABLE multi (x int); "
        "INSERT INTO multi VALUES (1), (2), (3); "
        "UPDATE multi SET x = x * 10 WHERE x > 1"
    )
    assert n == 2  # the last statement's count
    assert client.query_tuples("SELECT x FROM multi ORDER BY x") == [(1,), (20,), (30,)]


def test_execute_several_statements_with_params_is_refused(client):
    with pytest.raises(oxpg.ProgrammingError):
        client.execute("SELECT $1::int; SELECT 2", 1)
    assert client.query_tuples("SELECT 1") == [(1,)]


def test_execute_stops_at_the_failing_statement(client):
    client.execute("CREATE TEMP TABLE stop_t (x int)")
    with pytest.raises(oxpg.DatabaseError):
        client.execute("INSERT INTO stop_t VALUES (1); SELECT 1/0; INSERT INTO stop_t VALUES (2)")
    # The simple protocol runs the string as one implicit transaction.
    assert client.query_tuples("SELECT count(*) FROM stop_t") == [(0,)]


# ---- bad statements ------------------------------------------------------------------


@pytest.mark.parametrize("sql", ["", "   ", "-- nothing but a comment", ";"])
@pytest.mark.parametrize("method", ["query", "query_tuples", "execute"])
def test_empty_query_raises_programming_error(client, method, sql):
    with pytest.raises(oxpg.ProgrammingError):
        getattr(client, method)(sql)
    assert client.query_tuples("SELECT 1") == [(1,)]


@pytest.mark.parametrize("method", ["query", "query_tuples", "execute"])
def test_nul_in_sql_raises_data_error_and_runs_nothing(client, method):
    client.execute("CREATE TEMP TABLE nul_t (x int)")
    with pytest.raises(oxpg.DataError):
        getattr(client, method)("INSERT INTO nul_t VALUES (1)\x00; DROP TABLE nul_t")
    assert client.query_tuples("SELECT count(*) FROM nul_t") == [(0,)]


@pytest.mark.parametrize("method", ["query", "query_tuples", "execute"])
def test_sql_must_be_str(client, method):
    with pytest.raises(TypeError):
        getattr(client, method)(b"SELECT 1")


# ---- close, closed, broken, use after close -----------------------------------------------


def test_new_client_is_open(client):
    assert client.closed is False
    assert client.broken is False


def test_close_sets_closed_not_broken(dsn):
    c = oxpg.connect(dsn)
    c.close()
    assert c.closed is True
    assert c.broken is False


def test_close_is_idempotent(dsn):
    c = oxpg.connect(dsn)
    assert c.close() is None
    assert c.close() is None
    assert c.closed is True


def test_close_ends_the_server_session(dsn, other):
    c = oxpg.connect(dsn)
    pid = c.backend_pid
    assert backend_alive(other, pid)
    c.close()
    assert wait_backend_gone(other, pid)


USES = {
    "query": lambda c: c.query("SELECT 1"),
    "query_params": lambda c: c.query("SELECT $1::int", 1),
    "query_tuples": lambda c: c.query_tuples("SELECT 1"),
    "execute": lambda c: c.execute("SELECT 1"),
    "execute_params": lambda c: c.execute("SELECT $1::int", 1),
    "server_version": lambda c: c.server_version,
    "backend_pid": lambda c: c.backend_pid,
}


@pytest.mark.parametrize("use", USES.values(), ids=USES.keys())
def test_use_after_close_raises_interface_error(dsn, use):
    c = oxpg.connect(dsn)
    c.close()
    with pytest.raises(oxpg.InterfaceError):
        use(c)


def test_backend_terminated_makes_client_closed_and_broken(client, other):
    pid = client.backend_pid
    other.query("SELECT pg_terminate_backend($1)", pid)
    assert wait_backend_gone(other, pid)
    with pytest.raises(oxpg.OperationalError):
        client.query("SELECT 1")
    assert client.closed is True
    assert client.broken is True


def test_broken_client_keeps_raising_and_close_is_fine(client, other):
    pid = client.backend_pid
    other.query("SELECT pg_terminate_backend($1)", pid)
    assert wait_backend_gone(other, pid)
    with pytest.raises(oxpg.OperationalError):
        client.execute("SELECT 1")
    with pytest.raises((oxpg.OperationalError, oxpg.InterfaceError)):
        client.execute("SELECT 1")
    client.close()
    assert client.closed is True


def test_server_error_leaves_client_open(client):
    with pytest.raises(oxpg.ProgrammingError):
        client.query("SELEC 1")
    assert client.closed is False
    assert client.broken is False
    assert client.query_tuples("SELECT 1") == [(1,)]


# ---- context manager ---------------------------------------------------------------------


def test_context_manager_returns_the_client_and_closes_it(dsn):
    c = oxpg.connect(dsn)
    with c as entered:
        assert entered is c
        assert c.query_tuples("SELECT 1") == [(1,)]
    assert c.closed is True


def test_context_manager_closes_on_exception_and_propagates_it(dsn):
    with pytest.raises(ZeroDivisionError):
        with oxpg.connect(dsn) as c:
            1 / 0
    assert c.closed is True


def test_context_manager_propagates_database_errors(dsn):
    with pytest.raises(oxpg.ProgrammingError):
        with oxpg.connect(dsn) as c:
            c.query("SELEC 1")
    assert c.closed is True


def test_context_manager_exit_ends_the_server_session(dsn, other):
    with oxpg.connect(dsn) as c:
        pid = c.backend_pid
    assert wait_backend_gone(other, pid)


# ---- attributes and repr ---------------------------------------------------------------


@pytest.fixture
def parts(dsn: str) -> dict[str, str]:
    return dict(_oxpg.conninfo_parse(dsn))


def test_connection_attributes(client, parts):
    assert client.host == parts.get("host", client.host)
    assert str(client.port) == parts.get("port", str(client.port))
    assert client.dbname == parts["dbname"]
    assert client.user == parts["user"]


def test_connection_attributes_survive_close(dsn, parts):
    c = oxpg.connect(dsn)
    c.close()
    assert c.dbname == parts["dbname"]
    assert c.user == parts["user"]


def test_server_version_matches_the_server(client):
    (num,) = client.query_tuples("SELECT current_setting('server_version_num')::int")[0]
    assert type(client.server_version) is int
    assert client.server_version == num


def test_backend_pid_matches_the_server(client):
    assert type(client.backend_pid) is int
    assert client.query_tuples("SELECT pg_backend_pid()") == [(client.backend_pid,)]


FACTS = ["backend_pid", "server_version", "host", "port", "dbname", "user", "closed", "broken"]


@pytest.mark.parametrize("fact", FACTS)
def test_facts_answer_while_another_thread_runs_a_statement(client, other, fact):
    """A watchdog reads backend_pid to kill a stuck query: read-only facts about the
    connection never wait for the statement that holds the client."""
    expected = getattr(client, fact)
    pid = client.backend_pid
    key = 0x0A1B2C
    other.query("SELECT pg_advisory_lock($1)", key)
    stuck = threading.Thread(target=client.query, args=("SELECT pg_advisory_xact_lock($1)", key), daemon=True)
    stuck.start()
    try:
        deadline = time.monotonic() + 10
        while other.query_value("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid) != "Lock":
            assert time.monotonic() < deadline, "the statement never started waiting for the lock"
            time.sleep(0.01)
        got: list[object] = []
        reader = threading.Thread(target=lambda: got.append(getattr(client, fact)), daemon=True)
        reader.start()
        reader.join(5)
        assert got == [expected], f"client.{fact} waited for the running statement"
        assert stuck.is_alive(), "the statement ended before the fact was read"
    finally:
        other.query("SELECT pg_advisory_unlock($1)", key)
        stuck.join(10)
    assert client.query_value("SELECT pg_backend_pid()") == pid


def test_repr_names_user_host_port_db(client):
    text = repr(client)
    assert text.startswith("<oxpg.Client ")
    assert text.endswith(">")
    for field, value in (("user", client.user), ("host", client.host), ("port", client.port), ("db", client.dbname)):
        assert f"{field}=" in text
        assert str(value) in text
    assert "closed" not in text


def test_repr_says_closed_after_close(dsn):
    c = oxpg.connect(dsn)
    c.close()
    assert repr(c).endswith(" closed>")


def test_repr_has_no_password(client, parts):
    if not parts.get("password"):
        pytest.skip("the test DSN has no password")
    assert parts["password"] not in repr(client)
    assert parts["password"] not in str(client)


# ---- garbage collection -----------------------------------------------------------------


def test_unclosed_client_warns_when_collected(dsn):
    c = oxpg.connect(dsn)
    with pytest.warns(ResourceWarning, match="unclosed"):
        del c
        gc.collect()


def test_resource_warning_has_no_password(dsn, parts):
    if not parts.get("password"):
        pytest.skip("the test DSN has no password")
    c = oxpg.connect(dsn)
    with pytest.warns(ResourceWarning) as record:
        del c
        gc.collect()
    assert all(parts["password"] not in str(w.message) for w in record)


def test_collected_client_ends_the_server_session(dsn, other):
    c = oxpg.connect(dsn)
    pid = c.backend_pid
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del c
        gc.collect()
    assert wait_backend_gone(other, pid)


def test_closed_client_does_not_warn_when_collected(dsn):
    c = oxpg.connect(dsn)
    c.close()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        del c
        gc.collect()
    assert [w for w in record if issubclass(w.category, ResourceWarning)] == []


def test_context_managed_client_does_not_warn_when_collected(dsn):
    with oxpg.connect(dsn) as c:
        pass
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        del c
        gc.collect()
    assert [w for w in record if issubclass(w.category, ResourceWarning)] == []


# ---- notices -----------------------------------------------------------------------------

NOTICE_DO = "DO $$ BEGIN RAISE NOTICE 'oxpg says %', 42; END $$"


def test_notice_from_execute_is_taken(client):
    client.execute(NOTICE_DO)
    notices = client.take_notices()
    assert len(notices) == 1
    assert "oxpg says 42" in notices[0]
    assert all(type(n) is str for n in notices)


def test_notice_from_query_is_taken(client):
    client.query(NOTICE_DO)
    assert any("oxpg says 42" in n for n in client.take_notices())


def test_take_notices_forgets_what_it_returned(client):
    client.execute(NOTICE_DO)
    assert len(client.take_notices()) == 1
    assert client.take_notices() == []


def test_no_notices_gives_empty_list(client):
    client.query("SELECT 1")
    assert client.take_notices() == []


def test_notices_keep_their_order(client):
    client.execute("DO $$ BEGIN RAISE NOTICE 'first'; RAISE NOTICE 'second'; RAISE WARNING 'third'; END $$")
    notices = client.take_notices()
    assert len(notices) == 3
    assert "first" in notices[0] and "second" in notices[1] and "third" in notices[2]


def test_notices_before_an_error_are_kept(client):
    with pytest.raises(oxpg.DatabaseError):
        client.execute("DO $$ BEGIN RAISE NOTICE 'before the error'; PERFORM 1/0; END $$")
    assert any("before the error" in n for n in client.take_notices())


def test_notices_are_not_printed_to_stderr(client, capfd):
    client.execute(NOTICE_DO)
    client.query(NOTICE_DO)
    client.execute("DO $$ BEGIN RAISE WARNING 'oxpg warns'; END $$")
    out, err = capfd.readouterr()
    assert "oxpg says" not in err and "oxpg warns" not in err
    assert err == ""
    assert out == ""


def test_notice_queue_is_bounded_and_keeps_the_newest(client, capfd):
    client.execute("DO $$ BEGIN FOR i IN 1..500 LOOP RAISE NOTICE 'n%', i; END LOOP; END $$")
    notices = client.take_notices()
    assert 0 < len(notices) < 500
    assert notices[-1].endswith("n500")
    assert capfd.readouterr().err == ""


# ---- COPY is refused; the client stays in sync ----------------------------------------------


@pytest.fixture
def copy_table(client: oxpg.Client) -> str:
    client.execute("CREATE TEMP TABLE copy_t (x int)")
    client.execute("INSERT INTO copy_t VALUES (1), (2), (3)")
    return "copy_t"


@pytest.mark.parametrize("method", ["query", "query_tuples", "execute"])
def test_copy_to_stdout_raises_not_supported(client, copy_table, method):
    with pytest.raises(oxpg.NotSupportedError):
        getattr(client, method)(f"COPY {copy_table} TO STDOUT")
    assert client.query_tuples(f"SELECT count(*) FROM {copy_table}") == [(3,)]


@pytest.mark.parametrize("method", ["query", "query_tuples", "execute"])
def test_copy_from_stdin_raises_not_supported(client, copy_table, method):
    with pytest.raises(oxpg.NotSupportedError):
        getattr(client, method)(f"COPY {copy_table} FROM STDIN")
    assert client.closed is False


def test_copy_from_stdin_inserts_nothing_and_client_stays_usable(client, copy_table):
    with pytest.raises(oxpg.Error):
        client.execute(f"COPY {copy_table} FROM STDIN")
    assert client.query_tuples(f"SELECT count(*) FROM {copy_table}") == [(3,)]
    assert client.execute(f"INSERT INTO {copy_table} VALUES (4)") == 1


def test_copy_inside_a_multi_statement_execute_is_refused(client, copy_table):
    with pytest.raises(oxpg.NotSupportedError):
        client.execute(f"SELECT 1; COPY {copy_table} TO STDOUT; SELECT 2")
    assert client.query_tuples("SELECT 5") == [(5,)]


# ---- client_encoding must stay UTF8 (RELIABILITY.md row 18) --------------------------------

ENCODING_CHANGES = {
    "execute_set": lambda c: c.execute("SET client_encoding TO 'LATIN1'"),
    "query_set": lambda c: c.query("SET client_encoding TO 'LATIN1'"),
    "set_config": lambda c: c.query("SELECT set_config('client_encoding', 'LATIN1', false)"),
    "multi_statement": lambda c: c.execute("SELECT 1; SET client_encoding TO 'SQL_ASCII'; SELECT 2"),
}


@pytest.mark.parametrize("change", ENCODING_CHANGES.values(), ids=ENCODING_CHANGES.keys())
def test_client_encoding_change_is_refused(client, change):
    with pytest.raises(oxpg.InterfaceError):
        change(client)


@pytest.mark.parametrize("change", ENCODING_CHANGES.values(), ids=ENCODING_CHANGES.keys())
def test_client_encoding_is_reset_to_utf8(client, change):
    with pytest.raises(oxpg.InterfaceError):
        change(client)
    assert client.query_tuples("SHOW client_encoding") == [("UTF8",)]
    assert client.query_tuples("SELECT 'é€😀'::text || $1", "ß") == [("é€😀ß",)]


def test_set_client_encoding_utf8_is_allowed(client):
    assert client.execute("SET client_encoding TO 'UTF8'") == 0
    assert client.query_tuples("SELECT 'é'") == [("é",)]
