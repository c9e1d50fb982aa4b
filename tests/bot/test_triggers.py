"""When the bot speaks and when it must stay silent (the loop guard lives here)."""

from __future__ import annotations

import pytest

from bot.triggers import addressed_text, request_from
from chat_protocol import Message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bot: what is IRC?", "what is IRC?"),
        ("bot, what is IRC?", "what is IRC?"),
        ("Bot:hi", "hi"),
        ("BOT , hi", None),
        ("@bot what is IRC?", "what is IRC?"),
        ("@bot: hi", "hi"),
        ("@bot", ""),
        ("bot:", ""),
        ("  bot: spaced", "spaced"),
        ("bots: hi", None),
        ("robot: hi", None),
        ("bot hi", None),
        ("hello bot: hi", None),
        ("@botty hi", None),
        ("", None),
    ],
)
def test_addressed_text(text: str, expected: str | None) -> None:
    assert addressed_text(text, "bot") == expected


def msg(line: str) -> Message:
    return Message.parse(line)


def test_room_question_is_a_request() -> None:
    req = request_from(msg("@msgid=abc :alice!a@h PRIVMSG #room :bot: hello there"), "bot")
    assert req is not None
    assert (req.asker, req.target, req.text, req.msgid, req.in_room) == (
        "alice",
        "#room",
        "hello there",
        "abc",
        True,
    )


def test_direct_message_is_always_a_request() -> None:
    req = request_from(msg(":alice!a@h PRIVMSG Bot :what time is it"), "bot")
    assert req is not None
    assert (req.target, req.text, req.in_room) == ("alice", "what time is it", False)


@pytest.mark.parametrize(
    "line",
    [
        ":alice!a@h PRIVMSG #room :just chatting",  # not addressed
        ":alice!a@h NOTICE #room :bot: hi",  # notices are never answered
        ":alice!a@h NOTICE bot :hi",
        ":bot!b@h PRIVMSG #room :bot: talking to myself",  # itself
        ":BOT!b@h PRIVMSG bot :hi",  # itself, other case
        "@bot :other!o@h PRIVMSG #room :bot: hi",  # bot tag
        "@draft/bot :other!o@h PRIVMSG bot :hi",  # draft bot tag, direct
        ":alice!a@h PRIVMSG bot :\x01VERSION\x01",  # CTCP
        ":alice!a@h PRIVMSG #room :\x01ACTION bot: waves\x01",
        ":alice!a@h PRIVMSG carol :hi",  # not for us
        ":alice!a@h PRIVMSG #room",  # malformed
        "PRIVMSG #room :bot: no source",
    ],
)
def test_silent(line: str) -> None:
    assert request_from(msg(line), "bot") is None


def test_known_bot_nick_without_tag_is_ignored() -> None:
    line = msg(":Helper!h@h PRIVMSG #room :bot: are you there?")
    assert request_from(line, "bot", bot_nicks={"helper"}) is None
    assert request_from(line, "bot", bot_nicks={"someoneelse"}) is not None


def test_a_reply_to_the_bots_own_line_is_a_request_without_a_mention() -> None:
    line = msg("@msgid=q2;+draft/reply=b1 :alice!a@h PRIVMSG #room :and why is that?")
    req = request_from(line, "bot", own_msgids={"b1"})
    assert req is not None
    assert (req.text, req.reply_to, req.msgid) == ("and why is that?", "b1", "q2")
    # A reply to someone else's line is not for the bot.
    assert request_from(line, "bot", own_msgids={"other"}) is None
    # A bot replying to our line is still never answered.
    tagged = msg("@bot;+draft/reply=b1 :other!o@h PRIVMSG #room :me too")
    assert request_from(tagged, "bot", own_msgids={"b1"}) is None
