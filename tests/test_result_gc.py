"""Results and the cyclic garbage collector.

oxpg never switches the collector off or on: that is a process-wide switch, other
threads and the user own it. Large results stay cheap for the collector because tuple
rows that cannot be part of a cycle are untracked as they are built, with CPython's own
rule; rows that hold a container stay tracked, so a cycle through one is collected.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import oxpg
from oxpg.types import register_type


@pytest.fixture
def gc_state() -> Iterator[None]:
    """Puts the collector back as the suite had it, whatever a test did to it."""
    was_enabled = gc.isenabled()
    try:
        yield
    finally:
        (gc.enable if was_enabled else gc.disable)()


def rows_watching_gc(c: oxpg.Client, n: int, seen: list[bool]) -> list[Any]:
    """Fetches n rows through a Python decoder that notes gc.isenabled() per value:
    what the collector's switch is while oxpg builds the rows."""
    c.execute("CREATE TYPE pg_temp.probe AS ENUM ('x')")

    def decode(text: str) -> str:
        seen.append(gc.isenabled())
        return text

    register_type(c, "pg_temp.probe", decoder=decode)
    return c.query_tuples("SELECT i, 'x'::pg_temp.probe AS p FROM generate_series(1, $1) AS i", n)


def big(n_factor: int = 4) -> int:
    # Enough rows that the collector's allocation threshold is crossed several times.
    return max(5000, gc.get_threshold()[0] * n_factor)


def test_large_fetch_leaves_the_collector_enabled(client: oxpg.Client, gc_state: None) -> None:
    gc.enable()
    collections: list[str] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        collections.append(phase)

    seen: list[bool] = []
    gc.callbacks.append(on_gc)
    try:
        n = big()
        rows = rows_watching_gc(client, n, seen)
    finally:
        gc.callbacks.remove(on_gc)
    assert len(rows) == n and len(seen) == n
    assert all(seen), f"the collector was off for {seen.count(False)} of {n} values"
    assert gc.isenabled()
    assert collections, "no collection ran during a fetch of many new containers"


def test_large_fetch_leaves_the_collector_disabled(client: oxpg.Client, gc_state: None) -> None:
    gc.disable()
    seen: list[bool] = []
    n = big()
    rows = rows_watching_gc(client, n, seen)
    assert len(rows) == n and len(seen) == n
    assert not any(seen), "the fetch turned the collector on"
    assert not gc.isenabled()


@pytest.mark.parametrize("method", ["query", "query_tuples"])
@pytest.mark.parametrize("n", [1, 1000])
def test_rows_of_plain_values_are_untracked(client: oxpg.Client, method: str, n: int) -> None:
    rows = getattr(client, method)(
        "SELECT i AS i, 'a' || i AS t, i * 0.5::float8 AS f, NULL::int AS nothing, 'x'::bytea AS b,"
        " now() AS ts, true AS ok, i * 1.25::numeric AS n FROM generate_series(1, $1) AS i",
        n,
    )
    assert len(rows) == n
    assert not any(gc.is_tracked(r) for r in rows)


def test_decimals_are_untracked(client: oxpg.Client) -> None:
    # A container to the collector on Python 3.13 (for its type's sake), holding no
    # reference that could close a cycle: oxpg untracks the ones it makes.
    (row,) = client.query_tuples("SELECT 1.5::numeric, ARRAY[2.5]::numeric[]")
    assert row[0] == Decimal("1.5") and not gc.is_tracked(row[0])
    assert row[1] == [Decimal("2.5")] and not gc.is_tracked(row[1][0])


def test_tuple_rows_holding_what_the_collector_tracks_stay_tracked(client: oxpg.Client) -> None:
    rows = client.query_tuples(
        "SELECT 'e5a3dc0b-1e13-4a4b-a3c4-6f4ab3c9a1f5'::uuid UNION ALL SELECT NULL",
    )
    assert gc.is_tracked(rows[0])  # a UUID is a Python object, a container
    assert not gc.is_tracked(rows[1])
    (row,) = client.query_tuples("SELECT ARRAY[1], '{}'::jsonb, ROW(1, 2)")
    assert gc.is_tracked(row)


class Marker:
    pass


@pytest.mark.parametrize(
    "sql, container",
    [
        ("SELECT ARRAY[1, 2] AS a", lambda row: row[0]),  # a list
        # A dict of plain values starts untracked, and is tracked as soon as a container
        # goes in: the row must not be untracked on the strength of its state at build.
        ("SELECT '{\"a\": 1}'::jsonb AS j", lambda row: row[0]),
        ("SELECT '[]'::json AS j", lambda row: row[0]),
    ],
    ids=["array", "jsonb-object", "json-array"],
)
def test_cycle_through_a_tuple_row_is_collected(
    client: oxpg.Client, gc_state: None, sql: str, container: Any
) -> None:
    gc.disable()  # only the explicit collection below may free it
    (row,) = client.query_tuples(sql)
    marker = Marker()
    marker.row = row  # type: ignore[attr-defined]
    held = container(row)
    if isinstance(held, list):
        held.append(marker)
    else:
        held["m"] = marker
    # marker -> row -> container -> marker: only the collector can free it.
    gone = weakref.ref(marker)
    del row, marker, held
    gc.collect()
    assert gone() is None, "a cycle through a row was not collected"


def test_cycle_through_a_dict_row_is_collected(client: oxpg.Client, gc_state: None) -> None:
    gc.disable()
    (row,) = client.query("SELECT ARRAY[1, 2] AS a")
    marker = Marker()
    marker.row = row  # type: ignore[attr-defined]
    row["a"].append(marker)
    gone = weakref.ref(marker)
    del row, marker
    gc.collect()
    assert gone() is None


@pytest.mark.parametrize("method", ["query", "query_tuples"])
def test_cycle_through_the_result_list_is_collected(client: oxpg.Client, gc_state: None, method: str) -> None:
    gc.disable()
    rows = getattr(client, method)("SELECT i FROM generate_series(1, 1000) AS i")
    assert gc.is_tracked(rows)  # it is out of sight only while oxpg fills it
    marker = Marker()
    marker.rows = rows  # type: ignore[attr-defined]
    rows.append(marker)
    gone = weakref.ref(marker)
    del rows, marker
    gc.collect()
    assert gone() is None


def test_cycle_through_an_untracked_dict_row_is_collected(client: oxpg.Client, gc_state: None) -> None:
    gc.disable()
    (row,) = client.query("SELECT 1 AS i, 2.5::numeric AS n")
    assert not gc.is_tracked(row)
    marker = Marker()
    marker.row = row  # type: ignore[attr-defined]
    row["m"] = marker  # CPython tracks the dict again: it now holds a container
    gone = weakref.ref(marker)
    del row, marker
    gc.collect()
    assert gone() is None
