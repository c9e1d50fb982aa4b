"""The client's TLS context for ``ircs://`` servers: verification on unless told off."""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

from chat_protocol.client_types import ClientConfig


def tls_context(config: ClientConfig) -> ssl.SSLContext:
    """TLS 1.2 or newer; the server's certificate must chain to the system's CAs or to
    ``config.tls_ca`` and name the host connected to, unless ``tls_verify`` is off.

    Raises OSError (ssl.SSLError, FileNotFoundError) when ``tls_ca`` cannot be read.
    """
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.tls_ca:
        context.load_verify_locations(cafile=str(Path(config.tls_ca).expanduser()))
    if not config.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """The TLS flags every client program takes: ``--tls-ca`` and ``--no-tls-verify``."""
    parser.add_argument(
        "--tls-ca", metavar="FILE", help="PEM CA (or self-signed certificate) to trust for TLS"
    )
    parser.add_argument(
        "--no-tls-verify",
        action="store_true",
        help="do not check TLS certificates (a throwaway test server only)",
    )
