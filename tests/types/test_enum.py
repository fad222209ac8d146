"""Enums come back as str (their label), found through the catalog per client:
columns, arrays of enums, enums inside records and composites. Moved here from
test_unknown.py when enums stopped being text forms."""

from __future__ import annotations

import uuid

import pytest

import oxpg


@pytest.fixture(scope="module")
def mood(db):
    db.execute("CREATE TYPE pg_temp.mood AS ENUM ('happy', 'sad', 'o''neil', '', 'NULL', 'ünï {,}\"')")
    return db


@pytest.mark.parametrize("label", ["happy", "o'neil", "", "NULL", 'ünï {,}"'])
def test_enum_label_is_str(mood, label):
    (row,) = mood.query("SELECT $1::pg_temp.mood AS v, $1::pg_temp.mood::text AS t", label)
    assert type(row["v"]) is str and row["v"] == row["t"] == label


def test_enum_column(mood):
    db = mood
    db.execute("CREATE TEMP TABLE enum_t (m pg_temp.mood)")
    try:
        db.execute("INSERT INTO enum_t VALUES ($1), ($2), (NULL)", "happy", "o'neil")
        assert db.query("SELECT m FROM enum_t ORDER BY m") == [{"m": "happy"}, {"m": "o'neil"}, {"m": None}]
        assert db.query("SELECT count(*) AS n FROM enum_t WHERE m = $1", "happy") == [{"n": 1}]
    finally:
        db.execute("DROP TABLE enum_t")


def test_array_of_enums(mood):
    (row,) = mood.query("SELECT '{sad,happy,NULL,\"\"}'::pg_temp.mood[] AS v, "
                        "'{{sad},{happy}}'::pg_temp.mood[] AS w, '{}'::pg_temp.mood[] AS e")
    assert row == {"v": ["sad", "happy", None, ""], "w": [["sad"], ["happy"]], "e": []}


def test_enum_inside_anonymous_record(mood):
    # The record's field types are only in its data: the client looks the enum up
    # when it meets it and decodes again.
    (row,) = mood.query("SELECT ROW(1, 'sad'::pg_temp.mood, ARRAY['happy'::pg_temp.mood]) AS v")
    assert row == {"v": (1, "sad", ["happy"])}


def test_enum_param_as_str_and_text_array(mood):
    assert mood.query("SELECT $1::pg_temp.mood[] AS v", ["sad", None]) == [{"v": ["sad", None]}]


def test_a_new_enum_on_another_client_is_found(dsn):
    name = f"e_{uuid.uuid4().hex[:10]}"
    with oxpg.connect(dsn) as a, oxpg.connect(dsn) as b:
        a.execute(f"CREATE TYPE {name} AS ENUM ('x', 'y')")
        try:
            assert b.query(f"SELECT 'y'::{name} AS v") == [{"v": "y"}]
            # Dropped and created again: a new OID, looked up afresh.
            a.execute(f"DROP TYPE {name}; CREATE TYPE {name} AS ENUM ('z')")
            assert b.query(f"SELECT ARRAY['z'::{name}] AS v") == [{"v": ["z"]}]
        finally:
            a.execute(f"DROP TYPE IF EXISTS {name}")


def test_enum_in_query_tuples_and_prepared_statements(mood):
    for _ in range(8):  # past the prepare threshold
        assert mood.query_tuples("SELECT $1::pg_temp.mood AS v", "sad") == [("sad",)]
