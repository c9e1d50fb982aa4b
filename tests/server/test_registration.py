"""Registration, capability negotiation, PING/PONG and timeouts against a real server."""

from __future__ import annotations

import pytest

from tests.support.rawclient import RawClient


def test_welcome_burst_has_001_to_005_lusers_and_motd(connect) -> None:
    c = connect()
    c.send("NICK alice")
    c.send("USER alice 0 * :Alice A")
    burst = c.collect_until("376")
    commands = [m.command for m in burst]
    for numeric in ("001", "002", "003", "004", "005", "251", "255", "375", "372", "376"):
        assert numeric in commands
    isupport = " ".join(" ".join(m.params) for m in burst if m.command == "005")
    for token in ("CASEMAPPING=ascii", "BOT=B", "CHATHISTORY=", "PREFIX=(ov)@+", "NICKLEN=30"):
        assert token in isupport
    assert burst[0].params[0] == "alice"
    assert "alice!~alice@127.0.0.1" in burst[0].params[-1]


def test_cap_ls_302_req_list_end(connect) -> None:
    c = connect()
    c.send("CAP LS 302")
    ls = c.expect("CAP", pattern=" LS ")
    offered = ls.params[-1].split()
    for cap in (
        "message-tags",
        "server-time",
        "echo-message",
        "batch",
        "labeled-response",
        "multi-prefix",
        "userhost-in-names",
        "draft/chathistory",
        "cap-notify",
    ):
        assert cap in offered
    c.send("NICK bob")
    c.send("USER bob 0 * :Bob")
    c.send("CAP REQ :server-time echo-message")
    ack = c.expect("CAP", pattern=" ACK ")
    assert ack.params[-1] == "server-time echo-message"
    c.send("CAP REQ :server-time no-such-cap")
    nak = c.expect("CAP", pattern=" NAK ")
    assert "no-such-cap" in nak.params[-1]
    c.send("CAP LIST")
    listed = c.expect("CAP", pattern=" LIST ").params[-1].split()
    assert {"server-time", "echo-message", "cap-notify"} <= set(listed)
    # registration waits for CAP END
    c.send("PING :before-end")
    c.expect("PONG", pattern="before-end")
    assert not any(m.command == "001" for m in c.received)
    c.send("CAP END")
    c.expect("001")


def test_commands_before_registration_get_451(connect) -> None:
    c = connect()
    c.send("JOIN #room")
    c.expect("451")
    c.send("FROBNICATE")
    c.expect("451")


@pytest.mark.parametrize(
    ("nick", "numeric"),
    [("1abc", "432"), (":bad nick", "432"), ("x" * 31, "432"), ("#chan", "432")],
)
def test_erroneous_nicks(connect, nick: str, numeric: str) -> None:
    c = connect()
    c.send(f"NICK {nick}")
    c.expect(numeric)


def test_no_nick_given_and_nick_in_use(connect) -> None:
    connect("taken")
    c = connect()
    c.send("NICK")
    c.expect("431")
    c.send("NICK TAKEN")  # casefolded: ascii casemapping
    c.expect("433")
    c.send("NICK free")
    c.send("USER free 0 * :Free")
    c.expect("001")


def test_user_needs_params_and_no_reregister(connect) -> None:
    c = connect()
    c.send("USER onlyone")
    c.expect("461")
    c.register("reg")
    c.send("USER reg 0 * :again")
    c.expect("462")


def test_nick_change_is_seen_by_room_members(connect) -> None:
    a = connect("alice")
    b = connect("bob")
    a.join("#r")
    b.join("#r")
    a.send("NICK alicia")
    change = b.expect("NICK")
    assert change.nick == "alice" and change.params == ["alicia"]
    a.expect("NICK")
    b.send("WHOIS alicia")
    b.expect("311", pattern="alicia")


def test_ping_pong(connect) -> None:
    c = connect("pinger")
    c.send("PING :abc123")
    pong = c.expect("PONG")
    assert pong.params[-1] == "abc123"
    c.send("PING")
    c.expect("409")


def test_password_required(server_factory) -> None:
    srv = server_factory("--password", "sekrit")
    bad = RawClient(srv.host, srv.port)
    bad.send("PASS wrong")
    bad.send("NICK eve")
    bad.send("USER eve 0 * :Eve")
    bad.expect("464")
    assert bad.closed()
    good = RawClient(srv.host, srv.port)
    good.register("ok", password="sekrit")


def test_idle_client_gets_ping_then_timeout(server_factory) -> None:
    srv = server_factory("--ping-interval", "1", "--ping-timeout", "1")
    c = RawClient(srv.host, srv.port, timeout=8)
    c.register("sleepy")
    c.sock.settimeout(8)
    # Read without answering PING: RawClient answers automatically, so read raw.
    data = b""
    while b"PING" not in data:
        data += c.sock.recv(4096)
    rest = b""
    while b"ERROR" not in rest:
        chunk = c.sock.recv(4096)
        assert chunk, "closed without ERROR"
        rest += chunk
    assert b"Ping timeout" in rest


def test_client_that_answers_pings_stays(server_factory) -> None:
    srv = server_factory("--ping-interval", "1", "--ping-timeout", "1")
    c = RawClient(srv.host, srv.port, timeout=8)
    c.register("awake")
    c.expect("PING")  # answered by RawClient
    c.expect("PING")
    c.send("PING :still-here")
    c.expect("PONG", pattern="still-here")


def test_registration_timeout(server_factory) -> None:
    srv = server_factory("--registration-timeout", "1")
    c = RawClient(srv.host, srv.port, timeout=6)
    c.send("NICK lazy")
    c.expect("ERROR", pattern="Registration timed out")
