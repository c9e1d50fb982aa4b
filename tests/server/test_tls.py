"""TLS beside plaintext: a real chat-server with --tls-port, real TLS clients (the
certificates come from trustme, a throwaway CA), handshakes that stall or fail, a burst
over TLS, and a certificate reloaded on SIGHUP."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess, free_port


def write_cert(ca: trustme.CA, directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost/127.0.0.1 signed by ``ca``: (chain file, key file)."""
    issued = ca.issue_cert("localhost", "127.0.0.1")
    cert, key = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key))
    return cert, key


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server(tmp_path: Path, ca: trustme.CA, *extra: str) -> ServerProcess:
    cert, key = write_cert(ca, tmp_path)
    return ServerProcess(
        tmp_path, "--tls-port", str(free_port()), "--tls-cert", str(cert), "--tls-key",
        str(key), "--tls-handshake-timeout", "1", *extra, flood_limit=False,
    )  # fmt: skip


@pytest.fixture
def srv(tmp_path: Path, ca: trustme.CA) -> Iterator[ServerProcess]:
    with tls_server(tmp_path, ca) as server:
        yield server


def tls_port(srv: ServerProcess) -> int:
    """The TLS port, from the server's "TLS on HOST:PORT" log line."""
    return int(srv.wait_log("TLS on").rsplit(":", 1)[1])


