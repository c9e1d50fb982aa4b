"""TLS for the simulated clients: their context, reads that take every record already
received, and a throwaway certificate for ``--spawn --tls``.

A client's handshake is stepped by the worker's event loop like the rest of its I/O
(``perf.connection``): the socket is wrapped once TCP is up with
``do_handshake_on_connect=False``, and ``do_handshake`` is called again each time the
socket is ready for what the last step wanted. The SSL "want read/write" errors are
would-block, as ``BlockingIOError`` is for a plain socket.

Reads differ in two ways. ``recv_into`` on an SSL socket returns at most one record
(16 KiB) where a plain one returns everything the kernel holds, so :func:`read_records`
reads on until the socket would block; and decrypted bytes left in the SSL object do not
make the socket readable again, so a client with ``pending()`` bytes is read again in
the next loop turn without waiting for the selector (``Worker.read_again``).
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

# Would-block on a non-blocking socket, plain or TLS.
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """How clients speak TLS (picklable: each worker builds its own context).

    ``ca`` is a PEM file of trusted certificates: the server's certificate is checked
    against it (and for 127.0.0.1). Without one nothing is checked, which is fine for
    a benchmark on loopback and nothing else.
    """

    ca: str | None = None

    @property
    def verified(self) -> bool:
        return self.ca is not None


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    """A client context for TLS 1.2 and newer, verifying only when a CA was given."""
    if settings.ca is not None:
        context = ssl.create_default_context(cafile=settings.ca)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def read_records(sock: socket.socket, view: memoryview, limit: int) -> tuple[int, bool]:
    """After a first read of ``sock`` (an SSL socket): read the records that follow into
    ``view``, at most ``limit`` bytes, until it would block or the peer closed.

    Returns the bytes read and whether the socket must be read again without waiting
    for readiness: decrypted bytes left in the SSL object (the limit cut a record), or
    an error or end of stream met after data, which the next read then reports.
    """
    got = 0
    while got < limit:
        try:
            n = sock.recv_into(view[got:], limit - got)
        except WOULD_BLOCK:
            break
        except OSError:
            return got, True
        if not n:
            return got, True
        got += n
    return got, sock.pending() > 0  # type: ignore[attr-defined]


def throwaway_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost, valid for a
    day: (certificate file, key file) in ``directory``. The certificate is its own CA.

    P-256 is what most servers present today; an RSA-2048 key makes the server's side
    of each handshake several times dearer.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chat-perf throwaway")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "tls-cert.pem", directory / "tls-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file
