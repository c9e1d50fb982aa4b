"""Server settings: every one declared once below, with its type, range, default and help.

The declarations are the schema (see ``settings.py``): the TOML file, the command-line
flags (``cli.py``) and the check of the finished config all read them. Precedence:
defaults, then the config file, then flags.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from chat_server.settings import (
    Check,
    ConfigError,
    Setting,
    from_mapping,
    read_table,
    schema,
    setting,
    settle,
)

__all__ = ["SCHEMA", "ConfigError", "ServerConfig", "build_config", "load_config_file"]

KIB = 1024
MIB = 1024 * KIB
MAX_LINE = 8191 + 512  # the longest line a client may send: tags, then the message
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _token(max_len: int) -> Check:
    """A check for names that go into IRC lines or Redis keys: no spaces, no ``:``."""

    def check(text: str) -> str | None:
        if len(text) > max_len or not _TOKEN.fullmatch(text):
            return f"must be 1-{max_len} letters, digits, '.', '_' or '-'"
        return None

    return check


def _no_spaces(text: str) -> str | None:
    return "must not contain spaces" if any(c.isspace() for c in text) else None


def _no_controls(text: str) -> str | None:
    return "must not contain control characters" if any(ord(c) < 32 for c in text) else None


def _postgres_url(text: str) -> str | None:
    """A libpq URL (key=value strings are not accepted: one form to document)."""
    if not text.startswith(("postgresql://", "postgres://")):
        return "must be a postgresql:// URL"
    try:
        urlsplit(text).port  # noqa: B018 - out of range raises ValueError
    except ValueError as exc:
        return f"is not a usable PostgreSQL URL ({exc})"
    return None


def _redis_url(text: str) -> str | None:
    """What redis-py would refuse later, in a thread, as a traceback: refuse it now."""
    from redis.connection import parse_url as redis_parse_url

    parse_url: Callable[[str], object] = redis_parse_url  # untyped in redis-py

    if not text.startswith(("redis://", "rediss://", "unix://")):
        return "must be a redis://, rediss:// or unix:// URL"
    try:
        parts = urlsplit(text)
        parse_url(text)
        port = parts.port  # out of range raises ValueError
    except ValueError as exc:
        return f"is not a usable Redis URL ({exc})"
    if parts.scheme == "unix":
        return None if parts.path else "needs a socket path (unix:///path/to/redis.sock)"
    if port == 0:
        return "needs a port from 1 to 65535"
    if parts.path not in ("", "/") and not parts.path[1:].isdigit():
        return "may only have a database number as its path (redis://HOST:PORT/0)"
    return None


@dataclass
class ServerConfig:
    """Everything the server can be told. Field names are the TOML keys."""

    host: str = setting("127.0.0.1", "address to listen on", metavar="ADDRESS", check=_no_spaces)
    port: int = setting(
        6667, "TCP port; 0 = any free one, the log says which", metavar="PORT", low=0, high=65535
    )
    tls_port: int = setting(
        0,
        "TLS port beside the plaintext one (0 = no TLS); needs tls_cert and tls_key",
        metavar="PORT",
        low=0,
        high=65535,
        requires="tls_cert",
    )
    tls_cert: str | None = setting(
        None,
        "PEM certificate chain for TLS (reloaded on SIGHUP)",
        metavar="FILE",
        requires="tls_key",
    )
    tls_key: str | None = setting(
        None, "PEM private key of tls_cert", metavar="FILE", requires="tls_cert"
    )
    tls_handshake_timeout: float = setting(
        10.0,
        "seconds a TLS client may take to finish its handshake",
        metavar="SECONDS",
        low=0,
        low_open=True,
        high=300,
    )
    sts_duration: int = setting(
        0,
        "advertise the sts capability (clients then insist on TLS for this many seconds;"
        " 0 = do not advertise)",
        metavar="SECONDS",
        low=0,
        high=365 * 86_400,
    )
    server_name: str = setting(
        "distchat.local", "name the server uses as source", metavar="NAME", check=_token(63)
    )
    network: str = setting("distchat", "network name in ISUPPORT", check=_token(32))
    password: str | None = setting(
        None,
        "connection password clients must PASS",
        metavar="PASS",
        check=_no_controls,
        secret=True,
    )
    # setting() gives a dict default its own default_factory, so no instance shares it
    opers: dict[str, str] = setting(  # noqa: RUF009
        {}, "an operator (repeatable)", flag="--oper", metavar="NAME:PASS", check=_no_spaces
    )
    oper_accounts: str = setting(
        "",
        "accounts whose logged-in users may OPER without a password (comma-separated)",
        metavar="NAME,NAME",
        check=_no_spaces,
    )
    open_registration: bool = setting(
        True,
        "anyone may create an account with REGISTER (else only with 'chat-server account add')",
        flag="--no-open-registration",
    )
    account_password_min: int = setting(
        8, "shortest password REGISTER accepts (characters)", low=1, high=300
    )
    motd: str = setting(
        "Welcome to distchat. /join #room to start talking; /list shows the rooms.",
        "message of the day (lines separated by newlines)",
    )
    history_db: str | None = setting(
        None, "SQLite history file (default: the user's data directory)", metavar="PATH"
    )
    history_postgres: str | None = setting(
        None,
        "PostgreSQL URL of a cluster's shared history (postgresql://user@host/db);"
        " cluster nodes only, all on the same database",
        metavar="URL",
        requires="redis",
        check=_postgres_url,
        secret=True,  # the URL may carry a password
    )
    history_on_join: int = setting(
        50, "messages replayed on JOIN", low=0, at_most="chathistory_max"
    )
    history_cache: int = setting(
        1000,
        "newest messages of each conversation a cluster node keeps in memory"
        " (without --history-postgres)",
        low=1,
        high=1_000_000,
    )
    history_cache_bytes: int = setting(
        64 * MIB,
        "bytes of rooms' newest messages kept in memory for JOIN (least recently used go)",
        low=0,
        high=64 * 1024 * MIB,
    )
    history_sync: bool = setting(
        False,
        "an echo means the message is on disk: commit and fsync before echoing (slower)",
    )
    history_max_age_days: float = setting(
        0.0, "delete messages older than this many days (0: keep them all)", low=0
    )
    history_max_per_room: int = setting(
        0, "keep at most this many messages per room or DM (0: all)", low=0
    )
    chathistory_max: int = setting(
        1000, "most messages one CHATHISTORY request returns", low=1, high=10_000
    )
    flood_limit: bool = setting(
        True,
        "lift the per-client line rate and per-address connection limit (for load tests)",
        flag="--no-flood-limit",
    )
    flood_burst: int = setting(30, "lines a client may send at once", low=1, high=100_000)
    flood_rate: float = setting(
        6.0,
        "lines per second a client may send after its burst",
        low=0,
        low_open=True,
        high=1_000_000,
    )
    recvq_max: int = setting(
        32 * KIB,
        "bytes of unhandled input held for a flood-limited client before it is cut",
        metavar="BYTES",
        low=MAX_LINE + 1,
        high=64 * MIB,
    )
    sendq_max: int = setting(
        8 * MIB,
        "hard limit on a client's send backlog; over it the client is cut at once",
        flag="--sendq",
        metavar="BYTES",
        low=64 * KIB,
        high=1024 * MIB,
    )
    sendq_soft: int = setting(
        256 * KIB,
        "soft limit on a client's send backlog (see --sendq-soft-seconds)",
        metavar="BYTES",
        low=4 * KIB,
        high=1024 * MIB,
        at_most="sendq_max",
    )
    sendq_soft_seconds: float = setting(
        10.0,
        "seconds a send backlog may stay over the soft limit before the client is cut",
        metavar="SECONDS",
        low=0.1,
        high=3600,
    )
    read_budget: int = setting(
        16 * KIB,
        "bytes read from one connection per loop round",
        metavar="BYTES",
        low=512,
        high=MIB,
    )
    max_clients: int = setting(20000, "most connections at once", low=1, high=1_000_000)
    max_per_address: int = setting(
        256, "most connections from one address (0 = no limit)", low=0, high=1_000_000
    )
    max_channels_per_user: int = setting(100, "most rooms one client may be in", low=1, high=10_000)
    monitor_max: int = setting(
        100, "most nicks one client may MONITOR (ISUPPORT MONITOR)", low=1, high=10_000
    )
    registration_timeout: float = setting(
        30.0,
        "seconds a connection may take to register",
        metavar="SECONDS",
        low=0,
        low_open=True,
        high=3600,
    )
    ping_interval: float = setting(
        90.0,
        "seconds of silence before the server PINGs a client",
        metavar="SECONDS",
        low=0,
        low_open=True,
        high=86_400,
    )
    ping_timeout: float = setting(
        120.0,
        "seconds a client may take to answer a PING",
        metavar="SECONDS",
        low=0,
        low_open=True,
        high=86_400,
    )
    nick_len: int = setting(30, "longest nick (NICKLEN)", low=9, high=64)
    channel_len: int = setting(64, "longest room name (CHANNELLEN)", low=2, high=200)
    topic_len: int = setting(390, "longest topic (TOPICLEN)", low=1, high=400)
    log_level: str = setting("INFO", "log verbosity", choices=LOG_LEVELS)
    redis: str | None = setting(
        None,
        "cluster mode: redis://HOST:PORT/DB (also rediss://, unix://)",
        metavar="URL",
        requires="node_id",
        check=_redis_url,
        secret=True,  # the URL may carry a password
    )
    node_id: str | None = setting(
        None, "this node's name in a cluster", metavar="NAME", check=_token(32)
    )
    cluster_timeout: float = setting(
        3.0,
        "seconds without a heartbeat after which the other nodes declare a node dead"
        " (heartbeats every third of it)",
        metavar="SECONDS",
        low=0.3,
        high=600,
        at_most="cluster_grace",
    )
    cluster_grace: float = setting(
        10.0,
        "seconds after a node (re)connects to redis, or redis restarts, during which it"
        " declares no other node dead (they are reconnecting too)",
        metavar="SECONDS",
        low=0.3,
        high=3600,
    )
    cluster_stream_keep: float = setting(
        600.0,
        "seconds of cluster events redis keeps: a node cut off or behind for longer"
        " misses some (it says so and reloads what it can); memory grows with the rate",
        metavar="SECONDS",
        low=1,
        high=86_400,
    )

    cluster_shards: int = setting(
        16,
        "streams the cluster's room messages are spread over, by room (a node reads only"
        " those of rooms it has members in); the same on every node of a cluster",
        metavar="COUNT",
        low=1,
        high=1024,
    )

    def history_path(self) -> Path:
        """The SQLite file: the flag or config value, else the user's data directory."""
        if self.history_db:
            return Path(self.history_db).expanduser()
        return Path(platformdirs.user_data_dir("distchat")) / "history.db"


SCHEMA: tuple[Setting, ...] = schema(ServerConfig)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The checked settings of a TOML file (a ``[server]`` table or top-level keys)."""
    return from_mapping(SCHEMA, read_table(path, "server"), f"config file {Path(path)}")


def build_config(*layers: Mapping[str, Any]) -> ServerConfig:
    """Defaults overlaid with each layer in turn (file, then flags), checked as a whole.

    ``opers`` adds up across layers (``--oper`` adds to the file's operators); every
    other setting in a later layer replaces the earlier value.
    """
    values: dict[str, Any] = {}
    for layer in layers:
        for name, value in layer.items():
            if name == "opers" and "opers" in values:
                value = {**values["opers"], **value}
            values[name] = value
    config = ServerConfig(**values)
    settle(SCHEMA, config, explicit=values.keys())
    return config
