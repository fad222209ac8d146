"""Fixtures for the per-type tests in tests/types/.

`db` is one connection per test module (hypothesis refuses function-scoped fixtures
inside @given tests, and a connection per example would dominate the run time).
Tests that change session settings use the suite's function-scoped `client` instead,
so nothing leaks into `db`.

`one(sql, *params)` runs a statement that must return exactly one row with one
column and returns that value: the tests read as `assert one("SELECT $1::int", 5) == 5`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import oxpg

One = Callable[..., Any]


def single_value(client: oxpg.Client, sql: str, *params: object) -> Any:
    rows = client.query(sql, *params)
    assert len(rows) == 1, f"expected one row, got {len(rows)}"
    (row,) = rows
    assert len(row) == 1, f"expected one column, got {list(row)}"
    return next(iter(row.values()))


@pytest.fixture(scope="module")
def db(pg: Any) -> Iterator[oxpg.Client]:
    c = oxpg.connect(pg.dsn)
    # Fixed, documented settings for the tests that compare with the server's text
    # output; the binary results themselves must not depend on them (see the
    # *_settings tests, which use their own client).
    c.execute("SET DateStyle TO ISO, YMD; SET IntervalStyle TO postgres; SET TimeZone TO 'UTC'; "
              "SET extra_float_digits TO 1; SET bytea_output TO hex")
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def one(db: oxpg.Client) -> One:
    def run(sql: str, *params: object) -> Any:
        return single_value(db, sql, *params)

    return run
