"""The once-a-second sweep: send queues over their time, stalled TLS handshakes,
clients that never registered, and PING / ping timeout for idle ones."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chat_server.server import Server


def check_timeouts(server: Server) -> None:
    """Drop the clients whose time is up; PING the idle ones."""
    now = time.monotonic()
    cfg = server.config
    flow = server.flow
    for conn in flow.expired(now):
        server.drop(conn, "SendQ exceeded")
    for conn in list(server.conns.values()):
        if conn.writing and conn.outbuf:
            # Not writable since its last send: judge what piled up meanwhile.
            reason = flow.check(conn, now)
            if reason:
                server.drop(conn, reason)
                continue
        if conn.handshaking and now - conn.created > cfg.tls_handshake_timeout:
            server.drop(conn, "TLS handshake timed out")
            continue
        user = conn.user
        if user is None or not user.registered:
            if now - conn.created > cfg.registration_timeout:
                server.drop(conn, "Registration timed out")
            continue
        idle = now - conn.last_active
        if conn.ping_sent:
            if now - conn.ping_sent > cfg.ping_timeout:
                server.drop(conn, f"Ping timeout: {int(now - conn.ping_sent)} seconds")
        elif idle > cfg.ping_interval:
            conn.ping_sent = now
            server.out.send_raw(user, f"PING :{server.name}")
