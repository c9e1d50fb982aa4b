"""Slash commands: parse what the user typed into effects the app carries out.

``run(line, state)`` never does I/O. It returns a list of effects (send this line,
say this text, open that screen, show that error) so every command is testable as
plain data, and a wrong command costs the user one red line, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from chat_protocol import casefold, is_channel, valid_channel, valid_nick
from chat_tui.ignore import normal_mask, valid_mask
from chat_tui.model import LineKind
from chat_tui.state import ChatState


@dataclass(frozen=True, slots=True)
class Send:
    """Send a raw IRC line."""

    line: str


@dataclass(frozen=True, slots=True)
class Say:
    """Send text (or a /me action) to a room or nick."""

    target: str
    text: str
    action: bool = False


@dataclass(frozen=True, slots=True)
class Join:
    room: str
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Part:
    room: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OpenRoom:
    """Open (and look at) a direct conversation."""

    name: str


@dataclass(frozen=True, slots=True)
class CloseRoom:
    name: str


@dataclass(frozen=True, slots=True)
class ShowScreen:
    name: str  # "list" | "help"


@dataclass(frozen=True, slots=True)
class OpenSearch:
    """Open the search screen, searching for ``text`` when it is given."""

    text: str = ""


@dataclass(frozen=True, slots=True)
class CopyMode:
    """Select lines of the shown room to copy their text."""


@dataclass(frozen=True, slots=True)
class Quit:
    reason: str


@dataclass(frozen=True, slots=True)
class RegisterAccount:
    """Create an account named like our nick (draft/account-registration)."""

    password: str = field(repr=False)
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """A client-side line in the current room (errors in red)."""

    text: str
    kind: LineKind = LineKind.INFO


Effect = (
    Send
    | Say
    | Join
    | Part
    | OpenRoom
    | CloseRoom
    | ShowScreen
    | OpenSearch
    | CopyMode
    | Quit
    | Note
    | RegisterAccount
)


class CommandError(ValueError):
    """A command the user got wrong; the message is shown as one line."""


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    usage: str
    summary: str
    run: Callable[[str, ChatState], list[Effect]]
    aliases: tuple[str, ...] = ()


COMMANDS: dict[str, CommandSpec] = {}
ALIASES: dict[str, str] = {}


def command(
    name: str, usage: str, summary: str, aliases: tuple[str, ...] = ()
) -> Callable[[Callable[[str, ChatState], list[Effect]]], Callable[[str, ChatState], list[Effect]]]:
    """Register a slash command with its usage line (shown in /help and in errors)."""

    def register(
        func: Callable[[str, ChatState], list[Effect]],
    ) -> Callable[[str, ChatState], list[Effect]]:
        COMMANDS[name] = CommandSpec(name, usage, summary, func, aliases)
        for alias in aliases:
            ALIASES[alias] = name
        return func

    return register


def room_name(word: str) -> str:
    """A room name as the user meant it: ``general`` becomes ``#general``."""
    return word if is_channel(word) else "#" + word


def _need(args: str, usage: str) -> str:
    if not args.strip():
        raise CommandError(f"missing argument — usage: {usage}")
    return args.strip()


def _in_room(state: ChatState, what: str) -> str:
    room = state.current_room
    if room.is_server:
        raise CommandError(f"{what} needs a room or conversation — /join one first")
    return room.name


def _channel_here(state: ChatState, what: str) -> str:
    room = state.current_room
    if not room.is_channel:
        raise CommandError(f"{what} works in a room — switch to one or name it")
    return room.name


def run(line: str, state: ChatState) -> list[Effect]:
    """Turn one input line into effects. Plain text is said in the current room."""
    if not line.strip():
        return []
    if not line.startswith("/") or line.startswith("//"):
        text = line[1:] if line.startswith("//") else line
        try:
            target = _in_room(state, "Sending a message")
        except CommandError as exc:
            return [Note(str(exc), LineKind.ERROR)]
        return [Say(target, text)]
    name, _, args = line[1:].partition(" ")
    name = casefold(name)
    name = ALIASES.get(name, name)
    spec = COMMANDS.get(name)
    if spec is None:
        return [Note(f"unknown command /{name} — /help lists the commands", LineKind.ERROR)]
    try:
        return spec.run(args, state)
    except CommandError as exc:
        return [Note(f"/{spec.name}: {exc}", LineKind.ERROR)]


@command("join", "/join <room>[,<room>…] [key]", "join rooms (the # is optional)", ("j",))
def _join(args: str, state: ChatState) -> list[Effect]:
    rooms_arg, _, key = _need(args, COMMANDS["join"].usage).partition(" ")
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
        raise CommandError(f"missing argument — usage: {COMMANDS['join'].usage}")
    return effects


@command("leave", "/leave [#room] [reason]", "leave the current room (or #room)", ("part",))
def _leave(args: str, state: ChatState) -> list[Effect]:
    first, _, rest = args.strip().partition(" ")
    if first and is_channel(first):
        return [Part(first, rest.strip())]
    room = state.current_room
    if room.is_query:
        return [CloseRoom(room.name)]
    return [Part(_channel_here(state, "/leave"), args.strip())]


