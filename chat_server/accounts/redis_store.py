"""A cluster's accounts: one Redis hash that every node (and ``chat-server account
--redis``) reads and writes, so an account made on one node logs in on any other.

``dc:accounts`` maps each casefolded name to its row (storage.AccountRow) as JSON,
readable with ``redis-cli HGET dc:accounts alice``. Redis calls block, so on a node
they run on the server's background threads (``ThreadedStore``) and answer through
the loop, like the history worker's answers do for a single server.

Accounts are only as durable as Redis: run it with persistence (``appendonly yes``)
when it holds accounts. A Redis that restarts empty forgets every account.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
from redis.exceptions import RedisError

from chat_server.accounts.storage import AccountRow

if TYPE_CHECKING:
    from chat_server.background import Background

KEY = "dc:accounts"

# Replace the hashes only if the account is still there (HSET alone would re-create a
# deleted one).
_SET_PASSWORD = """
local row = redis.call('HGET', KEYS[1], ARGV[1])
if not row then return 0 end
local account = cjson.decode(row)
account['password'] = ARGV[2]
account['scram'] = ARGV[3]
account['changed_ms'] = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(account))
return 1
"""


def _row(text: str | None) -> AccountRow | None:
    if text is None:
        return None
    return AccountRow(**json.loads(text))


class RedisAccounts:
    """The operations of storage.py, on the Redis hash."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, decode_responses=True
        )

    def get(self, folded: str) -> AccountRow | None:
        return _row(self.client.hget(KEY, folded))  # type: ignore[arg-type]

    def names(self) -> list[str]:
        return list(self.client.hkeys(KEY))  # type: ignore[arg-type]

    def listing(self) -> list[AccountRow]:
        rows: dict[str, str] = self.client.hgetall(KEY)  # type: ignore[assignment]
        return sorted((AccountRow(**json.loads(v)) for v in rows.values()), key=lambda r: r.name)

    def create(
        self,
        folded: str,
        display: str,
        password: str,
        scram: str,
        email: str | None,
        history_from: int,
    ) -> bool:
        now_ms = int(time.time() * 1000)
        row = AccountRow(folded, display, password, scram, email, history_from, now_ms, now_ms)
        return bool(self.client.hsetnx(KEY, folded, json.dumps(row._asdict())))

    def set_password(self, folded: str, password: str, scram: str) -> bool:
        now_ms = int(time.time() * 1000)
        return bool(self.client.eval(_SET_PASSWORD, 1, KEY, folded, password, scram, now_ms))

    def history_start(self) -> int:
        """Where a new account's direct messages begin: now (cluster msgids are
        stream ids, time first)."""
        from chat_server.history.worker import stream_seq

        return stream_seq(int(time.time() * 1000), 0)

    def close(self) -> None:
        self.client.close()

    def delete(self, folded: str) -> bool:
        return bool(self.client.hdel(KEY, folded))


class ThreadedStore:
    """An AccountStore (book.py) over Redis: queries on background threads."""

    def __init__(self, accounts: RedisAccounts, background: Background) -> None:
        self.accounts = accounts
        self.background = background

    def ask(self, kind: str, args: Any, answer: Callable[[bool, Any], None]) -> None:
        def done(result: tuple[bool, Any] | None) -> None:
            answer(*(result or (False, "account store failed")))

        if not self.background.submit(lambda: self.call(kind, args), done):
            answer(False, "busy")

    def call(self, kind: str, args: Any, timeout: float = 10.0) -> tuple[bool, Any]:
        a = self.accounts
        try:
            if kind == "account":
                row = a.get(args)
                return True, None if row is None else list(row)
            if kind == "account_names":
                return True, a.names()
            if kind == "account_create":
                return True, a.create(*args)
            if kind == "account_password":
                return True, a.set_password(*args)
            if kind == "account_delete":
                return True, a.delete(args)
        except (RedisError, OSError, ValueError) as exc:
            return False, f"redis: {exc}"
        return False, f"unknown query {kind!r}"
