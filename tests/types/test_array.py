"""Arrays of decodable element types come back as (nested) lists.

Lower bounds are dropped: a Python list starts at 0 whatever PostgreSQL's index base.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

import oxpg


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("ARRAY[1, 2, 3]", [1, 2, 3]),
        ("'{1,NULL,3}'::int[]", [1, None, 3]),
        ("'{}'::int[]", []),
        ("'{{1,2},{3,4}}'::int[]", [[1, 2], [3, 4]]),
        ("'{{{1},{2}},{{3},{4}}}'::int8[]", [[[1], [2]], [[3], [4]]]),
        ("ARRAY['a b', 'c\"d', NULL, '', 'NULL', '{,}', 'back\\slash']", ["a b", 'c"d', None, "", "NULL", "{,}", "back\\slash"]),
        ("ARRAY[1.5, NULL]::numeric[]", [Decimal("1.5"), None]),
        ("ARRAY['2024-01-02'::date]", [datetime.date(2024, 1, 2)]),
        ("ARRAY[true, false]", [True, False]),
        ("ARRAY['{\"a\": 1}'::jsonb]", [{"a": 1}]),
        ("'[3:4]={7,8}'::int[]", [7, 8]),
        ("ARRAY[ROW(1, 'a')]", [(1, "a")]),
    ],
)
def test_array_decodes_to_lists(client: oxpg.Client, expr: str, expected: list[object]) -> None:
    assert client.query(f"SELECT {expr} AS v") == [{"v": expected}]


def test_array_of_undecodable_elements_comes_back_as_text(client: oxpg.Client) -> None:
    # point[] has no decoder yet, so the whole array takes the text-form fallback.
    assert client.query("SELECT ARRAY[point(1, 2)] AS v") == [{"v": '{"(1,2)"}'}]


def test_record_with_undecodable_field_raises_data_error(client: oxpg.Client) -> None:
    with pytest.raises(oxpg.DataError, match="cannot decode inside a record"):
        client.query("SELECT ROW(1, point(1, 2)) AS v")
    assert client.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_void_is_none(client: oxpg.Client) -> None:
    assert client.query("SELECT pg_sleep(0) AS v") == [{"v": None}]
