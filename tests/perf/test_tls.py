"""chat-perf over TLS (issue 15): clients that handshake inside the generator's loop,
against a real chat-server TLS port (certificates from trustme) and a spawned one."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path

import trustme

from perf.tls import TlsSettings, client_context, read_records
from tests.perf.conftest import chat_perf, load_summary
from tests.server.test_tls import tls_port, tls_server


def test_a_chat_run_over_tls_registers_delivers_and_loses_nothing(tmp_path: Path) -> None:
    """12 clients in 3 rooms over the TLS port, the certificate checked against the CA:
    every client registers after its handshake, every message reaches every member."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with tls_server(tmp_path, ca) as srv:
        out = tmp_path / "out"
        proc = chat_perf(
            "run", "--target", f"{srv.host}:{tls_port(srv)}", "--tls", "--tls-ca", str(ca_file),
            "--clients", "12", "--rooms", "3", "--senders", "6", "--rate", "120",
            "--duration", "2", "--workers", "2", "--out", str(out), "--no-progress",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # The server saw TLS clients: each WHOIS would say 671; its log says it served TLS.
        assert not [line for line in srv.log if "Traceback" in line], srv.tail()
    s = load_summary(out)
    assert s["tls"] == {"enabled": True, "verified": True}
    assert s["clients"]["registered"] == 12
    assert s["clients"]["disconnected"] == 0
    acc = s["accounting"]
    assert acc["delivered"] == acc["expected"] > 0
    assert acc["lost"] == acc["duplicates"] == acc["reordered"] == 0
    c = s["connect_ms"]
    assert c["tcp"]["count"] == c["tls"]["count"] == c["welcome"]["count"] == 12
    # Both times count from connect(): the handshake ends after TCP, before 001.
    assert c["tcp"]["max"] <= c["tls"]["max"] <= c["welcome"]["max"]
    assert "(TLS)" in s["label"]


def test_a_certificate_from_another_ca_fails_every_client(tmp_path: Path) -> None:
    """Verification is real: a CA that did not sign the server's certificate gets no
    client in, and the reason says why."""
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with tls_server(tmp_path, trustme.CA()) as srv:
        out = tmp_path / "out"
        proc = chat_perf(
            "run", "--target", f"{srv.host}:{tls_port(srv)}", "--tls", "--tls-ca", str(other),
            "--clients", "4", "--rooms", "1", "--senders", "1", "--rate", "10",
            "--duration", "1", "--workers", "1", "--out", str(out), "--no-progress",
        )  # fmt: skip
    assert proc.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in proc.stdout + proc.stderr


def test_tls_options_are_checked() -> None:
    proc = chat_perf("run", "--spawn", "--tls-ca", "ca.pem", "--out", "/nonexistent/x")
    assert proc.returncode == 2
    assert "--tls-ca needs --tls" in proc.stderr


def test_a_fanout_over_tls_through_a_spawned_server_loses_nothing(tmp_path: Path) -> None:
    """Flat out over TLS: receivers get many records per read (read_records), and the
    spawned server's throwaway certificate is checked by the clients."""
    out = tmp_path / "out"
    proc = chat_perf(
        "run", "--spawn", "--tls", "--scenario", "fanout", "--clients", "20", "--senders", "3",
        "--duration", "1.5", "--workers", "2", "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = load_summary(out)
    assert s["tls"] == {"enabled": True, "verified": True}
    acc = s["accounting"]
    assert acc["delivered"] == acc["expected"] > 10_000
    assert acc["lost"] == acc["duplicates"] == acc["reordered"] == 0
    assert s["generator"]["lines_per_recv"] > 1


def test_a_storm_over_tls_registers_everyone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = chat_perf(
        "run", "--spawn", "--tls", "--scenario", "storm", "--clients", "150",
        "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "TLS done p50" in proc.stdout
    s = load_summary(out)
    assert s["storm"]["complete"]
    c = s["connect_ms"]
    assert c["tls"]["count"] == c["welcome"]["count"] == 150
    assert c["tls"]["p50"] <= c["welcome"]["p50"]


def test_read_records_takes_every_record_and_reports_bytes_left_in_the_ssl_object(
    tmp_path: Path,
) -> None:
    """Over TLS one recv() yields one record (16 KiB at most); read_records reads the
    rest that has arrived, and says when its limit left decrypted bytes behind."""
    ca = trustme.CA()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    listener = socket.create_server(("127.0.0.1", 0))
    payload = bytes(range(256)) * 400  # 102,400 bytes: at least 7 records
    sent = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(payload)
            sent.set()
            with contextlib.suppress(OSError):
                tls.recv(1)  # until the client closes

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    sock = client_context(TlsSettings(str(ca_file))).wrap_socket(
        socket.create_connection(listener.getsockname()), server_hostname="127.0.0.1"
    )
    assert sent.wait(10)
    buf = memoryview(bytearray(len(payload)))
    got = 0
    sock.setblocking(False)
    while got < len(payload) - 1000:
        try:
            first = sock.recv_into(buf[got:], 1)  # one byte: the rest of its record waits
        except ssl.SSLWantReadError:
            continue
        assert first == 1
        more, again = read_records(sock, buf[got + 1 :], len(payload) - 1000 - got - 1)
        got += 1 + more
    assert got == len(payload) - 1000
    assert again  # the limit cut a record: its bytes sit in the SSL object
    assert sock.pending() > 0
    more, again = read_records(sock, buf[got:], len(payload) - got)
    got += more
    assert got == len(payload) and not again
    assert bytes(buf) == payload
    sock.close()
    thread.join(5)
    listener.close()
