"""Value types for PostgreSQL types Python has no equivalent of.

- `Range`: int4range, int8range, numrange, daterange, tsrange, tstzrange (and the
  elements of their multiranges, which come back as lists of Range).
- `Json` / `Jsonb`: wrappers that send any object as json or jsonb.
- `register_type` / `register_composite`: per-Client codecs for types found by name
  in the catalog (user types, extension types, composites).

The C core imports this module while it initializes (to recognise these classes as
parameters and to build Range values), so it imports only the standard library at
module level. docs/types.md has the full mapping and the registration rules.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import ipaddress
import json
import keyword
import math
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, TypeVar

from . import _oxpg

if TYPE_CHECKING:
    from ._oxpg import Client

__all__ = ["CompositeInfo", "Json", "Jsonb", "Range", "TypeInfo", "register_composite", "register_type"]

T = TypeVar("T")

_BOUNDS = ("()", "(]", "[)", "[]")


class Range(Generic[T]):
    """An immutable PostgreSQL range value.

        Range(1, 10)              # [1,10)
        Range(1, 10, "[]")        # [1,10]
        Range(None, date.today()) # (,2024-05-01): None is an infinite bound
        Range(empty=True)         # empty

    `bounds` is two characters: "[" or "(" for the lower bound, "]" or ")" for the
    upper. An infinite bound is never inclusive, as in PostgreSQL: Range(None, 5, "[]")
    is (,5]. Equality compares bounds and inclusivity as given: PostgreSQL turns
    int4range '[1,3]' into '[1,4)', Python's Range(1, 3, "[]") does not (values read
    from the server are already in PostgreSQL's form).
    """

    __slots__ = ("_lower", "_upper", "_flags")

    # _flags: bit 0 lower inclusive, bit 1 upper inclusive, bit 2 empty.

    def __init__(self, lower: T | None = None, upper: T | None = None, bounds: str = "[)", *, empty: bool = False):
        if empty:
            if lower is not None or upper is not None:
                raise ValueError("an empty range has no bounds")
            flags = 4
        else:
            try:
                code = _BOUNDS.index(bounds)
            except ValueError:
                raise ValueError(f"bounds must be one of {', '.join(_BOUNDS)}, not {bounds!r}") from None
            lower_inc, upper_inc = code >> 1, code & 1
            flags = (lower_inc if lower is not None else 0) | ((upper_inc if upper is not None else 0) << 1)
        object.__setattr__(self, "_lower", lower)
        object.__setattr__(self, "_upper", upper)
        object.__setattr__(self, "_flags", flags)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Range is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Range is immutable (cannot delete {name!r})")

    @property
    def lower(self) -> T | None:
        """The lower bound; None when it is infinite or the range is empty."""
        return self._lower

    @property
    def upper(self) -> T | None:
        """The upper bound; None when it is infinite or the range is empty."""
        return self._upper

    @property
    def lower_inc(self) -> bool:
        return bool(self._flags & 1)

    @property
    def upper_inc(self) -> bool:
        return bool(self._flags & 2)

    @property
    def lower_inf(self) -> bool:
        return self._lower is None and not self._flags & 4

    @property
    def upper_inf(self) -> bool:
        return self._upper is None and not self._flags & 4

    @property
    def isempty(self) -> bool:
        return bool(self._flags & 4)

    @property
    def bounds(self) -> str:
        """The bounds as two characters, e.g. "[)"; "()" for an empty range."""
        return _BOUNDS[((self._flags & 1) << 1) | ((self._flags >> 1) & 1)]

    def __contains__(self, value: object) -> bool:
        if self._flags & 4:
            return False
        lower, upper = self._lower, self._upper
        if lower is not None and (value < lower or (value == lower and not self._flags & 1)):  # type: ignore[operator]
            return False
        if upper is not None and (value > upper or (value == upper and not self._flags & 2)):  # type: ignore[operator]
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Range):
            return NotImplemented
        return (self._flags, self._lower, self._upper) == (other._flags, other._lower, other._upper)

    def __hash__(self) -> int:
        return hash((self._flags, self._lower, self._upper))

    def __repr__(self) -> str:
        if self._flags & 4:
            return "Range(empty=True)"
        return f"Range({self._lower!r}, {self._upper!r}, {self.bounds!r})"

    def __str__(self) -> str:
        """PostgreSQL's text form, e.g. '[1,10)' or 'empty'."""
        if self._flags & 4:
            return "empty"
        lower = "" if self._lower is None else _quote_bound(str(self._lower))
        upper = "" if self._upper is None else _quote_bound(str(self._upper))
        b = self.bounds
        return f"{b[0]}{lower},{upper}{b[1]}"

    def __reduce__(self) -> tuple[Any, ...]:
        if self._flags & 4:
            return (_empty_range, ())
        return (Range, (self._lower, self._upper, self.bounds))


