"""oxpg.errors without a server: names, mapping, hierarchy, pickling, freshness."""

from __future__ import annotations

import builtins
import hashlib
import importlib.util
import pickle
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import oxpg
from oxpg import errors

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "scripts" / "gen_errors.py"
COMMITTED = REPO / "src" / "oxpg" / "errors.py"

CLASSES: list[type[oxpg.DatabaseError]] = [getattr(errors, n) for n in errors.__all__ if n != "lookup"]
PEP249_NAMES = [
    "Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
    "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError",
]  # fmt: skip


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_errors", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_names_are_unique_and_importable_by_qualified_name() -> None:
    assert len(errors.__all__) == len(set(errors.__all__))
    assert len(CLASSES) > 200
    for cls in CLASSES:
        # pickle finds a class again by __module__ + __qualname__.
        assert cls.__module__ == "oxpg.errors"
        assert cls.__qualname__ == cls.__name__
        assert getattr(errors, cls.__name__) is cls


def test_names_hide_no_builtin_and_no_base_class() -> None:
    clashes = {cls.__name__ for cls in CLASSES} & (set(dir(builtins)) | set(PEP249_NAMES))
    assert not clashes
    assert errors.SyntaxError_.sqlstate == "42601"
    assert errors.InternalError_.sqlstate == "XX000"


def test_sqlstates_are_unique_error_codes() -> None:
    codes = [cls.sqlstate for cls in CLASSES]
    assert len(codes) == len(set(codes))
    for cls in CLASSES:
        assert isinstance(cls.sqlstate, str) and re.fullmatch(r"[0-9A-Z]{5}", cls.sqlstate), cls
        # 00 success, 01 warning and 02 no data are not errors.
        assert cls.sqlstate[:2] not in ("00", "01", "02"), cls
        assert errors.lookup(cls.sqlstate) is cls


def test_docstrings_are_one_line() -> None:
    for cls in CLASSES:
        assert cls.__doc__ and "\n" not in cls.__doc__ and cls.sqlstate in cls.__doc__, cls


def test_duplicate_condition_names_get_distinct_classes() -> None:
    # modifying_sql_data_not_permitted exists in class 2F and class 38.
    assert errors.ModifyingSqlDataNotPermitted.sqlstate == "2F002"
    assert errors.ModifyingSqlDataNotPermittedExt.sqlstate == "38002"
    assert errors.NullValueNotAllowed.sqlstate == "22004"
    assert errors.NullValueNotAllowedExt.sqlstate == "39004"


def test_lookup() -> None:
    assert errors.lookup("23505") is errors.UniqueViolation
    assert errors.lookup("42P01") is errors.UndefinedTable
    assert errors.lookup("23999") is oxpg.IntegrityError  # unknown code, known class
    assert errors.lookup("ZZ999") is oxpg.DatabaseError  # unknown class
    assert errors.lookup("") is oxpg.DatabaseError


def test_every_class_is_a_database_error() -> None:
    for cls in CLASSES:
        assert issubclass(cls, oxpg.DatabaseError) and issubclass(cls, oxpg.Error), cls
        assert cls.__bases__[0].__module__ == "oxpg", cls


def test_unique_violation_hierarchy() -> None:
    assert issubclass(errors.UniqueViolation, oxpg.IntegrityError)
    assert issubclass(errors.UniqueViolation, oxpg.DatabaseError)
    assert issubclass(errors.UniqueViolation, oxpg.Error)
    assert issubclass(errors.UniqueViolation, Exception)
    assert not issubclass(errors.UniqueViolation, oxpg.ProgrammingError)


def test_query_canceled_is_operational() -> None:
    assert errors.QueryCanceled.sqlstate == "57014"
    assert issubclass(errors.QueryCanceled, oxpg.OperationalError)


@pytest.mark.parametrize(
    ("sqlstate", "base"),
    [
        ("08006", "OperationalError"),  # connection failure
        ("0A000", "NotSupportedError"),
        ("22012", "DataError"),  # division by zero
        ("23503", "IntegrityError"),  # foreign key
        ("44000", "IntegrityError"),  # WITH CHECK OPTION
        ("25P02", "InternalError"),  # in failed transaction
        ("25P03", "OperationalError"),  # idle-in-transaction timeout ends the session
        ("28P01", "OperationalError"),  # bad password
        ("40001", "OperationalError"),  # serialization failure
        ("40P01", "OperationalError"),  # deadlock
        ("42601", "ProgrammingError"),  # syntax error
        ("26000", "ProgrammingError"),  # no such prepared statement
        ("53300", "OperationalError"),  # too many connections
        ("55P03", "OperationalError"),  # lock not available
        ("57P01", "OperationalError"),  # admin shutdown
        ("P0001", "ProgrammingError"),  # RAISE EXCEPTION
        ("XX001", "InternalError"),  # data corrupted
    ],
)
def test_pep249_base(sqlstate: str, base: str) -> None:
    cls = errors.lookup(sqlstate)
    assert cls.sqlstate == sqlstate
    assert issubclass(cls, getattr(oxpg, base))


