"""The drivers under test, each behind the same small interface.

Every driver is used the way its documentation recommends for speed: one connection in
autocommit, a reused cursor where there is one, its own batch API, its default row type
(tuples for psycopg and psycopg2, Records for asyncpg, dicts for oxpg). A driver that
cannot be imported is reported and left out; the run goes on without it.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import time
import urllib.parse
from collections.abc import Callable, Coroutine
from typing import Any

from workloads import Workload, percent_s

# oxpg's tuple-rows query has no settled name yet; the first of these that exists is used.
OXPG_TUPLE_METHODS = ("query_tuples", "query_tuple", "query_rows")

Op = Callable[[Any], object]


class Unavailable(Exception):
    """The driver cannot run here; the message says why and how to fix it."""


class Driver:
    label: str  # the column name in the report
    family: str  # "oxpg", "peer" or "floor": what the ratios compare
    detail: str = ""  # version and implementation, for the report

    def skip_reason(self, w: Workload) -> str | None:
        """Why this driver sits a workload out, or None when it runs it."""
        return None

    def run(self, w: Workload, first: int, params: list[Any]) -> list[int]:
        """Runs one op per params entry (op indices first, first+1, ...); ns per op."""
        raise NotImplementedError

    def count_rows(self, w: Workload, p: Any) -> int | None:
        """Runs one rows op untimed and counts its rows; None if the driver checks itself."""
        raise NotImplementedError

    def backend_pid(self) -> int | None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SyncDriver(Driver):
    """A blocking driver: ops are closures over the connection, made once per workload."""

    def __init__(self) -> None:
        self._ops: dict[str, Op] = {}

    def make_op(self, w: Workload) -> Op:
        raise NotImplementedError

    def op(self, w: Workload) -> Op:
        op = self._ops.get(w.name)
        if op is None:
            op = self._ops[w.name] = self.make_op(w)
        return op

    def count_rows(self, w: Workload, p: Any) -> int | None:
        return len(self.op(w)(p))  # type: ignore[arg-type]

    def run(self, w: Workload, first: int, params: list[Any]) -> list[int]:
        op = self.op(w)
        clock = time.perf_counter_ns
        out = [0] * len(params)
        # The op's result is dropped inside the timed region: freeing rows is part of
        # the cost of getting them, as free() is in the floor.
        for j, p in enumerate(params):
            t0 = clock()
            op(p)
            out[j] = clock() - t0
        return out


def load(module: str, fix: str) -> Any:
    """Imports a driver module, or says how to get it. Typed Any: the drivers are used
    through a handful of calls, and not all of them ship type information."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise Unavailable(f"import {module} failed ({e}); {fix}") from e


PEER_FIX = "pip install -r bench/requirements.txt"


def dist_version(*names: str) -> str:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return "?"


# ---- oxpg ----


def oxpg_op(calls: Any, w: Workload) -> Any:
    """The op of w on anything with oxpg's call family (a Client, an AsyncClient, a
    pool of either): query for rows, execute for a command, executemany for a batch."""
    sql = w.sql
    if w.kind == "rows":
        query = calls.query
        return lambda p: query(sql, *p)
    if w.kind == "command":
        execute = calls.execute
        return lambda p: execute(sql, *p)
    executemany = calls.executemany
    return lambda rows: executemany(sql, rows)


class OxpgDriver(SyncDriver):
    family = "oxpg"

    def __init__(self, dsn: str, tuples: bool) -> None:
        super().__init__()
        oxpg = load("oxpg", "build it with `make` first")
        self.client: Any = oxpg.connect(dsn)
        self.query: Callable[..., Any] = self.client.query
        self.label = "oxpg"
        self.detail = f"oxpg {getattr(oxpg, '__version__', dist_version('oxpg'))}, dict rows"
        if tuples:
            name = next((m for m in OXPG_TUPLE_METHODS if hasattr(self.client, m)), None)
            if name is None:
                self.client.close()
                looked = ", ".join(OXPG_TUPLE_METHODS)
                raise Unavailable(f"oxpg has no tuple-rows method yet (looked for {looked})")
            self.query = getattr(self.client, name)
            self.label = "oxpg tuples"
            self.detail = f"oxpg Client.{name}"

    def skip_reason(self, w: Workload) -> str | None:
        if self.label == "oxpg tuples" and w.kind != "rows":
            return "no rows come back, so it is the same as oxpg"
        if w.kind == "many" and not hasattr(self.client, "executemany"):
            return "oxpg has no Client.executemany yet"
        return None

    def make_op(self, w: Workload) -> Op:
        if w.kind == "rows":
            sql, query = w.sql, self.query  # query, or the tuple-rows method
            return lambda p: query(sql, *p)
        return oxpg_op(self.client, w)

    def backend_pid(self) -> int | None:
        row = self.client.query("SELECT pg_backend_pid() AS pid")[0]
        return int(row["pid"])

    def close(self) -> None:
        self.client.close()