def _empty_range() -> Range[Any]:
    return Range(empty=True)


def _quote_bound(text: str) -> str:
    if text and not any(c in text for c in '"\\,()[] \t\n\r'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Json:
    """Send `obj` as json: `client.execute("INSERT ... VALUES ($1)", oxpg.Json([1, 2]))`.

    `dumps` (default json.dumps) turns obj into str or bytes; pass e.g.
    orjson.dumps for speed. The json type keeps the text exactly as dumped.
    """

    __slots__ = ("obj", "dumps")

    def __init__(self, obj: Any, dumps: Callable[[Any], str | bytes] | None = None):
        self.obj = obj
        self.dumps = dumps

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.obj!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return bool(self.obj == other.obj)  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]


class Jsonb(Json):
    """Send `obj` as jsonb (what a dict parameter is sent as anyway)."""

    __slots__ = ()


# ---------------------------------------------------------------- registration


class TypeInfo(NamedTuple):
    """What the catalog says about a registered type."""

    name: str  # the name as registered
    oid: int
    array_oid: int  # 0 when the type has no array type
    typtype: str  # 'b' base, 'e' enum, 'd' domain, 'c' composite, 'r' range, ...


class CompositeInfo(NamedTuple):
    """A registered composite type: its fields in order and the factory used."""

    name: str
    oid: int
    array_oid: int
    fields: list[tuple[str, int]]  # (name, type OID), dropped columns skipped
    factory: Callable[..., Any]


# Send functions whose binary form is the value's UTF-8 text (internal functions, so
# citext's citextsend, an alias of textsend, counts too).
_TEXT_SENDS = frozenset({"textsend", "varcharsend", "bpcharsend"})

# Modes of Client._set_type_decoder (include/oxpg/typecache.h, OxpgUserMode).
_MODE_BINARY, _MODE_TEXT, _MODE_TEXT_FORM, _MODE_COMPOSITE = (
    _oxpg.DECODE_BINARY,
    _oxpg.DECODE_TEXT,
    _oxpg.DECODE_TEXT_FORM,
    _oxpg.DECODE_COMPOSITE,
)

_LOOKUP_SQL = (
    "SELECT t.oid, t.typarray, t.typtype, t.typrelid, CASE WHEN p.prolang = 12 THEN p.prosrc END AS send "
    "FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_proc p ON p.oid = t.typsend "
    "WHERE t.oid = pg_catalog.to_regtype($1)"
)

_FIELDS_SQL = (
    "SELECT a.attname, a.atttypid FROM pg_catalog.pg_attribute a "
    "WHERE a.attrelid = $1::pg_catalog.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
)


def _lookup(client: Client, name: str) -> dict[str, Any]:
    from .errors import ProgrammingError

    if not isinstance(name, str):
        raise TypeError(f"the type name must be str, not {type(name).__name__}")
    # The name is a parameter (to_regtype parses it as SQL would: schema-qualified,
    # quoted, the search_path for unqualified names); nothing is pasted into SQL.
    rows = client.query(_LOOKUP_SQL, name)
    if not rows:
        raise ProgrammingError(f"type {name!r} does not exist (or is not on the search_path)")
    return rows[0]


