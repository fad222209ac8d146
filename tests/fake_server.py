"""A fake PostgreSQL server for tests that need a malformed server answer.

It speaks just enough of protocol 3.0 for libpq to log in (no authentication, no
TLS) and answers each extended-protocol batch (Parse ... Sync) through a Python
callback that sees the SQL text. The real server cannot be made to send what a
hostile or broken one could (RELIABILITY.md row 22), which is what these tests need.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# One column of a RowDescription: (name, type OID, format 0 text / 1 binary).
Column = tuple[str, int, int]


@dataclass
class Answer:
    """What the server sends for one statement: rows of raw values (None is NULL),
    or an error message."""

    columns: Sequence[Column] = ()
    rows: Sequence[Sequence[bytes | None]] = ()
    error: str | None = None
    tag: str = field(default="")


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def _cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def _row_description(columns: Sequence[Column]) -> bytes:
    body = struct.pack("!h", len(columns))
    for name, oid, fmt in columns:
        body += _cstr(name) + struct.pack("!ihihih", 0, 0, oid, -1, -1, fmt)
    return _message(b"T", body)


def _data_row(values: Sequence[bytes | None]) -> bytes:
    body = struct.pack("!h", len(values))
    for value in values:
        body += struct.pack("!i", -1) if value is None else struct.pack("!i", len(value)) + value
    return _message(b"D", body)


def _bind_result_formats(body: bytes) -> list[int]:
    """The result format codes a Bind message asks for."""
    pos = body.index(b"\0") + 1
    pos = body.index(b"\0", pos) + 1
    (n,) = struct.unpack_from("!h", body, pos)
    pos += 2 + 2 * n
    (n,) = struct.unpack_from("!h", body, pos)
    pos += 2
    for _ in range(n):
        (length,) = struct.unpack_from("!i", body, pos)
        pos += 4 + max(length, 0)
    (n,) = struct.unpack_from("!h", body, pos)
    return list(struct.unpack_from(f"!{n}h", body, pos + 2))


def _error(text: str) -> bytes:
    fields = b"SERROR\0VERROR\0CXX000\0M" + _cstr(text)
    return _message(b"E", fields + b"\0")


class FakeServer:
    """Listens on 127.0.0.1; answer(sql) decides each statement's Answer."""

    def __init__(self, answer: Callable[[str], Answer]) -> None:
        self.answer = answer
        self.statements: list[str] = []
        self.result_formats: list[list[int]] = []  # of each Bind, in order
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=fake dbname=fake sslmode=disable gssencmode=disable"

    def close(self) -> None:
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._startup(conn)
            self._loop(conn)
        except (OSError, ConnectionError):
            pass
        finally:
            conn.close()

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("client went away")
            data += chunk
        return data

    def _startup(self, conn: socket.socket) -> None:
        (length,) = struct.unpack("!i", self._read(conn, 4))
        self._read(conn, length - 4)  # protocol version and parameters: anything goes
        out = _message(b"R", struct.pack("!i", 0))  # AuthenticationOk
        for name, value in (
            ("server_version", "15.0"),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("TimeZone", "UTC"),
        ):
            out += _message(b"S", _cstr(name) + _cstr(value))
        out += _message(b"K", struct.pack("!ii", 4242, 1))
        out += _message(b"Z", b"I")
        conn.sendall(out)

    def _loop(self, conn: socket.socket) -> None:
        sql: str | None = None
        batch: list[bytes] = []  # the extended-protocol messages since the last Sync
        while True:
            kind = self._read(conn, 1)
            (length,) = struct.unpack("!i", self._read(conn, 4))
            body = self._read(conn, length - 4)
            if kind == b"X":
                return
            if kind == b"P":
                sql = body.split(b"\0")[1].decode()
            if kind == b"B":
                self.result_formats.append(_bind_result_formats(body))
            if kind in (b"P", b"B", b"E"):
                batch.append(kind)
            elif kind == b"D":
                batch.append(b"DS" if body[:1] == b"S" else b"DP")
            elif kind == b"Q":
                conn.sendall(self._reply(body.rstrip(b"\0").decode(), None) + _message(b"Z", b"I"))
            elif kind == b"S":
                out = self._reply(sql, batch) if sql is not None and batch else b""
                batch = []
                conn.sendall(out + _message(b"Z", b"I"))

    def _reply(self, sql: str, batch: list[bytes] | None) -> bytes:
        """The answer to a simple query (batch None) or to the extended-protocol
        messages of one batch, in order; the statement runs (and is recorded) once
        per batch, as its answer is needed."""
        answer = None
        out = b""
        for kind in batch if batch is not None else [b"Q"]:
            if answer is None:
                self.statements.append(sql)
                answer = self.answer(sql)
                if answer.error is not None:
                    return _error(answer.error)
            if kind == b"P":
                out += _message(b"1", b"")
            elif kind == b"B":
                out += _message(b"2", b"")
            elif kind in (b"DS", b"DP", b"Q"):
                if kind == b"DS":
                    out += _message(b"t", struct.pack("!h", 0))  # ParameterDescription: none
                if answer.columns:
                    out += _row_description(answer.columns)
                elif kind != b"Q":
                    out += _message(b"n", b"")  # NoData
            if kind in (b"E", b"Q"):
                for row in answer.rows:
                    out += _data_row(row)
                out += _message(b"C", _cstr(answer.tag or f"SELECT {len(answer.rows)}"))
        return out
