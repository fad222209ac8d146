"""Errors raised by a real server: PEP 249 classes, SQLSTATE subclasses, diagnostics.

Each diagnostic attribute is checked with a statement that makes the server send it.
tests/test_errors_generated.py covers the generated classes without a server.
"""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Iterator

import pytest

import oxpg
from oxpg import errors

DIAGNOSTICS = (
    "sqlstate", "severity", "detail", "hint", "position", "context",
    "schema_name", "table_name", "column_name", "constraint_name",
)  # fmt: skip


def catch(client: oxpg.Client, sql: str, *params: object) -> oxpg.Error:
    """Run sql, which must fail, and return the exception."""
    with pytest.raises(oxpg.Error) as info:
        client.query(sql, *params)
    return info.value


def raise_sql(sqlstate: str, message: str = "boom", **using: str) -> str:
    """A DO block raising message with the given SQLSTATE and USING options."""
    options = "".join(f", {key.upper()} = '{value}'" for key, value in using.items())
    return f"DO $$ BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = '{sqlstate}'{options}; END $$"


@pytest.fixture
def tables(client: oxpg.Client) -> Iterator[str]:
    """A parent/child pair of tables with one constraint of each kind; yields the schema."""
    schema = f"errs_{uuid.uuid4().hex[:10]}"
    client.execute(
        f"""
        CREATE SCHEMA {schema};
        CREATE TABLE {schema}.parent (id int PRIMARY KEY);
        CREATE TABLE {schema}.child (
            id int CONSTRAINT child_pk PRIMARY KEY,
            parent_id int CONSTRAINT child_parent_fk REFERENCES {schema}.parent,
            name text NOT NULL,
            qty int CONSTRAINT qty_positive CHECK (qty > 0)
        );
        INSERT INTO {schema}.parent VALUES (1);
        INSERT INTO {schema}.child VALUES (1, 1, 'one', 1);
        """
    )
    try:
        yield schema
    finally:
        client.execute(f"DROP SCHEMA {schema} CASCADE")


# -- the PEP 249 tree ---------------------------------------------------------


def test_pep249_tree_is_importable_from_oxpg() -> None:
    from oxpg import (  # noqa: F401  (the import itself is the test)
        DatabaseError, DataError, Error, IntegrityError, InterfaceError, InternalError,
        NotSupportedError, OperationalError, ProgrammingError, Warning,
    )  # fmt: skip

    assert issubclass(oxpg.Warning, Exception)
    assert issubclass(oxpg.Error, Exception)
    assert not issubclass(oxpg.Warning, oxpg.Error)
    assert oxpg.InterfaceError.__bases__ == (oxpg.Error,)
    assert oxpg.DatabaseError.__bases__ == (oxpg.Error,)
    for name in ("DataError", "OperationalError", "IntegrityError", "InternalError",
                 "ProgrammingError", "NotSupportedError"):  # fmt: skip
        assert getattr(oxpg, name).__bases__ == (oxpg.DatabaseError,), name


def test_every_exception_has_the_diagnostic_attributes_as_none() -> None:
    for cls in (oxpg.Error, oxpg.InterfaceError, oxpg.DatabaseError, oxpg.DataError, errors.UniqueViolation):
        exc = cls("x")
        for attr in DIAGNOSTICS:
            if attr == "sqlstate" and cls is errors.UniqueViolation:
                assert exc.sqlstate == "23505"  # a specific class knows its own code
            else:
                assert getattr(exc, attr) is None, (cls, attr)


# -- mapping by SQLSTATE, with statements that really fail ----------------------


@pytest.mark.parametrize(
    ("sql", "sqlstate", "specific", "base"),
    [
        ("SELECT 1 / 0", "22012", errors.DivisionByZero, oxpg.DataError),
        ("SELECT 'abc'::int", "22P02", errors.InvalidTextRepresentation, oxpg.DataError),
        ("SELECT 40000::int2 * 2::int2", "22003", errors.NumericValueOutOfRange, oxpg.DataError),
        ("SELECT * FROM no_such_table_xyz", "42P01", errors.UndefinedTable, oxpg.ProgrammingError),
        ("SELECT no_such_column_xyz", "42703", errors.UndefinedColumn, oxpg.ProgrammingError),
        ("SELECT no_such_function_xyz(1)", "42883", errors.UndefinedFunction, oxpg.ProgrammingError),
        ("SELEC 1", "42601", errors.SyntaxError_, oxpg.ProgrammingError),
        (
            "CREATE TEMP TABLE t_0a (a int CHECK (a > (SELECT 1)))",
            "0A000", errors.FeatureNotSupported, oxpg.NotSupportedError,
        ),
        ("SET statement_timeout = 1; SELECT pg_sleep(1)", "57014", errors.QueryCanceled, oxpg.OperationalError),
    ],
)  # fmt: skip
def test_server_error_class(
    client: oxpg.Client, sql: str, sqlstate: str, specific: type, base: type
) -> None:
    run = client.execute if ";" in sql else client.query  # several statements: simple protocol
    with pytest.raises(specific) as info:
        run(sql)
    exc = info.value
    assert type(exc) is specific
    assert isinstance(exc, base)
    assert isinstance(exc, oxpg.DatabaseError)
    assert exc.sqlstate == sqlstate
    assert exc.severity == "ERROR"
    client.execute("RESET statement_timeout")
    assert client.query("SELECT 1 AS one") == [{"one": 1}]


