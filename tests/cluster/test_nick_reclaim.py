"""Issue 18 defect 6: a client whose node died fails over, comes back as ``carol_`` while
its ghost still holds ``carol`` on the other nodes, and takes ``carol`` back once the
dead node's users are reaped (MONITOR tells it at once)."""

from __future__ import annotations

import asyncio
import time

import pytest

from chat_protocol.client import (
    ClientConfig,
    Connected,
    IRCClient,
    NickFallback,
    NickReclaimed,
    ServerAddress,
)
from chat_protocol.client_account import register_account
from tests.cluster.conftest import GRACE, TIMEOUT, Cluster
from tests.protocol.test_client import Recorder, privmsg_with


@pytest.mark.parametrize("with_account", [False, True], ids=["no-account", "account"])
async def test_failed_over_client_reclaims_its_nick_from_its_ghost(
    cluster: Cluster, with_account: bool
) -> None:
    a = cluster.node("a")
    b = cluster.node("b")
    alice = cluster.client("a", "alice")
    config = ClientConfig(
        servers=[ServerAddress(b.host, b.port), ServerAddress(a.host, a.port)],
        nick="carol",
        reconnect_min=0.2,
        reconnect_max=1.0,
        connect_timeout=5.0,
    )
    carol = IRCClient(config)
    runner = asyncio.create_task(carol.run())
    rec = Recorder(carol)
    try:
        first = await rec.wait(lambda e: isinstance(e, Connected))
        assert isinstance(first, Connected) and first.nick == "carol"
        if with_account:  # logged in again on the other node, so the nick is its own
            assert (await register_account(carol, "carols password")).ok
        b.kill()  # carol's node dies; its users stay on a's books until reaped
        killed = time.monotonic()
        fallback = await rec.wait(lambda e: isinstance(e, NickFallback))
        assert fallback == NickFallback("carol", "carol_")
        assert carol.account == ("carol" if with_account else None)
        alice.send("PRIVMSG carol :sent to the ghost")  # goes to the dead node's user
        reaped_by = TIMEOUT + GRACE + 5
        reclaimed = await rec.wait(lambda e: isinstance(e, NickReclaimed), timeout=reaped_by)
        assert reclaimed == NickReclaimed("carol", "carol_")
        assert time.monotonic() - killed < reaped_by
        assert carol.nick == "carol" and carol.server == ServerAddress(a.host, a.port)
        alice.send("PRIVMSG carol :welcome back")  # direct messages reach carol again
        await rec.wait(privmsg_with("welcome back"))
        if with_account:  # the account's direct messages: what the ghost missed is there
            texts = [m.param(1) for m in await carol.history_latest("alice")]
            assert texts == ["sent to the ghost", "welcome back"]
    finally:
        await carol.close()
        await asyncio.wait_for(runner, 10)
        await asyncio.wait_for(rec.task, 10)
