"""ChatState: IRC messages in, rooms, unread counts and members out (no network)."""

from __future__ import annotations

from chat_protocol import Message
from chat_tui.model import MAX_LINES, ChatLine, LineKind, Room, parse_server_time
from chat_tui.roster import Member
from chat_tui.state import ChatState


def feed(state: ChatState, *lines: str, history: bool = False) -> None:
    """Apply lines and follow focus changes the way the app does."""
    for line in lines:
        update = state.apply(Message.parse(line), history)
        if update.focus:
            state.switch(update.focus)


def joined(*rooms: str, nick: str = "alice") -> ChatState:
    state = ChatState(nick)
    for room in rooms:
        feed(state, f":{nick}!a@h JOIN {room}")
    return state


def test_own_join_creates_room_and_focuses_first() -> None:
    state = joined("#general", "#random")
    assert [r.name for r in state.ordered_rooms()] == ["#general", "#random", "*server*"]
    assert state.current == "#general"
    assert state.room("#GENERAL") is state.room("#general")


def test_join_requested_by_user_takes_focus() -> None:
    state = joined("#general")
    state.focus_on_join.add("#random")
    update = state.apply(Message.parse(":alice!a@h JOIN #random"))
    assert update.focus == "#random"


def test_unread_and_mentions_count_only_elsewhere_and_clear_on_switch() -> None:
    state = joined("#general", "#random")
    feed(
        state,
        ":bob!b@h PRIVMSG #random :hello",
        ":bob!b@h PRIVMSG #random :alice: you there?",
        ":bob!b@h PRIVMSG #general :in the current room",
    )
    random = state.room("#random")
    assert random is not None
    assert (random.unread, random.mentions) == (2, 1)
    assert state.room("#general").unread == 0  # type: ignore[union-attr]
    assert state.next_unread() == "#random"
    state.switch("#random")
    assert (random.unread, random.mentions) == (0, 0)


def test_history_and_own_lines_and_events_are_not_unread() -> None:
    state = joined("#general", "#random")
    feed(state, ":bob!b@h PRIVMSG #random :old", history=True)
    feed(state, ":alice!a@h PRIVMSG #random :mine", ":carol!c@h JOIN #random")
    assert state.room("#random").unread == 0  # type: ignore[union-attr]


def test_next_unread_prefers_mentions() -> None:
    state = joined("#a", "#b", "#c")
    feed(state, ":bob!b@h PRIVMSG #b :plain", ":bob!b@h PRIVMSG #c :alice: look")
    assert state.next_unread() == "#c"


def test_direct_message_opens_conversation_and_counts_as_mention() -> None:
    state = joined("#general")
    feed(state, ":bob!b@h PRIVMSG alice :psst")
    query = state.room("bob")
    assert query is not None and query.is_query
    assert (query.unread, query.mentions) == (1, 1)
    feed(state, ":alice!a@h PRIVMSG bob :hi back")  # our echo goes to the same room
    assert [line.text for line in query.lines] == ["psst", "hi back"]


def test_duplicate_msgid_is_dropped() -> None:
    state = joined("#general")
    line = "@msgid=x1;time=2024-01-01T00:00:00.000Z :bob!b@h PRIVMSG #general :once"
    feed(state, line, line)
    feed(state, line, history=True)
    texts = [ln.text for ln in state.room("#general").lines]  # type: ignore[union-attr]
    assert texts.count("once") == 1


def test_history_is_inserted_in_time_order() -> None:
    state = joined("#general")
    feed(state, "@msgid=b;time=2024-01-02T00:00:00.000Z :bob!b@h PRIVMSG #general :second")
    update = state.apply(
        Message.parse("@msgid=a;time=2024-01-01T00:00:00.000Z :bob!b@h PRIVMSG #general :first"),
        history=True,
    )
    assert "#general" in update.reordered
    texts = [ln.text for ln in state.room("#general").lines if ln.nick == "bob"]  # type: ignore[union-attr]
    assert texts == ["first", "second"]


def test_names_replies_replace_members_with_prefixes() -> None:
    state = joined("#general")
    feed(
        state,
        ":srv 005 alice PREFIX=(ov)@+ BOT=B :are supported",
        ":srv 353 alice = #general :@alice +bob carol!c@host @+dave",
        ":srv 366 alice #general :End of /NAMES list",
    )
    assert [(m.prefixes, m.nick) for m in state.roster.members("#general")] == [
        ("@", "alice"),
        ("@+", "dave"),
        ("+", "bob"),
        ("", "carol"),
    ]


