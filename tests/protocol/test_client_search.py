"""The SEARCH line a client sends and how it reads the answer (no network)."""

from __future__ import annotations

import pytest

from chat_protocol import Message
from chat_protocol.client import ClientConfig, IRCClient, Received, ServerAddress
from chat_protocol.client_search import SearchFailed, SearchQuery, search_results
from chat_protocol.message import parse_tags


@pytest.mark.parametrize(
    ("query", "line"),
    [
        (SearchQuery("apple"), "SEARCH text=apple"),
        (SearchQuery("  apple   pie "), "SEARCH text=apple\\spie"),
        (SearchQuery("a;b\\c"), "SEARCH text=a\\:b\\\\c"),
        (SearchQuery(":)"), "SEARCH text=:)"),
        (
            SearchQuery("pie", target="#fruit", sender="bob", limit=5),
            "SEARCH in=#fruit;from=bob;text=pie;limit=5",
        ),
        (SearchQuery(sender="bob"), "SEARCH from=bob"),
        (SearchQuery(target="bob", limit=0), "SEARCH in=bob;limit=0"),
        (
            SearchQuery("x", after="2026-12-06T10:00:00.000Z", before="2026-12-07T10:00:00.000Z"),
            "SEARCH text=x;after=2026-12-06T10:00:00.000Z;before=2026-12-07T10:00:00.000Z",
        ),
    ],
)
def test_query_line(query: SearchQuery, line: str) -> None:
    msg = query.to_message()
    assert msg.to_str() == line
    assert Message.parse(line).params == msg.params  # one parameter, as sent


def test_words_come_back_as_typed_after_escaping() -> None:
    text = "semi;colon back\\slash  two"
    attrs = parse_tags(SearchQuery(text).to_message().params[0])
    assert attrs == {"text": "semi;colon back\\slash two"}


@pytest.mark.parametrize("query", [SearchQuery(), SearchQuery("   "), SearchQuery("x", limit=-1)])
def test_a_query_without_criteria_is_refused(query: SearchQuery) -> None:
    with pytest.raises(ValueError):
        query.to_message()


def test_results_are_the_messages_and_a_refusal_raises() -> None:
    reply = [
        Message.parse("@batch=s1;msgid=a;time=2026-12-06T10:00:00.000Z :bob!b@h PRIVMSG #r :hi"),
        Message.parse("@batch=s1 :bob!b@h NOTICE #r :note"),
    ]
    assert search_results(reply) == reply
    with pytest.raises(SearchFailed, match="No such target"):
        search_results([Message.parse("FAIL SEARCH INVALID_PARAMS in :No such target")])
    with pytest.raises(SearchFailed, match="capability"):
        search_results([Message.parse(":srv 421 alice SEARCH :Needs the capability")])


def test_a_late_search_answer_is_not_news() -> None:
    """Results that arrive after the request gave up waiting are dropped, not shown as
    new messages in their rooms."""
    client = IRCClient(ClientConfig([ServerAddress("127.0.0.1", 6667)], "alice"))
    for line in [
        "@label=dc1 :srv BATCH +s1 soju.im/search",
        "@batch=s1;time=2026-12-06T10:00:00.000Z;msgid=a :bob!b@h PRIVMSG #r :old words",
        ":srv BATCH -s1",
        "@time=2026-12-06T10:01:00.000Z;msgid=b :bob!b@h PRIVMSG #r :live words",
    ]:
        client._dispatch(Message.parse(line))
    events = []
    while not client._events.empty():
        events.append(client._events.get_nowait())
    assert [e.message.param(1) for e in events if isinstance(e, Received)] == ["live words"]
