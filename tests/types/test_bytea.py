"""bytes / bytearray / memoryview -> bytea; bytea -> bytes. NUL bytes round-trip exactly."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import oxpg

FAST = settings(max_examples=100, deadline=None)

SAMPLES = [b"", b"\x00", b"\x00" * 100, b"a\x00b", b"\xff\xfe\x00\x01", bytes(range(256)), b"\\x00", b"'; --",
           "é".encode("latin-1"), b"\x95\x5c'"]


@pytest.mark.parametrize("value", SAMPLES, ids=range(len(SAMPLES)))
@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda w: w.__name__)
def test_round_trip(one, value, wrap):
    result = one("SELECT $1::bytea AS v", wrap(value))
    assert type(result) is bytes
    assert result == value


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda w: w.__name__)
def test_param_type_is_bytea(one, wrap):
    assert one("SELECT pg_typeof($1)::text AS v", wrap(b"x\x00")) == "bytea"
    assert one("SELECT $1 AS v", wrap(b"x\x00")) == b"x\x00"


@given(st.binary(max_size=2000))
@example(b"\x00\x00\x00")
@FAST
def test_round_trip_any_bytes(one, value):
    assert one("SELECT $1::bytea AS v", value) == value


@given(st.binary(max_size=2000))
@FAST
def test_server_sees_the_exact_bytes(db, value):
    (row,) = db.query("SELECT length($1::bytea) AS n, encode($1::bytea, 'hex') AS h", value)
    assert row == {"n": len(value), "h": value.hex()}


@given(st.binary(max_size=500))
@FAST
def test_decode_server_built_value(one, value):
    # The server builds the bytea from hex text; independent of our encoder.
    assert one("SELECT decode($1, 'hex') AS v", value.hex()) == value


def test_memoryview_slice(one):
    data = bytearray(b"0123456789")
    assert one("SELECT $1::bytea AS v", memoryview(data)[2:5]) == b"234"


def test_strided_memoryview(db):
    # A non-contiguous view is still a memoryview: send its bytes, or refuse it with
    # DataError; never a bare BufferError or the wrong bytes.
    view = memoryview(b"abcdef")[::2]
    try:
        rows = db.query("SELECT $1::bytea AS v", view)
    except oxpg.DataError:
        return
    assert rows == [{"v": b"ace"}]


def test_memoryview_of_other_formats_sends_its_bytes(one):
    import array

    view = memoryview(array.array("i", [1, 2, 3]))
    assert one("SELECT $1::bytea AS v", view) == view.tobytes()


def test_bytes_subclass(one):
    class MyBytes(bytes):
        pass

    assert one("SELECT pg_typeof($1)::text AS t", MyBytes(b"\x00x")) == "bytea"
    assert one("SELECT $1 AS v", MyBytes(b"\x00x")) == b"\x00x"


def test_bytearray_is_copied_at_call_time(one):
    data = bytearray(b"before")
    result = one("SELECT $1::bytea AS v", data)
    data[:] = b"after!"
    assert result == b"before"


def test_large(one):
    value = bytes(range(256)) * (64 * 1024)  # 16 MiB
    assert one("SELECT md5($1::bytea) AS v", value) == hashlib.md5(value).hexdigest()
    assert one("SELECT $1::bytea AS v", value) == value


def test_bytea_column(db):
    db.execute("CREATE TEMP TABLE bytea_t (id int, b bytea)")
    try:
        for i, v in enumerate(SAMPLES):
            db.execute("INSERT INTO bytea_t VALUES ($1, $2)", i, v)
        got = [r["b"] for r in db.query("SELECT b FROM bytea_t ORDER BY id")]
        assert got == SAMPLES
        assert db.query("SELECT id FROM bytea_t WHERE b = $1", b"a\x00b") == [{"id": 3}]
    finally:
        db.execute("DROP TABLE bytea_t")


@pytest.mark.parametrize("output", ["hex", "escape"])
def test_bytea_output_does_not_change_results(client, output):
    client.execute(f"SET bytea_output TO {output}")
    for v in SAMPLES:
        assert client.query("SELECT $1::bytea AS v", v) == [{"v": v}]
    assert client.query("SELECT '\\x00ff'::bytea AS v") == [{"v": b"\x00\xff"}]


def test_null(one):
    assert one("SELECT NULL::bytea AS v") is None
    assert one("SELECT $1::bytea AS v", None) is None
    assert one("SELECT $1::bytea IS NULL AS v", b"") is False
