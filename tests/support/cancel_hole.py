"""A TCP forwarder to a PostgreSQL server whose cancel requests vanish.

Sessions pass through untouched, but a connection that carries a CancelRequest is
accepted and then held open forever: never read again, never answered, never closed
(no FIN, no RST), as when the server's port cannot be reached for new connections.
libpq's blocking PQcancel() waits on such a socket for as long as it stays open.

It runs in a child process (CancelHole), so that its sockets and threads are not
counted with the test process's (the tests count /proc/self/fd and /proc/self/task).
TLS and GSSAPI requests are refused by the forwarder itself (the server accepts plain
TCP too), so that it can read the packet that follows in the clear.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import threading
from urllib.parse import urlsplit, urlunsplit

CANCEL_REQUEST = 80877102
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


class CancelHole:
    """The forwarder in a child process; stopping it closes every held socket."""

    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        assert parts.hostname is not None and parts.port is not None, dsn
        self.proc = subprocess.Popen(
            [sys.executable, __file__, parts.hostname, str(parts.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        port = int(self.proc.stdout.readline())
        netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
        self.dsn = urlunsplit(parts._replace(netloc=netloc))

    def held(self) -> int:
        """How many cancel requests are being held (none of them reached the server)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("held\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


# ---- the child -------------------------------------------------------------------------


def _recv_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed during the startup packet")
        data += chunk
    return data


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Forwarder:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.held: list[socket.socket] = []
        self.lock = threading.Lock()

    def handle(self, client: socket.socket) -> None:
        try:
            head = _recv_exact(client, 8)
            length, code = struct.unpack("!II", head)
            while length == 8 and code in (SSL_REQUEST, GSSENC_REQUEST):
                client.sendall(b"N")
                head = _recv_exact(client, 8)
                length, code = struct.unpack("!II", head)
            if length == 16 and code == CANCEL_REQUEST:
                with self.lock:
                    self.held.append(client)  # kept open, never read or answered
                return
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        upstream.sendall(head)
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)

    def serve(self, listener: socket.socket) -> None:
        while True:
            client, _ = listener.accept()
            threading.Thread(target=self.handle, args=(client,), daemon=True).start()


def _main(host: str, port: int) -> None:
    forwarder = _Forwarder((host, port))
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    threading.Thread(target=forwarder.serve, args=(listener,), daemon=True).start()
    print(listener.getsockname()[1], flush=True)
    for line in sys.stdin:  # until the parent closes stdin or kills us
        if line.strip() == "held":
            with forwarder.lock:
                print(len(forwarder.held), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1], int(sys.argv[2]))