class OxpgPoolDriver(OxpgDriver):
    """oxpg through oxpg.Pool's one-call shortcuts (max_size=1): what a borrowed
    query costs over a plain one, checkout and return included."""

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn, tuples=False)
        oxpg = load("oxpg", "build it with `make` first")
        self.pool: Any = oxpg.Pool(dsn, min_size=1, max_size=1)
        self.query = self.pool.query
        self.label = "oxpg pool"
        self.detail = "oxpg.Pool(max_size=1).query/execute/executemany, dict rows"

    def make_op(self, w: Workload) -> Op:
        return oxpg_op(self.pool, w)

    def backend_pid(self) -> int | None:
        return int(self.pool.query_value("SELECT pg_backend_pid()"))

    def close(self) -> None:
        self.pool.close()
        self.client.close()


# ---- psycopg 3 ----


class PsycopgDriver(SyncDriver):
    label = "psycopg"
    family = "peer"

    def __init__(self, dsn: str) -> None:
        super().__init__()
        psycopg = load("psycopg", PEER_FIX)
        impl = psycopg.pq.__impl__
        # "binary" is the C implementation as psycopg[binary] ships it prebuilt; "c" is
        # the same code built locally (psycopg[c]). The pure-Python one is not a fair peer.
        if impl not in ("c", "binary"):
            raise Unavailable(
                f"psycopg uses its {impl!r} implementation; install psycopg[binary] for C"
            )
        self.conn: Any = psycopg.connect(dsn, autocommit=True)
        self.cur: Any = self.conn.cursor()
        libpq = psycopg.pq.version()
        self.detail = (
            f"psycopg {psycopg.__version__}, {impl} implementation"
            f" (psycopg_{impl} {dist_version('psycopg-binary', 'psycopg-c')}),"
            f" libpq {libpq // 10000}.{libpq % 10000}, tuple rows, executemany"
        )

    def make_op(self, w: Workload) -> Op:
        sql, cur = percent_s(w.sql), self.cur
        execute, fetchall = cur.execute, cur.fetchall
        if w.kind == "rows":

            def rows(p: Any) -> object:
                execute(sql, p or None)
                return fetchall()

            return rows
        if w.kind == "command":

            def command(p: Any) -> object:
                execute(sql, p)
                return cur.rowcount

            return command
        executemany = cur.executemany
        return lambda rows: executemany(sql, rows)

    def backend_pid(self) -> int | None:
        return int(self.conn.info.backend_pid)

    def close(self) -> None:
        self.conn.close()


# ---- psycopg2 ----


class Psycopg2Driver(SyncDriver):
    label = "psycopg2"
    family = "peer"

    def __init__(self, dsn: str) -> None:
        super().__init__()
        psycopg2 = load("psycopg2", PEER_FIX)
        extras = load("psycopg2.extras", PEER_FIX)
        self.conn: Any = psycopg2.connect(dsn)
        self.conn.autocommit = True
        self.cur: Any = self.conn.cursor()
        self.execute_values = extras.execute_values
        libpq = psycopg2.__libpq_version__
        self.detail = (
            f"psycopg2 {psycopg2.__version__.split()[0]}"
            f" (dist {dist_version('psycopg2-binary', 'psycopg2')}),"
            f" libpq {libpq // 10000}.{libpq % 10000}, tuple rows, execute_values"
        )

    def skip_reason(self, w: Workload) -> str | None:
        if w.kind == "many" and w.values_sql is None:
            return "no multi-row VALUES form of this statement"
        return None

    def make_op(self, w: Workload) -> Op:
        cur = self.cur
        execute, fetchall = cur.execute, cur.fetchall
        if w.kind == "many":
            # execute_values sends the batch as one multi-row INSERT: psycopg2's
            # fastest batch path (executemany would be one round trip per row).
            values_sql, ev = w.values_sql, self.execute_values
            return lambda rows: ev(cur, values_sql, rows, page_size=len(rows))
        sql = percent_s(w.sql)
        if w.kind == "rows":

            def rows(p: Any) -> object:
                execute(sql, p or None)
                return fetchall()

            return rows

        def command(p: Any) -> object:
            execute(sql, p)
            return cur.rowcount

        return command

    def backend_pid(self) -> int | None:
        return int(self.conn.get_backend_pid())

    def close(self) -> None:
        self.conn.close()


