"""chat-tui over TLS: ``--server ircs://...`` with ``--tls-ca``, against a real
chat-server's TLS port; the config keys and flags."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from chat_protocol.client_types import ServerAddress
from chat_tui.app import ChatApp
from chat_tui.cli import settings_from_args
from chat_tui.config import ConfigError, Settings, from_mapping
from chat_tui.session import ChatSession
from tests.server.test_tls import tls_port, tls_server
from tests.support.rawclient import RawClient
from tests.tui.live import SIZE, joined, texts, wait_until


async def test_chat_over_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with tls_server(tmp_path, ca) as server:
        settings = Settings(
            nick="alice", servers=[ServerAddress("localhost", tls_port(server), tls=True)],
            rooms=["#secure"], tls_ca=str(ca_file),
        )  # fmt: skip
        app = ChatApp(settings, ChatSession(settings))
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app, "#secure")
            bob = RawClient(server.host, server.port)
            bob.register("bob")
            bob.join("#secure")
            bob.send("PRIVMSG #secure :hello, encrypted alice")
            await wait_until(pilot, lambda: "hello, encrypted alice" in texts(app, "#secure"),
                             "bob's line over TLS")  # fmt: skip
            bob.send("WHOIS alice")
            assert "671" in [m.command for m in bob.collect_until("318")]
            bob.close()


def test_tls_settings(tmp_path: Path) -> None:
    settings = from_mapping({"server": "ircs://irc.example.org", "tls_ca": "~/ca.pem"})
    assert settings.servers == [ServerAddress("irc.example.org", 6697, True)]
    assert (settings.tls_ca, settings.tls_verify) == ("~/ca.pem", True)
    with pytest.raises(ConfigError, match="tls_verify must be true or false"):
        from_mapping({"tls_verify": "no"})
    config = tmp_path / "chat-tui.toml"
    config.write_text('server = "ircs://h:7000"\n')
    flags = settings_from_args(["--config", str(config), "--tls-ca", "/ca.pem", "--no-tls-verify"])
    assert (flags.tls_ca, flags.tls_verify) == ("/ca.pem", False)
    assert flags.servers == [ServerAddress("h", 7000, True)]
