"""The server's view of its accounts: which nicks are owned, lookups, creation.

The accounts live in the server's database, which only the history worker touches
while the server runs; so every lookup and change is a query to the worker
(``store.ask``), answered through the loop, and the asking client waits (its
connection is paused, as for CHATHISTORY). Credentials are always read fresh: a
password changed with ``chat-server account passwd`` counts at the next login.

Which nicks are owned is needed on every NICK and registration, so the names are
kept here, in memory: read at start, updated by REGISTER, and read again every
``REFRESH_EVERY`` seconds and on SIGHUP (for ``chat-server account add|del`` run
beside a running server).

Hashing (scrypt for PLAIN, PBKDF2 for SCRAM keys) runs on ``Background`` threads.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from chat_protocol.casemap import casefold
from chat_server.accounts.credentials import check_password, make_credentials
from chat_server.accounts.storage import AccountRow

if TYPE_CHECKING:
    from chat_server.background import Background
    from chat_server.loop import EventLoop
    from chat_server.model import User

log = logging.getLogger(__name__)

REFRESH_EVERY = 10.0


class AccountStore(Protocol):
    """Where the accounts are: the history worker (store.HistoryStore), or in a
    cluster, Redis. ``kind`` is one of ``account``, ``account_names``,
    ``account_create``, ``account_password``, ``account_delete``."""

    def ask(self, kind: str, args: Any, answer: Callable[[bool, Any], None]) -> None: ...

    def call(self, kind: str, args: Any, timeout: float = 10.0) -> tuple[bool, Any]: ...


Lookup = Callable[[AccountRow | None, str | None], None]  # (row, error)


class AccountBook:
    """Owned nicks in memory; everything else asked of the store."""

    def __init__(self, store: AccountStore) -> None:
        self.store = store
        self.owned: set[str] = set()  # casefolded account names
        self.background: Background | None = None
        self.secret = secrets.token_bytes(32)  # SCRAM decoy salts (scram.decoy_keys)
        self._decoy: str | None = None
        # The local connections logged into each account (casefolded), so what one of
        # a person's clients changes (a read marker) reaches the others.
        self.sessions: dict[str, set[User]] = {}

    def start(self, loop: EventLoop, background: Background) -> None:
        """Read the owned names now (before the first client), then keep them fresh."""
        self.background = background
        ok, value = self.store.call("account_names", None)
        if ok:
            self.owned = set(value)
        else:
            log.error("accounts: cannot read account names: %s", value)
        loop.call_every(REFRESH_EVERY, self.refresh)

    def refresh(self) -> None:
        def answered(ok: bool, value: Any) -> None:
            if ok:
                self.owned = set(value)

        self.store.ask("account_names", None, answered)

    def signed_in(self, user: User, before: str | None) -> None:
        """``user`` is now logged into ``user.account`` (and no longer ``before``)."""
        if before is not None:
            self.signed_out(user, before)
        if user.account is not None:
            self.sessions.setdefault(casefold(user.account), set()).add(user)

    def signed_out(self, user: User, account: str | None = None) -> None:
        name = account if account is not None else user.account
        if name is None:
            return
        folded = casefold(name)
        users = self.sessions.get(folded)
        if users is not None:
            users.discard(user)
            if not users:
                del self.sessions[folded]

    def sessions_of(self, user: User) -> list[User]:
        """The local connections logged into ``user``'s account (``user`` alone if none)."""
        if user.account is None:
            return [user]
        return list(self.sessions.get(casefold(user.account), ())) or [user]

    def owns(self, nick: str) -> bool:
        """Whether ``nick`` is an account's name (only that account may use it)."""
        return casefold(nick) in self.owned

    def lookup(self, name: str, answer: Lookup) -> None:
        def answered(ok: bool, value: Any) -> None:
            if not ok:
                log.error("accounts: lookup of %r failed: %s", name, value)
                answer(None, str(value))
            else:
                answer(None if value is None else AccountRow(*value), None)

        self.store.ask("account", casefold(name), answered)

    def check_plain(
        self, row: AccountRow | None, password: str, answer: Callable[[bool], None]
    ) -> bool:
        """Check a PLAIN password on a thread; ``answer(matched)`` later. An unknown
        account is checked against a decoy hash, so it takes as long as a wrong
        password. False (and no answer) when the threads are all busy."""
        assert self.background is not None
        stored = row.password if row is not None else None

        def job() -> bool:
            if stored is None:
                if self._decoy is None:
                    self._decoy = make_credentials(secrets.token_urlsafe(16)).password
                check_password(self._decoy, password)
                return False
            return check_password(stored, password)

        return self.background.submit(job, lambda matched: answer(bool(matched)))

    def create(
        self,
        name: str,
        password: str,
        email: str | None,
        history_from: int,
        answer: Callable[[str | None], None],
    ) -> bool:
        """Hash, then store a new account; ``answer(None)`` when it exists now, else
        answer(code) with ``ACCOUNT_EXISTS`` or ``TEMPORARILY_UNAVAILABLE``. False (and
        no answer) when the threads are all busy."""
        assert self.background is not None
        folded = casefold(name)

        def hashed(creds: Any) -> None:
            if creds is None:
                answer("TEMPORARILY_UNAVAILABLE")
                return

            def stored(ok: bool, created: Any) -> None:
                if not ok:
                    log.error("accounts: cannot store %r: %s", name, created)
                    answer("TEMPORARILY_UNAVAILABLE")
                elif not created:
                    answer("ACCOUNT_EXISTS")
                else:
                    self.owned.add(folded)
                    log.info("accounts: %s registered", name)
                    answer(None)

            args = (folded, name, creds.password, creds.scram.to_json(), email, history_from)
            self.store.ask("account_create", args, stored)

        return self.background.submit(lambda: make_credentials(password), hashed)
