"""Server-side cursors: ``client.cursor(sql, *params)``.

The server keeps the result and hands it out in parts, so a client reads any number
of rows in bounded memory:

    DECLARE "_oxpg_cursor_<client token>_N" [NO] SCROLL CURSOR [WITH HOLD] FOR <sql>

with the parameters bound as $1, $2, ... like query()'s. Rows come back through
FETCH in binary, decoded as query() decodes them.

A cursor without hold=True lives in its transaction and needs one: declaring it in
autocommit raises ProgrammingError (oxpg never opens a transaction behind your back).
A WITH HOLD cursor outlives COMMIT and can be declared outside any transaction; the
server then computes the whole result when the implicit transaction commits and keeps
it until close().

Names are generated, never taken from the caller, and quoted. A closed cursor's name
is reused by the next cursor of the same Client, so FETCH statements repeat and the
statement cache prepares them once.

Every statement a cursor sends (DECLARE, FETCH, MOVE, CLOSE) has a timeout: the
call's timeout=, else the cursor's (client.cursor(..., timeout=), which iteration
uses), else the client's command_timeout; float('inf') means none. On expiry the
statement is cancelled and QueryTimeoutError raised, which fails the transaction
the cursor lives in, as any error there does.

A value Python cannot represent (a year after 9999) raises DataError naming the row's
number in the cursor's result, and no other row is lost. Iteration and fetchone()
hand out every row before it first. fetch(n) and fetchall() never return fewer rows
than asked before the end (a short list would look like the end): the call that would
include the row raises, the rows before it stay for the next call, and fetching goes
on with them and the rows after it.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from . import errors
from ._oxpg import DataError, Error, InterfaceError, ProgrammingError
from .transaction import _IDLE, _IN_ERROR, _quote_ident, cursor_dropped, innermost_block

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Cursor"]

Row = dict[str, Any]

# Fresh ids are process-wide, so two threads creating a Client's first cursors at
# once can never draw the same name; closed ones are reused per Client.
_fresh_ids = itertools.count(1)


def _take_id(client: Client) -> int:
    if client._free_cursor_ids:
        return client._free_cursor_ids.pop()
    return next(_fresh_ids)


def _give_back_id(client: Client, cursor_id: int) -> None:
    """Only once the server has certainly dropped the cursor of that name."""
    client._free_cursor_ids.append(cursor_id)


def _int(value: object, what: str) -> int:
    # An int subclass could print itself as anything: what goes into the SQL
    # text is always a plain int.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return int(value)


def _positive_int(value: object, what: str) -> int:
    number = _int(value, what)
    if number < 1:
        raise ValueError(f"{what} must be at least 1, not {number}")
    return number


class Cursor:
    """A server-side cursor; create it with ``client.cursor(sql, *params)``."""

    __slots__ = (
        "client",
        "name",
        "scrollable",
        "hold",
        "timeout",
        "_itersize",
        "_quoted",
        "_id",
        "_block",
        "_buffer",
        "_position",
        "_past_end",
        "_closed",
    )

    def __init__(
        self,
        client: Client,
        sql: str,
        params: tuple[Any, ...] = (),
        *,
        scrollable: bool = False,
        hold: bool = False,
        timeout: float | None = None,
    ) -> None:
        if not isinstance(sql, str):
            raise TypeError(f"sql must be a str, not {type(sql).__name__}")
        for flag_name, flag in (("scrollable", scrollable), ("hold", hold)):
            if not isinstance(flag, bool):
                raise TypeError(f"{flag_name} must be a bool, not {type(flag).__name__}")
        client._check_timeout(timeout)
        if not hold and client._transaction_status == _IDLE:
            raise ProgrammingError(
                "a cursor without hold=True lives inside a transaction: "
                "open it within 'with client.transaction():', or pass hold=True"
            )
        self.client = client
        self.scrollable = scrollable
        self.hold = hold
        self.timeout = timeout  # the default of each statement the cursor sends
        self._itersize = 1000
        # Rows read and not yet handed out (read ahead by iteration, or after a row
        # that could not be decoded, which is its DataError here); fetch*() take them first.
        self._buffer: deque[Row | DataError] = deque()
        # The server's position, as PostgreSQL counts it: 0 before the first row, k
        # on row k, the row count + 1 after the last. Errors number rows from it.
        self._position = 0
        # True when the server stands after the last row (a FETCH or MOVE ran off the
        # end): it then is one row further than the rows handed out say.
        self._past_end = False
        self._closed = True  # until DECLARE succeeds
        self._id = _take_id(client)
        # The client's token: behind a transaction-mode pooler, WITH HOLD cursors of
        # other clients may live in the same server session.
        self.name = f"_oxpg_cursor_{client._name_token}_{self._id}"
        self._quoted = _quote_ident(self.name)
        self._block = innermost_block(client)  # to know when the server drops the cursor
        declare = " ".join(
            [
                "DECLARE",
                self._quoted,
                "SCROLL" if scrollable else "NO SCROLL",
                "CURSOR WITH HOLD FOR" if hold else "CURSOR FOR",
                sql,
            ]
        )
        try:
            # query(), not execute(): the extended protocol even without parameters,
            # so sql is exactly one statement, as with query().
            client.query(declare, *params, timeout=timeout)
        except errors.DuplicateCursor:
            raise  # the name is taken after all (closed by hand?): retire it
        except Error:
            _give_back_id(client, self._id)  # nothing was declared
            raise
        self._closed = False

    def __repr__(self) -> str:
        return f"<oxpg.Cursor {self._quoted} {'closed' if self.closed else 'open'}>"

    @property
    def closed(self) -> bool:
        """True after close(), or once the Client is closed."""
        return self._closed or self.client.closed

    @property
    def itersize(self) -> int:
        """Rows fetched per round trip when iterating (default 1000)."""
        return self._itersize

    @itersize.setter
    def itersize(self, value: int) -> None:
        self._itersize = _positive_int(value, "itersize")

    def fetch(self, n: int, *, timeout: float | None = None) -> list[Row]:
        """The next n rows, fewer only at the end of the result. A row among them
        that cannot be decoded raises its DataError; the rows before it stay for the
        next fetch. timeout: of the FETCH (None: the cursor's)."""
        n = _positive_int(n, "n")
        timeout = self._timeout_for(timeout)
        self._check_open()
        if len(self._buffer) < n:
            self._buffer.extend(self._fetch_forward(n - len(self._buffer), timeout))
        return self._hand_out(n)

    def fetchone(self, *, timeout: float | None = None) -> Row | None:
        """The next row, or None at the end of the result."""
        rows = self.fetch(1, timeout=timeout)
        return rows[0] if rows else None

    def fetchall(self, *, timeout: float | None = None) -> list[Row]:
        """All the remaining rows. A row that cannot be decoded raises its
        DataError; the other rows stay for the next fetch."""
        timeout = self._timeout_for(timeout)
        self._check_open()
        rows = self.client._cursor_fetch(self._position, f"FETCH ALL FROM {self._quoted}", timeout=timeout)
        self._advanced(len(rows), None)
        self._buffer.extend(rows)
        return self._hand_out(len(self._buffer))

    def __iter__(self) -> Iterator[Row]:
        """Rows one by one, fetched itersize at a time. Rows read ahead stay with the
        cursor: leaving the loop early loses none of them."""
        while True:
            if not self._buffer:
                self._check_open()
                if self._past_end:
                    return
                self._buffer.extend(self._fetch_forward(self._itersize, self._timeout_for(None)))
                continue
            row = self._buffer.popleft()
            if isinstance(row, DataError):
                raise row
            yield row

    def scroll(
        self, value: int, mode: Literal["relative", "absolute"] = "relative", *, timeout: float | None = None
    ) -> None:
        """Move the position of the next row to fetch: by value rows ("relative",
        negative goes back), or to the 0-based row index value ("absolute").
        Positions beyond the result are clamped: past the end nothing is left to
        fetch, before the start the next row is the first. Needs scrollable=True."""
        if not self.scrollable:
            raise ProgrammingError("scroll() needs a cursor declared with scrollable=True")
        value = _int(value, "value")
        timeout = self._timeout_for(timeout)
        if mode == "relative":
            # The server is ahead of the rows handed out by those read ahead, and by
            # one more when it stands after the last row.
            delta = value - len(self._buffer) - self._past_end
        elif mode == "absolute":
            if value < 0:
                raise ValueError(f"an absolute position is a row index, at least 0, not {value}")
            # A relative MOVE, not MOVE ABSOLUTE: its count says where the cursor
            # stands even beyond the end, where MOVE ABSOLUTE's only says "not on a row".
            delta = value - self._position
        else:
            raise ValueError(f"mode must be 'relative' or 'absolute', not {mode!r}")
        self._check_open()
        self._buffer.clear()
        moved = self.client.execute(f"MOVE {delta} FROM {self._quoted}", timeout=timeout)
        if delta > 0:
            self._advanced(moved, delta)
        elif delta < 0:
            # Back over fewer rows than asked: before the first row.
            self._position = self._position - moved if moved == -delta else 0
            self._past_end = False

    def close(self, *, timeout: float | None = None) -> None:
        """Close the cursor on the server (CLOSE). Calling it again does nothing; a
        cursor already dropped by the server (its transaction ended, the connection
        was lost) closes without error."""
        if self._closed:
            return
        timeout = self._timeout_for(timeout)
        self._closed = True
        self._buffer.clear()
        client = self.client
        if client.closed:
            return  # the session took its cursors with it
        if cursor_dropped(self._block, self.hold) is not None:
            _give_back_id(client, self._id)
            return
        if not self.hold and client._transaction_status == _IN_ERROR:
            # It goes with the failed transaction, where CLOSE would only fail. Its
            # name stays taken: the server holds it until the rollback.
            return
        try:
            client.execute(f"CLOSE {self._quoted}", timeout=timeout)
        except errors.InvalidCursorName:
            # Already dropped, by the end of a transaction begun by hand.
            _give_back_id(client, self._id)
            if client._transaction_status != _IDLE:
                raise  # the failed CLOSE aborted the current transaction: say so
            return
        _give_back_id(client, self._id)

    def __enter__(self) -> Cursor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except Error as close_error:
            # The body's exception is the one to see; keep the other next to it.
            exc.add_note(f"oxpg: closing the cursor failed too: {close_error!r}")

    def _check_open(self) -> None:
        if self._closed:
            raise InterfaceError("the cursor is closed")
        reason = cursor_dropped(self._block, self.hold)
        if reason is not None:
            raise errors.InvalidCursorName(f"cursor {self._quoted} no longer exists: {reason}")

    def _timeout_for(self, timeout: float | None) -> float | None:
        """The timeout of one statement: the call's, else the cursor's; checked before
        the cursor's state changes."""
        if timeout is None:
            timeout = self.timeout
        self.client._check_timeout(timeout)
        return timeout

    def _fetch_forward(self, n: int, timeout: float | None) -> list[Row | DataError]:
        rows = self.client._cursor_fetch(self._position, f"FETCH FORWARD {n} FROM {self._quoted}", timeout=timeout)
        self._advanced(len(rows), n)
        return rows

    def _advanced(self, count: int, asked: int | None) -> None:
        """The server went forward over count rows of the asked ones (None: all)."""
        if self._past_end:
            return  # nothing is left to go over
        self._position += count
        if asked is None or count < asked:
            self._position += 1  # it ran off the end
            self._past_end = True

    def _hand_out(self, n: int) -> list[Row]:
        """The next n rows from the buffer. When a row among them could not be
        decoded, its DataError is raised instead and the rows before it stay for the
        next fetch: a list shorter than asked always means the end of the result."""
        buffer = self._buffer
        for index, row in enumerate(itertools.islice(buffer, n)):
            if isinstance(row, DataError):
                del buffer[index]
                raise row
        return [buffer.popleft() for _ in range(min(n, len(buffer)))]  # type: ignore[misc]
