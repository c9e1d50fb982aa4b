"""Message parse/format: examples from the IRCv3 message-tags spec and Modern IRC, plus
a round-trip property over every message we are allowed to send."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat_protocol.message import (
    Message,
    MessageError,
    escape_tag_value,
    format_tags,
    parse_tags,
    split_source,
    unescape_tag_value,
)

# (line, tags, source, command, params) — Modern IRC "Message Format" and "Parameters".
MODERN_IRC_EXAMPLES = [
    (
        ":irc.example.com CAP LS * :multi-prefix extended-join sasl",
        {},
        "irc.example.com",
        "CAP",
        ["LS", "*", "multi-prefix extended-join sasl"],
    ),
    (
        "@id=234AB :dan!d@localhost PRIVMSG #chan :Hey what's up!",
        {"id": "234AB"},
        "dan!d@localhost",
        "PRIVMSG",
        ["#chan", "Hey what's up!"],
    ),
    ("CAP REQ :sasl", {}, None, "CAP", ["REQ", "sasl"]),
    (":irc.example.com CAP * LIST :", {}, "irc.example.com", "CAP", ["*", "LIST", ""]),
    ("CAP * LS :multi-prefix sasl", {}, None, "CAP", ["*", "LS", "multi-prefix sasl"]),
    ("CAP REQ :sasl message-tags foo", {}, None, "CAP", ["REQ", "sasl message-tags foo"]),
    (":dan!d@localhost PRIVMSG #chan :Hey!", {}, "dan!d@localhost", "PRIVMSG", ["#chan", "Hey!"]),
    (":dan!d@localhost PRIVMSG #chan Hey!", {}, "dan!d@localhost", "PRIVMSG", ["#chan", "Hey!"]),
    (":dan!d@localhost PRIVMSG #chan ::-)", {}, "dan!d@localhost", "PRIVMSG", ["#chan", ":-)"]),
    ("@id=123AB;rose PING x", {"id": "123AB", "rose": ""}, None, "PING", ["x"]),
    ("@url=;netsplit=tur,ty PING x", {"url": "", "netsplit": "tur,ty"}, None, "PING", ["x"]),
]

# IRCv3 message-tags "Examples" section.
IRCV3_TAG_EXAMPLES = [
    (
        ":nick!ident@host.com PRIVMSG me :Hello",
        {},
        "nick!ident@host.com",
        "PRIVMSG",
        ["me", "Hello"],
    ),
    (
        "@aaa=bbb;ccc;example.com/ddd=eee :nick!ident@host.com PRIVMSG me :Hello",
        {"aaa": "bbb", "ccc": "", "example.com/ddd": "eee"},
        "nick!ident@host.com",
        "PRIVMSG",
        ["me", "Hello"],
    ),
    (
        "@example-tag=example-value PRIVMSG #channel :Message",
        {"example-tag": "example-value"},
        None,
        "PRIVMSG",
        ["#channel", "Message"],
    ),
    (
        "@+icon=https://example.com/favicon.png :url_bot!bot@example.com PRIVMSG #channel "
        ":Example.com: A News Story",
        {"+icon": "https://example.com/favicon.png"},
        "url_bot!bot@example.com",
        "PRIVMSG",
        ["#channel", "Example.com: A News Story"],
    ),
    (
        "@+example.com/foo=bar :irc.example.com NOTICE #channel "
        ":A vendor-prefixed client-only tagged message",
        {"+example.com/foo": "bar"},
        "irc.example.com",
        "NOTICE",
        ["#channel", "A vendor-prefixed client-only tagged message"],
    ),
    (
        "@+example=raw+:=,escaped\\:\\s\\\\ :irc.example.com NOTICE #channel :Message",
        {"+example": "raw+:=,escaped; \\"},
        "irc.example.com",
        "NOTICE",
        ["#channel", "Message"],
    ),
    (
        "@+example-client-tag=example-value TAGMSG @#channel",
        {"+example-client-tag": "example-value"},
        None,
        "TAGMSG",
        ["@#channel"],
    ),
    (
        "@label=123;msgid=abc;+example-client-tag=example-value :nick!user@example.com "
        "TAGMSG #channel",
        {"label": "123", "msgid": "abc", "+example-client-tag": "example-value"},
        "nick!user@example.com",
        "TAGMSG",
        ["#channel"],
    ),
    (
        ":server.example.com 417 nick :Input line was too long",
        {},
        "server.example.com",
        "417",
        ["nick", "Input line was too long"],
    ),
]


@pytest.mark.parametrize(
    ("line", "tags", "source", "command", "params"), MODERN_IRC_EXAMPLES + IRCV3_TAG_EXAMPLES
)
def test_parse_spec_examples(
    line: str, tags: dict[str, str], source: str | None, command: str, params: list[str]
) -> None:
    msg = Message.parse(line)
    assert (msg.tags, msg.source, msg.command, msg.params) == (tags, source, command, params)


@pytest.mark.parametrize(
    ("line", "tags", "source", "command", "params"), MODERN_IRC_EXAMPLES + IRCV3_TAG_EXAMPLES
)
def test_spec_examples_survive_format(
    line: str, tags: dict[str, str], source: str | None, command: str, params: list[str]
) -> None:
    msg = Message(command, params, source, tags)
    assert Message.parse(msg.to_str()) == msg


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("test\\", "test"),  # lone trailing backslash: no output character
        ("raw+:=,escaped\\:\\s\\\\", "raw+:=,escaped; \\"),
        ("a\\rb\\nc", "a\rb\nc"),
        ("\\b\\x", "bx"),  # unknown escapes drop the backslash
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_unescape_tag_value(raw: str, value: str) -> None:
    assert unescape_tag_value(raw) == value


@pytest.mark.parametrize(
    ("value", "escaped"),
    [("raw+:=,escaped; \\", "raw+:=,escaped\\:\\s\\\\"), ("a\r\nb", "a\\r\\nb"), ("x", "x")],
)
def test_escape_tag_value(value: str, escaped: str) -> None:
    assert escape_tag_value(value) == escaped
    assert unescape_tag_value(escaped) == value


def test_duplicate_tag_keeps_the_last() -> None:
    assert parse_tags("a=1;b;a=2") == {"a": "2", "b": ""}


def test_format_tags_key_without_value() -> None:
    assert format_tags({"ccc": "", "aaa": "b b"}) == "ccc;aaa=b\\sb"


@pytest.mark.parametrize(
    ("msg", "line"),
    [
        (Message("PRIVMSG", ["#chan", "Hey!"]), "PRIVMSG #chan Hey!"),
        (Message("PRIVMSG", ["#chan", "Hey there"]), "PRIVMSG #chan :Hey there"),
        (Message("PRIVMSG", ["#chan", ":-)"]), "PRIVMSG #chan ::-)"),
        (Message("CAP", ["*", "LIST", ""]), "CAP * LIST :"),
        (Message("QUIT"), "QUIT"),
        (Message("001", ["me", "hi"], "srv"), ":srv 001 me hi"),
        (Message("TAGMSG", ["#c"], tags={"+typing": "active"}), "@+typing=active TAGMSG #c"),
    ],
)
def test_format(msg: Message, line: str) -> None:
    assert msg.to_str() == line
    assert msg.to_bytes() == (line + "\r\n").encode()


@pytest.mark.parametrize(
    "params",
    [
        ["has space", "x"],
        ["", "x"],
        [":colon", "x"],
        ["#c", "line\r\nbreak"],
        ["#c", "nul\0"],
        ["cr\r", "x"],
    ],
)
def test_format_refuses_unsendable_params(params: list[str]) -> None:
    with pytest.raises(ValueError):
        Message("PRIVMSG", params).to_str()


@pytest.mark.parametrize("line", ["", "   ", "\r\n", "@a=b", "@a=b ", ":src", ":src  ", "@a :src"])
def test_parse_rejects_lines_without_command(line: str) -> None:
    with pytest.raises(MessageError):
        Message.parse(line)


@pytest.mark.parametrize(
    ("line", "command", "params"),
    [
        (b"PRIVMSG #c :caf\xc3\xa9\r\n", "PRIVMSG", ["#c", "café"]),
        (b"PRIVMSG #c :bad \xff byte", "PRIVMSG", ["#c", "bad \ufffd byte"]),
        ("privmsg #c hi\n", "PRIVMSG", ["#c", "hi"]),
        ("PRIVMSG   #c    :two  spaces", "PRIVMSG", ["#c", "two  spaces"]),
        ("PRIVMSG #c a:b", "PRIVMSG", ["#c", "a:b"]),
        ("PRIVMSG #c\ttab :x", "PRIVMSG", ["#c\ttab", "x"]),
        ("PRIVMSG #c\xa0nbsp x\x0by", "PRIVMSG", ["#c\xa0nbsp", "x\x0by"]),
    ],
)
def test_parse_is_lenient(line: str | bytes, command: str, params: list[str]) -> None:
    msg = Message.parse(line)
    assert (msg.command, msg.params) == (command, params)


def test_nick_and_param_helpers() -> None:
    msg = Message.parse(":dan!d@localhost PRIVMSG #chan :Hey!")
    assert msg.nick == "dan"
    assert msg.param(1) == "Hey!"
    assert msg.param(5, "none") == "none"
    assert Message("PING").nick is None
    assert str(msg) == ":dan!d@localhost PRIVMSG #chan Hey!"


@pytest.mark.parametrize(
    ("source", "parts"),
    [
        ("dan!d@localhost", ("dan", "d", "localhost")),
        ("dan", ("dan", "", "")),
        ("irc.example.com", ("irc.example.com", "", "")),
        ("dan@localhost", ("dan", "", "localhost")),
        ("dan!d", ("dan", "d", "")),
    ],
)
def test_split_source(source: str, parts: tuple[str, str, str]) -> None:
    assert split_source(source) == parts


# A loaded CI machine must not turn slow example generation into a failure.
_relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- property: everything we may send parses back to the same message ----------------------

_FORBIDDEN = "\0\r\n"
_tag_keys = st.from_regex(r"\A\+?([a-z0-9-]+(\.[a-z0-9-]+)*/)?[A-Za-z0-9-]+\Z")
_tag_values = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)))
_middle = st.text(
    st.characters(blacklist_characters=_FORBIDDEN + " ", blacklist_categories=("Cs",)), min_size=1
).filter(lambda p: not p.startswith(":"))
_trailing = st.text(st.characters(blacklist_characters=_FORBIDDEN, blacklist_categories=("Cs",)))
_source = st.text(
    st.characters(blacklist_characters=_FORBIDDEN + " ", blacklist_categories=("Cs",)), min_size=1
)
_command = st.one_of(st.from_regex(r"\A[A-Z]{1,12}\Z"), st.from_regex(r"\A[0-9]{3}\Z"))


@st.composite
def messages(draw: st.DrawFn) -> Message:
    params = draw(st.lists(_middle, max_size=6))
    if draw(st.booleans()):
        params.append(draw(_trailing))
    return Message(
        command=draw(_command),
        params=params,
        source=draw(st.none() | _source),
        tags=draw(st.dictionaries(_tag_keys, _tag_values, max_size=5)),
    )


@_relaxed
@given(messages())
def test_parse_format_round_trip(msg: Message) -> None:
    assert Message.parse(msg.to_str()) == msg
    assert Message.parse(msg.to_bytes()) == msg


@_relaxed
@given(st.dictionaries(_tag_keys, _tag_values, max_size=8))
def test_tags_round_trip(tags: dict[str, str]) -> None:
    assert parse_tags(format_tags(tags)) == tags