def register_type(
    client: Client,
    name: str,
    *,
    decoder: Callable[[Any], Any] | None = None,
    encoder: Callable[[Any], str | bytes | None] | None = None,
    python_type: type | None = None,
    format: Literal["text", "binary"] = "text",
) -> TypeInfo:
    """Use your own decoder and/or encoder for the PostgreSQL type `name` on `client`.

    decoder(value) -> object is called for every non-NULL value of the type in
    results, also inside arrays of it, records and composites. With format="text"
    it gets a str: the value's text form (as psql prints it); with "binary" the
    bytes of its binary form (see the type's send function).

    encoder(obj) -> str (format="text") or bytes ("binary") is called for parameters
    that are instances of python_type (subclasses included: the first class in the
    value's MRO with an encoder wins); the result is sent with the type's OID. An
    encoder returning None sends NULL. str, int, float, bool, bytes and None always
    go by oxpg's own rules and cannot be overridden.

    The type is looked up by name (schema-qualified or on the search_path) once,
    now: registrations belong to this client and are keyed by the type's OID, so a
    type dropped and created again needs registering again.
    """
    if format not in ("text", "binary"):
        raise ValueError(f"format must be 'text' or 'binary', not {format!r}")
    if (encoder is None) != (python_type is None):
        raise TypeError("encoder and python_type go together: give both or neither")
    if python_type is not None and not isinstance(python_type, type):
        raise TypeError("python_type must be a class")
    if python_type in (str, int, float, bool, bytes, type(None)):
        raise TypeError(f"{python_type.__name__} parameters always go by oxpg's own rules")
    if decoder is None and encoder is None:
        raise TypeError("give a decoder, an encoder (with python_type), or both")
    row = _lookup(client, name)
    if decoder is not None:
        if format == "binary":
            mode = _MODE_BINARY
        elif row["typtype"] == "e" or row["send"] in _TEXT_SENDS:
            mode = _MODE_TEXT  # the binary form is the text: no extra round trip
        else:
            mode = _MODE_TEXT_FORM  # the text form is fetched from the server
        client._set_type_decoder(row["oid"], decoder, mode)
    if encoder is not None:
        client._set_type_encoder(python_type, row["oid"], encoder, format == "binary")
    return TypeInfo(name, row["oid"], row["typarray"], row["typtype"])


def _identifier(name: str) -> str:
    ident = "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "composite"
    if ident[0].isdigit() or keyword.iskeyword(ident):
        ident = "_" + ident
    return ident


def register_composite(client: Client, name: str, factory: Callable[..., Any] | None = None) -> CompositeInfo:
    """Decode the composite type `name` as factory(*fields) and accept its instances
    as parameters, on `client`.

    factory defaults to a collections.namedtuple class named after the type, with
    the type's field names (names that are not identifiers are renamed _0, _1...).
    A dataclass or any class taking the fields positionally works too. Fields
    decode by the usual rules, nested composites and arrays included.

    When factory is a class, its instances go in as parameters of the composite
    type, in PostgreSQL's text form '(f1,f2,...)' with every field quoted, typed by
    the composite's OID, so the server parses each field with its own type. Field
    values: None (NULL), str, int, float, bool, Decimal, bytes, date/time values,
    timedelta, UUID, dict/Json (json), ipaddress objects, Range, lists (arrays) and
    instances of other registered composites or text-format encoders. A plain
    tuple is an array parameter in oxpg: wrap it, factory(*t).
    """
    from .errors import ProgrammingError

    row = _lookup(client, name)
    if row["typtype"] != "c":
        raise ProgrammingError(f"type {name!r} is not a composite type")
    fields = [(r["attname"], r["atttypid"]) for r in client.query(_FIELDS_SQL, row["typrelid"])]
    if factory is None:
        typname = name.rsplit(".", 1)[-1].strip('"')
        factory = collections.namedtuple(_identifier(typname), [f for f, _ in fields], rename=True)  # type: ignore[misc]
    client._set_type_decoder(row["oid"], factory, _MODE_COMPOSITE)
    if isinstance(factory, type):
        client._set_type_encoder(
            factory, row["oid"], _CompositeEncoder(client._type_encoders(), [f for f, _ in fields]), False
        )
    return CompositeInfo(name, row["oid"], row["typarray"], fields, factory)


