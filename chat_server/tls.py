"""TLS for client connections: the server's context, and handshakes that never block.

A TLS client is accepted like any other and its socket wrapped without a handshake
(``do_handshake_on_connect=False``); the handshake then advances one step each time
the socket is ready (:func:`advance`), inside the event loop, so a client that stalls
mid-handshake holds nothing up. One that has not finished within
``tls_handshake_timeout`` seconds is dropped by the server's timeout sweep.

Once established, a TLS connection is read and written by the same code as a plain
one (connection.py): ``recv_into``/``send`` on the SSL socket, with the SSL "want
read/write" errors counted as would-block. One difference is handled by the server:
decrypted bytes the read budget left in the SSL object do not make the socket
readable again, so the server reads such a connection again in the next round
(:func:`buffered`).
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

log = logging.getLogger(__name__)

# How far a handshake got after one step.
DONE = "done"
WANT_READ = "read"
WANT_WRITE = "write"


class TlsError(Exception):
    """The certificate or key cannot be loaded (a clear message for the command line)."""


def make_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A server context for TLS 1.2 and newer with this certificate chain and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # No session tickets kept across reloads, no compression (the module's defaults
    # already refuse it); the default cipher list of the ssl module is used as is.
    context.options |= ssl.OP_NO_COMPRESSION
    try:
        context.load_cert_chain(str(Path(cert).expanduser()), str(Path(key).expanduser()))
    except FileNotFoundError as exc:
        raise TlsError(f"TLS certificate or key not found: {exc.filename}") from None
    except (ssl.SSLError, OSError) as exc:
        raise TlsError(f"cannot load TLS certificate {cert} with key {key}: {exc}") from None
    return context


def advance(sock: ssl.SSLSocket) -> str:
    """One step of a server-side handshake: DONE, or what the socket must wait for.

    Raises OSError (ssl.SSLError included) when the handshake failed: a client that is
    not speaking TLS, an old protocol version, a closed connection.
    """
    try:
        sock.do_handshake()
    except ssl.SSLWantReadError:
        return WANT_READ
    except ssl.SSLWantWriteError:
        return WANT_WRITE
    return DONE


def buffered(sock: object) -> bool:
    """Whether decrypted bytes wait inside an SSL socket (never for a plain one)."""
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


def describe_failure(exc: OSError) -> str:
    """A short reason for the log (client input: no traceback, one line)."""
    reason = getattr(exc, "reason", None) or exc.strerror or exc.__class__.__name__
    return str(reason)[:80]