def closed_by_server(sock: socket.socket) -> bool:
    """The server closed ``sock`` without a word (EOF, or a reset when our bytes were
    still unread on its side)."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def numerics(client: RawClient, nick: str) -> list[str]:
    client.send(f"WHOIS {nick}")
    return [m.command for m in client.collect_until("318")]


def test_tls_and_plaintext_clients_share_a_room(srv: ServerProcess, ca: trustme.CA) -> None:
    alice = RawClient(srv.host, tls_port(srv), tls=trusting(ca))
    bob = RawClient(srv.host, srv.port)
    alice.register("alice")
    bob.register("bob")
    assert isinstance(alice.sock, ssl.SSLSocket)
    assert alice.sock.version() in ("TLSv1.2", "TLSv1.3")
    alice.join("#t")
    bob.join("#t")
    alice.send("PRIVMSG #t :hello over TLS")
    assert bob.expect("PRIVMSG").params == ["#t", "hello over TLS"]
    bob.send("PRIVMSG #t :hello in plaintext")
    assert alice.expect("PRIVMSG").params == ["#t", "hello in plaintext"]
    assert "671" in numerics(bob, "alice")  # RPL_WHOISSECURE
    assert "671" not in numerics(alice, "bob")
    alice.close()
    bob.close()


def test_a_stalled_handshake_holds_nobody_up_and_is_dropped(srv: ServerProcess) -> None:
    """A client that connects to the TLS port and then sends nothing, or half a
    ClientHello, is dropped after tls_handshake_timeout (1 s here); meanwhile others
    register and talk as usual."""
    silent = socket.create_connection((srv.host, tls_port(srv)), timeout=10)
    half = socket.create_connection((srv.host, tls_port(srv)), timeout=10)
    half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a record header, cut
    started = time.monotonic()
    bob = RawClient(srv.host, srv.port)
    bob.register("bob")
    bob.send("PING :still-here")
    bob.expect("PONG")
    assert time.monotonic() - started < 1.0  # not held up by the stalled handshakes
    for sock in (silent, half):
        assert closed_by_server(sock)
        sock.close()
    assert time.monotonic() - started < 5.0
    bob.close()


def test_plaintext_and_old_tls_on_the_tls_port_are_refused(
    srv: ServerProcess, ca: trustme.CA
) -> None:
    plain = socket.create_connection((srv.host, tls_port(srv)), timeout=5)
    plain.sendall(b"NICK x\r\nUSER x 0 * :x\r\n")
    assert closed_by_server(plain)  # not TLS: closed, nothing said in plaintext
    plain.close()
    old = trusting(ca)
    with warnings.catch_warnings():  # asking for TLS 1.0/1.1 is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        RawClient(srv.host, tls_port(srv), tls=old)
    alice = RawClient(srv.host, tls_port(srv), tls=trusting(ca))
    alice.register("alice")  # still serving
    alice.close()
    assert srv.stop() == 0
    assert not [line for line in srv.log if "Traceback" in line], srv.tail()


def test_a_burst_over_tls_arrives_whole_and_in_order(tmp_path: Path, ca: trustme.CA) -> None:
    """3,000 lines in one write with a read budget of 1 KiB: a TLS record holds up to
    16 KiB, so most reads leave decrypted bytes in the SSL object, where they do not
    wake the loop (the server must read such a connection again by itself)."""
    with tls_server(tmp_path, ca, "--read-budget", "1024") as srv:
        burst_over_tls(srv, ca)


def burst_over_tls(srv: ServerProcess, ca: trustme.CA) -> None:
    sender = RawClient(srv.host, tls_port(srv), tls=trusting(ca))
    reader = RawClient(srv.host, tls_port(srv), tls=trusting(ca))
    sender.register("sender")
    reader.register("reader")
    sender.join("#burst")
    reader.join("#burst")
    count = 3000
    sender.send("".join(f"PRIVMSG #burst :line {i} {'x' * 100}\r\n" for i in range(count)))
    got = [reader.expect("PRIVMSG", timeout=20).params[1].split()[1] for _ in range(count)]
    assert got == [str(i) for i in range(count)]
    sender.close()
    reader.close()


def test_sighup_reloads_the_certificate(
    srv: ServerProcess, ca: trustme.CA, tmp_path: Path
) -> None:
    """New connections get the new certificate, an open one keeps working; a broken
    file on SIGHUP keeps the last good certificate and says why."""
    kept = RawClient(srv.host, tls_port(srv), tls=trusting(ca))
    kept.register("kept")
    other = trustme.CA()
    renewed = tmp_path / "renewed"
    renewed.mkdir()
    cert, key = write_cert(other, renewed)
    # The renewal is written over the files the server was started with.
    (tmp_path / "cert.pem").write_bytes(cert.read_bytes())
    (tmp_path / "key.pem").write_bytes(key.read_bytes())
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log("TLS certificate reloaded")
    fresh = RawClient(srv.host, tls_port(srv), tls=trusting(other))
    fresh.register("fresh")
    with pytest.raises(ssl.SSLCertVerificationError):
        RawClient(srv.host, tls_port(srv), tls=trusting(ca))  # the old CA no longer fits
    (tmp_path / "key.pem").write_text("not a key\n")
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log("previous certificate stays in use")
    again = RawClient(srv.host, tls_port(srv), tls=trusting(other))
    again.register("again")
    kept.send("PING :alive")
    kept.expect("PONG")
    for client in (kept, fresh, again):
        client.close()


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--tls-port", "6697"], "--tls-port needs --tls-cert"),
        (["--tls-port", "6697", "--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k"],
         "TLS certificate or key not found"),
    ],
)  # fmt: skip
def test_tls_settings_errors_are_one_line(tmp_path: Path, flags: list[str], says: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "chat_server", "--port", "0", "--history-db",
         str(tmp_path / "h.db"), *flags],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], proc.stderr


def test_sts_points_plaintext_clients_at_the_tls_port(tmp_path: Path, ca: trustme.CA) -> None:
    with tls_server(tmp_path, ca, "--sts-duration", "86400") as srv:
        port = tls_port(srv)
        plain = RawClient(srv.host, srv.port)
        plain.send("CAP LS 302")
        assert f"sts=port={port}" in plain.expect("CAP").params[-1].split()
        plain.send("CAP REQ :sts")  # advertised only: a client must not ask for it
        assert plain.expect("CAP").params[1] == "NAK"
        secure = RawClient(srv.host, port, tls=trusting(ca))
        secure.send("CAP LS 302")
        assert "sts=duration=86400" in secure.expect("CAP").params[-1].split()
        old = RawClient(srv.host, srv.port)
        old.send("CAP LS")  # 301: no values, no sts
        assert not [c for c in old.expect("CAP").params[-1].split() if c.startswith("sts")]
        for client in (plain, secure, old):
            client.close()
    (tmp_path / "off").mkdir()
    with tls_server(tmp_path / "off", ca) as srv:
        plain = RawClient(srv.host, srv.port)
        plain.send("CAP LS 302")
        assert "sts" not in plain.expect("CAP").params[-1]  # no sts_duration: no policy
        plain.close()
