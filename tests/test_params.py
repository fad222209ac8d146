"""Parameters: how Python values are sent (DESIGN.md section 3, issue 2 "Parameters").

Binary with explicit OIDs where the Python type pins the PostgreSQL type; str goes as
text with OID 0 so the server infers the type from the context. Per-type round trips
live in tests/types/; this file checks the encoding rules, the statements that must
work, and the errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

import oxpg


@pytest.fixture(scope="module")
def db(pg) -> Iterator[oxpg.Client]:
    c = oxpg.connect(pg.dsn)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def table(db) -> Iterator[str]:
    db.execute("CREATE TEMP TABLE params_t (id serial, int2col int2, int4col int4, int8col int8, "
               "numcol numeric, f8col float8, txt text, d date, ts timestamp, tstz timestamptz, b bytea, "
               "u uuid, flag bool)")
    try:
        yield "params_t"
    finally:
        db.execute("DROP TABLE params_t")


def value(db, sql, *params):
    (row,) = db.query(sql, *params)
    (v,) = row.values()
    return v


def assert_usable(db):
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


# ------------------------------------------------------------------ encoding rules

UTC = timezone.utc

ENCODING = [
    (True, "boolean"), (False, "boolean"), (0, "integer"), (-(2**31), "integer"), (2**31 - 1, "integer"),
    (2**31, "bigint"), (-(2**31) - 1, "bigint"), (2**63 - 1, "bigint"), (-(2**63), "bigint"),
    (2**63, "numeric"), (-(2**63) - 1, "numeric"), (10**30, "numeric"), (-(10**30), "numeric"),
    (1.5, "double precision"), (float("nan"), "double precision"), (float("-inf"), "double precision"),
    (-0.0, "double precision"), (Decimal("1.50"), "numeric"), (Decimal("NaN"), "numeric"),
    (b"x", "bytea"), (bytearray(b"x"), "bytea"), (memoryview(b"x"), "bytea"),
    (datetime(2024, 1, 2), "timestamp without time zone"),
    (datetime(2024, 1, 2, tzinfo=UTC), "timestamp with time zone"), (date(2024, 1, 2), "date"),
    (time(1, 2), "time without time zone"), (time(1, 2, tzinfo=UTC), "time with time zone"),
    (timedelta(1), "interval"), (uuid.UUID(int=1), "uuid"),
]


@pytest.mark.parametrize(("param", "pg_type"), ENCODING, ids=[f"{type(p).__name__}-{t}" for p, t in ENCODING])
def test_param_type(db, param, pg_type):
    assert value(db, "SELECT pg_typeof($1)::text AS v", param) == pg_type


def test_none_is_null(db):
    assert value(db, "SELECT $1::int IS NULL AS v", None) is True
    assert value(db, "SELECT $1 AS v", None) is None
    assert value(db, "SELECT coalesce($1, 5) AS v", None) == 5
    assert db.query("SELECT $1::text AS a, $2::int AS b, $3::date AS c", None, None, None) == [
        {"a": None, "b": None, "c": None}]


def test_str_has_no_type_of_its_own(db):
    # OID 0: the context decides. With no context at all the server cannot tell.
    with pytest.raises(oxpg.ProgrammingError) as info:
        db.query("SELECT pg_typeof($1) AS v", "text")
    assert info.value.sqlstate == "42P18"
    assert_usable(db)
    # The same str is a date, an int, a uuid, a bool...
    assert value(db, "SELECT $1::date AS v", "2024-01-02") == date(2024, 1, 2)
    assert value(db, "SELECT $1::int + 1 AS v", "41") == 42
    assert value(db, "SELECT $1::uuid AS v", "00000000-0000-0000-0000-000000000001") == uuid.UUID(int=1)
    assert value(db, "SELECT $1::bool AS v", "yes") is True
    assert value(db, "SELECT $1::numeric AS v", "1.50") == Decimal("1.50")
    assert value(db, "SELECT $1::interval AS v", "1 day") == timedelta(days=1)
    assert value(db, "SELECT 1 + $1 AS v", "2") == 3
    assert value(db, "SELECT $1 || 'x' AS v", "a") == "ax"


def test_many_params_of_every_type_in_order(db):
    params = [i if i % 3 == 0 else (str(i) if i % 3 == 1 else Decimal(i)) for i in range(1000)]
    sql = "SELECT " + ", ".join(f"${i + 1}::text AS c{i}" for i in range(1000))
    (row,) = db.query(sql, *params)
    assert list(row.values()) == [str(i) for i in range(1000)]


def test_values_are_never_interpolated(db):
    for text in ("$2", "$1", "'; SELECT 1; --", "E'\\x41'", "?", "%s", "%(x)s", ":name", "{0}"):
        assert db.query("SELECT $1::text AS a, $2::text AS b", text, "second") == [{"a": text, "b": "second"}]


# --------------------------------------------------------------------- must work


def test_substr_with_int(db):
    assert value(db, "SELECT substr('abcdef', $1) AS v", 2) == "bcdef"
    assert value(db, "SELECT substr('abcdef', $1, $2) AS v", 2, 3) == "bcd"


def test_int_plus_int(db):
    assert value(db, "SELECT $1 + $2 AS v", 30000, 30000) == 60000


def test_insert_int_into_int2_column(db, table):
    assert db.execute(f"INSERT INTO {table}(int2col) VALUES ($1)", 5) == 1
    assert db.query(f"SELECT int2col FROM {table}") == [{"int2col": 5}]
    assert db.execute(f"UPDATE {table} SET int2col = $1 WHERE int2col = $2", -32768, 5) == 1
    assert db.query(f"SELECT int2col FROM {table} WHERE int2col = $1", -32768) == [{"int2col": -32768}]
    with pytest.raises(oxpg.DataError):  # smallint out of range: an error, not a wrap
        db.execute(f"INSERT INTO {table}(int2col) VALUES ($1)", 32768)


def test_int8_column_compared_with_big_and_small_ints(db, table):
    db.execute(f"INSERT INTO {table}(int8col) VALUES ($1), ($2), ($3)", 2**40, 5, -(2**63))
    assert db.query(f"SELECT int8col FROM {table} WHERE int8col = $1", 2**40) == [{"int8col": 2**40}]
    assert db.query(f"SELECT int8col FROM {table} WHERE int8col = $1", 5) == [{"int8col": 5}]
    assert db.query(f"SELECT int8col FROM {table} WHERE int8col = $1", -(2**63)) == [{"int8col": -(2**63)}]
    assert db.query(f"SELECT count(*) AS n FROM {table} WHERE int8col > $1", 10) == [{"n": 1}]


def test_select_str_as_date(db):
    assert value(db, "SELECT $1::date AS v", "2024-01-02") == date(2024, 1, 2)


def test_where_date_equals_str(db, table):
    db.execute(f"INSERT INTO {table}(d, ts, tstz) VALUES ($1, $2, $3)", date(2024, 1, 2), "2024-01-02 03:04:05",
               "2024-01-02 03:04:05+00")
    assert db.query(f"SELECT d FROM {table} WHERE d = $1", "2024-01-02") == [{"d": date(2024, 1, 2)}]
    assert db.query(f"SELECT count(*) AS n FROM {table} WHERE ts = $1", datetime(2024, 1, 2, 3, 4, 5)) == [{"n": 1}]
    assert db.query(f"SELECT count(*) AS n FROM {table} WHERE tstz = $1",
                    datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == [{"n": 1}]


@pytest.mark.parametrize("big", [10**30, -(10**30), 2**63, -(2**63) - 1, 10**1000])
def test_int_beyond_int8_as_numeric(db, table, big):
    result = value(db, "SELECT $1 AS v", big)
    assert isinstance(result, Decimal) and result == big and int(result) == big
    db.execute(f"INSERT INTO {table}(numcol) VALUES ($1)", big)
    (row,) = db.query(f"SELECT numcol, numcol::text AS t FROM {table} WHERE numcol = $1", big)
    assert row["numcol"] == big and row["t"] == str(big)


@pytest.mark.parametrize("exponent", [4300, 5000, 131071])
def test_int_with_thousands_of_digits(db, exponent):
    # "Any size": PostgreSQL numeric holds up to 131072 digits before the point, far
    # beyond Python's default int -> str limit (sys.get_int_max_str_digits(), 4300).
    for big in (10**exponent, -(10**exponent) + 1):
        (row,) = db.query("SELECT $1 AS v, abs($1) >= 10::numeric ^ ($2 - 1) AS big_enough", big, exponent)
        assert row["big_enough"] is True
        assert row["v"] == big


def test_int_beyond_postgresql_numeric_range(db):
    with pytest.raises(oxpg.DataError) as info:
        db.query("SELECT $1 AS v", 10**131072)
    assert "$1" in str(info.value)
    assert_usable(db)


def test_limit_and_offset_with_int(db):
    rows = db.query("SELECT i FROM generate_series(1, 10) AS i ORDER BY i LIMIT $1 OFFSET $2", 2, 3)
    assert rows == [{"i": 4}, {"i": 5}]


def test_insert_every_type_and_read_back(db, table):
    row = (1, 2, 2**40, Decimal("1.50"), 0.25, "héllo", date(2024, 1, 2), datetime(2024, 1, 2, 3, 4, 5, 6),
           datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC), b"\x00\xff", uuid.UUID(int=7), True)
    n = db.execute(f"INSERT INTO {table}(int2col, int4col, int8col, numcol, f8col, txt, d, ts, tstz, b, u, flag) "
                   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)", *row)
    assert n == 1
    (got,) = db.query(f"SELECT int2col, int4col, int8col, numcol, f8col, txt, d, ts, tstz, b, u, flag FROM {table}")
    assert tuple(got.values()) == row
    assert str(got["numcol"]) == "1.50"


def test_same_sql_with_growing_ints(db):
    # Whatever statement caching does, a value that outgrows int4 or int8 must never
    # meet a statement prepared for the smaller type.
    for v in [1] * 10 + [2**40] * 5 + [10**30] * 5 + [1, 2**40, 10**30, -(10**30), 3]:
        result = value(db, "SELECT $1 AS v", v)
        assert result == v
    for v in [1] * 10 + [2**40, 10**30]:
        assert value(db, "SELECT $1 + 1 AS v", v) == v + 1


def test_execute_with_params_returns_rowcount(db, table):
    assert db.execute(f"INSERT INTO {table}(int4col) SELECT generate_series(1, $1)", 10) == 10
    assert db.execute(f"UPDATE {table} SET int4col = int4col + $1 WHERE int4col > $2", 100, 5) == 5
    assert db.execute(f"DELETE FROM {table} WHERE int4col = $1", 1) == 1
    assert db.execute(f"DELETE FROM {table} WHERE int4col = $1", 999) == 0


# ------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "bad",
    [object(), {1, 2}, frozenset(), [object()], (1, 2j), complex(1, 2), type, len, Ellipsis, range(3),
     oxpg.DataError("x")],
    ids=lambda b: type(b).__name__,
)
def test_unsupported_type_names_position_and_type(db, table, bad):
    with pytest.raises(oxpg.DataError) as info:
        db.execute(f"INSERT INTO {table}(int4col, txt) VALUES ($1, $2)", 1, bad)
    message = str(info.value)
    assert "$2" in message
    assert type(bad).__name__ in message
    assert db.query(f"SELECT count(*) AS n FROM {table}") == [{"n": 0}]
    assert_usable(db)


def test_unsupported_type_error_is_a_dataerror_subclass_of_database_error(db):
    with pytest.raises(oxpg.DatabaseError):
        db.query("SELECT $1 AS v", object())
    with pytest.raises(oxpg.Error):
        db.query("SELECT $1 AS v", object())


def test_str_with_nul_is_refused_before_sending(db, table):
    with pytest.raises(oxpg.DataError) as info:
        db.execute(f"INSERT INTO {table}(txt) VALUES ($1)", "a\x00b")
    assert "$1" in str(info.value)
    assert db.query(f"SELECT count(*) AS n FROM {table}") == [{"n": 0}]
    assert_usable(db)


def test_lone_surrogate_is_refused(db):
    for bad in ("\ud800", "a\udfffb", "\ud83d\ude00"):  # the last is a surrogate *pair* as two code points
        with pytest.raises(oxpg.DataError) as info:
            db.query("SELECT $1::text AS v", bad)
        assert "$1" in str(info.value)
    assert_usable(db)


def test_too_few_params(db):
    with pytest.raises(oxpg.ProgrammingError):
        db.query("SELECT $1::int AS a, $2::int AS b", 1)
    assert_usable(db)
    with pytest.raises(oxpg.ProgrammingError):
        db.query("SELECT $1::int AS a")
    assert_usable(db)
    with pytest.raises(oxpg.ProgrammingError):
        db.execute("SELECT $1::int AS a, $2::int AS b", 1)
    assert_usable(db)


def test_too_many_params(db, table):
    # More parameters than placeholders is a caller bug: it must not run silently.
    with pytest.raises(oxpg.ProgrammingError):
        db.query("SELECT $1::int AS a", 1, 2)
    assert_usable(db)
    with pytest.raises(oxpg.ProgrammingError):
        db.query("SELECT 1 AS a", 5)
    assert_usable(db)
    with pytest.raises(oxpg.ProgrammingError):
        db.execute(f"INSERT INTO {table}(int4col) VALUES ($1)", 1, 2)
    assert db.query(f"SELECT count(*) AS n FROM {table}") == [{"n": 0}]
    assert_usable(db)


@pytest.mark.parametrize(
    "sql",
    ["SELECT '$2' AS a, $1::int AS b",
     "SELECT $1::int AS b -- $2",
     "SELECT /* $2 */ $1::int AS b",
     "SELECT /* outer /* $2 nested */ still comment $3 */ $1::int AS b",
     "SELECT $$ $2 $$ AS a, $1::int AS b",
     "SELECT $tag$ $2 ' $3 $tag$ AS a, $1::int AS b",
     "SELECT $a$ $b$ $2 $b$ $a$ AS a, $1::int AS b",
     'SELECT x."$2" AS a, $1::int AS b FROM (SELECT 1 AS "$2") AS x',
     'SELECT 1 AS "a""$2", $1::int AS b',
     "SELECT E'\\'$2' AS a, $1::int AS b",
     "SELECT E'it''s $2' AS a, $1::int AS b",
     "SELECT U&'$2' AS a, $1::int AS b",
     "SELECT 'a'\n'$2' AS a, $1::int AS b",
     "SELECT $1::int AS b, 1 AS a$2",
     "SELECT $1::int + $1::int AS b",
     "SELECT $1::int AS b /* $2 */ -- $3\n",
     "SELECT $1::int AS b;"],
    ids=range(17),
)
def test_placeholders_hidden_in_literals_comments_and_identifiers(db, sql):
    # Only real placeholders count: these statements use $1 alone, so one
    # parameter is right and two is one too many.
    (row,) = db.query(sql, 7)
    assert row["b"] in (7, 14)
    with pytest.raises(oxpg.ProgrammingError):
        db.query(sql, 7, 8)
    assert_usable(db)


@pytest.mark.parametrize("scs", ["on", "off"])
def test_placeholders_follow_standard_conforming_strings(client, scs):
    # With standard_conforming_strings off, a backslash escapes a quote inside a
    # plain '...' literal, so the placeholder count depends on the setting.
    client.execute(f"SET standard_conforming_strings TO {scs}")
    if scs == "on":
        sql, text = "SELECT 'a\\' AS a, $1::int AS b", "a\\"
    else:
        sql, text = "SELECT 'a\\'' AS a, $1::int AS b", "a'"
    assert client.query(sql, 1) == [{"a": text, "b": 1}]
    with pytest.raises(oxpg.ProgrammingError):
        client.query(sql, 1, 2)
    assert client.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_placeholder_numbers_may_have_gaps(db):
    # $2 alone means two parameters: $1 is simply unused (its type is declared).
    assert value(db, "SELECT $2::int AS v", 1, 2) == 2
    with pytest.raises(oxpg.ProgrammingError):
        db.query("SELECT $2::int AS v", 1)
    assert_usable(db)


def test_placeholder_counting_in_a_long_statement(db):
    sql = "SELECT " + " + ".join(f"${i}::int" for i in range(1, 201)) + " AS v -- $201"
    assert value(db, sql, *range(200)) == sum(range(200))
    with pytest.raises(oxpg.ProgrammingError):
        db.query(sql, *range(201))
    assert_usable(db)


def test_too_many_untyped_params(db):
    # A str for a placeholder that does not exist has no type to infer.
    with pytest.raises(oxpg.ProgrammingError):
        db.query("SELECT $1::text AS a", "x", "y")
    assert_usable(db)


def test_65535_params_work(db):
    n = 65535
    sql = "SELECT array_length(ARRAY[" + ",".join(f"${i}" for i in range(1, n + 1)) + "], 1) AS n, $65535 AS last"
    assert db.query(sql, *range(n)) == [{"n": n, "last": n - 1}]
    sql_text = "SELECT array_length(ARRAY[" + ",".join(f"${i}::text" for i in range(1, n + 1)) + "], 1) AS n"
    assert db.query(sql_text, *(["x"] * n)) == [{"n": n}]


@pytest.mark.parametrize("n", [65536, 100_000])
def test_more_than_65535_params(db, n):
    sql = "SELECT array_length(ARRAY[" + ",".join(f"${i}" for i in range(1, n + 1)) + "], 1) AS n"
    with pytest.raises(oxpg.ProgrammingError) as info:
        db.query(sql, *range(n))
    assert "65535" in str(info.value)
    with pytest.raises(oxpg.ProgrammingError):
        db.execute("SELECT 1", *range(n))
    assert_usable(db)


def test_errors_do_not_leak_between_calls(db):
    for bad in (object(), "a\x00b", "\ud800", Decimal("sNaN")):
        with pytest.raises(oxpg.DataError):
            db.query("SELECT $1 AS a, $2 AS b", 1, bad)
        assert value(db, "SELECT $1::int + $2 AS v", 1, 2) == 3
