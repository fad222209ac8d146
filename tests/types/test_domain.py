"""Domains are their base type's value. A domain column arrives described by its
base type; arrays of domains and record fields name the domain, which the client
resolves through the catalog to its base type (domains over domains too)."""

from __future__ import annotations

import datetime

import pytest


@pytest.fixture(scope="module")
def domains(db):
    db.execute("CREATE DOMAIN pg_temp.posint AS int CHECK (VALUE > 0)")
    db.execute("CREATE DOMAIN pg_temp.label AS point")
    db.execute("CREATE DOMAIN pg_temp.small AS pg_temp.posint CHECK (VALUE < 100)")
    db.execute("CREATE TYPE pg_temp.mood AS ENUM ('ok')")
    db.execute("CREATE DOMAIN pg_temp.moodd AS pg_temp.mood")
    db.execute("CREATE DOMAIN pg_temp.day AS date")
    return db


def test_domain_over_point_is_its_base_type(domains):
    (row,) = domains.query("SELECT '(1,2)'::pg_temp.label AS v")
    assert row == {"v": (1.0, 2.0)}


def test_domain_over_int_is_its_base_type(domains):
    (row,) = domains.query("SELECT 5::pg_temp.posint AS v, (5::pg_temp.posint)::text AS t")
    assert row == {"v": 5, "t": "5"}


def test_array_of_domain(domains):
    (row,) = domains.query("SELECT ARRAY[1::pg_temp.posint, NULL, 3] AS v, "
                           "ARRAY['2024-01-02'::pg_temp.day] AS d, ARRAY['(1,2)'::pg_temp.label] AS p")
    assert row == {"v": [1, None, 3], "d": [datetime.date(2024, 1, 2)], "p": [(1.0, 2.0)]}


def test_domain_over_domain_and_over_enum(domains):
    (row,) = domains.query("SELECT ARRAY[7::pg_temp.small] AS v, ARRAY['ok'::pg_temp.moodd] AS m, "
                           "ROW(7::pg_temp.small, 'ok'::pg_temp.moodd) AS r")
    assert row == {"v": [7], "m": ["ok"], "r": (7, "ok")}


def test_domain_fields_of_a_composite(domains):
    domains.execute("CREATE TYPE pg_temp.dpair AS (a pg_temp.posint, b pg_temp.label)")
    (row,) = domains.query("SELECT ROW(3, '(0,1)')::pg_temp.dpair AS v, ARRAY[ROW(4, NULL)::pg_temp.dpair] AS a")
    assert row == {"v": (3, (0.0, 1.0)), "a": [(4, None)]}
