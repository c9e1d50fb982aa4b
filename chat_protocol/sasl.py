"""The client half of SASL: PLAIN (RFC 4616), SCRAM-SHA-256 (RFC 5802, RFC 7677), and
the ``AUTHENTICATE`` framing IRC wraps them in (base64, 400-byte chunks).

Pure code, no I/O: a mechanism turns each server challenge into a response, so every
rule is testable with the RFC's example exchange. SCRAM is preferred because the
password never crosses the wire and the server has to prove it knows the password too:
``ScramSha256`` refuses to finish unless the server's signature checks out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import stringprep
import unicodedata
from typing import Protocol

PLAIN = "PLAIN"
SCRAM_SHA_256 = "SCRAM-SHA-256"
MECHANISMS = (SCRAM_SHA_256, PLAIN)  # ours, most preferred first

CHUNK = 400  # bytes of base64 per AUTHENTICATE line (IRCv3 sasl-3.1)
MAX_PAYLOAD = 8192  # a server message longer than this (decoded) is garbage, not SCRAM
MIN_ITERATIONS = 4096  # RFC 7677: fewer makes a stolen exchange cheap to brute-force
# A server asking for more would make PBKDF2 take seconds; a million is ~0.5 s here.
MAX_ITERATIONS = 1_000_000


class SaslError(Exception):
    """The exchange cannot go on: a malformed or dishonest server message, or a name or
    password SASLprep refuses. The text says why, and never holds the password."""


class Mechanism(Protocol):
    """One side of one SASL exchange; ``respond`` is called once per server challenge
    (the first one empty), ``verified`` says whether the server proved itself."""

    name: str

    def respond(self, challenge: bytes) -> bytes: ...

    @property
    def verified(self) -> bool: ...


def saslprep(text: str) -> str:
    """RFC 4013 SASLprep for a query string: non-ASCII spaces become spaces, invisible
    characters go, NFKC; prohibited or badly mixed bidirectional characters are errors.
    Plain ASCII passwords come out unchanged."""
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
    )
    for c in prepared:
        if any(table(c) for table in prohibited):
            raise SaslError(f"a name or password holds a character SASL forbids (U+{ord(c):04X})")
    right_to_left = any(stringprep.in_table_d1(c) for c in prepared)
    if right_to_left and (
        any(stringprep.in_table_d2(c) for c in prepared)
        or not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1]))
    ):
        raise SaslError("a name or password mixes right-to-left and left-to-right text")
    return prepared


class Plain:
    """RFC 4616: one message, ``authzid NUL authcid NUL password``; the server checks it."""

    name = PLAIN

    def __init__(self, account: str, password: str) -> None:
        self._message = b"\0".join(s.encode("utf-8") for s in ("", account, password))
        self._sent = False

    def respond(self, challenge: bytes) -> bytes:
        if challenge or self._sent:
            raise SaslError("the server sent a PLAIN challenge (PLAIN has none)")
        self._sent = True
        return self._message

    @property
    def verified(self) -> bool:
        return self._sent  # PLAIN has nothing to verify: the server's 903 is the answer


def _escape_name(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def _attributes(message: str) -> dict[str, str]:
    """``a=1,b=2`` as a dict (first value wins); SaslError for a part without ``=``."""
    attrs: dict[str, str] = {}
    for part in message.split(","):
        key, sep, value = part.partition("=")
        if not sep or len(key) != 1:
            raise SaslError(f"malformed SCRAM attribute {part[:20]!r}")
        attrs.setdefault(key, value)
    return attrs


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class ScramSha256:
    """RFC 5802 with SHA-256 (RFC 7677), no channel binding (gs2 header ``n,,``).

    Three calls to ``respond``: the empty first challenge gives the client-first message,
    the server-first gives the client-final (with the proof), and the server-final is
    checked against the signature we expect, giving an empty response.
    """

    name = SCRAM_SHA_256
    GS2_HEADER = "n,,"

    def __init__(self, account: str, password: str, nonce: str | None = None) -> None:
        self._user = _escape_name(saslprep(account))
        self._password = saslprep(password).encode("utf-8")
        self._nonce = nonce or secrets.token_urlsafe(18)
        self._client_first_bare = f"n={self._user},r={self._nonce}"
        self._server_signature: bytes | None = None
        self._step = 0
        self._verified = False

    @property
    def verified(self) -> bool:
        return self._verified

    def respond(self, challenge: bytes) -> bytes:
        self._step += 1
        if self._step == 1:
            if challenge:
                raise SaslError("the server spoke first in SCRAM")
            return (self.GS2_HEADER + self._client_first_bare).encode("utf-8")
        try:
            text = challenge.decode("utf-8")
        except UnicodeDecodeError:
            raise SaslError("a SCRAM server message is not UTF-8") from None
        if self._step == 2:
            return self._client_final(text).encode("utf-8")
        if self._step == 3:
            self._check_server_final(text)
            return b""
        raise SaslError("the server went on after SCRAM had finished")

    def _client_final(self, server_first: str) -> str:
        attrs = _attributes(server_first)
        if "e" in attrs:
            raise SaslError(f"the server refused: {attrs['e']}")
        if "m" in attrs:
            raise SaslError("the server needs a SCRAM extension we do not know")
        nonce, salt_b64, iterations_text = attrs.get("r"), attrs.get("s"), attrs.get("i")
        if not nonce or not salt_b64 or not iterations_text:
            raise SaslError("the server-first message lacks r=, s= or i=")
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise SaslError("the server's nonce does not extend ours (a replay?)")
        if not iterations_text.isdigit():
            raise SaslError(f"the iteration count {iterations_text[:20]!r} is not a number")
        iterations = int(iterations_text)
        if iterations < MIN_ITERATIONS:
            raise SaslError(f"the server asks for {iterations} iterations (fewer than 4096)")
        if iterations > MAX_ITERATIONS:
            raise SaslError(f"the server asks for {iterations} iterations (too many)")
        try:
            salt = base64.b64decode(salt_b64, validate=True)
        except (binascii.Error, ValueError):
            raise SaslError("the server's salt is not base64") from None
        salted = hashlib.pbkdf2_hmac("sha256", self._password, salt, iterations)
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        stored_key = hashlib.sha256(client_key).digest()
        binding = _b64(self.GS2_HEADER.encode("utf-8"))
        without_proof = f"c={binding},r={nonce}"
        auth = f"{self._client_first_bare},{server_first},{without_proof}".encode()
        signature = hmac.digest(stored_key, auth, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        self._server_signature = hmac.digest(server_key, auth, "sha256")
        return f"{without_proof},p={_b64(proof)}"

    def _check_server_final(self, server_final: str) -> None:
        attrs = _attributes(server_final)
        if "e" in attrs:
            raise SaslError(f"the server refused: {attrs['e']}")
        try:
            signature = base64.b64decode(attrs.get("v", ""), validate=True)
        except (binascii.Error, ValueError):
            raise SaslError("the server's signature is not base64") from None
        expected = self._server_signature
        if not signature or expected is None or not hmac.compare_digest(signature, expected):
            raise SaslError("the server's signature is wrong: it does not know the password")
        self._verified = True


def make_mechanism(name: str, account: str, password: str) -> Mechanism:
    """A fresh mechanism of ``name`` (one of ``MECHANISMS``) for one exchange."""
    if name == SCRAM_SHA_256:
        return ScramSha256(account, password)
    if name == PLAIN:
        return Plain(account, password)
    raise ValueError(f"unknown SASL mechanism {name!r} (known: {', '.join(MECHANISMS)})")


def encode_chunks(payload: bytes) -> list[str]:
    """The parameters of the ``AUTHENTICATE`` lines that carry ``payload``: base64 cut
    into 400-byte pieces, then ``+`` when the last piece was full (or nothing was sent),
    so the other side knows the message ended."""
    text = _b64(payload)
    chunks = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)]
    if not chunks or len(chunks[-1]) == CHUNK:
        chunks.append("+")
    return chunks


class ChunkReader:
    """Joins the server's ``AUTHENTICATE`` pieces back into one decoded message."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0

    def feed(self, param: str) -> bytes | None:
        """Take one piece; the whole message once the last piece arrived, else None."""
        if param != "+":
            if len(param) > CHUNK:
                raise SaslError("an AUTHENTICATE line is longer than 400 bytes")
            self._size += len(param)
            if self._size > MAX_PAYLOAD * 4 // 3 + 4:
                raise SaslError("the server's SASL message is too long")
            self._parts.append(param)
            if len(param) == CHUNK:
                return None  # more pieces follow
        text, self._parts, self._size = "".join(self._parts), [], 0
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise SaslError("the server's SASL message is not base64") from None
