"""A TCP fault proxy on 127.0.0.1 in front of the suite's server (RELIABILITY row 3):
it forwards until told to become a network black hole."""

from __future__ import annotations

import socket
import threading


class Proxy:
    """A TCP forwarder to the server that can turn into a black hole: data stops
    flowing both ways and new connections are accepted but never answered, while every
    socket stays open (no RST, no FIN), as in a network partition."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.forwarding = True
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(downstream)
            if not self.forwarding:
                continue  # held open, never answered
            upstream = socket.create_connection(self.target)
            self.sockets.append(upstream)
            for src, dst in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
                if not data or not self.forwarding:
                    return
                dst.sendall(data)
            except OSError:
                return

    def black_hole(self) -> None:
        self.forwarding = False

    def close(self) -> None:
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass
