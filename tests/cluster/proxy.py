"""A TCP relay between one node and Redis that a test can cut: a network partition of
that node alone, while the others keep talking to Redis."""

from __future__ import annotations

import contextlib
import socket
import threading

from chat_server.process import LOOPBACK, free_port


class CuttableProxy:
    """Relays ``LOOPBACK:port`` to Redis. ``cut()`` closes every relayed connection and
    hangs up on new ones until ``restore()``."""

    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self.port = free_port()
        self.sock = socket.create_server((LOOPBACK, self.port))
        self.is_cut = False
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True, name="proxy")
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def cut(self) -> None:
        with self._lock:
            self.is_cut = True
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def restore(self) -> None:
        with self._lock:
            self.is_cut = False

    def close(self) -> None:
        self.cut()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.sock.accept()
                with self._lock:
                    if self.is_cut:
                        client.close()
                        continue
                    try:
                        upstream = socket.create_connection((LOOPBACK, self.redis_port), 2.0)
                    except OSError:
                        client.close()
                        continue
                    upstream.settimeout(None)
                    self._open += [client, upstream]
                for src, dst in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pump, args=(src, dst), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    for sock in (src, dst):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
