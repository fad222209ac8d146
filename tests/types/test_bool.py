"""bool: Python bool <-> PostgreSQL boolean (binary both ways)."""

from __future__ import annotations

import pytest

import oxpg


@pytest.mark.parametrize("value", [True, False])
def test_round_trip(one, value):
    result = one("SELECT $1::bool AS v", value)
    assert result is value


@pytest.mark.parametrize("value", [True, False])
def test_param_is_sent_as_boolean(one, value):
    # Without a cast the server sees the parameter's own type.
    assert one("SELECT pg_typeof($1)::text AS v", value) == "boolean"
    assert one("SELECT $1 AS v", value) is value


def test_param_is_not_an_int(db):
    # bool is a subclass of int in Python; it must not be sent as int4 1/0.
    with pytest.raises(oxpg.ProgrammingError):
        db.query("SELECT $1 + 1 AS v", True)
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


@pytest.mark.parametrize("value", [True, False])
def test_server_sees_the_right_value(one, value):
    # Checked against the server's own text form, not just a round trip.
    assert one("SELECT $1::bool::text AS v", value) == ("true" if value else "false")
    assert one("SELECT NOT $1 AS v", value) is (not value)


@pytest.mark.parametrize(
    ("literal", "expected"),
    [("true", True), ("false", False), ("'t'::bool", True), ("'off'::bool", False), ("1 = 1", True),
     ("NULL::bool", None)],
)
def test_decode(one, literal, expected):
    assert one(f"SELECT {literal} AS v") is expected


def test_null_param(one):
    assert one("SELECT $1::bool AS v", None) is None
    assert one("SELECT $1::bool IS NULL AS v", None) is True


def test_column(db):
    db.execute("CREATE TEMP TABLE bool_t (b bool)")
    try:
        for v in (True, False, None):
            assert db.execute("INSERT INTO bool_t VALUES ($1)", v) == 1
        assert [r["b"] for r in db.query("SELECT b FROM bool_t ORDER BY b NULLS LAST")] == [False, True, None]
        assert db.query("SELECT count(*) AS n FROM bool_t WHERE b = $1", True) == [{"n": 1}]
    finally:
        db.execute("DROP TABLE bool_t")
