"""SEARCH (soju.im/search) over IRC against a real server: words, room, sender, time,
limit; the answer's batch and tags; odd input gets a FAIL or a correct batch, never a
traceback; a labeled SEARCH carries its label."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chat_protocol import Message
from chat_protocol.servertime import parse_ms
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess

CAPS = ["message-tags", "server-time", "batch", "echo-message", "soju.im/search"]


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path, flood_limit=False) as server:
        yield server
    bad = [line for line in server.log if "Traceback" in line or "error handling" in line]
    assert not bad, "\n".join(server.log[-40:])


@pytest.fixture
def client(srv: ServerProcess) -> Iterator[Callable[..., RawClient]]:
    clients: list[RawClient] = []

    def make(nick: str, caps: list[str] | None = None) -> RawClient:
        c = RawClient(srv.host, srv.port)
        clients.append(c)
        c.register(nick, caps=CAPS if caps is None else caps)
        return c

    yield make
    for c in clients:
        c.close()


def results(lines: list[Message]) -> list[Message]:
    """The messages of the one soju.im/search batch in ``lines``; nothing else sent."""
    starts = [m for m in lines if m.command == "BATCH" and m.params[0].startswith("+")]
    assert [m.params[1:] for m in starts] == [["soju.im/search"]], [str(m) for m in lines]
    ref = starts[0].params[0][1:]
    assert str(lines[-1]).endswith(f"BATCH -{ref}"), [str(m) for m in lines]
    inside = lines[lines.index(starts[0]) + 1 : -1]
    assert all(m.tags.get("batch") == ref for m in inside), [str(m) for m in lines]
    return inside


def texts(lines: list[Message]) -> list[str]:
    return [m.params[-1] for m in results(lines)]


def fails(lines: list[Message]) -> list[list[str]]:
    return [m.params[:2] for m in lines if m.command == "FAIL"]


class Sent:
    """An echoed message: what a search result must reproduce."""

    def __init__(self, echo: Message) -> None:
        self.msgid = echo.tags["msgid"]
        self.time = echo.tags["time"]
        self.ms = parse_ms(self.time)
        self.source = echo.source or ""
        self.target = echo.params[0]
        self.text = echo.params[1]


def say(c: RawClient, target: str, *lines: str) -> list[Sent]:
    sent = []
    for text in lines:
        c.send(f"PRIVMSG {target} :{text}")
        sent.append(Sent(c.expect("PRIVMSG", pattern=re.escape(text))))
    return sent


@pytest.fixture
def talk(client: Callable[..., RawClient]) -> dict[str, object]:
    """alice and bob in #fruit and #veg, carol in #veg, a DM between alice and bob."""
    alice, bob, carol = client("alice"), client("bob"), client("carol")
    for c, rooms in ((alice, ("#fruit", "#veg")), (bob, ("#fruit", "#veg")), (carol, ("#veg",))):
        for room in rooms:
            c.answer(f"JOIN {room}")
    sent = say(alice, "#fruit", "red apple pie", "green apple", "banana split")
    sent += say(bob, "#fruit", "an APPLE a day", "cherry on top")
    sent += say(carol, "#veg", "apple is not a vegetable", "carrot cake")
    sent += say(alice, "bob", "secret apple recipe")
    return {"alice": alice, "bob": bob, "carol": carol, "sent": sent}


# -- what is found ------------------------------------------------------------------------


def test_search_by_words_room_sender_and_limit(talk: dict) -> None:
    alice: RawClient = talk["alice"]
    sent: list[Sent] = talk["sent"]
    by_text = {s.text: s for s in sent}

    def found(query: str) -> list[str]:
        return texts(alice.answer(f"SEARCH {query}"))

    assert found("text=apple") == [
        "red apple pie", "green apple", "an APPLE a day", "apple is not a vegetable",
        "secret apple recipe",
    ]  # fmt: skip
    assert found("text=APPLE\\spie") == ["red apple pie"]  # every word, any case
    assert found("text=pie\\sapple") == ["red apple pie"]
    assert found("text=apple;in=#fruit") == ["red apple pie", "green apple", "an APPLE a day"]
    assert found("text=apple;in=#FRUIT") == ["red apple pie", "green apple", "an APPLE a day"]
    assert found("text=apple;in=bob") == ["secret apple recipe"]
    assert found("from=bob") == ["an APPLE a day", "cherry on top"]
    assert found("from=BOB;text=cherry") == ["cherry on top"]
    assert found("in=#veg;from=carol") == ["apple is not a vegetable", "carrot cake"]
    assert found("in=#veg") == ["apple is not a vegetable", "carrot cake"]
    assert found("text=apple;limit=2") == ["apple is not a vegetable", "secret apple recipe"]
    assert found("text=apple;limit=0") == []
    assert found("text=durian") == []
    assert found("from=nobody") == []

    # Each result is the message as it was sent: source, target, text, time, msgid.
    got = results(alice.answer("SEARCH text=apple;in=#fruit"))
    for m in got:
        s = by_text[m.params[1]]
        assert (m.command, m.source, m.params[0]) == ("PRIVMSG", s.source, "#fruit")
        assert (m.tags["time"], m.tags["msgid"]) == (s.time, s.msgid)


