"""Value types for PostgreSQL types Python has no equivalent of.

- `Range`: int4range, int8range, numrange, daterange, tsrange, tstzrange (and the
  elements of their multiranges, which come back as lists of Range).
- `Json` / `Jsonb`: wrappers that send any object as json or jsonb.

The C core imports this module while it initializes (to recognise these classes as
parameters and to build Range values), so it imports only the standard library.
docs/types.md has the full mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Json", "Jsonb", "Range"]

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