@pytest.mark.parametrize(
    ("sqlstate", "specific", "base"),
    [
        ("22012", errors.DivisionByZero, oxpg.DataError),
        ("23505", errors.UniqueViolation, oxpg.IntegrityError),
        ("42P01", errors.UndefinedTable, oxpg.ProgrammingError),
        ("08006", errors.ConnectionFailure, oxpg.OperationalError),
        ("57P01", errors.AdminShutdown, oxpg.OperationalError),
        ("0A000", errors.FeatureNotSupported, oxpg.NotSupportedError),
        ("XX000", errors.InternalError_, oxpg.InternalError),
        ("P0001", errors.RaiseException, oxpg.DatabaseError),
        # A code PostgreSQL does not define: the class of its first two characters.
        ("22ZZZ", oxpg.DataError, oxpg.DataError),
        ("23ZZZ", oxpg.IntegrityError, oxpg.IntegrityError),
        ("42ZZZ", oxpg.ProgrammingError, oxpg.ProgrammingError),
        ("08ZZZ", oxpg.OperationalError, oxpg.OperationalError),
        ("57ZZZ", oxpg.OperationalError, oxpg.OperationalError),
        ("0AZZZ", oxpg.NotSupportedError, oxpg.NotSupportedError),
        ("XXZZZ", oxpg.InternalError, oxpg.InternalError),
        # An unknown class: plain DatabaseError.
        ("ZZ999", oxpg.DatabaseError, oxpg.DatabaseError),
    ],
)  # fmt: skip
def test_raised_sqlstate_maps_to_class(
    client: oxpg.Client, sqlstate: str, specific: type, base: type
) -> None:
    # A server-side RAISE with a connection-class code (08, 57) is just an error
    # message: the connection itself is fine and must stay open.
    with pytest.raises(oxpg.DatabaseError) as info:
        client.execute(raise_sql(sqlstate, f"raised {sqlstate}"))
    exc = info.value
    assert type(exc) is specific
    assert isinstance(exc, base)
    assert exc.sqlstate == sqlstate
    assert str(exc).startswith(f"raised {sqlstate}")
    assert not client.closed
    assert not client.broken
    assert client.query("SELECT 2 AS two") == [{"two": 2}]


def test_raise_exception_default_sqlstate_p0001(client: oxpg.Client) -> None:
    with pytest.raises(errors.RaiseException) as info:
        client.execute("DO $$ BEGIN RAISE EXCEPTION 'custom failure %', 42; END $$")
    exc = info.value
    assert isinstance(exc, oxpg.DatabaseError)
    assert exc.sqlstate == "P0001"
    assert exc.severity == "ERROR"
    assert str(exc).startswith("custom failure 42")
    assert "PL/pgSQL" in exc.context


def test_raise_exception_with_a_standard_sqlstate(client: oxpg.Client) -> None:
    with pytest.raises(errors.DivisionByZero) as info:
        client.execute(raise_sql("22012", "my own division error"))
    assert info.value.sqlstate == "22012"
    assert isinstance(info.value, oxpg.DataError)
    assert str(info.value).startswith("my own division error")


def test_catching_by_pep249_base_class(client: oxpg.Client) -> None:
    try:
        client.query("SELECT 1 / 0")
    except oxpg.DataError as exc:
        assert isinstance(exc, errors.DivisionByZero)
    else:
        pytest.fail("no exception")


# -- the README's examples -------------------------------------------------------


def test_readme_syntax_error_is_programming_error_42601(client: oxpg.Client) -> None:
    with pytest.raises(oxpg.DatabaseError) as info:
        client.query("SELEC * FROM users")
    exc = info.value
    assert isinstance(exc, oxpg.ProgrammingError)
    assert exc.sqlstate == "42601"
    assert exc.severity == "ERROR"
    assert exc.position == 1
    assert 'syntax error at or near "SELEC"' in str(exc)
    assert not str(exc).startswith("ERROR:")


