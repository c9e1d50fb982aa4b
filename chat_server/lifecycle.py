"""The server process's life: serving until a signal, SIGHUP reloads, shutting down.

Module functions taking the ``Server``; ``Server.run``/``shutdown``/``reload_tls``
call them (a cluster node overrides ``run`` and ``shutdown`` and calls them back).
"""

from __future__ import annotations

import logging
import signal
import socket
import time
from functools import partial
from typing import TYPE_CHECKING

from chat_server.timeouts import check_timeouts
from chat_server.tls import TlsError
from chat_server.tls import make_context as make_tls_context

if TYPE_CHECKING:
    from chat_server.server import Server

log = logging.getLogger("chat_server")


def run(server: Server) -> None:
    """Serve until SIGTERM/SIGINT, then shut down cleanly (``server.shutdown``)."""
    loop = server.loop
    rsock, wsock = socket.socketpair()
    rsock.setblocking(False)
    wsock.setblocking(False)
    loop.add_reader(rsock, lambda mask: _drain_wakeup(server, rsock))
    old_fd = signal.set_wakeup_fd(wsock.fileno())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, partial(_on_signal, server))
    # SIGHUP reloads the TLS certificate: the handler does nothing itself (a timer
    # or a context swap from inside a signal handler could interrupt the loop
    # mid-change); the wakeup byte it leaves is seen by _drain_wakeup, in the loop.
    signal.signal(signal.SIGHUP, lambda signum, frame: None)
    server.listener.fit_fd_limit()
    server.history.attach(loop)  # its hook first: messages reach its pipe before echoes
    server.accounts.start(loop, server.background)
    loop.after_io(server.io.flush_dirty)
    loop.call_every(1.0, partial(check_timeouts, server))
    cfg = server.config
    log.info("listening on %s:%d", cfg.host, cfg.port)
    if server.tls_context is not None:
        log.info("TLS on %s:%d", cfg.host, cfg.tls_port)
    try:
        loop.run()
    finally:
        signal.set_wakeup_fd(old_fd)
        server.shutdown()
        rsock.close()
        wsock.close()


def _on_signal(server: Server, signum: int, frame: object) -> None:
    log.info("received %s, shutting down", signal.Signals(signum).name)
    server.loop.stop()


def _drain_wakeup(server: Server, rsock: socket.socket) -> None:
    """Empty the signal wakeup socket (each byte is a signal's number)."""
    signals = b""
    try:
        while chunk := rsock.recv(4096):
            signals += chunk
    except (BlockingIOError, InterruptedError):
        pass
    if signal.SIGHUP in signals:
        server.reload_tls()
        server.accounts.refresh()  # accounts added or removed with 'chat-server account'


def reload_tls(server: Server) -> None:
    """Load the TLS certificate and key again (after a renewal); new connections
    use them, established ones keep theirs. A file that does not load leaves the
    old certificate in use and says why."""
    cfg = server.config
    if not (cfg.tls_port and cfg.tls_cert and cfg.tls_key):
        log.info("SIGHUP: no TLS configured, nothing to reload")
        return
    try:
        server.tls_context = make_tls_context(cfg.tls_cert, cfg.tls_key)
    except TlsError as exc:
        log.error("SIGHUP: %s; the previous certificate stays in use", exc)
        return
    log.info("SIGHUP: TLS certificate reloaded from %s", cfg.tls_cert)


def shutdown(server: Server) -> None:
    """Tell every client, flush what we can within a second, and persist history."""
    server.delivery.write_pending()
    # History first: what is echoed below (held echoes with history_sync) is then
    # on disk before it leaves.
    server.history.close()
    farewell = b"ERROR :Server shutting down\r\n"
    for conn in list(server.conns.values()):
        conn.paced.clear()
        conn.outbuf += farewell
    deadline = time.monotonic() + 1.0
    pending = [c for c in server.conns.values() if c.outbuf]
    while pending and time.monotonic() < deadline:
        pending = [c for c in pending if not c.flush() and not c.closing]
        if pending:
            time.sleep(0.005)
    for conn in list(server.conns.values()):
        server.io.close_socket(conn)
    server.listener.close()
    server.background.close()
    log.info("stopped; %d messages in history written", server.history.stats.get("written", 0))
