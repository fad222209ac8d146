"""Hostile and malformed input (RELIABILITY.md rows 16, 17, 19, 22, 25).

The proof that "nothing was executed" is always a table count from the same client:
every statement here that must not run would insert a row or drop a table. Malformed
server answers (row 22) come from tests/fake_server.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from decimal import Decimal

import pytest
from fake_server import Answer, FakeServer

import oxpg


@pytest.fixture(scope="module")
def db(pg) -> Iterator[oxpg.Client]:
    c = oxpg.connect(pg.dsn)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def victim(db) -> Iterator[str]:
    """A table with one row that the hostile statements would change or drop."""
    db.execute("CREATE TEMP TABLE victim (id serial PRIMARY KEY, note text, data bytea)")
    db.execute("INSERT INTO victim (note) VALUES ('original')")
    try:
        yield "victim"
    finally:
        db.execute("DROP TABLE IF EXISTS victim")


def count(db, table="victim") -> int:
    (row,) = db.query(f"SELECT count(*) AS n FROM {table}")
    return row["n"]


def assert_untouched(db) -> None:
    assert db.query("SELECT id, note FROM victim ORDER BY id") == [{"id": 1, "note": "original"}]


def assert_usable(db) -> None:
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


# ------------------------------------------------------------- row 16: NUL bytes

NUL_STRINGS = ["a\x00b", "\x00", "\x00tail", "head\x00", "x" * 10_000 + "\x00" + "y", "é\x00😀"]


@pytest.mark.parametrize("text", NUL_STRINGS, ids=range(len(NUL_STRINGS)))
def test_nul_in_str_param_execute(db, victim, text):
    with pytest.raises(oxpg.DataError) as info:
        db.execute("INSERT INTO victim (note) VALUES ($1)", text)
    assert "NUL" in str(info.value) and "$1" in str(info.value)
    assert_untouched(db)
    assert_usable(db)


@pytest.mark.parametrize("position", [1, 2, 3])
def test_nul_in_any_param_position(db, victim, position):
    params = ["ok", "fine", "good"]
    params[position - 1] = "bad\x00value"
    with pytest.raises(oxpg.DataError) as info:
        db.execute("INSERT INTO victim (note) VALUES ($1), ($2), ($3)", *params)
    assert f"${position}" in str(info.value)
    assert_untouched(db)


def test_nul_in_str_param_query(db, victim):
    with pytest.raises(oxpg.DataError):
        db.query("INSERT INTO victim (note) VALUES ($1) RETURNING id", "a\x00b")
    with pytest.raises(oxpg.DataError):
        db.query("SELECT $1::text AS v", "a\x00b")
    assert_untouched(db)
    assert_usable(db)


@pytest.mark.parametrize(
    "sql",
    ["INSERT INTO victim (note) VALUES ('x')\x00; DROP TABLE victim",
     "DROP TABLE victim\x00",
     "\x00DROP TABLE victim",
     "INSERT INTO victim (note) VALUES ('a\x00b')",
     "SELECT 1\x00; DROP TABLE victim"],
    ids=["after-statement", "trailing", "leading", "inside-literal", "select-then-drop"],
)
def test_nul_in_sql_text(db, victim, sql):
    # libpq reads the SQL as a C string: without the check the part before the NUL
    # would run (an INSERT of a truncated literal, or the DROP).
    with pytest.raises(oxpg.DataError):
        db.execute(sql)
    with pytest.raises(oxpg.DataError):
        db.query(sql)
    with pytest.raises(oxpg.DataError):
        db.execute(sql.replace("'x'", "$1"), "x")
    assert_untouched(db)
    assert_usable(db)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_nul_in_bytes_param_is_stored_exactly(db, victim, wrap):
    data = b"\x00a\x00\x00b\x00" + bytes(range(256))
    (row,) = db.query("INSERT INTO victim (data) VALUES ($1) RETURNING data, length(data) AS n", wrap(data))
    assert row == {"data": data, "n": len(data)}
    assert db.query("SELECT data FROM victim WHERE data IS NOT NULL") == [{"data": data}]


def test_nul_via_server_functions_is_a_server_error(db):
    # The server itself cannot make text with NUL; chr(0) is refused with 54000 class
    # or 22 class errors, never returned truncated.
    with pytest.raises(oxpg.DatabaseError):
        db.query("SELECT chr(0) AS v")
    assert_usable(db)


# ---------------------------------------------------------- row 17: odd Unicode

SURROGATES = ["\ud800", "\udfff", "ok\udc80", "\ud83d\ude00"]


@pytest.mark.parametrize("text", SURROGATES, ids=range(len(SURROGATES)))
def test_surrogate_param(db, victim, text):
    with pytest.raises(oxpg.DataError) as info:
        db.execute("INSERT INTO victim (note) VALUES ($1)", text)
    assert "$1" in str(info.value)
    assert_untouched(db)
    assert_usable(db)


def test_surrogate_in_sql_text(db, victim):
    with pytest.raises(oxpg.DataError):
        db.execute("INSERT INTO victim (note) VALUES ('\ud800')")
    with pytest.raises(oxpg.DataError):
        db.query("INSERT INTO victim (note) VALUES ('\ud800') RETURNING id")
    assert_untouched(db)
    assert_usable(db)


def test_non_bmp_and_combining_text_is_byte_exact(db, victim):
    text = "😀\U0010ffff e\u0301 \u200d\ufeff 日本 \u2028"
    (row,) = db.query("INSERT INTO victim (note) VALUES ($1) RETURNING note, octet_length(note) AS n", text)
    assert row == {"note": text, "n": len(text.encode())}


def test_invalid_utf8_made_by_the_server_is_an_error(db):
    with pytest.raises(oxpg.DataError) as info:
        db.query("SELECT convert_from($1, 'UTF8') AS v", b"ok\xff\xfe")
    assert info.value.sqlstate == "22021"
    assert_usable(db)
    # Valid bytes convert fine.
    assert db.query("SELECT convert_from($1, 'UTF8') AS v", "é😀".encode()) == [{"v": "é😀"}]


@pytest.mark.slow
def test_100mb_string(db):
    text = "aé😀\u4e2d" * (100 * 1024 * 1024 // 10)
    (row,) = db.query("SELECT md5($1::text) AS h, octet_length($1::text) AS n", text)
    encoded = text.encode()
    assert row == {"h": hashlib.md5(encoded).hexdigest(), "n": len(encoded)}
    assert db.query("SELECT $1::text AS v", text) == [{"v": text}]


# ------------------------------------------------------------ row 19: injection

PAYLOADS = [
    "'; DROP TABLE victim; --",
    "'); DROP TABLE victim; --",
    "' OR '1'='1",
    "\\'; DROP TABLE victim; --",
    "\\\\'; DROP TABLE victim; --",
    "$$; DROP TABLE victim; $$",
    "$1",
    "$tag$ DROP TABLE victim $tag$",
    "E'\\''; DROP TABLE victim; --",
    "\"; DROP TABLE victim; --",
    "*/ DROP TABLE victim; /*",
    "1; DROP TABLE victim",
    "\\x00",
    "\\",
    "'",
    "''",
    "\u2019; DROP TABLE victim; --",  # right single quotation mark
    "\uff07; DROP TABLE victim; --",  # fullwidth apostrophe
    "表'; DROP TABLE victim; --",  # SJIS 0x95 0x5C: trailing byte is a backslash
    "ソ'; DROP TABLE victim; --",  # SJIS 0x83 0x5C
    "\u815c'; DROP TABLE victim; --",
    "縗'; DROP TABLE victim; --",  # GBK/BIG5-style multibyte with 0x5C
    "\x1a'; DROP TABLE victim; --",
    "%27; DROP TABLE victim; --",
    "\n; DROP TABLE victim;\r\n--",
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_injection_stored_verbatim(db, victim, payload):
    assert db.execute("INSERT INTO victim (note) VALUES ($1)", payload) == 1
    (row,) = db.query("SELECT id, note, note = $1 AS same FROM victim WHERE id > 1", payload)
    assert row["note"] == payload and row["same"] is True
    assert db.query("SELECT $1::text AS v, $2::text AS w", payload, payload) == [{"v": payload, "w": payload}]
    assert db.query("SELECT count(*) AS n FROM victim WHERE note = $1", payload) == [{"n": 1}]
    assert count(db) == 2


@pytest.mark.parametrize("payload", [p.encode() for p in PAYLOADS[:5]]
                         + [b"\x95\x5c'; DROP TABLE victim; --", b"\xbf\x27; DROP TABLE victim; --",
                            b"\xa1\x5c\x27"])
def test_injection_bytes_stored_verbatim(db, victim, payload):
    (row,) = db.query("INSERT INTO victim (data) VALUES ($1) RETURNING data", payload)
    assert row["data"] == payload
    assert count(db) == 2


@pytest.mark.parametrize("setting", ["on", "off"])
def test_injection_with_standard_conforming_strings(client, setting):
    client.execute(f"SET standard_conforming_strings TO {setting}")
    client.execute("CREATE TEMP TABLE scs_victim (note text)")
    for payload in PAYLOADS:
        client.execute("INSERT INTO scs_victim VALUES ($1)", payload)
    assert [r["note"] for r in client.query("SELECT note FROM scs_victim")] == PAYLOADS


def test_several_statements_with_params_are_refused(db, victim):
    # With parameters only one statement can run: a second one smuggled into the
    # SQL text is refused by the server as a whole.
    with pytest.raises(oxpg.ProgrammingError):
        db.execute("INSERT INTO victim (note) VALUES ($1); DROP TABLE victim", "x")
    assert_untouched(db)
    with pytest.raises(oxpg.ProgrammingError):
        db.query("INSERT INTO victim (note) VALUES ('y'); DROP TABLE victim")
    assert_untouched(db)
    assert_usable(db)


# ------------------------------------------------------- unsupported param types


class Opaque:
    def __str__(self) -> str:
        return "'; DROP TABLE victim; --"


@pytest.mark.parametrize(
    "bad", [object(), {1}, [object()], (1, Opaque()), complex(1, 1), Opaque(), type, print],
    ids=lambda b: type(b).__name__,
)
def test_unsupported_types_are_not_stringified(db, victim, bad):
    # Lists and tuples are arrays now (tests/types/test_array.py), but never of elements
    # oxpg cannot encode: those are refused, not stringified, like the values themselves.
    with pytest.raises(oxpg.DataError) as info:
        db.execute("INSERT INTO victim (note) VALUES ($1), ($2)", "fine", bad)
    message = str(info.value)
    assert "$2" in message and type(bad).__name__ in message
    assert_untouched(db)
    assert_usable(db)


@pytest.mark.parametrize("bad", [Decimal("sNaN"), Decimal("1E-20000"), Decimal("1E+200000")], ids=str)
def test_unsendable_decimals(db, victim, bad):
    with pytest.raises(oxpg.DataError) as info:
        db.execute("INSERT INTO victim (note) VALUES ($1::text)", bad)
    assert "$1" in str(info.value)
    assert_untouched(db)


# -------------------------------------------------------------- row 25: limits


@pytest.mark.parametrize("sql", ["", " ", ";", "  ;  ", "-- only a comment", "/* nothing */"])
def test_empty_query(db, sql):
    with pytest.raises(oxpg.ProgrammingError):
        db.query(sql)
    with pytest.raises(oxpg.ProgrammingError):
        db.execute(sql)
    assert_usable(db)


def test_zero_column_result(db):
    assert db.query("SELECT") == [{}]
    assert db.query("SELECT FROM generate_series(1, 3)") == [{}, {}, {}]


def test_wide_row(db):
    sql = "SELECT " + ", ".join(f"$1::int + {i} AS c{i}" for i in range(1600))
    (row,) = db.query(sql, 0)
    assert list(row) == [f"c{i}" for i in range(1600)]
    assert list(row.values()) == list(range(1600))


def test_sql_must_be_str(db):
    for bad in (b"SELECT 1", None, 1):
        with pytest.raises(TypeError):
            db.query(bad)
    assert_usable(db)


def test_missing_sql(db):
    with pytest.raises(TypeError):
        db.query()
    with pytest.raises(TypeError):
        db.execute()
    assert_usable(db)


# ---- malformed server answers (row 22) -----------------------------------------------------

# A column type the static codec table does not know: the client asks the catalog.
USER_TYPE_OID = 90000
CATALOG_COLUMNS = [
    ("oid", 26, 0),
    ("typtype", 18, 0),
    ("typbasetype", 26, 0),
    ("typelem", 26, 0),
    ("typname", 19, 0),
    ("proname", 19, 0),
    ("prosrc", 25, 0),
    ("array_agg", 1028, 0),
    ("no_receive", 16, 0),
]
ENUM_ROW = [str(USER_TYPE_OID).encode(), b"e", b"0", b"0", b"mood", b"enum_send", None, None, b"f"]

CATALOG_ANSWERS = {
    "well-formed": Answer(CATALOG_COLUMNS, [ENUM_ROW]),
    "eight-columns": Answer(CATALOG_COLUMNS[:8], [ENUM_ROW[:8]]),
    "no-columns": Answer(tag="SELECT 0"),
    "binary-format": Answer([(name, oid, 1) for name, oid, _ in CATALOG_COLUMNS], [ENUM_ROW]),
    "null-oid": Answer(CATALOG_COLUMNS, [[None, *ENUM_ROW[1:]]]),
    "oid-not-asked": Answer(CATALOG_COLUMNS, [[b"12345", *ENUM_ROW[1:]]]),
    "garbage-oid": Answer(CATALOG_COLUMNS, [[b"mood", *ENUM_ROW[1:]]]),
    "null-typtype": Answer(CATALOG_COLUMNS, [[ENUM_ROW[0], None, *ENUM_ROW[2:]]]),
}


def fake_catalog(catalog: Answer):
    def answer(sql: str) -> Answer:
        if "pg_catalog.pg_type" in sql:
            return catalog
        if sql == "SELECT mood":
            return Answer([("mood", USER_TYPE_OID, 1)], [[b"happy"]])
        if sql == "SELECT one":
            return Answer([("one", 23, 1)], [[(1).to_bytes(4, "big")]])
        return Answer(error=f"the fake server does not know {sql!r}")

    return answer


def test_type_without_receive_function_comes_as_text_results():
    """A type oxpg cannot decode, whose binary form the server cannot turn back into
    text (no receive function), is asked for in text before the statement runs: the
    text-form round trip would fail (and abort a transaction block)."""
    opaque_row = [str(USER_TYPE_OID).encode(), b"b", b"0", b"0", b"opaque", b"opaque_send", b"opaque_send", None, b"t"]

    def answer(sql: str) -> Answer:
        if "pg_catalog.pg_type" in sql:
            return Answer(CATALOG_COLUMNS, [opaque_row])
        if sql == "SELECT opaque":
            return Answer([("opaque", USER_TYPE_OID, 0)], [[b"as text"]])
        return Answer(error=f"the fake server does not know {sql!r}")

    server = FakeServer(answer)
    try:
        with oxpg.connect(server.dsn) as client:
            assert client.query("SELECT opaque", timeout=5) == [{"opaque": "as text"}]
            assert server.result_formats[-1] == [0], "the statement ran with text results"
    finally:
        server.close()


@pytest.mark.parametrize("shape", list(CATALOG_ANSWERS), ids=list(CATALOG_ANSWERS))
def test_malformed_catalog_answer_is_an_interface_error(shape):
    """The type lookup's answer is server input like any other: a shape oxpg did not
    ask for raises InterfaceError (never RuntimeError, never a guess), and the
    client stays usable."""
    server = FakeServer(fake_catalog(CATALOG_ANSWERS[shape]))
    try:
        with oxpg.connect(server.dsn) as client:
            if shape == "well-formed":
                assert client.query("SELECT mood", timeout=5) == [{"mood": "happy"}]
            else:
                with pytest.raises(oxpg.InterfaceError, match="catalog"):
                    client.query("SELECT mood", timeout=5)
            assert any("pg_catalog.pg_type" in sql for sql in server.statements), "the catalog was asked"
            assert not client.closed and not client.broken
            assert client.query("SELECT one", timeout=5) == [{"one": 1}]
    finally:
        server.close()