def test_bad_password_is_operational_error(pg) -> None:  # type: ignore[no-untyped-def]
    good = oxpg.connect(pg.dsn)
    try:
        user = good.query("SELECT current_user AS u")[0]["u"]
        host, port, db = good.host, good.port, good.dbname
    finally:
        good.close()
    wrong = "wrong-" + uuid.uuid4().hex
    with pytest.raises(oxpg.OperationalError) as info:
        oxpg.connect(host=host, port=port, user=user, password=wrong, db=db)
    assert "password authentication failed" in str(info.value)
    assert wrong not in str(info.value)
    assert wrong not in repr(info.value)


def test_unknown_user_is_operational_error(pg) -> None:  # type: ignore[no-untyped-def]
    good = oxpg.connect(pg.dsn)
    host, port, db = good.host, good.port, good.dbname
    good.close()
    with pytest.raises(oxpg.OperationalError):
        oxpg.connect(host=host, port=port, user="no_such_role_xyz", password="x", db=db)


def test_nothing_listening_is_operational_error() -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(oxpg.OperationalError) as info:
        oxpg.connect(host="127.0.0.1", port=port, user="u", password="p", connect_timeout=5)
    assert info.value.sqlstate is None


# -- diagnostics, one statement per field ---------------------------------------------


def test_unique_violation_diagnostics(client: oxpg.Client, tables: str) -> None:
    exc = catch(client, f"INSERT INTO {tables}.child VALUES (1, 1, 'dup', 1)")
    assert type(exc) is errors.UniqueViolation
    assert isinstance(exc, oxpg.IntegrityError)
    assert exc.sqlstate == "23505"
    assert exc.severity == "ERROR"
    assert exc.detail == "Key (id)=(1) already exists."
    assert exc.schema_name == tables
    assert exc.table_name == "child"
    assert exc.constraint_name == "child_pk"
    assert exc.column_name is None
    assert exc.position is None


def test_foreign_key_violation_diagnostics(client: oxpg.Client, tables: str) -> None:
    exc = catch(client, f"INSERT INTO {tables}.child VALUES (2, $1, 'orphan', 1)", 99)
    assert type(exc) is errors.ForeignKeyViolation
    assert isinstance(exc, oxpg.IntegrityError)
    assert exc.sqlstate == "23503"
    assert exc.detail == 'Key (parent_id)=(99) is not present in table "parent".'
    assert exc.schema_name == tables
    assert exc.table_name == "child"
    assert exc.constraint_name == "child_parent_fk"


def test_not_null_violation_diagnostics(client: oxpg.Client, tables: str) -> None:
    exc = catch(client, f"INSERT INTO {tables}.child (id, name) VALUES (3, NULL)")
    assert type(exc) is errors.NotNullViolation
    assert exc.sqlstate == "23502"
    assert exc.schema_name == tables
    assert exc.table_name == "child"
    assert exc.column_name == "name"
    assert exc.detail is not None and exc.detail.startswith("Failing row contains")


def test_check_violation_diagnostics(client: oxpg.Client, tables: str) -> None:
    exc = catch(client, f"UPDATE {tables}.child SET qty = -5 WHERE id = 1")
    assert type(exc) is errors.CheckViolation
    assert exc.sqlstate == "23514"
    assert exc.table_name == "child"
    assert exc.constraint_name == "qty_positive"


def test_hint_and_position(client: oxpg.Client) -> None:
    exc = catch(client, "SELECT 1 + no_such_function_xyz(1)")
    assert type(exc) is errors.UndefinedFunction
    assert exc.hint is not None and "No function matches" in exc.hint
    assert exc.position == 12
    assert type(exc.position) is int


def test_position_of_undefined_table(client: oxpg.Client) -> None:
    exc = catch(client, "SELECT * FROM no_such_table_xyz")
    assert type(exc) is errors.UndefinedTable
    assert exc.position == 15
    assert exc.detail is None
    assert exc.hint is None
    assert exc.context is None


def test_detail_hint_context_from_plpgsql_raise(client: oxpg.Client) -> None:
    client.execute(
        """
        CREATE FUNCTION pg_temp.fail_loudly(n int) RETURNS int LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'bad value %', n
                USING ERRCODE = 'check_violation', DETAIL = 'the detail', HINT = 'the hint',
                      SCHEMA = 's1', TABLE = 't1', COLUMN = 'c1', CONSTRAINT = 'k1';
        END $$
        """
    )
    exc = catch(client, "SELECT pg_temp.fail_loudly($1)", 7)
    assert type(exc) is errors.CheckViolation
    assert str(exc).startswith("bad value 7")
    assert exc.sqlstate == "23514"
    assert exc.severity == "ERROR"
    assert exc.detail == "the detail"
    assert exc.hint == "the hint"
    assert exc.context is not None
    assert "PL/pgSQL function pg_temp" in exc.context and "fail_loudly(integer)" in exc.context
    assert "RAISE" in exc.context
    assert exc.schema_name == "s1"
    assert exc.table_name == "t1"
    assert exc.column_name == "c1"
    assert exc.constraint_name == "k1"
    assert exc.position is None


