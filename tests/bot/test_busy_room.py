"""A busy room: slow answers side by side, built-ins that stay quick, rates that say why.

A real chat-server and chat-bot process, the fake OpenAI server, raw IRC users.
"""

from __future__ import annotations

import time

from tests.bot.conftest import StartBot
from tests.bot.test_e2e import Connect, said, user
from tests.support.fake_openai import FakeOpenAI

# The defaults users run with (the fixture turns the rates off unless told).
DEFAULT_RATES = ("--user-rate", "4/60", "--room-rate", "12/60")


def test_two_askers_in_one_room_are_answered_in_one_model_delay(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    fake_api.slow_delay = 1.0  # three words, one a second: a 3 s model
    start_bot(*DEFAULT_RATES)
    alice = user(connect, "alice", "#room")
    bob = user(connect, "bob", "#room")
    started = time.monotonic()
    alice.send("PRIVMSG #room :bot: fake:slow fake:say one two three")
    alice.expect("PRIVMSG", pattern="fake:say one")  # the server has it: alice asked first
    bob.send("PRIVMSG #room :bot: fake:slow fake:say four five six")
    # In the order asked, each whole, each addressed to its asker ...
    assert said(alice) == "alice: one two three"
    assert said(alice) == "bob: four five six"
    # ... and both within about one model delay (one after the other took 6.3 s).
    elapsed = time.monotonic() - started
    assert elapsed < 4.8, f"both answers took {elapsed:.1f}s"
    first, second = fake_api.wait_requests(2)
    assert first.done_at is not None and second.at < first.done_at  # side by side


def test_a_typing_indicator_stays_on_while_any_question_is_pending(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    fake_api.slow_delay = 0.5
    start_bot()
    alice = user(connect, "alice", "#room")
    alice.send("PRIVMSG #room :bot: fake:slow fake:say a b")
    alice.send("PRIVMSG #room :bot: fake:slow fake:say c d e f")
    seen: list[str] = []
    while len([s for s in seen if s.startswith("PRIVMSG")]) < 2:
        m = alice.expect(lambda m: m.nick == "bot" and m.command in ("PRIVMSG", "TAGMSG"))
        seen.append(m.command if m.command == "PRIVMSG" else "typing=" + m.tags["+typing"])
    done = alice.expect(lambda m: m.nick == "bot" and m.command == "TAGMSG", timeout=10)
    assert seen[0] == "typing=active"
    assert "typing=done" not in seen  # not after the first answer: the second was pending
    assert done.tags["+typing"] == "done"


def test_eight_quick_builtins_are_all_answered(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    start_bot(*DEFAULT_RATES)
    alice = user(connect, "alice", "#room")
    asked = ["help", "time", "who", "stats", "time", "who", "stats", "help"]
    for text in asked:
        alice.send(f"PRIVMSG #room :bot: {text}")
    firsts: list[str] = []
    while len(firsts) < len(asked):
        line = said(alice)
        assert "faster than I may answer" not in line
        if line.startswith("alice: "):
            firsts.append(line)
    kinds = {"alice: Ask me": "help", "alice: It is": "time", "alice: #room: 1 person": "who"}
    kinds["alice: #room: "] = "stats"  # after who's longer start: the first match wins
    answered = [next(k for s, k in kinds.items() if f.startswith(s)) for f in firsts]
    assert answered == asked  # every one, in the order asked
    assert fake_api.requests == []


def test_builtins_still_work_when_ai_questions_are_rate_limited(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    start_bot(*DEFAULT_RATES)
    alice = user(connect, "alice", "#room")
    for i in range(4):
        alice.send(f"PRIVMSG #room :bot: question {i}")
        assert said(alice) == f"alice: echo: alice asks: question {i}"
    alice.send("PRIVMSG #room :bot: question 5")
    assert "please wait" in said(alice)
    alice.send("PRIVMSG bot :help")
    assert said(alice, target="alice").startswith("Ask me in a room")
    assert said(alice, target="alice").startswith("Commands: ")
    alice.send("PRIVMSG #room :bot: time")
    assert said(alice).startswith("alice: It is ")
    assert len(fake_api.requests) == 4


def test_the_room_rate_holds_questions_then_tells_each_refused_asker(
    start_bot: StartBot, connect: Connect, fake_api: FakeOpenAI
) -> None:
    start_bot("--room-rate", "1/3")
    alice, bob, carol, dave = (user(connect, n, "#room") for n in ("alice", "bob", "carol", "dave"))
    alice.send("PRIVMSG #room :bot: one")
    assert said(alice) == "alice: echo: alice asks: one"
    started = time.monotonic()
    bob.send("PRIVMSG #room :bot: two")  # held until the room earns a token back (3 s)
    bob.expect("PRIVMSG", pattern="bot: two")  # in this order, as the server saw them
    carol.send("PRIVMSG #room :bot: three")  # past the hold: refused, and told
    carol.expect("PRIVMSG", pattern="bot: three")
    dave.send("PRIVMSG #room :bot: four")  # refused too: told as well, not dropped
    lines = [said(alice) for _ in range(3)]
    refused = sorted(lines[:2])
    assert refused[0].startswith("carol: this room is asking faster than I may answer; ")
    assert refused[1].startswith("dave: this room is asking faster than I may answer; ")
    assert all("please wait" in line for line in refused)
    assert lines[2] == "bob: echo: bob asks: two"
    assert 2.0 < time.monotonic() - started < 6.0
    assert [r.last_user for r in fake_api.requests] == ["alice asks: one", "bob asks: two"]