@command("close", "/close", "close a direct conversation (or leave a room)")
def _close(args: str, state: ChatState) -> list[Effect]:
    return _leave(args, state)


@command("list", "/list [filter]", "browse the rooms on the server; Enter joins")
def _list(args: str, state: ChatState) -> list[Effect]:
    state.room_list_done = False
    state.room_list = []
    return [ShowScreen("list"), Send("LIST " + args.strip() if args.strip() else "LIST")]


@command("search", "/search [words] [from:nick]", "search messages (or press Ctrl+F)")
def _search(args: str, state: ChatState) -> list[Effect]:
    return [OpenSearch(args.strip())]


@command("copy", "/copy", "select messages to copy their text (or press Ctrl+Y)")
def _copy(args: str, state: ChatState) -> list[Effect]:
    return [CopyMode()]


@command("quit", "/quit [reason]", "disconnect and exit")
def _quit(args: str, state: ChatState) -> list[Effect]:
    return [Quit(args.strip() or "Leaving")]


@command("nick", "/nick <newnick>", "change your nick")
def _nick(args: str, state: ChatState) -> list[Effect]:
    new = _need(args, COMMANDS["nick"].usage)
    if not valid_nick(new):
        raise CommandError(f"{new!r} is not a valid nick (letters, digits, -_[]{{}}|^`, ≤30)")
    return [Send(f"NICK {new}")]


@command("msg", "/msg <nick> <text>", "send a direct message", ("query", "q"))
def _msg(args: str, state: ChatState) -> list[Effect]:
    target, _, text = _need(args, COMMANDS["msg"].usage).partition(" ")
    if not (valid_nick(target) or valid_channel(target)):
        raise CommandError(f"{target!r} is not a nick or room")
    effects: list[Effect] = [] if is_channel(target) else [OpenRoom(target)]
    if text.strip():
        effects.append(Say(target, text))
    elif is_channel(target):
        raise CommandError(f"missing text — usage: {COMMANDS['msg'].usage}")
    return effects


@command("me", "/me <action>", "describe what you do (*alice waves*)")
def _me(args: str, state: ChatState) -> list[Effect]:
    return [Say(_in_room(state, "/me"), _need(args, COMMANDS["me"].usage), action=True)]


@command("topic", "/topic [new topic]", "show or set the room topic")
def _topic(args: str, state: ChatState) -> list[Effect]:
    room = _channel_here(state, "/topic")
    if not args.strip():
        topic = state.current_room.topic
        return [Note(f"Topic of {room}: {topic}" if topic else f"{room} has no topic")]
    return [Send(f"TOPIC {room} :{args.strip()}")]


@command("names", "/names [#room]", "list who is in a room")
def _names(args: str, state: ChatState) -> list[Effect]:
    room = room_name(args.strip()) if args.strip() else _channel_here(state, "/names")
    state.names_requested.add(casefold(room))
    return [Send(f"NAMES {room}")]


@command("who", "/who [#room|nick]", "show details about people")
def _who(args: str, state: ChatState) -> list[Effect]:
    mask = args.strip() or _channel_here(state, "/who")
    state.who_requested.add(casefold(mask))
    return [Send(f"WHO {mask}")]


@command("whois", "/whois <nick>", "show details about one person")
def _whois(args: str, state: ChatState) -> list[Effect]:
    return [Send(f"WHOIS {_need(args, COMMANDS['whois'].usage)}")]


@command("away", "/away [message]", "mark yourself away (no message: back)")
def _away(args: str, state: ChatState) -> list[Effect]:
    state.connection.away_message = args.strip()  # said again after a reconnect
    return [Send(f"AWAY :{args.strip()}" if args.strip() else "AWAY")]


# Lines that hold a password: not kept in the input's recall history.
SECRET_COMMANDS = frozenset({"register"})


def holds_secret(line: str) -> bool:
    """Whether ``line`` is a command whose arguments are a secret (``/register pw``)."""
    if not line.startswith("/"):
        return False
    name = casefold(line[1:].partition(" ")[0])
    return ALIASES.get(name, name) in SECRET_COMMANDS


@command(
    "register",
    "/register [email] <password>",
    "create an account named like your nick; you are then logged in to it",
)
def _register(args: str, state: ChatState) -> list[Effect]:
    words = _need(args, COMMANDS["register"].usage)
    first, _, rest = words.partition(" ")
    email = None
    if "@" in first and rest.strip():
        email, words = first, rest.strip()
        if email.startswith(":") or not all(c.isprintable() for c in email):
            raise CommandError(f"{email!r} is not an email address")
    if state.connection.account:
        raise CommandError(f"you are already logged in as {state.connection.account}")
    return [RegisterAccount(words, email)]


@command("raw", "/raw <IRC line>", "send a raw IRC line", ("quote",))
def _raw(args: str, state: ChatState) -> list[Effect]:
    return [Send(_need(args, COMMANDS["raw"].usage))]


