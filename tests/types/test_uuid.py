"""uuid.UUID <-> uuid."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=100, deadline=None)

SAMPLES = [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.UUID("12345678-1234-5678-1234-567812345678"),
           uuid.UUID(int=1), uuid.UUID(int=1 << 64), uuid.UUID(int=(1 << 64) - 1), uuid.NAMESPACE_DNS]


@pytest.mark.parametrize("value", SAMPLES, ids=str)
def test_round_trip(one, value):
    result = one("SELECT $1::uuid AS v", value)
    assert type(result) is uuid.UUID
    assert result == value


@given(st.uuids())
@FAST
def test_round_trip_any(db, value):
    (row,) = db.query("SELECT $1 AS v, $1::text AS t, pg_typeof($1)::text AS ty", value)
    assert row == {"v": value, "t": str(value), "ty": "uuid"}


@given(st.uuids())
@example(uuid.UUID(int=2**128 - 1))
@FAST
def test_decode_server_parsed_value(one, value):
    assert one("SELECT $1::uuid AS v", str(value).upper()) == value


def test_gen_random_uuid(one):
    result = one("SELECT gen_random_uuid() AS v")
    assert type(result) is uuid.UUID and result.version == 4


def test_column(db):
    db.execute("CREATE TEMP TABLE uuid_t (u uuid PRIMARY KEY)")
    try:
        for u in SAMPLES:
            db.execute("INSERT INTO uuid_t VALUES ($1)", u)
        assert sorted(r["u"] for r in db.query("SELECT u FROM uuid_t")) == sorted(SAMPLES)
        assert db.query("SELECT count(*) AS n FROM uuid_t WHERE u = $1", SAMPLES[2]) == [{"n": 1}]
        assert db.query("SELECT count(*) AS n FROM uuid_t WHERE u = $1", str(SAMPLES[2])) == [{"n": 1}]
    finally:
        db.execute("DROP TABLE uuid_t")


def test_uuid_subclass(one):
    class MyUUID(uuid.UUID):
        pass

    value = MyUUID(int=42)
    assert one("SELECT $1::uuid AS v", value) == uuid.UUID(int=42)


def test_null(one):
    assert one("SELECT NULL::uuid AS v") is None
    assert one("SELECT $1::uuid AS v", None) is None
