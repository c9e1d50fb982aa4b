"""Password hashes, as stored in the ``accounts`` table and checked at login.

Each account keeps two things derived from its password, never the password:

- ``password``: ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (base64), checked for SASL PLAIN
  and REGISTER. scrypt is memory-hard (16 MiB at n=2**14, r=8): guessing from a stolen
  file costs memory as well as time. One check takes ~50 ms of CPU, so it runs on a
  background thread (hashlib releases the GIL), never on the event loop.
- ``scram``: the SCRAM-SHA-256 salt, iteration count, StoredKey and ServerKey (RFC 5802
  section 3). With SCRAM the client does the expensive part (PBKDF2) and the server
  only HMACs, and the password never crosses the wire, even inside TLS.

Both are plain text (base64 and JSON) so ``sqlite3`` shows what is stored.

Passwords are SASLprep'd (RFC 4013) before hashing and checking, as SCRAM requires and
as clients do before SCRAM: "é" typed composed or decomposed, or a no-break space,
is the same password either way, through PLAIN or SCRAM.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from chat_protocol.sasl import SaslError, saslprep

SCRYPT_N = 1 << 14
SCRYPT_R = 8
SCRYPT_P = 1
SCRAM_ITERATIONS = 4096  # RFC 7677's minimum; what common clients and servers use
MAX_PASSWORD_BYTES = 300  # account-registration's advice: fits any IRC line


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True, slots=True)
class ScramKeys:
    """What a SCRAM-SHA-256 server needs to check a client (and prove itself)."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def to_json(self) -> str:
        return json.dumps(
            {
                "mechanism": "SCRAM-SHA-256",
                "iterations": self.iterations,
                "salt": b64(self.salt),
                "stored_key": b64(self.stored_key),
                "server_key": b64(self.server_key),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ScramKeys:
        """The stored keys; ValueError for anything that is not what we write."""
        try:
            data = json.loads(text)
            keys = cls(
                unb64(data["salt"]),
                int(data["iterations"]),
                unb64(data["stored_key"]),
                unb64(data["server_key"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"unreadable SCRAM keys: {exc}") from exc
        if keys.iterations < 1 or len(keys.stored_key) != 32 or len(keys.server_key) != 32:
            raise ValueError("unreadable SCRAM keys: wrong sizes")
        return keys


@dataclass(frozen=True, slots=True)
class Credentials:
    """The stored forms of one password."""

    password: str  # the scrypt string
    scram: ScramKeys


def scram_keys(password: bytes, salt: bytes, iterations: int) -> ScramKeys:
    """RFC 5802: SaltedPassword = Hi(password, salt, i); the keys derived from it."""
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    return ScramKeys(salt, iterations, hashlib.sha256(client_key).digest(), server_key)


def make_credentials(password: str) -> Credentials:
    """Hash a new password both ways (~55 ms: call it off the event loop). The
    password must have passed ``password_problem``."""
    secret = saslprep(password).encode("utf-8")
    salt = secrets.token_bytes(16)
    digest = _scrypt(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    text = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(digest)}"
    return Credentials(text, scram_keys(secret, secrets.token_bytes(16), SCRAM_ITERATIONS))


def check_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches a stored scrypt string (~50 ms: off the loop).
    A string we cannot read never matches."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        n_, r_, p_ = int(n), int(r), int(p)
        if not (2 <= n_ <= 1 << 20 and 1 <= r_ <= 32 and 1 <= p_ <= 16):
            return False  # bounded: a tampered row cannot make us spend a minute
        expected = unb64(digest)
        actual = _scrypt(saslprep(password).encode("utf-8"), unb64(salt), n_, r_, p_)
    except (ValueError, UnicodeError, SaslError):
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(secret: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=256 << 20, dklen=32)


def password_problem(password: str, min_length: int) -> str | None:
    """Why a new password is refused (REGISTER's WEAK_PASSWORD / UNACCEPTABLE_PASSWORD
    and the command line), or None."""
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return f"Password longer than {MAX_PASSWORD_BYTES} bytes"
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        return "Password contains control characters"
    try:
        password = saslprep(password)
    except SaslError as exc:
        return f"Password refused: {exc}"
    if len(password) < max(1, min_length):
        return f"Password shorter than {max(1, min_length)} characters"
    return None