def test_part_quit_kick_nick_update_members_and_show_dim_lines() -> None:
    state = joined("#general")
    feed(
        state,
        ":srv 353 alice = #general :alice bob carol dave",
        ":srv 366 alice #general :End",
        ":bob!b@h PART #general :bye",
        ":carol!c@h QUIT :gone",
        ":alice!a@h KICK #general dave :spam",
        ":erin!e@h JOIN #general",
        ":erin!e@h NICK erin2",
    )
    room = state.room("#general")
    assert room is not None
    assert {m.nick for m in state.roster.members("#general")} == {"alice", "erin2"}
    events = [ln.text for ln in room.lines if ln.kind == LineKind.EVENT]
    assert "← bob left #general (bye)" in events
    assert "← carol quit (gone)" in events
    assert "erin is now known as erin2" in events


def test_own_nick_change_updates_state() -> None:
    state = joined("#general")
    feed(state, ":alice!a@h NICK alicia")
    assert state.nick == "alicia"


def test_mode_changes_prefixes() -> None:
    state = joined("#general")
    feed(
        state,
        ":srv 353 alice = #general :alice bob",
        ":srv 366 alice #general :End",
        ":alice!a@h MODE #general +o bob",
    )
    assert Member("bob", "@") in state.roster.members("#general")
    feed(state, ":alice!a@h MODE #general -o bob")
    assert Member("bob", "") in state.roster.members("#general")


def test_own_part_removes_room_and_moves_on() -> None:
    state = joined("#a", "#b")
    state.switch("#a")
    update = state.apply(Message.parse(":alice!a@h PART #a"))
    assert state.room("#a") is None and update.sidebar
    assert state.current == "#b"


def test_topic_and_list_replies() -> None:
    state = joined("#general")
    feed(state, ":srv 332 alice #general :Welcome!")
    assert state.roster.topic("#GENERAL") == "Welcome!"
    feed(
        state,
        ":srv 321 alice Channel :Users Name",
        ":srv 322 alice #general 3 :Welcome!",
        ":srv 322 alice #dev 1 :",
        ":srv 323 alice :End of /LIST",
    )
    assert state.room_list_done
    assert [(e.name, e.users) for e in state.room_list] == [("#general", 3), ("#dev", 1)]


def test_error_numeric_becomes_red_line_in_current_room() -> None:
    state = joined("#general")
    state.connection.state = "connected"
    feed(state, ":srv 403 alice #nope :No such channel")
    last = state.room("#general").lines[-1]  # type: ignore[union-attr]
    assert last.kind == LineKind.ERROR and "#nope" in last.text


def test_typing_notifications() -> None:
    state = joined("#general")
    feed(state, "@+typing=active :bob!b@h TAGMSG #general")
    room = state.room("#general")
    assert room is not None and room.typing_now() == ["bob"]
    feed(state, "@+typing=done :bob!b@h TAGMSG #general")
    assert room.typing_now() == []
    feed(state, "@+typing=active :bob!b@h TAGMSG #general")
    assert room.typing_now(now=10**12) == []  # expired


def test_bot_tag_marks_sender() -> None:
    state = joined("#general")
    feed(state, ":helper!h@h JOIN #general", "@bot :helper!h@h PRIVMSG #general :beep")
    room = state.room("#general")
    assert room is not None and room.lines[-1].bot
    assert Member("helper", bot=True) in state.roster.members("#general")


def test_room_keeps_at_most_max_lines() -> None:
    room = Room("#big")
    moment = parse_server_time("2024-01-01T00:00:00Z")
    for i in range(MAX_LINES + 5):
        room.add(ChatLine(moment, LineKind.MESSAGE, "bob", str(i), msgid=f"m{i}"))
    assert len(room.lines) == MAX_LINES and room.lines[0].text == "5"


def test_server_time_parsing() -> None:
    moment = parse_server_time("2024-03-05T09:01:02.345Z")
    assert (moment.hour, moment.minute, moment.microsecond) == (9, 1, 345000)
    assert parse_server_time("garbage").tzinfo is not None