# ---- asyncpg ----


def libpq_dsn_to_uri(dsn: str) -> str:
    """asyncpg reads only URIs; turns a libpq "key=value ..." string into one."""
    if dsn.startswith(("postgresql://", "postgres://")):
        return dsn
    opts: dict[str, str] = {}
    i, n = 0, len(dsn)
    while i < n:
        while i < n and dsn[i].isspace():
            i += 1
        if i == n:
            break
        eq = dsn.index("=", i)
        key = dsn[i:eq].strip()
        i = eq + 1
        while i < n and dsn[i].isspace():
            i += 1
        val = []
        if i < n and dsn[i] == "'":
            i += 1
            while dsn[i] != "'":
                if dsn[i] == "\\":
                    i += 1
                val.append(dsn[i])
                i += 1
            i += 1
        else:
            while i < n and not dsn[i].isspace():
                if dsn[i] == "\\":
                    i += 1
                val.append(dsn[i])
                i += 1
        opts[key] = "".join(val)
    q = urllib.parse.quote
    auth = q(opts.pop("user", ""), safe="")
    if "password" in opts:
        auth += ":" + q(opts.pop("password"), safe="")
    host = opts.pop("host", opts.pop("hostaddr", ""))
    netloc = (auth + "@" if auth else "") + ("" if host.startswith("/") else q(host, safe=""))
    if "port" in opts:
        netloc += ":" + opts.pop("port")
    if host.startswith("/"):
        opts["host"] = host  # a socket directory goes in the query string
    path = "/" + q(opts.pop("dbname", ""), safe="")
    return f"postgresql://{netloc}{path}" + ("?" + urllib.parse.urlencode(opts) if opts else "")


def new_event_loop() -> tuple[asyncio.AbstractEventLoop, str]:
    """uvloop's loop when it is installed (asyncpg's own benchmarks run on it), else
    asyncio's: every async driver runs on the same kind of loop."""
    try:
        return load("uvloop", "").new_event_loop(), f"uvloop {dist_version('uvloop')}"
    except Unavailable:
        return asyncio.new_event_loop(), "asyncio loop (uvloop not installed)"


AsyncOp = Callable[[Any], Coroutine[Any, Any, object]]


class AsyncDriver(Driver):
    """A driver for asyncio: ops are coroutine functions, awaited one after another
    on the driver's own loop, timed inside it."""

    def __init__(self) -> None:
        self.loop, self.loop_name = new_event_loop()
        self._ops: dict[str, AsyncOp] = {}

    def make_op(self, w: Workload) -> AsyncOp:
        raise NotImplementedError

    async def _batch(self, op: AsyncOp, params: list[Any]) -> list[int]:
        # Timed inside the loop, so entering and leaving the loop is not charged per op.
        clock = time.perf_counter_ns
        out = [0] * len(params)
        for j, p in enumerate(params):
            t0 = clock()
            await op(p)
            out[j] = clock() - t0
        return out

    def op(self, w: Workload) -> AsyncOp:
        op = self._ops.get(w.name)
        if op is None:
            op = self._ops[w.name] = self.make_op(w)
        return op

    def count_rows(self, w: Workload, p: Any) -> int | None:
        return len(self.loop.run_until_complete(self.op(w)(p)))  # type: ignore[arg-type]

    def run(self, w: Workload, first: int, params: list[Any]) -> list[int]:
        return self.loop.run_until_complete(self._batch(self.op(w), params))


