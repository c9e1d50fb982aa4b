"""Plain data of the client connection: server addresses, configuration, events, errors.

Kept apart from ``client.py`` so that callers and tests can build configurations and
match events without pulling in any networking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chat_protocol.message import Message
from chat_protocol.sasl import MECHANISMS as SASL_MECHANISMS

DEFAULT_PORT = 6667
DEFAULT_TLS_PORT = 6697

# Capabilities we ask for when a server offers them; everything works without them.
WANTED_CAPS = (
    "cap-notify",
    "message-tags",
    "server-time",
    "echo-message",
    "batch",
    "labeled-response",
    "multi-prefix",
    "userhost-in-names",
    "draft/chathistory",
    "draft/read-marker",
    "soju.im/search",
    "account-notify",
    "account-tag",
    "extended-join",
    "away-notify",  # away marks in member lists without WHO polling
)


class NotConnected(ConnectionError):
    """Raised by the send methods while the client is offline; the caller keeps the text."""


class RegistrationError(ConnectionError):
    """The server refused to register us (bad password, no usable nick, ERROR), or a
    required login failed."""


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """One server to connect to; hashable so it can key per-server bookkeeping."""

    host: str
    port: int
    tls: bool = False  # ircs://: TLS, the server's certificate checked

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'ircs://' if self.tls else ''}{host}:{self.port}"


def _parse_one(item: str) -> ServerAddress:
    """``host[:port]``, ``[v6]:port``, ``irc://...`` (plaintext) or ``ircs://...`` (TLS,
    port 6697 unless given)."""
    scheme, sep, rest = item.partition("://")
    if sep:
        if scheme.lower() not in ("irc", "ircs"):
            raise ValueError(f"bad server address {item!r}: use irc:// or ircs://")
        tls = scheme.lower() == "ircs"
        address = _parse_one(rest.rstrip("/"))
        if tls and ":" not in rest.rsplit("]", 1)[-1]:
            address = ServerAddress(address.host, DEFAULT_TLS_PORT)
        return ServerAddress(address.host, address.port, tls)
    if item.startswith("["):
        host, sep, rest = item[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad server address {item!r}: expected [v6addr]:port")
        port_text = rest[1:] if rest else ""
    elif item.count(":") > 1:
        raise ValueError(f"bad server address {item!r}: put IPv6 addresses in brackets")
    else:
        host, _, port_text = item.partition(":")
        if item.endswith(":"):
            raise ValueError(f"bad server address {item!r}: empty port")
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"bad server address {item!r}: empty or blank host")
    if not port_text:
        return ServerAddress(host, DEFAULT_PORT)
    if not port_text.isdigit():
        raise ValueError(f"bad server address {item!r}: port is not a number")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"bad server address {item!r}: port out of range")
    return ServerAddress(host, port)


def parse_servers(spec: str) -> list[ServerAddress]:
    """Parse ``"host:port,ircs://host2:port2"`` (port defaults to 6667, 6697 for
    ``ircs://``). ValueError on bad input."""
    items = [part.strip() for part in spec.split(",")]
    if not any(items):
        raise ValueError("no server given")
    if not all(items):
        raise ValueError(f"empty entry in server list {spec!r}")
    return [_parse_one(item) for item in items]


@dataclass
class ClientConfig:
    """What to connect to and who to be; see docs/client-api.md for each field."""

    servers: list[ServerAddress]
    nick: str
    username: str | None = None
    realname: str = "distchat user"
    password: str | None = field(default=None, repr=False)  # PASS, the server's password
    channels: list[str] = field(default_factory=list)
    bot: bool = False
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    ping_interval: float = 30.0
    connect_timeout: float = 10.0
    gap_fill_limit: int = 500
    # TLS (ircs:// servers): the certificate is always checked against the system's
    # CAs, plus this PEM file when given (a private CA, or a self-signed certificate
    # itself); tls_verify=False turns checking off (for a throwaway test server only).
    tls_ca: str | None = None
    tls_verify: bool = True
    # Logging in to an account (SASL), during CAP negotiation and so before the nick is
    # claimed, on every (re)connect. ``sasl_mechanism`` None takes SCRAM-SHA-256 when the
    # server offers it, else PLAIN. A failed login is a LoginFailed event and the
    # connection goes on without an account, unless ``login_required``: then the attempt
    # ends (and is retried like any failed registration).
    account: str | None = None
    account_password: str | None = field(default=None, repr=False)
    sasl_mechanism: str | None = None
    login_required: bool = False
    # Registered under a fallback nick (``nick_``): watch for ``nick`` to come free (our
    # own ghost timing out, usually) and take it back (NickReclaimed); see client_nick.
    reclaim_nick: bool = True

    def __post_init__(self) -> None:
        if not self.servers:
            raise ValueError("ClientConfig needs at least one server")
        if not self.nick:
            raise ValueError("ClientConfig needs a nick")
        if self.reconnect_min <= 0 or self.reconnect_max < self.reconnect_min:
            raise ValueError("need 0 < reconnect_min <= reconnect_max")
        if bool(self.account) != bool(self.account_password):
            raise ValueError("an account needs its password, and a password its account")
        if self.sasl_mechanism is not None:
            self.sasl_mechanism = self.sasl_mechanism.upper()
            if self.sasl_mechanism not in SASL_MECHANISMS:
                known = ", ".join(SASL_MECHANISMS)
                raise ValueError(f"unknown SASL mechanism {self.sasl_mechanism!r} ({known})")

    @property
    def wants_login(self) -> bool:
        return bool(self.account and self.account_password)


@dataclass
class ChannelState:
    """What we know about one joined channel; replaced on every (re)join."""

    name: str
    topic: str = ""
    members: dict[str, str] = field(default_factory=dict)  # nick -> prefixes, e.g. "@+"
    modes: str = ""
    bots: set[str] = field(default_factory=set)
    # nick -> account, for members known to be logged in (extended-join, ACCOUNT, the
    # account tag); a member missing here may still have one.
    accounts: dict[str, str] = field(default_factory=dict)
    last_msgid: str | None = None
    last_time: str | None = None


@dataclass
class Event:
    """Base class of everything ``IRCClient.events()`` yields."""


@dataclass
class Connected(Event):
    """Registration finished (end of MOTD); sending works from now on."""

    server: ServerAddress
    nick: str


@dataclass
class Disconnected(Event):
    """A connection ended or an attempt failed; ``retry_in`` is None once closed for good."""

    reason: str
    retry_in: float | None


@dataclass
class Received(Event):
    """One message from the server (deduplicated by msgid); ``history`` marks replays."""

    message: Message
    history: bool = False


@dataclass
class NickFallback(Event):
    """The nick we wanted was taken during registration, so we registered as ``got``."""

    wanted: str
    got: str


@dataclass
class NickReclaimed(Event):
    """We hold the nick we wanted again (its holder, often our own ghost from a dead
    connection, left); until now we were ``fallback``."""

    nick: str
    fallback: str


@dataclass
class LoginFailed(Event):
    """Logging in to ``account`` did not work: ``reason`` says why (never the password),
    ``mechanism`` and ``numeric`` (e.g. ``904``) say where, when known. ``continuing``:
    the connection goes on without an account (so another may hold our nick)."""

    account: str
    reason: str
    mechanism: str | None = None
    numeric: str | None = None
    continuing: bool = True


@dataclass
class AccountChanged(Event):
    """The server says we are now logged in to ``account`` (None: logged out)."""

    account: str | None


@dataclass
class Batch:
    """An open ``BATCH +id type params`` block; ``tags`` are those of the opening line."""

    id: str
    type: str
    params: list[str]
    tags: dict[str, str] = field(default_factory=dict)
    parent: str | None = None
