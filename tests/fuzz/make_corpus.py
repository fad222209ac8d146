"""Write tests/fuzz/corpus/: real values of the built-in types, as the server sends them.

Each seed is what fuzz_decoders.c reads: a 2-byte big-endian selector (the type OID,
with bit 15 set for the text format) followed by one value's bytes exactly as libpq
returns them for `SELECT <expression>`. Types oxpg does not decode yet (net, geometric,
ranges, money, bits...) get seeds too, so their decoders start from real values the
day they join the codec table.

    .venv/bin/python tests/fuzz/make_corpus.py            # throw-away cluster
    .venv/bin/python tests/fuzz/make_corpus.py --dsn ...   # an existing server

Text-format seeds are written for the types that have a text decoder in the fuzz
binary (`OXPG_FUZZ_LIST=1 build/fuzz/fuzz_decoders`, built by tests/fuzz/run.sh).
The server is asked with libpq through ctypes: the raw bytes are the point, and no
Python driver exposes them.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TEXT_BIT = 0x8000
OID_MASK = 0x3FFF
PGRES_TUPLES_OK = 2
CONNECTION_OK = 0

# (label, expressions): each expression is one value of one type. Labels name the seed
# files; arrays and records of the scalar values are added below.
SCALARS: list[tuple[str, list[str]]] = [
    ("bool", ["true", "false"]),
    ("bytea", ["'\\x'::bytea", "'\\x00ff4142'::bytea"]),
    ("char", ["'a'::\"char\"", "''::\"char\"", "'\\xe9'::bytea::text::\"char\""]),
    ("name", ["'pg_class'::name"]),
    ("int2", ["0::int2", "(-32768)::int2", "32767::int2"]),
    ("int4", ["0", "(-2147483648)::int4", "2147483647"]),
    ("int8", ["0::int8", "(-9223372036854775808)::int8", "9223372036854775807::int8"]),
    ("oid", ["0::oid", "4294967295::oid"]),
    ("text", ["''::text", "'h\u00e9llo \u2603 \U0001d11e'::text", "E'a\\tb\"c{d}'::text"]),
    ("varchar", ["'abc'::varchar"]),
    ("bpchar", ["'ab'::char(4)"]),
    ("json", ["'{\"a\": [1, 2.5e3, null, true, \"x\\u00e9\"]}'::json", "'[]'::json", "'\"s\"'::json"]),
    ("jsonb", ["'{\"a\": [1, 2.5e3, null, true, \"x\\u00e9\"]}'::jsonb", "'{}'::jsonb", "'-0.5'::jsonb"]),
    ("xml", ["'<a b=\"c\">d</a>'::xml"]),
    ("float4", ["0::float4", "'-0'::float4", "'NaN'::float4", "'-Infinity'::float4", "1.4e-45::float4", "3.4e38::float4"]),
    ("float8", ["0::float8", "'-0'::float8", "'Infinity'::float8", "5e-324::float8", "1.7976931348623157e308::float8"]),
    (
        "numeric",
        [
            "0::numeric",
            "(-1.50)::numeric",
            "'NaN'::numeric",
            "'Infinity'::numeric",
            "'-Infinity'::numeric",
            "123456789012345678901234567890.000000000000000001::numeric",
            "1e-300::numeric",
            "1e300::numeric",
            "0.0001::numeric",
            "10000::numeric",
        ],
    ),
    ("date", ["'2000-01-01'::date", "'0001-01-01'::date", "'9999-12-31'::date", "'infinity'::date", "'-infinity'::date", "'4713-01-01 BC'::date", "'5874897-12-31'::date"]),
    ("time", ["'00:00'::time", "'23:59:59.999999'::time", "'24:00:00'::time"]),
    ("timetz", ["'12:34:56.789+05:45'::timetz", "'00:00:00-15:59:59'::timetz", "'24:00:00+15:59'::timetz"]),
    (
        "timestamp",
        ["'2000-01-01 00:00'::timestamp", "'1999-12-31 23:59:59.999999'::timestamp", "'0001-01-01'::timestamp", "'infinity'::timestamp", "'-infinity'::timestamp", "'294276-12-31 23:59:59'::timestamp", "'4713-01-01 BC'::timestamp"],
    ),
    ("timestamptz", ["'2021-03-28 01:30:00+00'::timestamptz", "'infinity'::timestamptz", "'0001-01-01 00:00+00'::timestamptz"]),
    ("interval", ["'0'::interval", "'-1 year 2 mons -3 days 04:05:06.789'::interval", "'178000000 years'::interval", "'-2147483648 days -2147483648 mons'::interval"]),
    ("uuid", ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", "'00000000-0000-0000-0000-000000000000'::uuid"]),
    ("void", ["pg_sleep(0)"]),
    # Families oxpg may not decode yet.
    ("inet", ["'192.168.0.1/24'::inet", "'::1'::inet", "'2001:db8::1:2/64'::inet", "'0.0.0.0/0'::inet"]),
    ("cidr", ["'10.0.0.0/8'::cidr", "'2001:db8::/32'::cidr", "'::/0'::cidr"]),
    ("macaddr", ["'08:00:2b:01:02:03'::macaddr"]),
    ("macaddr8", ["'08:00:2b:01:02:03:04:05'::macaddr8"]),
    ("money", ["'12.34'::money", "'-92233720368547758.08'::money", "'92233720368547758.07'::money"]),
    ("bit", ["B'101'", "B'11110000111'::bit(11)"]),
    ("varbit", ["B''::varbit", "B'1'::varbit", "B'101010101'::varbit"]),
    ("point", ["'(1.5,-2)'::point"]),
    ("line", ["'{1,2,3}'::line"]),
    ("lseg", ["'[(0,0),(1,1)]'::lseg"]),
    ("box", ["'(1,1),(0,0)'::box"]),
    ("path", ["'[(0,0),(1,1),(2,0)]'::path", "'((0,0),(1,1))'::path"]),
    ("polygon", ["'((0,0),(1,1),(1,0))'::polygon"]),
    ("circle", ["'<(0,0),2>'::circle"]),
    ("int4range", ["'[1,5)'::int4range", "'empty'::int4range", "'(,)'::int4range", "'[3,)'::int4range"]),
    ("int8range", ["'[1,9223372036854775806]'::int8range", "'(,0)'::int8range"]),
    ("numrange", ["'[1.5,2.5]'::numrange", "'(,1e100)'::numrange"]),
    ("daterange", ["'[2000-01-01,infinity)'::daterange", "'empty'::daterange"]),
    ("tsrange", ["'[2000-01-01,2000-01-02)'::tsrange"]),
    ("tstzrange", ["'(-infinity,2000-01-01 00:00+00]'::tstzrange"]),
    ("int4multirange", ["'{[1,2),[5,7)}'::int4multirange", "'{}'::int4multirange"]),
    ("int8multirange", ["'{[1,2)}'::int8multirange"]),
    ("nummultirange", ["'{[1.5,2.5], (3,)}'::nummultirange"]),
    ("datemultirange", ["'{[2000-01-01,2000-02-01)}'::datemultirange"]),
    ("tsmultirange", ["'{[2000-01-01,2000-01-02)}'::tsmultirange"]),
    ("tstzmultirange", ["'{[2000-01-01 00:00+00,)}'::tstzmultirange"]),
    ("tsvector", ["'a:1 b:2A fat:3,4B'::tsvector", "''::tsvector"]),
    ("tsquery", ["'a & !(b | c:*)'::tsquery", "'a <2> b'::tsquery"]),
    ("pg_lsn", ["'16/B374D848'::pg_lsn"]),
    ("xid", ["'123'::xid"]),
    ("xid8", ["'123'::xid8"]),
    ("cid", ["'7'::cid"]),
    ("tid", ["'(1,2)'::tid"]),
    ("regclass", ["'pg_class'::regclass"]),
    ("regtype", ["'int4'::regtype"]),
    ("regproc", ["'now'::regproc"]),
    ("jsonpath", ["'$.a[*] ? (@ > 1)'::jsonpath"]),
    ("int2vector", ["'1 2 3'::int2vector"]),
    ("oidvector", ["'23 25'::oidvector"]),
    ("pg_snapshot", ["pg_current_snapshot()"]),
    ("txid_snapshot", ["txid_current_snapshot()"]),
]

# Extra shapes: multi-dimensional, lower bounds, empty, nested composites.
EXTRA: list[tuple[str, list[str]]] = [
    (
        "array",
        [
            "'{}'::int4[]",
            "'{{1,2},{3,4}}'::int4[]",
            "'[2:3]={7,8}'::int4[]",
            "'{{{1}},{{NULL}}}'::int8[]",
            "'{\"a,b\",\"c\\\\\\\"d\",NULL,\"NULL\",\"{}\"}'::text[]",
            "ARRAY[ROW(1, 'a'), ROW(2, NULL)]",
        ],
    ),
    (
        "record",
        [
            "ROW()",
            "ROW(1, 'a', NULL)",
            "ROW(ROW(1.5::numeric, ARRAY[1, 2]), '2000-01-01'::date, '{\"k\": 1}'::jsonb)",
            "ROW('192.168.0.1'::inet, '[1,2)'::int4range, B'1'::varbit)",
        ],
    ),
]


class Libpq:
    def __init__(self) -> None:
        path = None
        pg_config = shutil.which(os.environ.get("PG_CONFIG", "pg_config"))
        if pg_config:
            libdir = subprocess.run([pg_config, "--libdir"], capture_output=True, text=True).stdout.strip()
            if Path(libdir, "libpq.so.5").exists():
                path = str(Path(libdir, "libpq.so.5"))
        lib = ctypes.CDLL(path or ctypes.util.find_library("pq") or "libpq.so.5")
        lib.PQconnectdb.restype = ctypes.c_void_p
        lib.PQconnectdb.argtypes = [ctypes.c_char_p]
        lib.PQstatus.argtypes = [ctypes.c_void_p]
        lib.PQerrorMessage.restype = ctypes.c_char_p
        lib.PQerrorMessage.argtypes = [ctypes.c_void_p]
        lib.PQexecParams.restype = ctypes.c_void_p
        lib.PQexecParams.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p,
                                     ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
        lib.PQresultStatus.argtypes = [ctypes.c_void_p]
        lib.PQresultErrorMessage.restype = ctypes.c_char_p
        lib.PQresultErrorMessage.argtypes = [ctypes.c_void_p]
        lib.PQntuples.argtypes = [ctypes.c_void_p]
        lib.PQftype.restype = ctypes.c_uint
        lib.PQftype.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.PQgetisnull.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        lib.PQgetlength.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        lib.PQgetvalue.restype = ctypes.c_void_p
        lib.PQgetvalue.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        lib.PQclear.argtypes = [ctypes.c_void_p]
        lib.PQfinish.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.conn = None

    def connect(self, dsn: str) -> None:
        self.conn = self.lib.PQconnectdb(dsn.encode())
        if self.lib.PQstatus(self.conn) != CONNECTION_OK:
            sys.exit("make_corpus: " + self.lib.PQerrorMessage(self.conn).decode(errors="replace").strip())

    def value(self, sql: str, text: bool) -> tuple[int, bytes] | str:
        """(type OID, value bytes) of `SELECT sql`, or the server's error message."""
        res = self.lib.PQexecParams(self.conn, f"SELECT {sql}".encode(), 0, None, None, None, None, 0 if text else 1)
        try:
            if self.lib.PQresultStatus(res) != PGRES_TUPLES_OK:
                return self.lib.PQresultErrorMessage(res).decode(errors="replace").strip()
            if self.lib.PQntuples(res) != 1 or self.lib.PQgetisnull(res, 0, 0):
                return "not one non-NULL value"
            n = self.lib.PQgetlength(res, 0, 0)
            return self.lib.PQftype(res, 0), ctypes.string_at(self.lib.PQgetvalue(res, 0, 0), n)
        finally:
            self.lib.PQclear(res)