def test_search_by_time(talk: dict) -> None:
    """after= and before= are exclusive bounds in server-time; the expected answer is
    computed from the echoes' own times (several may share a millisecond)."""
    alice: RawClient = talk["alice"]
    sent: list[Sent] = talk["sent"]
    readable = sent  # alice reads all of them
    for pivot in (sent[1], sent[3], sent[5]):
        got = texts(alice.answer(f"SEARCH text=apple;after={pivot.time}"))
        assert got == [s.text for s in readable if "apple" in s.text.lower() and s.ms > pivot.ms]
        got = texts(alice.answer(f"SEARCH text=apple;before={pivot.time}"))
        assert got == [s.text for s in readable if "apple" in s.text.lower() and s.ms < pivot.ms]
    first, last = sent[0], sent[-1]
    got = texts(alice.answer(f"SEARCH from=alice;after={first.time};before={last.time}"))
    assert got == [s.text for s in sent
                   if s.source.startswith("alice!") and first.ms < s.ms < last.ms]  # fmt: skip
    got = texts(alice.answer("SEARCH text=apple;after=2100-01-01T00:00:00.000Z"))
    assert got == []
    got = texts(alice.answer("SEARCH text=apple;before=2000-01-01T00:00:00.000Z"))
    assert got == []


def test_search_carries_client_tags_and_a_label(client: Callable[..., RawClient]) -> None:
    alice = client("alice", [*CAPS, "labeled-response"])
    alice.answer("JOIN #tags")
    alice.send("@+draft/reply=abc PRIVMSG #tags :tagged words")
    alice.expect("PRIVMSG")
    got = alice.answer("@label=L1 SEARCH text=tagged")
    assert results(got)[0].tags["+draft/reply"] == "abc"
    assert got[0].tags.get("label") == "L1", [str(m) for m in got]
    got = alice.answer("@label=L2 SEARCH text=absent")  # an empty answer is labeled too
    assert results(got) == [] and got[0].tags.get("label") == "L2", [str(m) for m in got]
    got = alice.answer("@label=L3 SEARCH bogus=1")
    assert fails(got) == [["SEARCH", "INVALID_PARAMS"]]
    assert got[0].tags.get("label") == "L3", [str(m) for m in got]


def test_search_needs_the_capability(client: Callable[..., RawClient]) -> None:
    plain = client("plain", ["message-tags", "server-time", "batch"])
    got = plain.answer("SEARCH text=x")
    assert [m.command for m in got] == ["421"], [str(m) for m in got]


# -- odd input -----------------------------------------------------------------------------

REFUSED = [
    "SEARCH bogus=1;text=apple",
    "SEARCH text=apple;limit=\u00b2",
    "SEARCH text=apple;limit=\u0663",
    "SEARCH text=apple;limit=-1",
    "SEARCH text=apple;limit=",
    "SEARCH text=apple;limit=" + "9" * 40,
    "SEARCH text=apple;after=yesterday",
    "SEARCH text=apple;before=2023-02-29T00:00:00.000Z",
    "SEARCH text=apple;after=10000-01-01T00:00:00.000Z",
    "SEARCH text=apple;in=#nowhere",
    "SEARCH text=apple;in=*",
    "SEARCH ;;;==;",  # an empty attribute name (it is named in the FAIL: must be a token)
    "SEARCH :a b=1;text=apple",  # a name with a space
    "SEARCH :",
    "SEARCH text=",
    "SEARCH text=\\s\\s",
]


def test_odd_attributes_get_a_fail(client: Callable[..., RawClient]) -> None:
    alice = client("alice")
    alice.answer("JOIN #odd")
    say(alice, "#odd", "apple")
    for n, line in enumerate(REFUSED):
        got = alice.answer(line, f"t{n}")
        assert [f[0] for f in fails(got)] == ["SEARCH"], (line, [str(m) for m in got])
        assert not [m for m in got if m.command in ("BATCH", "PRIVMSG")], line
    got = alice.answer("SEARCH")
    assert [m.command for m in got] == ["461"], [str(m) for m in got]
    assert texts(alice.answer("SEARCH text=apple")) == ["apple"]  # still answering


# Texts that hold FTS5 syntax, and the words to search for in them.
SYNTAX_TEXTS = [
    'he said "hi" to me',
    "star * power",
    "NEAR(this, that) OR maybe AND NOT",
    "col:umn ^caret -minus (paren) {braces}",
    "plain words only",
]
SYNTAX_QUERIES = [
    '"hi"', '"hi', 'said "hi"', "*", "star*", "power *", "NEAR(", "NEAR(this", "NEAR(this, that)",
    "OR", "maybe OR plain", "AND", "NOT", "NOT plain", "col:umn", "^caret", "-minus", "(paren)",
    "{braces}", "'", "%", "_", "\\\\", "words)",
]  # fmt: skip


def tokens(text: str) -> list[str]:
    """FTS5's unicode61 tokens of ``text``: runs of letters and digits, case folded."""
    return [t.lower() for t in re.findall(r"[^\W_]+", text)]


def expected(query: str) -> list[str] | None:
    """The texts a search for ``query`` must find (every token of the query somewhere
    in the text: the index keeps no word positions), or None when the query has no
    token (a FAIL or an empty batch are both right)."""
    wanted = tokens(query)
    if not wanted:
        return None
    return [t for t in SYNTAX_TEXTS if set(wanted) <= set(tokens(t))]


def test_fts_syntax_in_search_words_is_taken_literally(
    srv: ServerProcess, client: Callable[..., RawClient]
) -> None:
    alice = client("alice")
    alice.answer("JOIN #syntax")
    say(alice, "#syntax", *SYNTAX_TEXTS)
    for n, query in enumerate(SYNTAX_QUERIES):
        escaped = query.replace("\\", "\\\\").replace(";", "\\:").replace(" ", "\\s")
        got = alice.answer(f"SEARCH in=#syntax;text={escaped}", f"q{n}")
        want = expected(query)
        if want is None:
            assert fails(got) == [["SEARCH", "INVALID_PARAMS"]] or texts(got) == [], (query, got)
        else:
            assert not fails(got), (query, [str(m) for m in got])
            assert texts(got) == want, query
