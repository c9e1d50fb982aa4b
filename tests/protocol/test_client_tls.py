"""The shared client over TLS: ``ircs://`` addresses, verification on by default, a
private CA or self-signed certificate trusted through ``tls_ca``, against a real
chat-server's TLS port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from chat_protocol.client import Connected, Disconnected, ServerAddress
from chat_protocol.client_types import parse_servers
from tests.protocol.test_client import ClientMaker, config, connected, start_client
from tests.server.test_tls import tls_port, tls_server
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess

__all__ = ["start_client"]  # the fixture, shared with test_client.py


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def srv(tmp_path: Path, ca: trustme.CA) -> Iterator[ServerProcess]:
    with tls_server(tmp_path, ca) as server:
        yield server


def test_ircs_addresses() -> None:
    assert parse_servers("ircs://irc.example.org") == [ServerAddress("irc.example.org", 6697, True)]
    assert parse_servers("ircs://h:7000,irc://h2,h3:6668") == [
        ServerAddress("h", 7000, True), ServerAddress("h2", 6667), ServerAddress("h3", 6668),
    ]  # fmt: skip
    assert parse_servers("ircs://[::1]:6697/") == [ServerAddress("::1", 6697, True)]
    assert str(ServerAddress("h", 6697, True)) == "ircs://h:6697"
    for bad in ("http://h:1", "ircs://", "ircs://h:x"):
        with pytest.raises(ValueError):
            parse_servers(bad)


async def test_a_trusted_certificate_connects(
    srv: ServerProcess, ca: trustme.CA, tmp_path: Path, start_client: ClientMaker
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    # "localhost": the name the certificate is for (and that the client checks).
    server = ServerAddress("localhost", tls_port(srv), tls=True)
    _, rec = start_client(config(server, tls_ca=str(ca_file)))
    assert await rec.wait(connected) == Connected(server, "alice")
    watcher = RawClient(srv.host, srv.port)
    watcher.register("watcher")
    watcher.send("WHOIS alice")
    assert "671" in [m.command for m in watcher.collect_until("318")]  # a secure connection
    watcher.close()


async def test_an_untrusted_certificate_is_refused_with_a_reason(
    srv: ServerProcess, start_client: ClientMaker
) -> None:
    server = ServerAddress("localhost", tls_port(srv), tls=True)
    client, rec = start_client(config(server))  # trustme's CA is not the system's
    event = await rec.wait(lambda e: isinstance(e, Disconnected))
    assert isinstance(event, Disconnected)
    assert "TLS certificate not trusted: unable to get local issuer" in event.reason
    assert not client.connected


async def test_checking_can_be_turned_off_for_a_throwaway_server(
    srv: ServerProcess, start_client: ClientMaker
) -> None:
    server = ServerAddress("127.0.0.1", tls_port(srv), tls=True)
    client, rec = start_client(config(server, tls_verify=False))
    await rec.wait(connected)
    assert client.connected
