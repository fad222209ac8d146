"""What the benchmark runs: the schema, the statements, their parameters, and how long.

bench/floor.c holds the same statements in C; run.py checks the two agree before timing.
Statements use libpq's $n placeholders; drivers with %s placeholders convert them
(each $n appears once and in order, so the conversion is a plain substitution).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

TABLE_ROWS = 10_000
BIG_ROWS = 100_000
BATCH_ROWS = 1_000
SERIES_ROWS = 1_000

# Bump when the schema or the generated data changes, so stale tables get rebuilt.
SCHEMA_VERSION = "oxpg bench schema 1"

COLS = "id, name, email, age, score, active, created_at, balance"

_TABLE_DDL = """CREATE TABLE {name} (
    id int4 PRIMARY KEY, name text NOT NULL, email text NOT NULL, age int4 NOT NULL,
    score float8 NOT NULL, active bool NOT NULL, created_at timestamptz NOT NULL,
    balance numeric(12,2) NOT NULL)"""

# The same formulas as row_values() below and app_row_for() in floor.c.
_FILL = """INSERT INTO {name} SELECT i, 'user_' || i, 'user' || i || '@example.com',
    18 + i % 60, ((i * 37) % 1000) / 10.0, i % 3 <> 0,
    timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute',
    ((i::int8 * 7919) % 10000000) / 100.0
    FROM generate_series(1, {rows}) AS i"""


def setup_statements() -> list[str]:
    """Statements that (re)create the tables; run one at a time (VACUUM needs that)."""
    stmts = ["DROP TABLE IF EXISTS bench_users, bench_users_100k, bench_insert"]
    for name, rows in (("bench_users", TABLE_ROWS), ("bench_users_100k", BIG_ROWS)):
        stmts.append(_TABLE_DDL.format(name=name))
        stmts.append(_FILL.format(name=name, rows=rows))
        stmts.append(f"VACUUM ANALYZE {name}")
    # Unlogged and without a key: the inserts measure the client and the protocol, not
    # WAL flushes to this machine's disk or index growth over a long run.
    stmts.append("CREATE UNLOGGED TABLE bench_insert (LIKE bench_users)")
    stmts.append(f"COMMENT ON TABLE bench_users IS '{SCHEMA_VERSION}'")
    return stmts


# Everything as text, so any admin connection returns the same strings.
TABLES_EXIST_SQL = (
    "SELECT (to_regclass('bench_users') IS NOT NULL AND to_regclass('bench_users_100k')"
    " IS NOT NULL AND to_regclass('bench_insert') IS NOT NULL)::text"
)
CHECK_SQL = (
    "SELECT obj_description('bench_users'::regclass, 'pg_class'),"
    " (SELECT count(*) FROM bench_users)::text, (SELECT count(*) FROM bench_users_100k)::text"
)
CHECK_EXPECTED = [SCHEMA_VERSION, str(TABLE_ROWS), str(BIG_ROWS)]
RESET_INSERTS = "TRUNCATE bench_insert"
COUNT_INSERTS = "SELECT count(*)::text FROM bench_insert"

_BASE_TS = datetime(2024, 1, 1, tzinfo=UTC)
_EPOCH_2000 = datetime(2000, 1, 1, tzinfo=UTC)

Row = tuple[int, str, str, int, float, bool, datetime, Decimal]


def row_values(i: int) -> Row:
    return (
        i,
        f"user_{i}",
        f"user{i}@example.com",
        18 + i % 60,
        (i * 37 % 1000) / 10.0,
        i % 3 != 0,
        _BASE_TS + timedelta(minutes=i),
        Decimal(i * 7919 % 10_000_000).scaleb(-2),
    )


def window_start(i: int, limit: int) -> int:
    """The id the i-th op starts after: it moves around the table, the same for all."""
    return (i % TABLE_ROWS) * 7919 % (TABLE_ROWS - limit)


@dataclass(frozen=True)
class Plan:
    """How many ops: warmup untimed, then rounds x batch timed, per driver."""

    warmup: int
    batch: int
    rounds: int


Kind = Literal["rows", "command", "many"]


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    kind: Kind  # rows: query -> rows; command: one execute; many: a batch of rows
    sql: str
    params: Callable[[int], Any]  # op index -> tuple of params (a list of them for many)
    quick: Plan
    full: Plan
    rows_per_op: int = 1  # rows each op returns or inserts; checked once per driver
    reset_sql: str | None = None  # run before each driver's batch, untimed
    values_sql: str | None = None  # "INSERT ... VALUES %s" form for multi-row VALUES APIs

    def plan(self, quick: bool) -> Plan:
        return self.quick if quick else self.full


def percent_s(sql: str) -> str:
    """$1, $2, ... -> %s for psycopg and psycopg2, checking each $n appears once in order."""
    found = [int(m) for m in re.findall(r"\$(\d+)", sql)]
    if found != list(range(1, len(found) + 1)):
        raise ValueError(f"placeholders out of order in {sql!r}")
    if "%" in sql:
        raise ValueError(f"literal % in {sql!r} would need escaping")
    return re.sub(r"\$\d+", "%s", sql)


def _select(limit: int, quick: Plan, full: Plan) -> Workload:
    return Workload(
        name=f"select_{limit}",
        description=(
            f"SELECT {limit} row{'s' if limit > 1 else ''} x 8 columns by"
            f" `WHERE id > $1 ORDER BY id LIMIT {limit}`"
        ),
        kind="rows",
        sql=f"SELECT {COLS} FROM bench_users WHERE id > $1 ORDER BY id LIMIT {limit}",
        params=lambda i: (window_start(i, limit),),
        rows_per_op=limit,
        quick=quick,
        full=full,
    )


_SELECT_PARAMS = (
    f"SELECT {COLS} FROM bench_users WHERE id = $1 AND age >= $2 AND age < $3"
    " AND score >= $4 AND score < $5 AND (active OR $6) AND created_at >= $7"
    " AND balance >= $8 AND name LIKE $9 AND email <> $10"
)


def _select_params(i: int) -> tuple[Any, ...]:
    # Every row passes the last nine tests, so the id alone picks the one row.
    return (
        1 + i % TABLE_ROWS, 0, 200, -1.0, 1e9, True, _EPOCH_2000, Decimal("0.00"),
        "user_%", "",
    )  # fmt: skip


_INSERT = f"INSERT INTO bench_insert ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"


def _batch(i: int) -> list[Row]:
    return [row_values(i * BATCH_ROWS + k) for k in range(BATCH_ROWS)]


# Quick: about half a minute with every driver present. Full: about ten times the ops.
WORKLOADS: list[Workload] = [
    _select(1, Plan(200, 150, 20), Plan(500, 250, 80)),
    _select(10, Plan(200, 150, 20), Plan(500, 250, 80)),
    _select(100, Plan(100, 50, 20), Plan(200, 100, 60)),
    _select(1000, Plan(20, 15, 20), Plan(50, 20, 60)),
    Workload(
        name="select_params",
        description="SELECT 1 row x 8 columns with 10 parameters of mixed types",
        kind="rows",
        sql=_SELECT_PARAMS,
        params=_select_params,
        quick=Plan(200, 150, 20),
        full=Plan(500, 250, 80),
    ),
    Workload(
        name="insert_1",
        description="INSERT 1 row x 8 parameters, autocommit",
        kind="command",
        sql=_INSERT,
        params=row_values,
        quick=Plan(200, 150, 20),
        full=Plan(500, 250, 80),
        reset_sql=RESET_INSERTS,
    ),
    Workload(
        name="insert_batch",
        description=f"INSERT {BATCH_ROWS} rows x 8 parameters in one batch call, autocommit",
        kind="many",
        sql=_INSERT,
        params=_batch,
        rows_per_op=BATCH_ROWS,
        quick=Plan(3, 4, 10),
        full=Plan(5, 5, 40),
        reset_sql=RESET_INSERTS,
        values_sql=f"INSERT INTO bench_insert ({COLS}) VALUES %s",
    ),
    Workload(
        name="fetch_100k",
        description=f"SELECT all {BIG_ROWS:,} rows x 8 columns (peak RSS measured apart)",
        kind="rows",
        sql=f"SELECT {COLS} FROM bench_users_100k",
        params=lambda i: (),
        rows_per_op=BIG_ROWS,
        quick=Plan(1, 1, 8),
        full=Plan(2, 1, 40),
    ),
    Workload(
        name="generate_series",
        description=f"`SELECT i FROM generate_series(1, $1)` with $1 = {SERIES_ROWS}",
        kind="rows",
        sql="SELECT i FROM generate_series(1, $1) AS i",
        params=lambda i: (SERIES_ROWS,),
        rows_per_op=SERIES_ROWS,
        quick=Plan(50, 50, 20),
        full=Plan(200, 100, 60),
    ),
]

BY_NAME = {w.name: w for w in WORKLOADS}