def test_non_ascii_message_and_detail(client: oxpg.Client) -> None:
    with pytest.raises(oxpg.DataError) as info:
        client.execute(raise_sql("22000", "échec ✓ 💥", detail="détail ß"))
    assert str(info.value).startswith("échec ✓ 💥")
    assert info.value.detail == "détail ß"


def test_client_side_errors_have_no_sqlstate(client: oxpg.Client) -> None:
    with pytest.raises(oxpg.DataError) as info:
        client.query("SELECT $1::text", "a\x00b")
    assert info.value.sqlstate is None
    client.close()
    with pytest.raises(oxpg.InterfaceError) as info2:
        client.query("SELECT 1")
    assert info2.value.sqlstate is None


# -- pickling -----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_server_error_pickle_round_trip(client: oxpg.Client, tables: str, protocol: int) -> None:
    exc = catch(client, f"INSERT INTO {tables}.child VALUES (1, 1, 'dup', 1)")
    copy = pickle.loads(pickle.dumps(exc, protocol=protocol))
    assert type(copy) is errors.UniqueViolation
    assert copy.args == exc.args
    assert str(copy) == str(exc)
    for attr in DIAGNOSTICS:
        assert getattr(copy, attr) == getattr(exc, attr), attr
    assert copy.sqlstate == "23505"
    assert copy.constraint_name == "child_pk"


def test_pickle_keeps_position_and_context(client: oxpg.Client) -> None:
    exc = catch(client, "SELEC * FROM users")
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is errors.SyntaxError_
    assert copy.position == 1 and type(copy.position) is int
    with pytest.raises(oxpg.DatabaseError) as info:
        client.execute(raise_sql("P0001", "ctx"))
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is errors.RaiseException
    assert copy.context == info.value.context and copy.context is not None


def test_connection_error_pickle_round_trip(pg) -> None:  # type: ignore[no-untyped-def]
    good = oxpg.connect(pg.dsn)
    host, port, db, user = good.host, good.port, good.dbname, good.user
    good.close()
    with pytest.raises(oxpg.OperationalError) as info:
        oxpg.connect(host=host, port=port, user=user, password="wrong-password", db=db)
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is oxpg.OperationalError
    assert str(copy) == str(info.value)


# -- the client keeps working after errors --------------------------------------------


def test_client_usable_after_many_kinds_of_error(client: oxpg.Client, tables: str) -> None:
    failing = [
        ("SELECT 1 / 0", ()),
        ("SELEC 1", ()),
        (f"INSERT INTO {tables}.child VALUES (1, 1, 'dup', 1)", ()),
        ("SELECT $1::int", ("not a number",)),
        ("SELECT $1::int + $2::int", (1,)),  # wrong parameter count
        ("", ()),  # empty query
    ]
    for i, (sql, params) in enumerate(failing):
        with pytest.raises(oxpg.Error):
            client.query(sql, *params)
        assert not client.closed
        assert client.query("SELECT $1::int AS i", i) == [{"i": i}]


def test_execute_error_in_second_statement(client: oxpg.Client, tables: str) -> None:
    with pytest.raises(errors.DivisionByZero):
        client.execute(f"INSERT INTO {tables}.parent VALUES (2); SELECT 1 / 0")
    # Several statements in one simple query run as one implicit transaction.
    assert client.query(f"SELECT count(*) AS n FROM {tables}.parent WHERE id = 2") == [{"n": 0}]
    assert client.execute(f"INSERT INTO {tables}.parent VALUES (3)") == 1


def test_error_inside_transaction_then_rollback(client: oxpg.Client, tables: str) -> None:
    client.execute("BEGIN")
    client.execute(f"INSERT INTO {tables}.parent VALUES (10)")
    with pytest.raises(errors.UniqueViolation):
        client.execute(f"INSERT INTO {tables}.parent VALUES (1)")
    with pytest.raises(errors.InFailedSqlTransaction) as info:
        client.query("SELECT 1")
    assert info.value.sqlstate == "25P02"
    client.execute("ROLLBACK")
    assert client.query(f"SELECT count(*) AS n FROM {tables}.parent WHERE id = 10") == [{"n": 0}]


def test_statement_timeout_then_usable(client: oxpg.Client) -> None:
    client.execute("SET statement_timeout = '100ms'")
    try:
        with pytest.raises(errors.QueryCanceled) as info:
            client.query("SELECT pg_sleep(3)")
        assert isinstance(info.value, oxpg.OperationalError)
        assert "statement timeout" in str(info.value)
    finally:
        client.execute("RESET statement_timeout")
    assert client.query("SELECT 5 AS five") == [{"five": 5}]