DIAGNOSTICS = {
    "sqlstate": "23505",
    "severity": "ERROR",
    "detail": "Key (id)=(1) already exists.",
    "hint": None,
    "position": None,
    "context": None,
    "schema_name": "public",
    "table_name": "t",
    "column_name": None,
    "constraint_name": "t_pkey",
}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip(protocol: int) -> None:
    exc = errors.UniqueViolation('duplicate key value violates unique constraint "t_pkey"')
    for name, value in DIAGNOSTICS.items():
        setattr(exc, name, value)
    copy = pickle.loads(pickle.dumps(exc, protocol))
    assert type(copy) is errors.UniqueViolation
    assert copy.args == exc.args
    assert {name: getattr(copy, name) for name in DIAGNOSTICS} == DIAGNOSTICS


def test_class_attributes_default() -> None:
    exc = errors.QueryCanceled("canceling statement due to user request")
    assert exc.sqlstate == "57014"
    assert exc.detail is None and exc.constraint_name is None


def test_generator_names_odd_input() -> None:
    gen = load_generator()
    text = "\n".join([
        "# comment",
        "Section: Class 01 - Warning",
        "01000    W    ERRCODE_WARNING                  warning",
        "Section: Class 22 - Data Exception",
        "2202E    E    ERRCODE_ARRAY_ELEMENT_ERROR",
        "2202E    E    ERRCODE_ARRAY_SUBSCRIPT_ERROR    array_subscript_error",
        "22004    E    ERRCODE_NULL_VALUE_NOT_ALLOWED   null_value_not_allowed",
        "Section: Class 39 - External Routine Invocation Exception",
        "39004    E    ERRCODE_E_R_I_E_NULL_VALUE_NOT_ALLOWED    null_value_not_allowed",
        "Section: Class 42 - Syntax Error or Access Rule Violation",
        "42601    E    ERRCODE_SYNTAX_ERROR             syntax_error",
        "34000    E    ERRCODE_UNDEFINED_CURSOR",
        "Section: Class QQ - Invented",
        "QQ001    E    ERRCODE_ONLY_A_MACRO",
    ])  # fmt: skip
    classes = gen.build(*gen.parse(text))
    got = {c.entry.sqlstate: (c.name, c.base) for c in classes}
    assert got == {
        "2202E": ("ArraySubscriptError", "DataError"),
        "22004": ("NullValueNotAllowed", "DataError"),
        "39004": ("NullValueNotAllowedExt", "ProgrammingError"),
        "42601": ("SyntaxError_", "ProgrammingError"),
        "QQ001": ("OnlyAMacro", "DatabaseError"),
        "34000": ("UndefinedCursor", "ProgrammingError"),  # under 42's header, no 34 section
    }
    # Grouped by class in section order, file order within a class.
    assert list(got) == ["2202E", "22004", "39004", "42601", "QQ001", "34000"]


def test_committed_file_matches_generator() -> None:
    header = COMMITTED.read_text(encoding="utf-8").splitlines()[:2]
    m = re.fullmatch(
        r"# Generated by scripts/gen_errors.py from PostgreSQL (\S+) errcodes.txt; do not edit.",
        header[0],
    )
    assert m, header[0]
    version = m[1]
    m = re.fullmatch(r"# errcodes.txt sha256 ([0-9a-f]{64})", header[1])
    assert m, header[1]
    sha256 = m[1]

    found = load_generator().candidate_paths()
    if not found:
        pytest.skip("no errcodes.txt on this machine (no pg_config, nothing in /usr/share/postgresql)")
    matching = [p for p in found if hashlib.sha256(p.read_bytes()).hexdigest() == sha256]
    if not matching:
        pytest.skip(f"errcodes.txt here ({', '.join(map(str, found))}) is not the PostgreSQL {version} one "
                    f"errors.py was generated from")  # fmt: skip
    command = [sys.executable, str(GENERATOR), str(matching[0]), "--pg-version", version]
    done = subprocess.run([*command, "-o", str(COMMITTED), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