def _room_and_rest(args: str, state: ChatState, what: str) -> tuple[str, str]:
    """An optional leading ``#room`` (else the current room) and the words after it."""
    first, _, rest = args.strip().partition(" ")
    if first and is_channel(first):
        return first, rest.strip()
    return _channel_here(state, what), args.strip()


def _nick_arg(word: str) -> str:
    if not valid_nick(word):
        raise CommandError(f"{word!r} is not a valid nick")
    return word


@command("kick", "/kick [#room] <nick> [reason]", "remove someone from the room (ops)")
def _kick(args: str, state: ChatState) -> list[Effect]:
    room, rest = _room_and_rest(args, state, "/kick")
    nick, _, reason = _need(rest, COMMANDS["kick"].usage).partition(" ")
    line = f"KICK {room} {_nick_arg(nick)}"
    return [Send(f"{line} :{reason.strip()}" if reason.strip() else line)]


def _ban_mask(rest: str, usage: str) -> str:
    word = _need(rest, usage).split()[0]
    if not valid_mask(word) or (("!" not in word and "@" not in word) and not valid_nick(word)):
        raise CommandError(f"{word!r} is not a nick or nick!user@host mask")
    return normal_mask(word)


@command("ban", "/ban [#room] <nick|mask>", "ban a nick (as nick!*@*) or mask (ops)")
def _ban(args: str, state: ChatState) -> list[Effect]:
    room, rest = _room_and_rest(args, state, "/ban")
    return [Send(f"MODE {room} +b {_ban_mask(rest, COMMANDS['ban'].usage)}")]


@command("unban", "/unban [#room] <nick|mask>", "lift a ban (ops)")
def _unban(args: str, state: ChatState) -> list[Effect]:
    room, rest = _room_and_rest(args, state, "/unban")
    return [Send(f"MODE {room} -b {_ban_mask(rest, COMMANDS['unban'].usage)}")]


@command("mode", "/mode [target] <modes> [args]", "show or change room or user modes")
def _mode(args: str, state: ChatState) -> list[Effect]:
    words = args.split()
    if not words or words[0][0] in "+-":  # no target: the current room
        words.insert(0, _channel_here(state, "/mode without a target"))
    target = words[0]
    if not (is_channel(target) or valid_nick(target)):
        raise CommandError(f"{target!r} is not a room or nick")
    modes = words[1] if len(words) > 1 else "+"
    if modes[0] not in "+-" or not all(c.isalpha() or c in "+-" for c in modes):
        raise CommandError(f"{words[1]!r} are not modes — e.g. +m, -t, +o nick")
    return [Send(" ".join(["MODE", *words]))]


@command("invite", "/invite <nick> [#room]", "invite someone to this room (or #room)")
def _invite(args: str, state: ChatState) -> list[Effect]:
    nick, _, rest = _need(args, COMMANDS["invite"].usage).partition(" ")
    room = rest.strip() or _channel_here(state, "/invite without a room")
    if not valid_channel(room_name(room)):
        raise CommandError(f"{room!r} is not a valid room name")
    return [Send(f"INVITE {_nick_arg(nick)} {room_name(room)}")]


@command("ignore", "/ignore [nick|mask]", "hide someone's messages (no argument: list)")
def _ignore(args: str, state: ChatState) -> list[Effect]:
    word = args.strip()
    if not word:
        masks = state.ignores.masks
        return [Note(f"ignored: {', '.join(masks)}" if masks else "nobody is ignored")]
    if " " in word or not valid_mask(word):
        raise CommandError(f"{word!r} is not a nick or nick!user@host mask")
    mask = state.ignores.add(word)
    if mask is None:
        return [Note(f"{normal_mask(word)} is already ignored")]
    return [Note(f"ignoring {mask} for this session (to keep it, add it to ignore = [...] "
                 "in chat-tui.toml)")]  # fmt: skip


@command("unignore", "/unignore <nick|mask>", "stop ignoring someone")
def _unignore(args: str, state: ChatState) -> list[Effect]:
    word = _need(args, COMMANDS["unignore"].usage)
    mask = state.ignores.remove(word)
    if mask is None:
        raise CommandError(f"{word} is not ignored — /ignore lists who is")
    return [Note(f"no longer ignoring {mask} (for this session)")]


@command("help", "/help [command]", "show keys and commands", ("h", "?"))
def _help(args: str, state: ChatState) -> list[Effect]:
    wanted = casefold(args.strip().lstrip("/"))
    if not wanted:
        return [ShowScreen("help")]
    spec = COMMANDS.get(ALIASES.get(wanted, wanted))
    if spec is None:
        raise CommandError(f"no command /{wanted}")
    return [Note(f"{spec.usage} — {spec.summary}")]


def completions(prefix: str) -> list[str]:
    """Command names and word aliases (``/part``, ``/query``; not ``/j``), with the
    slash, that start with ``prefix``."""
    folded = casefold(prefix.lstrip("/"))
    names = [*COMMANDS, *(alias for alias in ALIASES if len(alias) > 2)]
    return sorted("/" + name for name in names if name.startswith(folded))
