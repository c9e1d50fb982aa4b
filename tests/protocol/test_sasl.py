"""The SASL mechanisms and AUTHENTICATE framing, checked against the RFCs' examples."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from chat_protocol.sasl import (
    CHUNK,
    ChunkReader,
    Plain,
    SaslError,
    ScramSha256,
    encode_chunks,
    make_mechanism,
    saslprep,
)

# RFC 7677 section 3.
NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def rfc_exchange() -> ScramSha256:
    scram = ScramSha256("user", "pencil", nonce=NONCE)
    assert scram.respond(b"") == b"n,,n=user,r=" + NONCE.encode()
    assert scram.respond(SERVER_FIRST) == CLIENT_FINAL
    return scram


def test_scram_sha256_rfc7677_example() -> None:
    scram = rfc_exchange()
    assert not scram.verified
    assert scram.respond(SERVER_FINAL) == b""
    assert scram.verified


def test_scram_refuses_a_wrong_server_signature() -> None:
    scram = rfc_exchange()
    forged = b"v=" + base64.b64encode(b"\0" * 32)
    with pytest.raises(SaslError, match="signature is wrong"):
        scram.respond(forged)
    assert not scram.verified


def test_scram_refuses_a_server_final_without_signature() -> None:
    scram = rfc_exchange()
    with pytest.raises(SaslError):
        scram.respond(b"x=1")
    assert not scram.verified


def test_scram_reports_a_server_error() -> None:
    scram = rfc_exchange()
    with pytest.raises(SaslError, match="invalid-proof"):
        scram.respond(b"e=invalid-proof")


@pytest.mark.parametrize(
    ("server_first", "complaint"),
    [
        (b"r=someoneelse123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),
        (b"r=" + NONCE.encode() + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),
        (b"r=" + NONCE.encode() + b"xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095", "4096"),
        (b"r=" + NONCE.encode() + b"xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999", "too many"),
        (b"r=" + NONCE.encode() + b"xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=many", "not a number"),
        (b"r=" + NONCE.encode() + b"xyz,s=!!!,i=4096", "salt"),
        (b"r=" + NONCE.encode() + b"xyz,i=4096", "lacks"),
        (b"e=unknown-user", "unknown-user"),
        (b"m=ext,r=" + NONCE.encode() + b"xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "extension"),
        (b"garbage", "malformed"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_scram_refuses_bad_server_first(server_first: bytes, complaint: str) -> None:
    scram = ScramSha256("user", "pencil", nonce=NONCE)
    scram.respond(b"")
    with pytest.raises(SaslError, match=complaint):
        scram.respond(server_first)


def test_scram_refuses_to_go_on_after_the_end() -> None:
    scram = rfc_exchange()
    scram.respond(SERVER_FINAL)
    with pytest.raises(SaslError):
        scram.respond(b"more")


def test_scram_server_speaking_first_is_an_error() -> None:
    with pytest.raises(SaslError):
        ScramSha256("user", "pencil").respond(b"r=x")


def test_scram_nonce_is_random_and_printable() -> None:
    first = ScramSha256("u", "p").respond(b"").decode()
    second = ScramSha256("u", "p").respond(b"").decode()
    nonce = first.rsplit("r=", 1)[1]
    assert first != second and len(nonce) >= 18
    assert all(" " < c <= "~" and c != "," for c in nonce)


def test_scram_escapes_the_user_name() -> None:
    first = ScramSha256("a=b,c", "p", nonce="n").respond(b"")
    assert first == b"n,,n=a=3Db=2Cc,r=n"


def server_side(password: str, salt: bytes, iterations: int, auth: bytes) -> tuple[bytes, bytes]:
    """(expected proof, server signature) computed the RFC 5802 way, independently."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored = hashlib.sha256(client_key).digest()
    signature = hmac.digest(stored, auth, "sha256")
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    return proof, hmac.digest(server_key, auth, "sha256")


def test_scram_against_an_independent_server_computation() -> None:
    scram = ScramSha256("alice", "correct horse", nonce="abc")
    first = scram.respond(b"").decode()
    salt = b"0123456789abcdef"
    server_first = f"r=abcdef,s={base64.b64encode(salt).decode()},i=5000"
    final = scram.respond(server_first.encode()).decode()
    without_proof, _, proof = final.rpartition(",p=")
    auth = f"{first[3:]},{server_first},{without_proof}".encode()
    expected_proof, signature = server_side("correct horse", salt, 5000, auth)
    assert base64.b64decode(proof) == expected_proof
    scram.respond(b"v=" + base64.b64encode(signature))
    assert scram.verified


def test_plain_message() -> None:
    plain = Plain("alice", "s3cret")
    assert plain.respond(b"") == b"\0alice\0s3cret"
    with pytest.raises(SaslError):
        plain.respond(b"")


def test_plain_refuses_a_challenge() -> None:
    with pytest.raises(SaslError):
        Plain("alice", "pw").respond(b"challenge")


def test_make_mechanism_knows_ours_only() -> None:
    assert make_mechanism("PLAIN", "a", "b").name == "PLAIN"
    assert make_mechanism("SCRAM-SHA-256", "a", "b").name == "SCRAM-SHA-256"
    with pytest.raises(ValueError):
        make_mechanism("EXTERNAL", "a", "b")


def test_saslprep() -> None:
    assert saslprep("pencil") == "pencil"
    assert saslprep("I\u00adX") == "IX"  # soft hyphen maps to nothing
    assert saslprep("a\u00a0b") == "a b"  # non-ASCII space becomes a space
    assert saslprep("\u2168") == "IX"  # NFKC
    with pytest.raises(SaslError):
        saslprep("a\x07b")  # control character
    with pytest.raises(SaslError):
        saslprep("\u0627\u0031")  # right-to-left text must end right-to-left


# -- AUTHENTICATE framing ---------------------------------------------------------------


def test_encode_empty_payload_is_plus() -> None:
    assert encode_chunks(b"") == ["+"]


def test_encode_short_payload_is_one_line() -> None:
    assert encode_chunks(b"\0alice\0pw") == [base64.b64encode(b"\0alice\0pw").decode()]


def test_encode_splits_at_400_and_ends_a_full_last_piece_with_plus() -> None:
    payload = b"x" * 300  # exactly 400 base64 characters
    assert encode_chunks(payload) == [base64.b64encode(payload).decode(), "+"]
    longer = b"y" * 700
    chunks = encode_chunks(longer)
    assert [len(c) for c in chunks] == [400, 400, len(base64.b64encode(longer)) - 800]
    assert base64.b64decode("".join(chunks)) == longer


@pytest.mark.parametrize("size", [0, 1, 299, 300, 301, 600, 1000])
def test_chunks_round_trip(size: int) -> None:
    payload = bytes(range(256)) * 4
    payload = payload[:size]
    reader = ChunkReader()
    results = [reader.feed(chunk) for chunk in encode_chunks(payload)]
    assert results[-1] == payload
    assert all(r is None for r in results[:-1])


def test_reader_refuses_garbage_and_overlong() -> None:
    with pytest.raises(SaslError):
        ChunkReader().feed("not base64!")
    with pytest.raises(SaslError):
        ChunkReader().feed("A" * (CHUNK + 1))
    reader = ChunkReader()
    with pytest.raises(SaslError, match="too long"):
        for _ in range(100):
            reader.feed("A" * CHUNK)
