"""The everyday slash commands: rooms, talking, people, and you.

Each returns effects (``chat_tui.effects``) and never does I/O; see ``command_table``
for how they are registered and ``commands.run`` for how a typed line finds them.
"""

from __future__ import annotations

from chat_protocol import casefold, is_channel, valid_channel, valid_nick
from chat_tui.command_table import (
    CommandError,
    CommandGroup,
    channel_here,
    in_room,
    need,
    room_name,
)
from chat_tui.effects import (
    CloseRoom,
    CopyMode,
    Effect,
    Join,
    Note,
    OpenRoom,
    OpenSearch,
    Part,
    Quit,
    RegisterAccount,
    Say,
    Send,
    ShowScreen,
)
from chat_tui.state import ChatState

TALK = CommandGroup()


@TALK.command("join", "/join <room>[,<room>…] [key]", "join rooms (the # is optional)", ("j",))
def _join(args: str, state: ChatState) -> list[Effect]:
    rooms_arg, _, key = need(args, TALK.usage("join")).partition(" ")
    effects: list[Effect] = []
    for word in filter(None, rooms_arg.split(",")):
        name = room_name(word)
        if not valid_channel(name):
            raise CommandError(f"{word!r} is not a valid room name")
        state.focus_on_join.add(casefold(name))
        existing = state.room(name)
        if existing is not None and existing.joined:
            effects.append(OpenRoom(existing.name))
        else:
            effects.append(Join(name, key.strip() or None))
    if not effects:
        raise CommandError(f"missing argument — usage: {TALK.usage('join')}")
    return effects


@TALK.command("leave", "/leave [#room] [reason]", "leave the current room (or #room)", ("part",))
def _leave(args: str, state: ChatState) -> list[Effect]:
    first, _, rest = args.strip().partition(" ")
    if first and is_channel(first):
        return [Part(first, rest.strip())]
    room = state.current_room
    if room.is_query:
        return [CloseRoom(room.name)]
    return [Part(channel_here(state, "/leave"), args.strip())]


@TALK.command("close", "/close", "close a direct conversation (or leave a room)")
def _close(args: str, state: ChatState) -> list[Effect]:
    return _leave(args, state)


@TALK.command("list", "/list [filter]", "browse the rooms on the server; Enter joins")
def _list(args: str, state: ChatState) -> list[Effect]:
    state.room_list_done = False
    state.room_list = []
    return [ShowScreen("list"), Send("LIST " + args.strip() if args.strip() else "LIST")]


@TALK.command("search", "/search [words] [from:nick]", "search messages (or press Ctrl+F)")
def _search(args: str, state: ChatState) -> list[Effect]:
    return [OpenSearch(args.strip())]


@TALK.command("copy", "/copy", "select messages to copy their text (or press Ctrl+Y)")
def _copy(args: str, state: ChatState) -> list[Effect]:
    return [CopyMode()]


@TALK.command("quit", "/quit [reason]", "disconnect and exit")
def _quit(args: str, state: ChatState) -> list[Effect]:
    return [Quit(args.strip() or "Leaving")]


@TALK.command("nick", "/nick <newnick>", "change your nick")
def _nick(args: str, state: ChatState) -> list[Effect]:
    new = need(args, TALK.usage("nick"))
    if not valid_nick(new):
        raise CommandError(f"{new!r} is not a valid nick (letters, digits, -_[]{{}}|^`, ≤30)")
    return [Send(f"NICK {new}")]


@TALK.command("msg", "/msg <nick> <text>", "send a direct message", ("query", "q"))
def _msg(args: str, state: ChatState) -> list[Effect]:
    target, _, text = need(args, TALK.usage("msg")).partition(" ")
    if not (valid_nick(target) or valid_channel(target)):
        raise CommandError(f"{target!r} is not a nick or room")
    effects: list[Effect] = [] if is_channel(target) else [OpenRoom(target)]
    if text.strip():
        effects.append(Say(target, text))
    elif is_channel(target):
        raise CommandError(f"missing text — usage: {TALK.usage('msg')}")
    return effects


@TALK.command("me", "/me <action>", "describe what you do (*alice waves*)")
def _me(args: str, state: ChatState) -> list[Effect]:
    return [Say(in_room(state, "/me"), need(args, TALK.usage("me")), action=True)]


@TALK.command("topic", "/topic [new topic]", "show or set the room topic")
def _topic(args: str, state: ChatState) -> list[Effect]:
    room = channel_here(state, "/topic")
    if not args.strip():
        topic = state.roster.topic(room)
        return [Note(f"Topic of {room}: {topic}" if topic else f"{room} has no topic")]
    return [Send(f"TOPIC {room} :{args.strip()}")]


@TALK.command("names", "/names [#room]", "list who is in a room")
def _names(args: str, state: ChatState) -> list[Effect]:
    room = room_name(args.strip()) if args.strip() else channel_here(state, "/names")
    state.names_requested.add(casefold(room))
    return [Send(f"NAMES {room}")]


@TALK.command("who", "/who [#room|nick]", "show details about people")
def _who(args: str, state: ChatState) -> list[Effect]:
    mask = args.strip() or channel_here(state, "/who")
    state.who_requested.add(casefold(mask))
    return [Send(f"WHO {mask}")]


@TALK.command("whois", "/whois <nick>", "show details about one person")
def _whois(args: str, state: ChatState) -> list[Effect]:
    return [Send(f"WHOIS {need(args, TALK.usage('whois'))}")]


@TALK.command("away", "/away [message]", "mark yourself away (no message: back)")
def _away(args: str, state: ChatState) -> list[Effect]:
    state.connection.away_message = args.strip()  # said again after a reconnect
    return [Send(f"AWAY :{args.strip()}" if args.strip() else "AWAY")]


@TALK.command(
    "register",
    "/register [email] <password>",
    "create an account named like your nick; you are then logged in to it",
)
def _register(args: str, state: ChatState) -> list[Effect]:
    words = need(args, TALK.usage("register"))
    first, _, rest = words.partition(" ")
    email = None
    if "@" in first and rest.strip():
        email, words = first, rest.strip()
        if email.startswith(":") or not all(c.isprintable() for c in email):
            raise CommandError(f"{email!r} is not an email address")
    if state.connection.account:
        raise CommandError(f"you are already logged in as {state.connection.account}")
    return [RegisterAccount(words, email)]


@TALK.command("raw", "/raw <IRC line>", "send a raw IRC line", ("quote",))
def _raw(args: str, state: ChatState) -> list[Effect]:
    return [Send(need(args, TALK.usage("raw")))]
