#!/usr/bin/env python3
"""Generate src/oxpg/errors.py, one exception class per SQLSTATE, from errcodes.txt.

    python scripts/gen_errors.py [ERRCODES_TXT] [-o OUT] [--pg-version N] [--check]

ERRCODES_TXT defaults to $(pg_config --sharedir)/errcodes.txt, then the newest
/usr/share/postgresql/*/errcodes.txt. In a PostgreSQL source tree the file is
src/backend/utils/errcodes.txt. --check compares instead of writing (exit 1 if the
committed file is stale).
"""

from __future__ import annotations

import argparse
import builtins
import difflib
import hashlib
import keyword
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SCRIPT = "scripts/gen_errors.py"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "src" / "oxpg" / "errors.py"

# Which PEP 249 class a SQLSTATE class falls under. The rule is the question a caller
# asks when catching: "what do I do about it?"
#
#   OperationalError   the environment failed, not the SQL: connection, login,
#                      resources, limits, locks, the operator, the OS, a foreign
#                      server, serialization/deadlock. Retry, wait or alert; editing
#                      the code does not help. (PEP 249: "not necessarily under the
#                      control of the programmer".)
#   ProgrammingError   the statement, or server-side code it runs, is wrong: syntax,
#                      missing objects, misused cursors/savepoints/prepared statements,
#                      bugs in functions, triggers and PL/pgSQL. Fix the code.
#   DataError          the statement is fine, a value is not.
#   IntegrityError     a row would break a declared constraint.
#   InternalError      the server's own failures (XX), and commands issued in the
#                      wrong transaction or cursor state, which PEP 249 names
#                      explicitly ("the cursor is not valid anymore, the transaction
#                      is out of sync"). psycopg does the same, so ported code keeps
#                      catching InFailedSqlTransaction where it did.
#   NotSupportedError  0A only.
#
# A class missing here (one a newer PostgreSQL adds) falls back to DatabaseError and
# the generator warns, so a human decides on the next regeneration.
CLASS_BASES: dict[str, str] = {
    "03": "ProgrammingError",  # SQL statement not yet complete
    "08": "OperationalError",  # connection exception
    "09": "ProgrammingError",  # triggered action exception: a trigger's code failed
    "0A": "NotSupportedError",  # feature not supported
    "0B": "InternalError",  # invalid transaction initiation: transaction state
    "0F": "ProgrammingError",  # locator exception
    "0L": "ProgrammingError",  # invalid grantor (GRANT ... GRANTED BY)
    "0P": "ProgrammingError",  # invalid role specification
    "0Z": "ProgrammingError",  # diagnostics exception (GET STACKED DIAGNOSTICS misuse)
    "20": "ProgrammingError",  # case not found: PL/pgSQL CASE without ELSE
    "21": "ProgrammingError",  # cardinality violation: the query assumed one row
    "22": "DataError",  # data exception
    "23": "IntegrityError",  # integrity constraint violation
    "24": "InternalError",  # invalid cursor state
    "25": "InternalError",  # invalid transaction state (see CODE_BASES for 25P03)
    "26": "ProgrammingError",  # invalid SQL statement name: no such prepared statement
    "27": "ProgrammingError",  # triggered data change violation: conflicting trigger logic
    "28": "OperationalError",  # invalid authorization specification: login failed
    "2B": "ProgrammingError",  # dependent objects still exist: DROP needs CASCADE
    "2D": "InternalError",  # invalid transaction termination: transaction state
    "2F": "ProgrammingError",  # SQL routine exception: a bug in a SQL function
    "34": "ProgrammingError",  # invalid cursor name: no such cursor
    "38": "ProgrammingError",  # external routine exception: a bug in a function
    "39": "ProgrammingError",  # external routine invocation exception: same
    "3B": "ProgrammingError",  # savepoint exception: no such savepoint
    "3D": "ProgrammingError",  # invalid catalog name: no such database (in a statement)
    "3F": "ProgrammingError",  # invalid schema name: no such schema
    "40": "OperationalError",  # transaction rollback: serialization, deadlock; retry
    "42": "ProgrammingError",  # syntax error or access rule violation
    "44": "IntegrityError",  # WITH CHECK OPTION violation: a view's CHECK constraint
    "53": "OperationalError",  # insufficient resources
    "54": "OperationalError",  # program limit exceeded
    "55": "OperationalError",  # object not in prerequisite state: locks, objects in use
    "57": "OperationalError",  # operator intervention: cancel, shutdown, timeouts
    "58": "OperationalError",  # system error: I/O, files
    "72": "OperationalError",  # snapshot too old
    "F0": "OperationalError",  # configuration file error
    "HV": "OperationalError",  # foreign data wrapper error: the remote side failed
    "P0": "ProgrammingError",  # PL/pgSQL error: RAISE, STRICT, ASSERT
    "XX": "InternalError",  # internal error
}

# Codes whose meaning contradicts their class. Kept tiny: each entry is a surprise.
CODE_BASES: dict[str, str] = {
    # The server ends the session; callers that reconnect on OperationalError must
    # see it, like 57P05 idle_session_timeout.
    "25P03": "OperationalError",
}

