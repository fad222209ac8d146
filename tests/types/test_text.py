"""str <-> text, varchar, bpchar (padding kept), name, "char"."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import oxpg

FAST = settings(max_examples=100, deadline=None)

# Every code point PostgreSQL text can hold: no NUL, no lone surrogates.
pg_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))

SAMPLES = ["", " ", "plain ascii", "é", "e\u0301", "日本語", "😀", "\U0010ffff", "\ufeffbom", "tab\there",
           "new\nline", "cr\r\nlf", "back\\slash", "quote'\"", "\x01\x7f", "\u2028\u2029", "a" * 10_000]


@pytest.mark.parametrize("value", SAMPLES, ids=range(len(SAMPLES)))
def test_round_trip(one, value):
    assert one("SELECT $1::text AS v", value) == value


@pytest.mark.parametrize("value", SAMPLES, ids=range(len(SAMPLES)))
def test_uncast_param_is_text(one, value):
    # OID 0 with nothing else to go on: the server resolves it as text.
    assert one("SELECT $1 AS v", value) == value


@given(pg_text)
@example("\U0001F600" * 3)
@example("\x7f\u0080\u07ff\u0800\uffff\U00010000")
@FAST
def test_round_trip_any_text(one, value):
    assert one("SELECT $1::text AS v", value) == value


@given(pg_text)
@FAST
def test_server_sees_the_exact_bytes(db, value):
    (row,) = db.query("SELECT octet_length($1::text) AS n, length($1::text) AS c, md5($1::text) AS h", value)
    encoded = value.encode("utf-8")
    assert row["n"] == len(encoded)
    assert row["c"] == len(value)
    import hashlib

    assert row["h"] == hashlib.md5(encoded).hexdigest()


def test_non_bmp_from_server(one):
    assert one("SELECT chr(128512) AS v") == "😀"
    assert one("SELECT chr(1114111) AS v") == "\U0010ffff"
    assert one("SELECT length($1) AS v", "😀x") == 2


def test_large_string(one):
    value = "ab\u00e9\U0001F600" * (2 * 1024 * 1024)  # 8M characters, 20 MB of UTF-8
    assert one("SELECT $1::text AS v", value) == value


@pytest.mark.parametrize("cast", ["varchar", "varchar(20)", "text", "char(20)", "bpchar"])
def test_character_types(one, cast):
    result = one(f"SELECT $1::{cast} AS v", "héllo")
    assert type(result) is str
    if cast == "char(20)":
        # bpchar keeps its padding, as the server prints it.
        assert result == "héllo" + " " * 15
    else:
        assert result == "héllo"


def test_bpchar_padding_kept(one):
    assert one("SELECT 'ab'::char(5) AS v") == "ab   "
    assert one("SELECT ''::char(3) AS v") == "   "
    assert one("SELECT 'ab'::char(5) = $1 AS v", "ab") is True


def test_varchar_length_limit_is_an_error(db):
    # Assigning too long a value is a server error (22001), never silent truncation.
    db.execute("CREATE TEMP TABLE text_t (v varchar(3))")
    try:
        with pytest.raises(oxpg.DataError):
            db.execute("INSERT INTO text_t VALUES ($1)", "abcd")
        assert db.query("SELECT count(*) AS n FROM text_t") == [{"n": 0}]
        db.execute("INSERT INTO text_t VALUES ($1)", "日本語")
        assert db.query("SELECT v FROM text_t") == [{"v": "日本語"}]
    finally:
        db.execute("DROP TABLE text_t")


def test_name(one):
    assert one("SELECT 'pg_class'::name AS v") == "pg_class"
    assert one("SELECT $1::name AS v", "héllo") == "héllo"
    assert one("SELECT current_user AS v") == "oxpg_test"


@pytest.mark.parametrize(("literal", "expected"), [("'x'", "x"), ("'A'", "A"), ("' '", " "), ("''", "")])
def test_char(one, literal, expected):
    # "char" is one byte; it comes back as a str of that character, like its text form.
    result = one(f'SELECT {literal}::"char" AS v')
    assert result == expected
    assert result == one(f'SELECT {literal}::"char"::text AS v')


def test_char_high_byte_is_one_character(one):
    # A non-ASCII "char" holds only the first UTF-8 byte (0xC3 for 'é'); the decoder
    # maps the byte to one code point without loss.
    result = one('SELECT \'é\'::"char" AS v')
    assert isinstance(result, str) and len(result) == 1 and ord(result) == 0xC3


def test_str_param_type_is_inferred_by_the_server(db):
    db.execute("CREATE TEMP TABLE infer_t (d date, i int, n numeric, b bool, j jsonb)")
    try:
        db.execute("INSERT INTO infer_t VALUES ($1, $2, $3, $4, $5)", "2024-01-02", "42", "1.50", "true", '{"a": 1}')
        assert db.query("SELECT count(*) AS n FROM infer_t WHERE d = $1 AND i = $2", "2024-01-02", "42") == [{"n": 1}]
        (row,) = db.query("SELECT d::text AS d, i, n::text AS n, b, j FROM infer_t")
        assert row == {"d": "2024-01-02", "i": 42, "n": "1.50", "b": True, "j": {"a": 1}}
    finally:
        db.execute("DROP TABLE infer_t")


def test_str_subclass_is_text(one):
    class MyStr(str):
        pass

    assert one("SELECT $1::text AS v", MyStr("sub")) == "sub"


def test_invalid_utf8_from_server_is_an_error(db):
    # The server itself refuses to build invalid UTF-8 text (22021): a clear
    # DataError, never mojibake.
    with pytest.raises(oxpg.DataError) as info:
        db.query("SELECT convert_from('\\xff'::bytea, 'UTF8') AS v")
    assert info.value.sqlstate == "22021"
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_null(one):
    assert one("SELECT NULL::text AS v") is None
    assert one("SELECT $1::text AS v", None) is None
    assert one("SELECT $1::text IS NULL AS v", "") is False  # '' is not NULL
