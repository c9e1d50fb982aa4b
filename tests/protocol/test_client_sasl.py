"""Logging in to accounts against the real chat-server: SASL SCRAM-SHA-256 and PLAIN,
a wrong password, a login on every reconnect, REGISTER, and members' accounts.

Accounts are made with ``chat-server account add`` before the server starts.
"""

from __future__ import annotations

import asyncio

from chat_protocol.client import (
    AccountChanged,
    Connected,
    Disconnected,
    Event,
    LoginFailed,
    NickFallback,
    Received,
)
from chat_protocol.client_account import register_account
from tests.protocol.accounts import AccountServer
from tests.protocol.accounts import account_server as account_server  # fixture
from tests.protocol.test_client import (
    ClientMaker,
    address,
    config,
    connected,
    until,
)
from tests.protocol.test_client import start_client as start_client  # fixture
from tests.support.servers import ServerProcess


def logged_in(account: str | None) -> object:
    def test(e: Event) -> bool:
        return isinstance(e, AccountChanged) and e.account == account

    return test


def login_failed(e: Event) -> bool:
    return isinstance(e, LoginFailed)


async def test_scram_login_keeps_the_accounts_nick(
    account_server: AccountServer, start_client: ClientMaker
) -> None:
    server = account_server(alice="correct horse")
    cfg = config(address(server), nick="alice", account="alice", account_password="correct horse")
    client, rec = start_client(cfg)
    await rec.wait(logged_in("alice"))
    event = await rec.wait(connected)
    assert event == Connected(address(server), "alice")
    assert client.account == "alice" and client.nick == "alice"
    assert "sasl" in client.caps
    assert not any(isinstance(e, LoginFailed | NickFallback) for e in rec.events)
    # 900 and 903 are events like any message; SASL's own payloads are not
    commands = [e.message.command for e in rec.events if isinstance(e, Received)]
    assert "900" in commands and "903" in commands and "AUTHENTICATE" not in commands


async def test_plain_login(account_server: AccountServer, start_client: ClientMaker) -> None:
    server = account_server(bob="hunter2hunter2")
    cfg = config(
        address(server),
        nick="bob",
        account="bob",
        account_password="hunter2hunter2",
        sasl_mechanism="PLAIN",
    )
    client, rec = start_client(cfg)
    await rec.wait(connected)
    assert client.account == "bob" and client.nick == "bob"


async def test_wrong_password_goes_on_without_the_account(
    account_server: AccountServer, start_client: ClientMaker
) -> None:
    server = account_server(alice="correct horse")
    cfg = config(address(server), nick="alice", account="alice", account_password="wrong")
    client, rec = start_client(cfg)
    failed = await rec.wait(login_failed)
    assert isinstance(failed, LoginFailed)
    assert (failed.account, failed.mechanism, failed.numeric) == ("alice", "SCRAM-SHA-256", "904")
    assert failed.continuing and "wrong" not in failed.reason
    await rec.wait(connected)
    # The nick belongs to the account: without it we are someone else.
    assert client.account is None and client.nick != "alice"
    assert any(isinstance(e, NickFallback) for e in rec.events)
    assert rec.index(failed) < rec.index(next(e for e in rec.events if connected(e)))


async def test_wrong_password_with_login_required_does_not_connect(
    account_server: AccountServer, start_client: ClientMaker
) -> None:
    server = account_server(alice="correct horse")
    cfg = config(
        address(server),
        nick="alice",
        account="alice",
        account_password="wrong",
        sasl_mechanism="PLAIN",
        login_required=True,
    )
    client, rec = start_client(cfg)
    dropped = await rec.wait(lambda e: isinstance(e, Disconnected))
    assert isinstance(dropped, Disconnected) and "login as alice failed" in dropped.reason
    failed = next(e for e in rec.events if isinstance(e, LoginFailed))
    assert failed.numeric == "904" and not failed.continuing
    assert not client.connected and not any(connected(e) for e in rec.events)


async def test_reconnect_logs_in_again(
    account_server: AccountServer, start_client: ClientMaker
) -> None:
    server = account_server(alice="correct horse")
    cfg = config(address(server), nick="alice", account="alice", account_password="correct horse")
    client, rec = start_client(cfg)
    await rec.wait(connected)
    first = len(rec.events)
    await asyncio.to_thread(server.restart)
    await rec.wait(lambda e: isinstance(e, Disconnected), after=first)
    await rec.wait(logged_in("alice"), after=first)
    again = await rec.wait(connected, after=first)
    assert again == Connected(address(server), "alice") and client.account == "alice"


async def test_register_then_reconnect_logs_in(
    account_server: AccountServer, start_client: ClientMaker
) -> None:
    server = account_server()
    client, rec = start_client(config(address(server), nick="newbie"))
    await rec.wait(connected)
    assert client.account is None
    reply = await register_account(client, "a long enough passphrase")
    assert reply.ok and reply.code == "SUCCESS" and reply.account == "newbie"
    await until(lambda: client.account == "newbie")
    assert client.config.account == "newbie"
    first = len(rec.events)
    await asyncio.to_thread(server.restart)
    await rec.wait(logged_in("newbie"), after=first)
    again = await rec.wait(connected, after=first)
    assert isinstance(again, Connected) and again.nick == "newbie"


async def test_register_refusals(account_server: AccountServer, start_client: ClientMaker) -> None:
    server = account_server(alice="correct horse")
    client, rec = start_client(config(address(server), nick="carol"))
    await rec.wait(connected)
    taken = await register_account(client, "a long enough passphrase", account="alice")
    assert not taken.ok and taken.code in ("ACCOUNT_EXISTS", "USERNAME_EXISTS")
    weak = await register_account(client, "x")
    assert not weak.ok and weak.code in ("WEAK_PASSWORD", "UNACCEPTABLE_PASSWORD")
    assert client.account is None and client.config.account is None


async def test_members_accounts_from_extended_join_and_account_notify(
    account_server: AccountServer, start_client: ClientMaker
) -> None:
    server = account_server(bob="bobs password")
    watcher, wrec = start_client(config(address(server), nick="watcher", channels=["#room"]))
    await wrec.wait(connected)
    await until(lambda: "#room" in watcher.channels)
    bob_cfg = config(
        address(server), nick="bob", account="bob", account_password="bobs password",
        channels=["#room"],
    )  # fmt: skip
    _, brec = start_client(bob_cfg)
    await brec.wait(connected)
    await until(lambda: watcher.channels["#room"].accounts.get("bob") == "bob")
    guest, grec = start_client(config(address(server), nick="guest", channels=["#room"]))
    await grec.wait(connected)
    await until(lambda: "guest" in watcher.channels["#room"].members)
    assert "guest" not in watcher.channels["#room"].accounts
    reply = await register_account(guest, "guest passphrase 1")
    assert reply.ok
    await until(lambda: watcher.channels["#room"].accounts.get("guest") == "guest")


async def test_no_credentials_no_login(server: ServerProcess, start_client: ClientMaker) -> None:
    client, rec = start_client(config(address(server)))
    await rec.wait(connected)
    assert client.account is None and "sasl" not in client.caps
    assert not any(isinstance(e, LoginFailed | AccountChanged) for e in rec.events)