BASE_NAMES = (
    "Warning", "Error", "InterfaceError", "DatabaseError", "DataError",
    "OperationalError", "IntegrityError", "InternalError", "ProgrammingError",
    "NotSupportedError",
)  # fmt: skip

# A generated name must not hide a builtin (SyntaxError) or a name the module itself
# uses (InternalError): those get a trailing underscore, as PEP 8 suggests for clashes.
# dir(builtins) grows with Python releases; the freshness test would flag a new clash.
RESERVED = frozenset(dir(builtins)) | frozenset(BASE_NAMES) | {"lookup", "register_sqlstates"}

SQLSTATE_RE = re.compile(r"[0-9A-Z]{5}")
SECTION_RE = re.compile(r"Section:\s*Class\s+([0-9A-Z]{2})\s+-\s+(.+)")


@dataclass(frozen=True)
class Entry:
    sqlstate: str
    macro: str  # ERRCODE_UNIQUE_VIOLATION
    condition: str | None  # unique_violation; None on alias lines

    @property
    def sqlclass(self) -> str:
        return self.sqlstate[:2]


@dataclass(frozen=True)
class ErrorClass:
    name: str
    base: str
    entry: Entry


def parse(text: str) -> tuple[dict[str, str], list[Entry]]:
    """Section titles by SQLSTATE class, and the error (E) lines in file order."""
    titles: dict[str, str] = {}
    entries: list[Entry] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("Section:"):
            m = SECTION_RE.fullmatch(line)
            if m is None:
                raise ValueError(f"errcodes.txt:{lineno}: bad section line {raw!r}")
            titles.setdefault(m[1], m[2].strip())
            continue
        fields = line.split()
        if len(fields) not in (3, 4) or not SQLSTATE_RE.fullmatch(fields[0]) or fields[1] not in ("E", "W", "S"):
            raise ValueError(f"errcodes.txt:{lineno}: cannot parse {raw!r}")
        # W and S lines (classes 00, 01, 02) are not errors and never raised.
        if fields[1] == "E":
            entries.append(Entry(fields[0], fields[2], fields[3] if len(fields) == 4 else None))
    return titles, entries


def camel_case(condition: str) -> str:
    return "".join(part.capitalize() for part in condition.split("_"))


def build(titles: dict[str, str], entries: list[Entry]) -> list[ErrorClass]:
    # Some codes appear twice: an alias macro without a condition name (2202E
    # ERRCODE_ARRAY_ELEMENT_ERROR) beside the named one. Keep the first named line;
    # a code that only has alias lines keeps its first, named after its macro.
    chosen: dict[str, Entry] = {}
    for e in entries:
        prev = chosen.get(e.sqlstate)
        if prev is None or (prev.condition is None and e.condition is not None):
            chosen[e.sqlstate] = e
    kept = [e for e in entries if chosen[e.sqlstate] is e]
    # Group by class even if a line sits under another class's section header;
    # sort() is stable, so file order holds within a class.
    class_order = list(titles)
    class_order += [c for c in dict.fromkeys(e.sqlclass for e in kept) if c not in titles]
    kept.sort(key=lambda e: class_order.index(e.sqlclass))

    taken: set[str] = set()
    result: list[ErrorClass] = []
    for e in kept:
        name = camel_case(e.condition or e.macro.removeprefix("ERRCODE_").lower())
        if name in RESERVED:
            name += "_"
        # A condition name can repeat across classes (modifying_sql_data_not_permitted
        # in 2F and 38). The first keeps the plain name, later ones get psycopg's
        # "Ext" suffix, so code ported from psycopg finds the same names.
        if name in taken:
            name += "Ext" if name + "Ext" not in taken else e.sqlstate
        if name in taken or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"{e.sqlstate}: cannot derive a class name, got {name!r}")
        taken.add(name)
        base = CODE_BASES.get(e.sqlstate) or CLASS_BASES.get(e.sqlclass, "DatabaseError")
        result.append(ErrorClass(name, base, e))
    for sqlclass in dict.fromkeys(e.sqlclass for e in kept):
        if sqlclass not in CLASS_BASES:
            print(f"gen_errors: class {sqlclass} is not in CLASS_BASES; its codes -> DatabaseError",
                  file=sys.stderr)  # fmt: skip
    return result


def class_bases(classes: list[ErrorClass]) -> dict[str, str]:
    """The PEP 249 base for each SQLSTATE class that has errors, in output order."""
    return {c.entry.sqlclass: CLASS_BASES.get(c.entry.sqlclass, "DatabaseError") for c in classes}


