"""The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677), without channel binding.

Three steps, each a pure function of what came before, so the handler can keep the
state on the connection between AUTHENTICATE lines:

1. ``parse_client_first`` reads ``n,,n=<user>,r=<nonce>``: the name to look up.
2. ``ScramExchange.server_first`` answers ``r=<nonce+ours>,s=<salt>,i=<iterations>``.
3. ``ScramExchange.client_final`` checks ``c=...,r=...,p=<proof>`` against StoredKey and
   returns ``v=<server signature>``, or raises ``ScramError``.

An unknown account still gets a server-first message, with a salt derived from the
name and a server secret, so a client cannot tell "no such account" from "wrong
password" (it fails at the proof, as a wrong password does).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from chat_server.accounts.credentials import SCRAM_ITERATIONS, ScramKeys, b64

# Bounds on what a client may send (a client-first of a few hundred bytes is normal).
MAX_NAME = 100
MAX_NONCE = 200


class ScramError(ValueError):
    """The exchange failed; the text is for the log, never the client's business."""


@dataclass(frozen=True, slots=True)
class ClientFirst:
    gs2_header: str  # "n,," or "y,," (with an authzid: "n,a=name,")
    username: str
    authzid: str
    bare: str  # client-first-message-bare, part of the signed AuthMessage
    nonce: str


def _unescape(name: str) -> str:
    """saslname: ``=2C`` is a comma and ``=3D`` an equals sign; any other ``=`` is an error."""
    out = []
    i = 0
    while i < len(name):
        c = name[i]
        if c == "=":
            code = name[i + 1 : i + 3]
            if code == "2C":
                out.append(",")
            elif code == "3D":
                out.append("=")
            else:
                raise ScramError("bad escape in name")
            i += 3
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_client_first(data: bytes) -> ClientFirst:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScramError("client-first is not UTF-8") from exc
    parts = text.split(",", 2)
    if len(parts) != 3:
        raise ScramError("client-first has no GS2 header")
    flag, authz, bare = parts
    if flag.startswith("p="):
        raise ScramError("channel binding requested (we offer no -PLUS mechanism)")
    if flag not in ("n", "y"):
        raise ScramError("bad GS2 channel-binding flag")
    authzid = ""
    if authz:
        if not authz.startswith("a="):
            raise ScramError("bad authzid")
        authzid = _unescape(authz[2:])
    attrs = bare.split(",")
    if len(attrs) < 2 or not attrs[0].startswith("n=") or not attrs[1].startswith("r="):
        raise ScramError("client-first-bare needs n= and r=")
    if any(a.startswith("m=") for a in attrs[2:]):
        raise ScramError("mandatory extension not supported")
    username = _unescape(attrs[0][2:])
    nonce = attrs[1][2:]
    if not username or len(username) > MAX_NAME:
        raise ScramError("bad user name")
    if not nonce or len(nonce) > MAX_NONCE or any(c == "," or not " " < c <= "~" for c in nonce):
        raise ScramError("bad client nonce")
    if authzid and authzid != username:
        raise ScramError("authzid differs from the user name")
    return ClientFirst(f"{flag},{authz},", username, authzid, bare, nonce)


def decoy_keys(name: str, server_secret: bytes) -> ScramKeys:
    """Keys for a name without an account: a stable salt, keys nobody can match."""
    salt = hmac.digest(server_secret, name.encode("utf-8"), "sha256")[:16]
    return ScramKeys(salt, SCRAM_ITERATIONS, secrets.token_bytes(32), secrets.token_bytes(32))


class ScramExchange:
    """Steps 2 and 3 for one client-first message and the account's stored keys."""

    def __init__(self, first: ClientFirst, keys: ScramKeys) -> None:
        self.first = first
        self.keys = keys
        self.nonce = first.nonce + b64(secrets.token_bytes(18))
        self._server_first = ""

    def server_first(self) -> bytes:
        k = self.keys
        self._server_first = f"r={self.nonce},s={b64(k.salt)},i={k.iterations}"
        return self._server_first.encode("ascii")

    def client_final(self, data: bytes) -> bytes:
        """Check the proof; the server-final message (``v=...``) when it is right."""
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError as exc:
            raise ScramError("client-final is not ASCII") from exc
        without_proof, sep, proof_b64 = text.rpartition(",p=")
        if not sep:
            raise ScramError("client-final has no proof")
        attrs = without_proof.split(",")
        if len(attrs) < 2 or not attrs[0].startswith("c=") or not attrs[1].startswith("r="):
            raise ScramError("client-final needs c= and r=")
        expected_binding = base64.b64encode(self.first.gs2_header.encode("utf-8")).decode()
        if attrs[0][2:] != expected_binding:
            raise ScramError("channel binding data does not match the GS2 header")
        if not hmac.compare_digest(attrs[1][2:].encode(), self.nonce.encode()):
            raise ScramError("nonce does not match")
        try:
            proof = base64.b64decode(proof_b64, validate=True)
        except ValueError as exc:
            raise ScramError("proof is not base64") from exc
        if len(proof) != 32:
            raise ScramError("proof has the wrong size")
        auth = f"{self.first.bare},{self._server_first},{without_proof}".encode()
        signature = hmac.digest(self.keys.stored_key, auth, "sha256")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), self.keys.stored_key):
            raise ScramError("wrong proof")
        server_signature = hmac.digest(self.keys.server_key, auth, "sha256")
        return f"v={b64(server_signature)}".encode("ascii")