class AsyncpgDriver(AsyncDriver):
    label = "asyncpg"
    family = "peer"

    def __init__(self, dsn: str) -> None:
        asyncpg = load("asyncpg", PEER_FIX)
        super().__init__()
        self.conn: Any = self.loop.run_until_complete(asyncpg.connect(libpq_dsn_to_uri(dsn)))
        self.detail = f"asyncpg {asyncpg.__version__}, {self.loop_name}, Record rows, executemany"

    def make_op(self, w: Workload) -> AsyncOp:
        sql, c = w.sql, self.conn
        if w.kind == "rows":
            fetch = c.fetch
            return lambda p: fetch(sql, *p)
        if w.kind == "command":
            execute = c.execute
            return lambda p: execute(sql, *p)
        executemany = c.executemany
        return lambda rows: executemany(sql, rows)

    def backend_pid(self) -> int | None:
        return int(self.conn.get_server_pid())

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


class OxpgAsyncDriver(AsyncDriver):
    label = "oxpg async"
    family = "oxpg"

    def __init__(self, dsn: str) -> None:
        load("oxpg", "build it with `make` first")
        aio = load("oxpg.aio", "oxpg has no asyncio client in this build")
        super().__init__()
        self.client: Any = self.loop.run_until_complete(aio.connect(dsn))
        self.detail = f"oxpg.aio.AsyncClient, {self.loop_name}, dict rows"

    def make_op(self, w: Workload) -> AsyncOp:
        return oxpg_op(self.client, w)

    def backend_pid(self) -> int | None:
        return int(self.client.backend_pid)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


class OxpgAsyncPoolDriver(AsyncDriver):
    label = "oxpg async pool"
    family = "oxpg"

    def __init__(self, dsn: str) -> None:
        aio = load("oxpg.aio", "oxpg has no asyncio client in this build")
        super().__init__()

        async def make() -> Any:
            return aio.AsyncPool(dsn, min_size=1, max_size=1)

        self.pool: Any = self.loop.run_until_complete(make())
        self.detail = f"oxpg.aio.AsyncPool(max_size=1).query/execute/executemany, {self.loop_name}, dict rows"

    def make_op(self, w: Workload) -> AsyncOp:
        return oxpg_op(self.pool, w)

    def backend_pid(self) -> int | None:
        return int(self.loop.run_until_complete(self.pool.query_value("SELECT pg_backend_pid()")))

    def close(self) -> None:
        self.loop.run_until_complete(self.pool.close())
        self.loop.close()


class PsycopgAsyncDriver(AsyncDriver):
    label = "psycopg async"
    family = "peer"

    def __init__(self, dsn: str) -> None:
        psycopg = load("psycopg", PEER_FIX)
        if psycopg.pq.__impl__ not in ("c", "binary"):
            raise Unavailable("psycopg is not its C implementation; install psycopg[binary]")
        super().__init__()
        self.conn: Any = self.loop.run_until_complete(psycopg.AsyncConnection.connect(dsn, autocommit=True))
        self.cur: Any = self.conn.cursor()
        self.detail = f"psycopg {psycopg.__version__} AsyncConnection, {self.loop_name}, tuple rows, executemany"

    def make_op(self, w: Workload) -> AsyncOp:
        sql, cur = percent_s(w.sql), self.cur
        execute, fetchall = cur.execute, cur.fetchall
        if w.kind == "rows":

            async def rows(p: Any) -> object:
                await execute(sql, p or None)
                return await fetchall()

            return rows
        if w.kind == "command":

            async def command(p: Any) -> object:
                await execute(sql, p)
                return cur.rowcount

            return command
        executemany = cur.executemany
        return lambda rows: executemany(sql, rows)

    def backend_pid(self) -> int | None:
        return int(self.conn.info.backend_pid)

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


# ---- the registry run.py picks from ----

FACTORIES: dict[str, Callable[[str], Driver]] = {
    "oxpg": lambda dsn: OxpgDriver(dsn, tuples=False),
    "oxpg tuples": lambda dsn: OxpgDriver(dsn, tuples=True),
    "psycopg": PsycopgDriver,
    "asyncpg": AsyncpgDriver,
    "oxpg async": OxpgAsyncDriver,
    "oxpg pool": OxpgPoolDriver,
    "oxpg async pool": OxpgAsyncPoolDriver,
    "psycopg async": PsycopgAsyncDriver,
    "psycopg2": Psycopg2Driver,
}
