"""The command table: one small handler per IRC command, found by name.

Every command the server knows is listed here, once, with what dispatch needs to know
about it; nothing registers itself by being imported. A cluster node copies this table
and wraps a few entries (cluster/handlers.py).
"""

from __future__ import annotations

from chat_server.command_spec import CommandSpec, HandlerFunc
from chat_server.handlers import (
    accounts,
    channels,
    chathistory,
    messaging,
    modes,
    operators,
    presence,
    queries,
    readmarker,
    registration,
    sasl,
    search,
    server_info,
)

__all__ = ["COMMANDS", "CommandSpec", "HandlerFunc"]

_TABLE = (
    # registration: allowed before it is complete
    CommandSpec("CAP", registration.handle_cap, min_params=1, registered=False),
    CommandSpec("PASS", registration.handle_pass, min_params=1, registered=False),
    CommandSpec("NICK", registration.handle_nick, registered=False),
    CommandSpec("USER", registration.handle_user, min_params=4, registered=False),
    CommandSpec("PING", registration.handle_ping, registered=False),
    CommandSpec("PONG", registration.handle_pong, registered=False),
    CommandSpec("QUIT", registration.handle_quit, registered=False),
    # accounts: a lookup in the database and a password hash on a background thread
    # each; the client waits for the answer, and failures are throttled per address
    CommandSpec("AUTHENTICATE", sasl.handle_authenticate, min_params=1, registered=False),
    CommandSpec("REGISTER", accounts.handle_register, registered=False, cost=4),
    # messages
    CommandSpec("PRIVMSG", messaging.handle_privmsg),
    CommandSpec("NOTICE", messaging.handle_notice),
    CommandSpec("TAGMSG", messaging.handle_tagmsg),
    CommandSpec("CHATHISTORY", chathistory.handle_chathistory, min_params=1),
    CommandSpec("SEARCH", search.handle_search, min_params=1, cost=4),
    # one key lookup (and upsert) in the worker, like a message's row; the asker waits
    # for each answer (NEED_MORE_PARAMS is a FAIL, so no min_params)
    CommandSpec("MARKREAD", readmarker.handle_markread, cost=1),
    # rooms
    CommandSpec("JOIN", channels.handle_join, min_params=1),
    CommandSpec("PART", channels.handle_part, min_params=1),
    CommandSpec("TOPIC", channels.handle_topic, min_params=1),
    CommandSpec("NAMES", channels.handle_names),
    CommandSpec("LIST", channels.handle_list),
    CommandSpec("KICK", channels.handle_kick, min_params=2),
    CommandSpec("INVITE", channels.handle_invite),
    CommandSpec("MODE", modes.handle_mode, min_params=1),
    # users (a masked WHO takes more tokens inside the handler)
    CommandSpec("WHO", queries.handle_who),
    CommandSpec("WHOIS", queries.handle_whois, min_params=1),
    CommandSpec("WHOWAS", queries.handle_whowas),
    CommandSpec("USERHOST", queries.handle_userhost, min_params=1),
    CommandSpec("ISON", queries.handle_ison, min_params=1),
    CommandSpec("AWAY", queries.handle_away),
    # presence: a MONITOR line's work and answer are bounded by 512 bytes of targets and
    # the monitor_max list, like a NAMES reply; SETNAME reaches room peers, like NICK
    CommandSpec("MONITOR", presence.handle_monitor, min_params=1),
    CommandSpec("SETNAME", presence.handle_setname, min_params=1),
    # the server
    CommandSpec("LUSERS", server_info.handle_lusers),
    CommandSpec("MOTD", server_info.handle_motd),
    CommandSpec("VERSION", server_info.handle_version),
    CommandSpec("TIME", server_info.handle_time),
    CommandSpec("INFO", server_info.handle_info),
    # operators
    CommandSpec("OPER", operators.handle_oper, min_params=1),
    CommandSpec("KILL", operators.handle_kill, min_params=1),
)

COMMANDS: dict[str, CommandSpec] = {spec.name: spec for spec in _TABLE}
