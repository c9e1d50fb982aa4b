"""Conversations: formatted and continued answers, replies, forget, DM reload, summary,
stats, who, CTCP VERSION and the topic — against a real server, bot and fake API."""

from __future__ import annotations

from bot.lines import CUT_NOTE
from bot.markdown import BOLD, MONO
from tests.bot.conftest import StartBot
from tests.bot.test_e2e import Connect, from_bot, said, user
from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import ServerProcess


def test_markdown_is_rendered_as_irc_formatting(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    start_bot()
    alice = user(connect, "alice", "#room")
    answer = "## Title\\n```py\\ndef f():\\n    return 1\\n```\\nThat is **all**."
    alice.send(f"PRIVMSG #room :bot: fake:say {answer}")
    assert said(alice) == f"alice: {BOLD}Title{BOLD}"
    assert said(alice) == f"{MONO}def f():"
    assert said(alice) == f"{MONO}    return 1"  # the indentation is kept
    assert said(alice) == f"That is {BOLD}all{BOLD}."


def test_more_continues_a_cut_answer_for_its_asker(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    start_bot("--max-lines", "2")
    alice = user(connect, "alice", "#room")
    bob = user(connect, "bob", "#room")
    alice.send("PRIVMSG #room :bot: fake:long")
    first = [said(alice), said(alice)]
    assert first[1].endswith(CUT_NOTE)
    bob.send("PRIVMSG #room :bot: more")  # bob has no cut answer of his own
    assert said(alice) == "bob: There is no more: my last answer to you was not cut."
    alice.send("PRIVMSG #room :bot: more")
    second = [said(alice), said(alice)]
    assert second[0].startswith("alice: ") and second[1].endswith(CUT_NOTE)
    words = " ".join(first + second).replace(CUT_NOTE, "").replace("alice: ", "").split()
    assert words == [f"word{i}" for i in range(1, len(words) + 1)]  # nothing lost between
    assert len(fake_api.requests) == 1  # 'more' costs no API call


def test_who_counts_a_bot_that_joined_later_as_a_bot(start_bot: StartBot, connect: Connect) -> None:
    start_bot()
    alice = user(connect, "alice", "#room")
    other = user(connect, "otherbot")
    other.send("MODE otherbot +B")
    other.expect("MODE", pattern=r"\+B")
    other.join("#room")
    alice.send("PRIVMSG #room :bot: who")
    assert said(alice) == "alice: #room: 1 person, 2 bots: alice, @bot (bot), otherbot (bot)"


def test_a_reply_to_the_bot_continues_without_a_mention_and_forget_clears_it(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    start_bot()
    alice = user(connect, "alice", "#room")
    alice.send("PRIVMSG #room :bot: my secret is 42")
    answer = alice.expect(from_bot(target="#room"))
    assert answer.param(1) == "alice: echo: alice asks: my secret is 42"
    alice.send(f"@+draft/reply={answer.tags['msgid']} PRIVMSG #room :and why?")
    assert said(alice).startswith("alice: echo: alice replies to your line ")
    assert fake_api.requests[-1].last_user.endswith(": and why?")
    alice.send("PRIVMSG #room :someone else's line, not for the bot")
    alice.send("PRIVMSG #room :bot: forget")
    assert said(alice).startswith("alice: Done: I forgot what you asked me here")
    alice.send("PRIVMSG #room :bot: what was my secret?")
    said(alice)
    last = fake_api.requests[-1]
    assert last.last_user == "alice asks: what was my secret?"
    assert "42" not in last.all_text and "not for the bot" in last.all_text
    assert len(fake_api.requests) == 3


def test_a_restarted_bot_reloads_only_the_private_history_the_server_lets_it_read(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    """Without accounts, a connection reads only the direct messages sent while it held
    its nick: the new connection of a restarted bot gets none of the old ones back (what
    it can reload within one connection: tests/bot/test_history_reload.py)."""
    bot = start_bot()
    alice = user(connect, "alice")
    alice.send("PRIVMSG bot :my code is 1234")
    assert said(alice, target="alice") == "echo: alice asks: my code is 1234"
    assert bot.stop() == 0
    bot = start_bot()
    bot.wait_log("reloaded 0 private chats (0 lines) from history")
    alice.send("PRIVMSG bot :what is my code?")
    assert said(alice, target="alice") == "echo: alice asks: what is my code?"
    assert "1234" not in fake_api.requests[-1].all_text


def test_summary_covers_the_room_since_the_asker_last_spoke_or_left(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    start_bot()
    alice = user(connect, "alice", "#room")
    carol = user(connect, "carol", "#room")
    dave = user(connect, "dave", "#room")
    # Each waits for the echo of the line before: the room's order is the one written.
    alice.send("PRIVMSG #room :hi all, back in a bit")
    alice.expect("PRIVMSG", pattern="hi all")
    carol.send("PRIVMSG #room :the build is red")
    carol.expect("PRIVMSG", pattern="build is red")
    dave.send("PRIVMSG #room :bye for now")
    dave.expect("PRIVMSG", pattern="bye for now")
    dave.send("PART #room")
    dave.expect("PART")
    carol.send("PRIVMSG #room :fixed it, deploy at 5")
    carol.expect("PRIVMSG", pattern="deploy at 5")
    alice.send("PRIVMSG #room :bot: what did I miss?")
    head = said(alice)
    assert head.startswith("alice: [") and " UTC, 3 messages] echo: alice was away" in head
    asked = fake_api.requests[-1].all_text
    assert "carol: the build is red" in asked and "carol: fixed it, deploy at 5" in asked
    assert "hi all" not in asked and "what did I miss" not in asked
    # dave left: his summary starts when he left, not when he last spoke.
    dave.join("#room")
    dave.send("PRIVMSG #room :bot: catch me up")
    head = said(dave, target="#room")
    while not head.startswith("dave: "):  # the join replay holds the bot's earlier lines
        head = said(dave, target="#room")
    assert head.startswith("dave: [") and "messages] echo:" in head
    asked = fake_api.requests[-1].all_text
    assert "carol: fixed it, deploy at 5" in asked and "the build is red" not in asked


def test_stats_counts_what_it_saw_and_the_topic_reaches_the_model(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    carol = user(connect, "carol", "#room")
    carol.send("TOPIC #room :Release 2.0 on Friday")
    carol.expect("TOPIC")
    for i in range(3):
        carol.send(f"PRIVMSG #room :old line {i}")  # replayed to the bot when it joins
    carol.expect("PRIVMSG", pattern="old line 2")
    start_bot()
    alice = user(connect, "alice", "#room")
    alice.send("PRIVMSG #room :bot: hello")
    said(alice)
    alice.send("PRIVMSG #room :bot: stats")
    stats = said(alice)
    assert "#room: 3 messages seen since" in stats  # hello, the answer, stats: no replay
    assert "most active: alice (2)" in stats and "bot (" not in stats
    assert "The room's topic is: Release 2.0 on Friday" in fake_api.requests[0].system_prompt


def test_ctcp_version_is_answered_by_notice(start_bot: StartBot, connect: Connect) -> None:
    start_bot()
    alice = user(connect, "alice")
    alice.send("PRIVMSG bot :\x01VERSION\x01")
    reply = alice.expect(from_bot(command="NOTICE"))
    assert reply.param(1).startswith("\x01VERSION distchat chat-bot ")


def test_a_restarted_server_is_no_reason_to_stop_serving_private_chats(
    start_bot: StartBot, server: ServerProcess, connect: Connect, fake_api: FakeOpenAI
) -> None:
    """Whatever history the server lets it read, a private question is answered."""
    bot = start_bot()
    server.restart()
    bot.wait_log("joined #room", count=2)
    alice = user(connect, "alice")
    alice.send("PRIVMSG bot :still there?")
    assert said(alice, target="alice") == "echo: alice asks: still there?"
