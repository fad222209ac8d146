"""Placeholder counting (src/_oxpg/sqlscan.c): surplus parameters are refused, and a
'$n' inside a literal, identifier, dollar quote or comment is not a placeholder."""

from __future__ import annotations

import pytest

import oxpg


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT '$2' AS a, $1::int AS b",
        "SELECT E'\\'$2' AS a, $1::int AS b",
        'SELECT 1 AS "x$2", $1::int AS b',
        "SELECT $$ $2 $$ AS a, $1::int AS b",
        "SELECT $tag$ $2 $tag$ AS a, $1::int AS b",
        "SELECT $1::int AS b -- $2\n",
        "SELECT /* $2 /* nested $3 */ $4 */ $1::int AS b",
    ],
)
def test_hidden_dollar_signs_are_not_placeholders(client: oxpg.Client, sql: str) -> None:
    (row,) = client.query(sql, 7)
    assert row["b"] == 7
    with pytest.raises(oxpg.ProgrammingError, match="uses only"):
        client.query(sql, 7, 8)


def test_gaps_count_up_to_the_highest_placeholder(client: oxpg.Client) -> None:
    # $1 unused but $2 used: two parameters are expected, the server decides $1's type.
    assert client.query("SELECT $2::int AS b, $1::text AS a", "x", 3) == [{"b": 3, "a": "x"}]


def test_parameters_without_placeholders_are_refused(client: oxpg.Client) -> None:
    with pytest.raises(oxpg.ProgrammingError, match="no \\$n placeholder"):
        client.execute("SELECT 1", 1)
    assert client.query("SELECT 1 AS ok") == [{"ok": 1}]
