"""query_one() and query_value(): the single-row and single-value helpers."""

from __future__ import annotations

import pytest

import oxpg


def test_query_one_returns_the_first_row_as_a_dict(client: oxpg.Client) -> None:
    assert client.query_one("SELECT $1::int AS a, 'x' AS b", 7) == {"a": 7, "b": "x"}
    assert client.query_one("SELECT g AS a FROM generate_series(1, 3) g ORDER BY g") == {"a": 1}


def test_query_one_without_rows_is_none(client: oxpg.Client) -> None:
    assert client.query_one("SELECT 1 AS a WHERE false") is None


def test_query_value_returns_the_first_column_of_the_first_row(client: oxpg.Client) -> None:
    assert client.query_value("SELECT count(*) FROM generate_series(1, $1)", 5) == 5
    assert client.query_value("SELECT NULL::int") is None
    assert client.query_value("SELECT 1 WHERE false") is None


def test_query_value_of_a_row_without_columns_raises(client: oxpg.Client) -> None:
    # PostgreSQL allows rows with zero columns: there is no first value to return.
    with pytest.raises(oxpg.ProgrammingError, match="no columns"):
        client.query_value("SELECT FROM generate_series(1, 1)")
    assert client.query_value("SELECT 2") == 2


def test_helpers_pass_the_timeout_through(client: oxpg.Client) -> None:
    with pytest.raises(oxpg.QueryTimeoutError):
        client.query_value("SELECT pg_sleep(5)", timeout=0.2)
    assert client.query_one("SELECT 1 AS ok", timeout=1) == {"ok": 1}
