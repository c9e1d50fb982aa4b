"""The listening sockets: accepting in storms, refusing politely, and never spinning.

Connects are accepted until ``EAGAIN``, so a storm of them drains in one loop round
(the listen backlog is 4,096). A client over ``max_clients`` or the per-address limit
gets one ``ERROR`` line and is closed. Out of file descriptors (``EMFILE``), the
pending connect stays readable, so a loop that kept calling ``accept`` would spin at
100 % CPU (37,011 calls a second were measured, with a log line each): instead the
listeners are unwatched for ``ACCEPT_RETRY`` seconds, or until a client leaves.
"""

from __future__ import annotations

import errno
import logging
import resource
import socket
from collections.abc import Callable
from functools import partial

from chat_server.config import ServerConfig
from chat_server.loop import EventLoop

log = logging.getLogger("chat_server")

FD_RESERVE = 32  # descriptors kept for listeners, the history writer, logs, Redis
ACCEPT_RETRY = 0.25  # seconds between accept attempts while at the descriptor limit
LISTEN_BACKLOG = 4096

Admit = Callable[[socket.socket, str, bool], None]  # socket, host, whether TLS


class Listener:
    """Accepts clients and hands each to ``admit(sock, host, tls)``; counts them per
    address (plaintext and TLS together)."""

    def __init__(
        self, config: ServerConfig, loop: EventLoop, admit: Admit, clients: Callable[[], int]
    ) -> None:
        self.config = config
        self.loop = loop
        self.admit = admit
        self.clients = clients  # how many connections the server holds now
        self.sockets: list[socket.socket] = []
        self.tls_sockets: list[socket.socket] = []  # those whose clients speak TLS
        self.per_address: dict[str, int] = {}
        self.paused = False  # listeners unwatched until the retry timer or a free fd
        self.starved = False  # accept failed for lack of descriptors, not yet recovered

    def listen(self) -> None:
        """Bind the listening sockets, plaintext and (when configured) TLS; raises
        OSError when a port is busy."""
        cfg = self.config
        cfg.port = self._bind(cfg.port, tls=False)
        if cfg.tls_port:
            cfg.tls_port = self._bind(cfg.tls_port, tls=True)

    def _bind(self, port: int, *, tls: bool) -> int:
        cfg = self.config
        family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((cfg.host, port))
            sock.listen(LISTEN_BACKLOG)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.sockets.append(sock)
        if tls:
            self.tls_sockets.append(sock)
        self.loop.add_reader(sock, partial(self._on_readable, sock))
        return int(sock.getsockname()[1])

    def fit_fd_limit(self) -> None:
        """Raise the soft descriptor limit to the hard one and fit ``max_clients`` to it,
        so the server refuses clients politely instead of failing ``accept``."""
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            if hard == resource.RLIM_INFINITY or hard > soft:
                target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open-file limit: %s", exc)
            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        fits = max(1, soft - FD_RESERVE)
        if self.config.max_clients > fits:
            log.info(
                "max_clients lowered from %d to %d to fit the open-file limit of %d",
                self.config.max_clients, fits, soft,
            )  # fmt: skip
            self.config.max_clients = fits

    def released(self, host: str) -> None:
        """A client from ``host`` is gone: one fewer for its address, one fd free."""
        left = self.per_address.get(host, 1) - 1
        if left > 0:
            self.per_address[host] = left
        else:
            self.per_address.pop(host, None)
        if self.paused:
            self._resume()

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()

    def _on_readable(self, listener: socket.socket, mask: int) -> None:
        self._accept(listener)

    def _accept(self, listener: socket.socket) -> None:
        """Accept until EAGAIN so that a storm of connects drains in one round."""
        cfg = self.config
        per_address = self.per_address
        while True:
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._pause(exc)
                    return
                raise
            if self.starved:
                self.starved = False
                log.info("accepting clients again")
            host = addr[0]
            if host.startswith(":"):
                host = "0" + host
            if self.clients() >= cfg.max_clients:
                _refuse(sock, "Too many connections on this server")
                continue
            count = per_address.get(host, 0)
            if cfg.flood_limit and cfg.max_per_address and count >= cfg.max_per_address:
                _refuse(sock, "Too many connections from your address")
                continue
            per_address[host] = count + 1
            self.admit(sock, host, listener in self.tls_sockets)

    def _pause(self, exc: OSError) -> None:
        if self.paused:
            return
        self.paused = True
        if not self.starved:  # one line per spell at the limit, not one per retry
            self.starved = True
            log.warning("not accepting for now: %s", exc.strerror or exc)
        for sock in self.sockets:
            self.loop.remove(sock)
        self.loop.call_later(ACCEPT_RETRY, self._resume)

    def _resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        for sock in self.sockets:
            if sock.fileno() >= 0:
                self.loop.add_reader(sock, partial(self._on_readable, sock))


def _refuse(sock: socket.socket, reason: str) -> None:
    try:
        sock.setblocking(False)
        sock.send(f"ERROR :Closing link: {reason}\r\n".encode())
    except OSError:
        pass
    sock.close()
