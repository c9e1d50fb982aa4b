"""``chat-bot``: parse flags, merge them over the config file, run the bot until told to stop.

Bad flags and unreadable files end in one ``chat-bot: error: ...`` line on stderr and
exit code 2 before anything connects; a running bot stops cleanly on SIGTERM/Ctrl+C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from bot.config import (
    DEFAULT_BASE_URL,
    DEFAULT_MODEL,
    BotConfig,
    ConfigError,
    Rate,
    api_key_from_env,
    password_from_env,
    read_text_arg,
    split_rooms,
)
from bot.config_file import load_toml
from bot.llm import ChatBackend
from bot.worker import BotWorker
from chat_protocol.casemap import valid_channel, valid_nick
from chat_protocol.client import ClientConfig, IRCClient, parse_servers
from chat_protocol.client_tls import add_tls_arguments

log = logging.getLogger("chat-bot")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, not the usage block: the user needs the reason, --help has the rest."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _rate(text: str) -> Rate:
    try:
        return Rate.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="chat-bot",
        description=(
            "An AI member for distchat (or any IRC) rooms. It answers when addressed "
            "('bot: question', 'bot, ...', '@bot ...') and to direct messages, through any "
            "OpenAI-compatible API. The key comes from OPENROUTER_API_KEY or OPENAI_API_KEY; "
            "without one it still runs its offline commands (help, time, who, stats, more, forget)."
        ),
    )
    p.add_argument(
        "--server",
        metavar="HOST:PORT[,...]",
        help="server(s), tried in order; ircs://HOST[:PORT] for TLS (port 6697)",
    )
    add_tls_arguments(p)
    p.add_argument("--nick", help="nick to use (default: bot)")
    p.add_argument(
        "--account",
        metavar="NAME",
        help="account to log in to (default: the nick); its password comes from "
        "CHAT_BOT_PASSWORD, never a flag",
    )
    p.add_argument("--rooms", metavar="'#a,#b'", help="rooms to join ('#' may be left out)")
    p.add_argument("--base-url", metavar="URL", help=f"API base URL (default {DEFAULT_BASE_URL})")
    p.add_argument("--model", metavar="ID", help=f"model id (default {DEFAULT_MODEL})")
    p.add_argument(
        "--system-prompt", metavar="TEXT|@FILE", help="system prompt, or @file to read it from"
    )
    p.add_argument("--config", metavar="FILE.toml", help="settings file (flags override it)")
    p.add_argument("--context-lines", type=_count, metavar="N", help="room lines sent as context")
    p.add_argument("--max-lines", type=_positive_int, metavar="N", help="lines per answer")
    p.add_argument("--max-tokens", type=_positive_int, metavar="N", help="token limit per answer")
    p.add_argument("--timeout", type=_seconds, metavar="SECONDS", help="time limit per AI call")
    p.add_argument(
        "--user-rate", type=_rate, metavar="N/SECONDS", help="questions per user (or 'off')"
    )
    p.add_argument(
        "--room-rate", type=_rate, metavar="N/SECONDS", help="questions per room (or 'off')"
    )
    p.add_argument(
        "--command-rate",
        type=_rate,
        metavar="N/SECONDS",
        help="built-in commands per user (default 20/60; they cost no API call)",
    )
    p.add_argument(
        "--temperature",
        type=_number,
        metavar="T",
        help="model temperature, 0-2 (default: the model's)",
    )
    p.add_argument(
        "--top-p", type=_number, metavar="P", help="nucleus sampling, 0-1 (default: the model's)"
    )
    p.add_argument(
        "--send-rate", type=_rate, metavar="N/SECONDS", help="lines the bot may send (pacing)"
    )
    p.add_argument(
        "--max-concurrent", type=_positive_int, metavar="N", help="AI calls at the same time"
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def config_from_args(args: argparse.Namespace, environ: dict[str, str] | None = None) -> BotConfig:
    """Defaults, then the config file, then flags; the key from the environment."""
    config = BotConfig()
    if args.config:
        config = config.merged(load_toml(args.config))
    flags: dict[str, Any] = {
        "servers": args.server,
        "nick": args.nick,
        "rooms": split_rooms(args.rooms) if args.rooms is not None else None,
        "base_url": args.base_url,
        "model": args.model,
        "system_prompt": read_text_arg(args.system_prompt) if args.system_prompt else None,
        "context_lines": args.context_lines,
        "max_lines": args.max_lines,
        "max_tokens": args.max_tokens,
        "timeout": args.timeout,
        "user_rate": args.user_rate,
        "room_rate": args.room_rate,
        "send_rate": args.send_rate,
        "command_rate": args.command_rate,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "max_concurrent": args.max_concurrent,
        "api_key": api_key_from_env(environ),
        "account": args.account,
        "account_password": password_from_env(environ),
        "tls_ca": args.tls_ca,
        "tls_verify": False if args.no_tls_verify else None,
    }
    config = config.merged(flags).check()
    _check_names(config)
    return config


def _check_names(config: BotConfig) -> None:
    try:
        parse_servers(config.servers)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not valid_nick(config.nick):
        raise ConfigError(f"{config.nick!r} is not a valid nick")
    if config.account is not None and not valid_nick(config.account):
        raise ConfigError(f"{config.account!r} is not a valid account name (a nick)")
    for room in config.rooms:
        if not valid_channel(room):
            raise ConfigError(f"{room!r} is not a valid room name")


async def run(config: BotConfig) -> int:
    """Connect, serve until SIGTERM/SIGINT (or the client gives up), then leave cleanly."""
    client = IRCClient(
        ClientConfig(
            servers=parse_servers(config.servers),
            nick=config.nick,
            username=config.nick,
            realname="distchat AI bot",
            channels=list(config.rooms),
            bot=True,
            tls_ca=config.tls_ca,
            tls_verify=config.tls_verify,
            account=config.login_account,
            account_password=config.account_password,
            sasl_mechanism=config.sasl_mechanism,
        )
    )
    if config.login_account:
        log.info("logging in as %s", config.login_account)
    backend = None
    if config.api_key:
        backend = ChatBackend(
            base_url=config.base_url,
            api_key=config.api_key,
            model=config.model,
            timeout=config.timeout,
            max_tokens=config.max_tokens,
        )
        log.info("AI answers on: model %s via %s", config.model, config.base_url)
    else:
        log.warning("AI answers off: set OPENROUTER_API_KEY or OPENAI_API_KEY to turn them on")
    for room, values in config.room_overrides.items():
        own = ", ".join(
            f"{name}={'(its own)' if name == 'system_prompt' else value}"
            for name, value in values.items()
        )
        log.info("room %s has its own settings: %s", room, own or "none")
    worker = BotWorker(config, client, backend)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)

    async def pump() -> None:
        async for event in client.events():
            await worker.handle(event)

    runner = asyncio.create_task(client.run(), name="irc")
    events = asyncio.create_task(pump(), name="events")
    stopper = asyncio.create_task(stop.wait(), name="stop")
    await asyncio.wait({runner, events, stopper}, return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down")
    await worker.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.close("bot shutting down"), 5)
    for task in (runner, events, stopper):
        task.cancel()
    await asyncio.gather(runner, events, stopper, return_exceptions=True)
    failure = None if runner.cancelled() else runner.exception()
    if failure is not None:
        log.error("connection failed: %s", failure)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"chat-bot: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return asyncio.run(run(config))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
