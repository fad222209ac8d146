"""oxpg.types.register_type / register_composite: per-client codecs found by name."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from decimal import Decimal
from typing import Any

import pytest

import oxpg
from oxpg.types import register_composite, register_type


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


@pytest.fixture
def types_client(dsn):
    c = oxpg.connect(dsn)
    c.execute("CREATE TYPE pg_temp.mood AS ENUM ('happy', 'sad')")
    c.execute("CREATE TYPE pg_temp.pair AS (a int, b text, m pg_temp.mood)")
    c.execute("CREATE TYPE pg_temp.outer_t AS (p pg_temp.pair, ps pg_temp.pair[], tags text[], n numeric)")
    try:
        yield c
    finally:
        c.close()


def test_text_decoder_and_encoder_for_an_enum(types_client):
    c = types_client
    info = register_type(c, "pg_temp.mood", decoder=Mood, encoder=lambda m: m.value, python_type=Mood)
    assert info.oid > 16384 and info.array_oid > 16384 and info.typtype == "e"
    (row,) = c.query("SELECT 'sad'::pg_temp.mood AS m, $1 AS p, ARRAY['happy'::pg_temp.mood, NULL] AS a, "
                     "ROW(1, 'sad'::pg_temp.mood) AS r", Mood.HAPPY)
    assert row == {"m": Mood.SAD, "p": Mood.HAPPY, "a": [Mood.HAPPY, None], "r": (1, Mood.SAD)}


def test_text_decoder_for_a_type_whose_binary_form_is_not_text(types_client):
    # point's binary form is two float8s: the decoder gets the text form, fetched
    # from the server; arrays of it come back as the array's text form.
    c = types_client
    register_type(c, "point", decoder=lambda s: ("text", s))
    (row,) = c.query("SELECT point(1, 2) AS p, NULL::point AS n")
    assert row == {"p": ("text", "(1,2)"), "n": None}


def test_binary_decoder_and_encoder(types_client):
    c = types_client

    class Addr:
        def __init__(self, raw: bytes) -> None:
            self.raw = raw

    register_type(c, "inet", decoder=lambda b: ("bin", b), format="binary")
    (row,) = c.query("SELECT '1.2.3.4'::inet AS v, ARRAY['1.2.3.4'::inet] AS a")
    assert row == {"v": ("bin", b"\x02\x20\x00\x04\x01\x02\x03\x04"), "a": [("bin", b"\x02\x20\x00\x04\x01\x02\x03\x04")]}
    register_type(c, "int8", encoder=lambda a: a.raw, python_type=Addr, format="binary")
    assert c.query("SELECT $1 + 1 AS v", Addr((41).to_bytes(8, "big"))) == [{"v": 42}]


def test_encoder_applies_to_subclasses_and_errors_name_the_parameter(types_client):
    c = types_client

    class Base:
        pass

    class Child(Base):
        pass

    register_type(c, "text", encoder=lambda v: type(v).__name__, python_type=Base)
    assert c.query("SELECT $1 || '' AS v", Child()) == [{"v": "Child"}]
    register_type(c, "text", encoder=lambda v: 1 / 0, python_type=Base)
    with pytest.raises(oxpg.DataError, match=r"\$2") as excinfo:
        c.query("SELECT $1::int, $2", 1, Base())
    assert isinstance(excinfo.value.__cause__, ZeroDivisionError)
    register_type(c, "text", encoder=lambda v: 5, python_type=Base)
    with pytest.raises(oxpg.DataError, match="not str"):
        c.query("SELECT $1", Base())


def test_decoder_errors_become_data_error(types_client):
    c = types_client
    register_type(c, "pg_temp.mood", decoder=lambda s: 1 / 0)
    with pytest.raises(oxpg.DataError, match="column 'm' .*decoder registered for type mood failed") as excinfo:
        c.query("SELECT 'sad'::pg_temp.mood AS m")
    causes = []
    exc: BaseException | None = excinfo.value
    while exc is not None:
        causes.append(type(exc))
        exc = exc.__cause__
    assert ZeroDivisionError in causes
    assert c.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_builtin_types_cannot_be_overridden_and_bad_arguments(types_client):
    with pytest.raises(TypeError):
        register_type(types_client, "text", encoder=str, python_type=str)
    with pytest.raises(TypeError):
        register_type(types_client, "text", encoder=str)
    with pytest.raises(ValueError):
        register_type(types_client, "text", decoder=str, format="xml")  # type: ignore[arg-type]
    with pytest.raises(oxpg.ProgrammingError, match="does not exist"):
        register_type(types_client, "no_such_type", decoder=str)
    # The name is a parameter, never SQL.
    with pytest.raises(oxpg.Error):
        register_type(types_client, "int; DROP TABLE x", decoder=str)


def test_composite_default_namedtuple(types_client):
    c = types_client
    info = register_composite(c, "pg_temp.pair")
    Pair = info.factory
    assert [f for f, _ in info.fields] == ["a", "b", "m"]
    (row,) = c.query("SELECT ROW(1, 'x', 'sad')::pg_temp.pair AS v, ARRAY[ROW(2, NULL, NULL)::pg_temp.pair] AS a")
    assert row["v"] == Pair(1, "x", "sad") and row["v"].b == "x"
    assert row["a"] == [Pair(2, None, None)]
    tricky = Pair(3, 'he said "hi" \\ (a,b) ', "happy")
    assert c.query("SELECT $1::pg_temp.pair AS v", tricky) == [{"v": tricky}]
    assert c.query("SELECT $1::pg_temp.pair AS v", Pair(None, "", None)) == [{"v": Pair(None, "", None)}]
    assert c.query("SELECT ($1::pg_temp.pair).b AS v", Pair(1, "NULL", None)) == [{"v": "NULL"}]


@dataclasses.dataclass
class Outer:
    p: Any
    ps: list[Any]
    tags: list[str | None]
    n: Decimal | None


def test_composite_dataclass_nested_with_enum_codec(types_client):
    c = types_client
    register_type(c, "pg_temp.mood", decoder=Mood, encoder=lambda m: m.value, python_type=Mood)
    Pair = register_composite(c, "pg_temp.pair").factory
    register_composite(c, "pg_temp.outer_t", Outer)
    value = Outer(Pair(1, "a", Mood.SAD), [Pair(2, "b", None), None], ["x", None, "NULL", 'q"', "{}"], Decimal("1.50"))
    (row,) = c.query("SELECT $1::pg_temp.outer_t AS v, ARRAY[$1::pg_temp.outer_t] AS a", value)
    assert row == {"v": value, "a": [value]}
    (row,) = c.query("SELECT ROW(NULL, NULL, NULL, NULL)::pg_temp.outer_t AS v")
    assert row == {"v": Outer(None, None, None, None)}


def test_composite_non_class_factory(types_client):
    c = types_client
    register_composite(c, "pg_temp.pair", lambda *fields: {"fields": fields})
    assert c.query("SELECT ROW(1, 'a', 'happy')::pg_temp.pair AS v") == [{"v": {"fields": (1, "a", "happy")}}]


def test_composite_requires_a_composite(types_client):
    with pytest.raises(oxpg.ProgrammingError, match="not a composite"):
        register_composite(types_client, "pg_temp.mood")


def test_registration_is_per_client(dsn, types_client):
    register_type(types_client, "int4", decoder=lambda s: ("mine", s))
    with oxpg.connect(dsn) as other:
        assert other.query("SELECT 1 AS v") == [{"v": 1}]
    assert types_client.query("SELECT 1 AS v") == [{"v": ("mine", "1")}]


def test_prepared_statements_see_new_registrations(types_client):
    c = types_client
    sql = "SELECT 'sad'::pg_temp.mood AS m"
    for _ in range(6):  # prepared and cached with a description
        assert c.query(sql) == [{"m": "sad"}]
    register_type(c, "pg_temp.mood", decoder=Mood)
    assert c.query(sql) == [{"m": Mood.SAD}]


def test_stream_and_pipeline_use_registrations(types_client):
    c = types_client
    register_type(c, "pg_temp.mood", decoder=Mood)
    assert [r["m"] for r in c.stream("SELECT 'sad'::pg_temp.mood AS m")] == [Mood.SAD]
    with c.pipeline() as p:
        q = p.query("SELECT 'happy'::pg_temp.mood AS m")
    assert q.result() == [{"m": Mood.HAPPY}]
    # A stream describes its statement first: a type the client has not met yet
    # (here mood[]) is looked up before the rows come.
    assert [r["m"] for r in c.stream("SELECT ARRAY['sad'::pg_temp.mood] AS m")] == [[Mood.SAD]]
    assert c.query("SELECT ARRAY['happy'::pg_temp.mood] AS m") == [{"m": [Mood.HAPPY]}]


def test_type_dropped_and_recreated(dsn):
    name = f"r_{uuid.uuid4().hex[:10]}"
    with oxpg.connect(dsn) as c:
        c.execute(f"CREATE TYPE {name} AS ENUM ('a')")
        try:
            register_type(c, name, decoder=str.upper)
            assert c.query(f"SELECT 'a'::{name} AS v") == [{"v": "A"}]
            c.execute(f"DROP TYPE {name}; CREATE TYPE {name} AS (x int)")
            # A new OID: the old registration does not apply, the new type decodes.
            assert c.query(f"SELECT ROW(1)::{name} AS v") == [{"v": (1,)}]
            Rec = register_composite(c, name).factory
            assert c.query(f"SELECT ROW(1)::{name} AS v") == [{"v": Rec(1)}]
        finally:
            c.execute(f"DROP TYPE IF EXISTS {name}")


def test_discard_all(types_client):
    c = types_client
    register_type(c, "int4", decoder=lambda s: int(s) * 10)
    assert c.query("SELECT ARRAY['sad'::pg_temp.mood] AS m, 1 AS i") == [{"m": ["sad"], "i": 10}]
    c.execute("DISCARD ALL")  # drops pg_temp's types; registrations (by OID) stay
    assert c.query("SELECT 2 AS i") == [{"i": 20}]
    c.execute("CREATE TYPE pg_temp.mood AS ENUM ('x')")
    assert c.query("SELECT ARRAY['x'::pg_temp.mood] AS m, ROW('x'::pg_temp.mood) AS r") == [{"m": ["x"], "r": ("x",)}]


def test_decoder_cannot_reenter_its_client(types_client):
    c = types_client
    register_type(c, "pg_temp.mood", decoder=lambda s: register_type(c, "text", decoder=str))
    with pytest.raises(oxpg.Error, match="busy"):
        c.query("SELECT 'sad'::pg_temp.mood AS m")
    assert c.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_readme_example_runs_verbatim(dsn):
    from tests.test_readme import python_blocks, run_block

    blocks = [b for b in python_blocks() if "register_composite(" in b]
    assert blocks, "the README's registration example is missing"
    namespace: dict[str, object] = {}
    run_block(blocks[0], dsn, namespace)
    assert namespace["rows"] == [{"p": namespace["Pet"]("Rex", namespace["Mood"].HAPPY)}]  # type: ignore[operator,attr-defined]