class _CompositeEncoder:
    """obj -> '(f1,f2,...)', PostgreSQL's composite literal; the fields' text forms
    come from _text_form. Holds the client's encoder table, not the client."""

    __slots__ = ("encoders", "names")

    def __init__(self, encoders: dict[type, tuple[int, Callable[[Any], Any], bool]], names: list[str]):
        self.encoders = encoders
        self.names = names

    def __call__(self, obj: Any) -> str:
        if isinstance(obj, tuple):
            values = list(obj)
        elif dataclasses.is_dataclass(obj):
            values = [getattr(obj, f.name) for f in dataclasses.fields(obj)]
        else:
            values = [getattr(obj, n) for n in self.names]
        if len(values) != len(self.names):
            raise ValueError(f"the composite has {len(self.names)} fields, the value {len(values)}")
        return _composite_literal(values, self.encoders)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _composite_literal(values: list[Any], encoders: dict[type, Any]) -> str:
    # An empty field is NULL; every other field is quoted, so '' and 'NULL' survive.
    return "(" + ",".join("" if v is None else _quote(_text_form(v, encoders)) for v in values) + ")"


def _array_literal(values: Any, encoders: dict[type, Any]) -> str:
    items = []
    for v in values:
        if v is None:
            items.append("NULL")
        elif isinstance(v, list) or (type(v) is tuple):
            items.append(_array_literal(v, encoders))
        else:
            items.append(_quote(_text_form(v, encoders)))
    return "{" + ",".join(items) + "}"


def _text_form(v: Any, encoders: dict[type, Any]) -> str:
    """PostgreSQL's text input for one field or element value."""
    for cls in type(v).__mro__:
        entry = encoders.get(cls)
        if entry is not None:
            if entry[2]:
                raise TypeError(f"{type(v).__name__} has a binary encoder, which cannot go inside a composite")
            text = entry[1](v)
            if not isinstance(text, str):
                raise TypeError(f"the encoder for {type(v).__name__} returned {type(text).__name__}, not str")
            return text
    if isinstance(v, str):
        text = v
    elif isinstance(v, bool):
        text = "t" if v else "f"
    elif isinstance(v, int):
        text = str(int(v))
    elif isinstance(v, float):
        text = "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity") if math.isinf(v) else repr(v)
    elif isinstance(v, decimal.Decimal):
        if v.is_snan():
            raise ValueError("sNaN cannot be sent as numeric")
        text = str(v)
    elif isinstance(v, (bytes, bytearray, memoryview)):
        text = "\\x" + bytes(v).hex()
    elif isinstance(v, (datetime.date, datetime.time)):
        text = v.isoformat()
    elif isinstance(v, datetime.timedelta):
        text = f"{v.days} days {v.seconds} seconds {v.microseconds} microseconds"
    elif isinstance(v, (uuid.UUID, Range, ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Interface,
                        ipaddress.IPv6Interface, ipaddress.IPv4Network, ipaddress.IPv6Network)):
        text = str(v)
    elif isinstance(v, dict):
        text = json.dumps(v)
    elif isinstance(v, Json):
        dumped = (v.dumps or json.dumps)(v.obj)
        text = dumped.decode() if isinstance(dumped, bytes) else dumped
    elif isinstance(v, (list, tuple)):
        text = _array_literal(v, encoders)
    else:
        raise TypeError(f"cannot send {type(v).__name__} inside a composite; register an encoder for it")
    if "\x00" in text:
        raise ValueError("str contains a NUL character (\\x00), which PostgreSQL text cannot store")
    return text


# The C core builds range values as Range and recognises the Json/Jsonb parameter
# wrappers; it imports nothing from this package, so the classes are handed over.
_oxpg.register_value_types(Range, Json, Jsonb)
