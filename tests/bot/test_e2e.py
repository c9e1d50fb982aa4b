"""End to end: a real chat-server, real chat-bot processes, the fake API, raw IRC users."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.lines import CUT_NOTE
from chat_protocol import Message
from tests.bot.conftest import StartBot
from tests.support.fake_openai import FakeOpenAI
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess

CAPS = ["message-tags", "server-time", "echo-message", "batch"]
Connect = Callable[..., RawClient]


def user(connect: Connect, nick: str, *rooms: str) -> RawClient:
    client = connect(nick, caps=CAPS)
    for room in rooms:
        client.join(room)
    return client


def from_bot(nick: str = "bot", target: str | None = None, command: str = "PRIVMSG"):
    def match(m: Message) -> bool:
        return (
            m.command == command
            and m.nick == nick
            and (target is None or m.param(0).lower() == target.lower())
        )

    return match


def said(client: RawClient, nick: str = "bot", target: str | None = None) -> str:
    """The text of the next PRIVMSG from ``nick`` (to ``target``)."""
    return client.expect(from_bot(nick, target), timeout=10).param(1)


def test_ask_and_get_the_streamed_answer_with_context(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI, tmp_path: Path
) -> None:
    carol = user(connect, "carol", "#room")
    carol.send("PRIVMSG #room :the release is on friday")  # before the bot is there
    carol.expect("PRIVMSG", pattern="friday")
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("You are the release helper.\n")
    start_bot("--system-prompt", f"@{prompt}")
    alice = user(connect, "alice", "#room")
    alice.send("PRIVMSG #room :bot: when is the release?")
    typing = alice.expect(from_bot(command="TAGMSG"))
    assert typing.tags.get("+typing") == "active"
    answer = alice.expect(from_bot(target="#room"))
    assert answer.param(1) == "alice: echo: alice asks: when is the release?"
    assert "bot" in answer.tags  # the server marks our lines: we are +B
    assert alice.expect(from_bot(command="TAGMSG")).tags.get("+typing") == "done"
    (request,) = fake_api.requests
    assert request.system_prompt.startswith("You are the release helper.")
    assert "carol: the release is on friday" in request.all_text  # from the join replay
    assert request.last_user == "alice asks: when is the release?"


def test_answer_lines_arrive_in_order_while_streaming(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    start_bot("--max-lines", "20")
    alice = user(connect, "alice", "#room")
    words = " ".join(f"w{i}" for i in range(1, 8))
    alice.send(f"PRIVMSG #room :bot: fake:say {words} \\n second line \\n third line")
    assert said(alice) == f"alice: {words}"
    assert said(alice) == "second line"
    assert said(alice) == "third line"


def test_answers_in_one_room_keep_the_order_of_questions(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    fake_api.slow_delay = 0.1
    start_bot("--max-lines", "20")
    alice = user(connect, "alice", "#room")
    alice.send("PRIVMSG #room :bot: fake:slow first question")
    alice.send("PRIVMSG #room :bot: second question")
    assert said(alice) == "alice: echo: alice asks: fake:slow first question"
    assert said(alice) == "alice: echo: alice asks: second question"


def test_each_room_uses_its_own_model_and_prompt(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI, tmp_path: Path
) -> None:
    (tmp_path / "b.txt").write_text("You are the B room's helper.\n")
    conf = tmp_path / "bot.toml"
    conf.write_text(
        '[room."#A"]\nmodel = "model/a"\nsystem_prompt = "You are the A room\'s helper."\n'
        '[room.b]\nmodel = "model/b"\nsystem_prompt = "@b.txt"\nmax_tokens = 77\nmax_lines = 1\n'
        "context_lines = 0\n"
    )
    bot = start_bot(
        "--config", str(conf), "--system-prompt", "You are the global helper.", rooms="#a,#b,#c"
    )
    bot.wait_log("room #A has its own settings: model=model/a, system_prompt=(its own)")
    alice = user(connect, "alice", "#a", "#b", "#c")
    alice.send("PRIVMSG #b :a line #b keeps no memory of")
    alice.send("PRIVMSG #c :a line #c remembers")
    alice.send("PRIVMSG #a :bot: question for a")
    assert said(alice, target="#a") == "alice: echo: alice asks: question for a"
    alice.send("PRIVMSG #B :bot: question for b")
    assert said(alice, target="#b") == "alice: echo: alice asks: question for b"
    alice.send("PRIVMSG #c :bot: question for c")
    assert said(alice, target="#c") == "alice: echo: alice asks: question for c"
    requests = {r.last_user: r for r in fake_api.wait_requests(3)}
    a = requests["alice asks: question for a"]
    b = requests["alice asks: question for b"]
    c = requests["alice asks: question for c"]
    assert a.body["model"] == "model/a"
    assert a.system_prompt.startswith("You are the A room's helper.\n")
    assert "the IRC chat room #a" in a.system_prompt
    assert (b.body["model"], b.body["max_tokens"]) == ("model/b", 77)
    assert b.system_prompt.startswith("You are the B room's helper.\n")  # read next to the file
    assert (c.body["model"], c.body["max_tokens"]) == ("fake/model", 600)  # the global flags
    assert c.system_prompt.startswith("You are the global helper.\n")
    assert "a line #c remembers" in c.all_text
    assert "keeps no memory" not in b.all_text  # the room's own context_lines = 0
    # The room's own line cap, and the model its 'help' reports.
    alice.send("PRIVMSG #b :bot: fake:say one \\n two")
    assert said(alice, target="#b") == "alice: one" + CUT_NOTE
    alice.send("PRIVMSG #c :bot: fake:say one \\n two")
    assert [said(alice, target="#c"), said(alice, target="#c")] == ["alice: one", "two"]
    alice.send("PRIVMSG #a :bot: help")
    assert "AI answers: on (model/a)." in said(alice, target="#a") + said(alice, target="#a")


def test_long_answer_is_split_on_words_and_capped(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    start_bot("--max-lines", "3")
    alice = user(connect, "alice", "#room")
    alice.send("PRIVMSG #room :bot: fake:long")
    lines = [alice.expect(from_bot(target="#room")) for _ in range(3)]
    texts = [m.param(1) for m in lines]
    assert texts[0].startswith("alice: word1 word2 ")
    assert texts[-1].endswith(CUT_NOTE)
    for m in lines:
        assert len(Message(m.command, m.params, m.source).to_bytes()) <= 512
    words = " ".join(texts).removesuffix(CUT_NOTE).split()[1:]
    assert words == [f"word{i}" for i in range(1, len(words) + 1)]  # whole words, in order
    # Nothing more of the long answer: the next bot line answers the next question.
    alice.send("PRIVMSG #room :bot: next")
    assert said(alice) == "alice: echo: alice asks: next"


def test_two_rooms_are_answered_at_once(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    fake_api.slow_delay = 0.15
    start_bot("--max-lines", "30", rooms="#a,#b")
    alice = user(connect, "alice", "#a")
    bob = user(connect, "bob", "#b")
    slow = " ".join(["x"] * 12)  # ~2 s of streaming each
    alice.send(f"PRIVMSG #a :bot: fake:slow {slow}")
    bob.send(f"PRIVMSG #b :bot: fake:slow {slow}")
    assert said(alice, target="#a").startswith("alice: echo: alice asks: fake:slow")
    assert said(bob, target="#b").startswith("bob: echo: bob asks: fake:slow")
    first, second = fake_api.wait_requests(2)
    # The second room's request went out while the first answer was still streaming.
    assert first.done_at is not None and second.at < first.done_at


def test_two_bots_do_not_loop(start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI) -> None:
    start_bot(nick="bot1")
    start_bot(nick="bot2")
    alice = user(connect, "alice", "#room")
    # bot1's answer's second line addresses bot2, as a model might.
    alice.send("PRIVMSG #room :bot1: fake:say hello \\n bot2: fake:say bot1: hello back")
    assert said(alice, "bot1") == "alice: hello"
    assert said(alice, "bot1") == "bot2: fake:say bot1: hello back"
    # Had bot2 taken that line as a question, its answer would come before this one.
    alice.send("PRIVMSG #room :bot2: ping")
    assert said(alice, "bot2") == "alice: echo: alice asks: ping"
    assert [r.last_user for r in fake_api.requests] == [
        "alice asks: fake:say hello \\n bot2: fake:say bot1: hello back",
        "alice asks: ping",
    ]


def test_a_user_in_bot_mode_is_never_answered(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    start_bot()
    other = user(connect, "otherbot")
    other.send("MODE otherbot +B")
    other.expect("MODE", pattern=r"\+B")
    other.join("#room")
    alice = user(connect, "alice", "#room")
    other.send("PRIVMSG #room :bot: answer me")
    other.send("PRIVMSG bot :answer me privately")
    other.send("NOTICE #room :bot: a notice")
    alice.send("NOTICE #room :bot: a notice from a person")
    alice.send("PRIVMSG #room :bot: sentinel")
    assert said(alice) == "alice: echo: alice asks: sentinel"
    assert len(fake_api.requests) == 1


def test_direct_message_and_invite(start_bot: StartBot, connect: Connect) -> None:
    start_bot()
    alice = user(connect, "alice", "#secret")
    alice.send("PRIVMSG bot :hello in private")
    answer = alice.expect(from_bot(target="alice"))
    assert answer.param(1) == "echo: alice asks: hello in private"  # no 'alice:' prefix
    alice.send("INVITE bot #secret")
    alice.expect(lambda m: m.command == "JOIN" and m.nick == "bot" and m.param(0) == "#secret")
    alice.send("PRIVMSG #secret :@bot are you here?")
    assert said(alice, target="#secret") == "alice: echo: alice asks: are you here?"


def test_no_key_still_joins_and_runs_builtins(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    bot = start_bot(key=False)
    assert bot.wait_log("AI answers off")
    alice = user(connect, "alice", "#room")
    alice.send("PRIVMSG #room :bot: what is the meaning of life?")
    assert "AI answers are not configured" in said(alice)
    alice.send("PRIVMSG #room :bot: help")
    assert "Commands: forget, help, more, stats, summary, time, who." in " ".join(
        [said(alice), said(alice)]
    )
    alice.send("PRIVMSG #room :bot, time")
    assert said(alice).startswith("alice: It is ")
    alice.send("PRIVMSG #room :@bot who is here?")
    assert said(alice) == "alice: #room: 1 person, 1 bot: alice, @bot (bot)"
    alice.send("PRIVMSG #room :bot: stats")
    assert "messages seen since" in said(alice)
    alice.send("PRIVMSG bot :help")
    assert said(alice, target="alice").startswith("Ask me in a room")
    assert fake_api.requests == []


@pytest.mark.parametrize(
    ("keyword", "needle"),
    [
        ("fake:401", "rejected our API key (401)"),
        ("fake:402", "out of credits (402)"),
        ("fake:429", "rate-limiting us (429)"),
        ("fake:500", "internal error (500)"),
        ("fake:stall", "did not answer within 4s"),
        ("fake:broken", "broke off mid-stream"),
    ],
)
def test_each_api_failure_is_one_short_line_and_the_bot_keeps_serving(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI, keyword: str, needle: str
) -> None:
    timeout = "4" if keyword == "fake:stall" else "60"
    start_bot("--timeout", timeout, "--max-lines", "30")
    alice = user(connect, "alice", "#room")
    alice.send(f"PRIVMSG #room :bot: {keyword}")
    while True:  # a broken stream first sends the words that did arrive
        text = said(alice)
        if not text.startswith(("alice: word", "word")):
            break
    assert text.startswith("alice: ") and needle in text
    assert len(text) < 120
    alice.send("PRIVMSG #room :bot: are you still there?")
    assert said(alice) == "alice: echo: alice asks: are you still there?"


def test_rate_limits_say_wait_once(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    start_bot("--user-rate", "1/600")
    alice = user(connect, "alice", "#room")
    bob = user(connect, "bob", "#room")
    alice.send("PRIVMSG #room :bot: one")
    assert said(alice) == "alice: echo: alice asks: one"
    alice.send("PRIVMSG #room :bot: two")
    alice.send("PRIVMSG #room :bot: three")  # no second warning for this one
    bob.send("PRIVMSG #room :bot: four")
    assert said(alice).startswith("alice: you are asking faster than I may answer; please wait")
    assert said(alice) == "bob: echo: bob asks: four"
    assert [r.last_user for r in fake_api.requests] == [
        "alice asks: one",
        "bob asks: four",
    ]


@pytest.mark.parametrize("who", ["user", "room"])
def test_please_wait_does_not_overtake_a_streaming_answer(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI, who: str
) -> None:
    fake_api.slow_delay = 0.2  # 14 pieces: the answer streams for about 3 s
    start_bot(f"--{who}-rate", "1/600", "--max-lines", "20")
    alice = user(connect, "alice", "#room")
    bob = user(connect, "bob", "#room")
    alice.send(
        "PRIVMSG #room :bot: fake:slow fake:say one two \\n three four \\n five six \\n seven"
    )
    assert said(alice) == "alice: one two"  # the answer is streaming now
    asker = bob if who == "room" else alice
    asker.send("PRIVMSG #room :bot: too soon")  # refused while the answer streams
    rest = [said(alice) for _ in range(4)]
    assert rest[:3] == ["three four", "five six", "seven"]
    assert rest[3].startswith(f"{asker.nick}: ") and "please wait" in rest[3]
    assert len(fake_api.requests) == 1


def test_please_wait_waits_for_a_stalled_answer_to_end(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    start_bot("--user-rate", "1/600", "--timeout", "3")
    alice = user(connect, "alice", "#room")
    alice.send("PRIVMSG #room :bot: fake:stall")
    fake_api.wait_requests(1)  # the bot is waiting for a model that says nothing
    alice.send("PRIVMSG #room :bot: hello?")
    assert said(alice) == "alice: The AI did not answer within 3s; please try again."
    assert said(alice).startswith("alice: you are asking faster than I may answer; please wait")
    assert len(fake_api.requests) == 1


def test_model_output_cannot_inject_protocol_lines(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    start_bot()
    alice = user(connect, "alice", "#room", "#other")
    alice.send("PRIVMSG #room :bot: fake:control")
    assert said(alice) == "alice: safe start"
    second = said(alice)
    assert second.startswith("PRIVMSG #other :injected")
    assert not any(ord(c) < 32 for c in second)
    assert said(alice) == "next line end"
    alice.send("PRIVMSG #room :bot: sentinel")
    assert said(alice) == "alice: echo: alice asks: sentinel"  # and nothing went to #other


def test_reconnects_and_rejoins_after_a_server_restart(
    start_bot: StartBot, server: ServerProcess, fake_api: FakeOpenAI
) -> None:
    bot = start_bot()
    server.restart()
    bot.wait_log("joined #room", count=2)
    alice = RawClient(server.host, server.port)
    try:
        alice.register("alice", caps=CAPS)
        alice.join("#room")
        alice.send("PRIVMSG #room :bot: back?")
        assert said(alice) == "alice: echo: alice asks: back?"
    finally:
        alice.close()


def test_sigterm_quits_cleanly(start_bot: StartBot, connect: Connect) -> None:
    bot = start_bot()
    alice = user(connect, "alice", "#room")
    assert bot.stop() == 0
    alice.expect(lambda m: m.command == "QUIT" and m.nick == "bot")