def text_decoder_oids(binary: Path) -> set[int]:
    if not binary.exists():
        print(f"make_corpus: {binary} not built (FUZZ_SECONDS=0 tests/fuzz/run.sh): binary seeds only", file=sys.stderr)
        return set()
    out = subprocess.run([str(binary)], env={**os.environ, "OXPG_FUZZ_LIST": "1"}, capture_output=True, text=True, check=True)
    return {int(line.split("\t")[1]) for line in out.stdout.splitlines() if line.split("\t")[2] == "text"}


def cases() -> list[tuple[str, str]]:
    out = []
    for label, exprs in SCALARS:
        out += [(label, e) for e in exprs]
        # A 1-D array with a NULL and a 2-D one, of the same element type.
        out.append((f"{label}_array", f"ARRAY[{exprs[0]}, NULL, {exprs[-1]}]"))
        out.append((f"{label}_array2d", f"ARRAY[ARRAY[{exprs[0]}], ARRAY[{exprs[-1]}]]"))
    out.append(("record_scalars", "ROW(" + ", ".join(exprs[-1] for _, exprs in SCALARS[:26]) + ")"))
    for label, exprs in EXTRA:
        out += [(label, e) for e in exprs]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("OXPG_TEST_DSN"), help="server to ask (default: a throw-away cluster)")
    parser.add_argument("--out", type=Path, default=HERE / "corpus")
    parser.add_argument("--binary", type=Path, default=ROOT / "build" / "fuzz" / "fuzz_decoders")
    args = parser.parse_args()

    text_oids = text_decoder_oids(args.binary)
    pq = Libpq()
    cluster = None
    dsn = args.dsn
    if not dsn:
        # Loaded on its own (standard library only): importing the oxpg package would
        # need a build of the extension.
        spec = importlib.util.spec_from_file_location("oxpg_testing", ROOT / "src" / "oxpg" / "testing.py")
        assert spec is not None and spec.loader is not None
        testing = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(testing)
        cluster = testing.TempCluster(ssl=False).start()
        dsn = cluster.dsn
    try:
        pq.connect(dsn)
        args.out.mkdir(parents=True, exist_ok=True)
        for old in args.out.iterdir():
            old.unlink()
        written = 0
        counters: dict[str, int] = {}
        for label, sql in cases():
            for text in (False, True):
                got = pq.value(sql, text)
                if isinstance(got, str):
                    if not text:
                        print(f"make_corpus: skipped {sql}: {got}", file=sys.stderr)
                    break
                oid, data = got
                if oid > OID_MASK or (text and oid not in text_oids):
                    continue
                name = ("t-" if text else "") + re.sub(r"[^A-Za-z0-9_]", "_", label)
                counters[name] = counters.get(name, 0) + 1
                selector = oid | (TEXT_BIT if text else 0)
                (args.out / f"{name}-{counters[name]}").write_bytes(selector.to_bytes(2, "big") + data)
                written += 1
        print(f"make_corpus: {written} seeds in {args.out}")
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