def render(errcodes: bytes, pg_version: str) -> str:
    titles, entries = parse(errcodes.decode("utf-8"))
    classes = build(titles, entries)
    by_class = class_bases(classes)
    # The hash names the exact source; the test finds that file again by it.
    sha256 = hashlib.sha256(errcodes).hexdigest()
    imports = sorted({"DatabaseError", *by_class.values(), *(c.base for c in classes)})

    out: list[str] = [
        f"# Generated by {SCRIPT} from PostgreSQL {pg_version} errcodes.txt; do not edit.",
        f"# errcodes.txt sha256 {sha256}",
        '"""SQLSTATE-specific exceptions: one class per error code the server can raise.',
        "",
        "Each class is named after its condition name (``unique_violation`` ->",
        "``UniqueViolation``) and subclasses the PEP 249 exception for its SQLSTATE class,",
        "so ``except oxpg.IntegrityError`` still catches ``UniqueViolation``. The C core",
        "raises through the mapping registered below, like ``lookup``: the full code, then",
        "its two-character class, then ``DatabaseError``.",
        '"""',
        "",
        "from ._oxpg import (",
        *(f"    {name}," for name in imports),
        "    register_sqlstates,",
        ")",
        "",
        "__all__ = [",
        '    "lookup",',
        *(f'    "{c.name}",' for c in classes),
        "]",
    ]
    current = None
    for c in classes:
        if c.entry.sqlclass != current:
            current = c.entry.sqlclass
            title = titles.get(current, "(no section in errcodes.txt)")
            out += ["", "", f"# Class {current} - {title} ({by_class[current]})"]
        else:
            out += ["", ""]
        out += [
            f"class {c.name}({c.base}):",
            f'    """SQLSTATE {c.entry.sqlstate}, condition {c.entry.condition or c.entry.macro}."""',
            "",
            f'    sqlstate = "{c.entry.sqlstate}"',
        ]
    out += [
        "",
        "",
        "# Each class prefix comes before its codes; the prefix catches codes this file",
        "# does not know (a newer server's).",
        "_by_sqlstate: dict[str, type[DatabaseError]] = {",
    ]
    current = None
    for c in classes:
        if c.entry.sqlclass != current:
            current = c.entry.sqlclass
            out.append(f'    "{current}": {by_class[current]},')
        out.append(f'    "{c.entry.sqlstate}": {c.name},')
    out += [
        "}",
        "",
        "",
        "def lookup(sqlstate: str) -> type[DatabaseError]:",
        '    """Return the class raised for *sqlstate*: by code, then by class, else DatabaseError."""',
        "    cls = _by_sqlstate.get(sqlstate)",
        "    if cls is None:",
        "        cls = _by_sqlstate.get(sqlstate[:2], DatabaseError)",
        "    return cls",
        "",
        "",
        "register_sqlstates(_by_sqlstate)",
        "",
    ]
    return "\n".join(out)


def pg_config(option: str) -> str | None:
    try:
        done = subprocess.run(["pg_config", option], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def candidate_paths() -> list[Path]:
    """Where an installed errcodes.txt may be, best first (the test uses this too)."""
    paths: list[Path] = []
    sharedir = pg_config("--sharedir")
    if sharedir:
        paths.append(Path(sharedir) / "errcodes.txt")
    # Debian/Ubuntu keep one directory per major version; prefer the newest.
    installed = Path("/usr/share/postgresql").glob("*/errcodes.txt")
    by_version = sorted(installed, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1)
    paths += reversed(by_version)
    return [p for p in dict.fromkeys(paths) if p.is_file()]


def version_of(path: Path) -> str | None:
    """Major version from the path (.../postgresql/15/..., postgresql-16.2/...) or pg_config."""
    m = re.search(r"postgresql[-/]?(\d+)", path.as_posix(), re.IGNORECASE)
    if m:
        return m[1]
    sharedir = pg_config("--sharedir")
    if sharedir and Path(sharedir).resolve() == path.resolve().parent:
        m = re.match(r"PostgreSQL (\d+)", pg_config("--version") or "")
        if m:
            return m[1]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("errcodes", nargs="?", type=Path, help="path to errcodes.txt")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--pg-version", help="PostgreSQL major version, when the path does not tell")
    parser.add_argument("--check", action="store_true", help="exit 1 if OUTPUT differs instead of writing")
    args = parser.parse_args(argv)

    path: Path | None = args.errcodes
    if path is None:
        found = candidate_paths()
        if not found:
            parser.error("errcodes.txt not found (no pg_config, none in /usr/share/postgresql)")
        path = found[0]
    version = args.pg_version or version_of(path)
    if version is None:
        parser.error(f"cannot tell the PostgreSQL version of {path}; pass --pg-version")

    try:
        generated = render(path.read_bytes(), version)
    except ValueError as e:
        parser.error(str(e))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current == generated:
            return 0
        diff = difflib.unified_diff(current.splitlines(True), generated.splitlines(True),
                                    str(args.output), f"generated from {path}")  # fmt: skip
        sys.stderr.writelines(list(diff)[:200])
        print(f"gen_errors: {args.output} is stale; run {SCRIPT} {path}", file=sys.stderr)
        return 1
    args.output.write_text(generated, encoding="utf-8", newline="\n")
    print(f"gen_errors: wrote {args.output} from PostgreSQL {version} {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
