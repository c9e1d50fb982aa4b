"""A node that missed trimmed events says so and reloads them (issue 18, defect 2)."""

from __future__ import annotations

import redis

from chat_server.cluster.shards import stream_of
from chat_server.config import build_config
from tests.cluster.conftest import Cluster, wait_for
from tests.cluster.observe import in_room, privmsgs
from tests.cluster.proxy import CuttableProxy
from tests.cluster.test_history import history

KEEP = "1"  # seconds of events the stream keeps (trimmed by time, in whole macro nodes)
BURST = 400
SHARDS = build_config().cluster_shards


def test_node_cut_off_longer_than_the_stream_keeps_says_so_and_reloads(
    cluster: Cluster,
) -> None:
    proxy = CuttableProxy(cluster.redis.port)
    try:
        cluster.node("a", "--cluster-stream-keep", KEEP)
        b = cluster.node("b", "--cluster-stream-keep", KEEP, url=proxy.url)
        alice = cluster.client("a", "alice")
        bob = cluster.client("b", "bob")
        alice.join("#g")
        bob.join("#g")
        wait_for(lambda: in_room(bob, "#g", "alice"), what="alice in #g on b")
        alice.send("PRIVMSG #g :before")
        assert privmsgs(bob, 1)[0][3] == "before"

        proxy.cut()  # b alone loses Redis; alice goes on talking through a
        bob.expect("NOTICE", pattern="Cluster link lost", timeout=10)
        for i in range(BURST):
            alice.send(f"PRIVMSG #g :gap {i}")
        sent = privmsgs(alice, BURST)
        rc = redis.Redis.from_url(cluster.redis.url, decode_responses=True)
        first_gap = sent[0][0]

        stream = stream_of("#g", SHARDS)  # the room's messages go to its shard

        def trimmed() -> bool:
            alice.send("PRIVMSG #g :tick")  # trimming happens as entries are added
            alice.expect("PRIVMSG")
            return not rc.xrange(stream, first_gap, first_gap)

        wait_for(trimmed, 15, "the gap's first messages trimmed from the stream")
        proxy.restore()

        notice = bob.expect("NOTICE", pattern="Missed cluster events", timeout=15)
        assert "#g" in notice.param(1) and " UTC " in notice.param(1)
        assert "CHATHISTORY" in notice.param(1)
        assert any("missed events from" in line for line in b.log)
        # Everything alice sent is in b's history, in order, the same as on a.
        live = {m.tags.get("msgid") for m in bob.received if m.command == "PRIVMSG"}
        wanted = [m for m, *_ in sent]
        on_b = [m for m, *_ in history(bob, "LATEST", "#g", "*", "1000")]
        on_a = [m for m, *_ in history(alice, "LATEST", "#g", "*", "1000")]
        assert [m for m in on_b if m in set(wanted)] == wanted
        assert on_b == on_a
        missed = sum(1 for m in wanted if m not in live)
        print(f"bob missed {missed} of {BURST} live; all {BURST} are in b's history")
        assert missed > 0  # the gap was real
    finally:
        proxy.close()


def test_redis_that_lost_its_data_is_reported(cluster: Cluster) -> None:
    cluster.node("a")
    alice = cluster.client("a", "alice")
    alice.join("#d")
    cluster.redis.stop()
    alice.expect("NOTICE", pattern="Cluster link lost", timeout=10)
    cluster.redis.start()  # empty: no persistence
    alice.expect("NOTICE", pattern="Cluster link restored", timeout=15)
    lost = alice.expect("NOTICE", pattern="Redis lost its data", timeout=10)
    assert "#d" in lost.param(1)


def test_stream_is_sized_by_time() -> None:
    assert build_config().cluster_stream_keep == 600.0
    assert build_config({"cluster_stream_keep": 30}).cluster_stream_keep == 30
