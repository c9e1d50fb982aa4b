"""SASL as a test client speaks it over a RawClient: PLAIN, and SCRAM-SHA-256 done by
hand (RFC 5802) so a test can also send a wrong proof or check the server's signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.rawclient import RawClient


def add_account(
    db: Path, name: str, password: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """``chat-server account add`` with the password on standard input."""
    return subprocess.run(
        [sys.executable, "-m", "chat_server", "account", "add", name, "--db", str(db), *extra],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def start(client: RawClient, mechanism: str) -> None:
    """CAP REQ sasl (if not yet), ``AUTHENTICATE <mech>``, wait for ``+``."""
    client.send(f"AUTHENTICATE {mechanism}")
    reply = client.expect(lambda m: m.command in ("AUTHENTICATE", "904", "908"))
    assert reply.command == "AUTHENTICATE" and reply.params == ["+"], reply


def send_payload(client: RawClient, data: bytes) -> None:
    """A payload in AUTHENTICATE lines of 400 bytes, ``+`` after an exact multiple."""
    text = b64(data)
    chunks = [text[i : i + 400] for i in range(0, len(text), 400)] or ["+"]
    if len(chunks[-1]) == 400:
        chunks.append("+")
    for chunk in chunks:
        client.send(f"AUTHENTICATE {chunk}")


def plain(client: RawClient, account: str, password: str, authzid: str = "") -> str:
    """A whole PLAIN exchange; the numeric that ended it (903 on success)."""
    start(client, "PLAIN")
    send_payload(client, f"{authzid}\0{account}\0{password}".encode())
    return client.expect(lambda m: m.command in ("903", "904", "905", "902")).command


@dataclass
class ScramResult:
    outcome: str  # the numeric that ended it
    server_signature_ok: bool | None  # None: no server-final came


def scram(
    client: RawClient, account: str, password: str, *, bad_proof: bool = False
) -> ScramResult:
    start(client, "SCRAM-SHA-256")
    nonce = b64(b"test-client-nonce-0123")
    bare = f"n={account.replace('=', '=3D').replace(',', '=2C')},r={nonce}"
    send_payload(client, ("n,," + bare).encode())
    reply = client.expect(lambda m: m.command in ("AUTHENTICATE", "904"))
    if reply.command == "904":
        return ScramResult("904", None)
    server_first = base64.b64decode(reply.params[0]).decode()
    attrs = dict(part.split("=", 1) for part in server_first.split(","))
    assert attrs["r"].startswith(nonce)
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"])
    )
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth = f"{bare},{server_first},{without_proof}".encode()
    proof = bytes(
        a ^ b for a, b in zip(client_key, hmac.digest(stored_key, auth, "sha256"), strict=True)
    )
    if bad_proof:
        proof = bytes([proof[0] ^ 1]) + proof[1:]
    send_payload(client, f"{without_proof},p={b64(proof)}".encode())
    reply = client.expect(lambda m: m.command in ("AUTHENTICATE", "904"))
    if reply.command == "904":
        return ScramResult("904", None)
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    expected = "v=" + b64(hmac.digest(server_key, auth, "sha256"))
    signature_ok = base64.b64decode(reply.params[0]).decode() == expected
    client.send("AUTHENTICATE +")
    end = client.expect(lambda m: m.command in ("903", "904"))
    return ScramResult(end.command, signature_ok)
