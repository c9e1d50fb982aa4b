"""How the server sends one message to many: msgids, history, room batches, tag modes.

``Delivery`` is owned by the ``Server`` (as ``server.delivery``) beside ``Replies``
(one recipient, ``server.out``). It owns the buffers that grew this round (``dirty``),
the open room batches and the msgid sequence. The hot path ends here:
``relay_run`` takes one read's worth of room PRIVMSGs from the fast path, and
``deliver``/``batch_room`` serve every other command that reaches a room or a list of
users. Formatting happens once per tag mode in use, never per recipient.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from itertools import repeat
from typing import TYPE_CHECKING

from chat_protocol.message import Message, format_tags
from chat_server.fanout import RoomBatches, append_to_all
from chat_server.history.model import StoredMessage, format_ms, format_time
from chat_server.model import TAGS_ACCOUNT, TAGS_MSG, TAGS_TIME, Channel, User, group_by_tag_mode

if TYPE_CHECKING:
    from chat_server.connection import Connection
    from chat_server.history import HistoryStore


class Delivery:
    """The many-recipient half of sending, with the state it needs."""

    def __init__(self, history: HistoryStore, msgid_prefix: str, soft: int) -> None:
        self.history = history
        # Message ids are "<prefix>-<n in hex>"; a stored message's n is its history
        # sequence number (see store), so n continues from the history on disk.
        self._msgid_format = msgid_prefix[:16] + "-{:x}"
        self._msgid_seq = history.next_seq - 1
        # history_sync: a sender's output is held until its messages are committed
        # (Connection.held_for, ClientIO.send).
        self.sync = False
        self.soft = soft  # the send-queue soft limit (flow.py)
        self.batches = RoomBatches(soft)  # room messages not yet in buffers (fanout.py)
        self.dirty: list[Connection] = []  # connections whose buffer grew this round
        self.capturing: Connection | None = None  # whose labeled response is being built

    def take_dirty(self) -> list[Connection]:
        """The connections to flush, after appending the open room batches."""
        self.write_pending()
        dirty = self.dirty
        self.dirty = []
        return dirty

    @property
    def last_seq(self) -> int:
        """The sequence of the newest msgid minted (history numbers from it)."""
        return self._msgid_seq

    def history_floor(self) -> int:
        """The sequence from which a user taking a nick now may read its direct messages."""
        return self._msgid_seq + 1

    def next_msgid(self) -> str:
        self._msgid_seq += 1
        return self._msgid_format.format(self._msgid_seq)

    def deliver(
        self,
        recipients: Channel | Iterable[User],
        source: str,
        command: str,
        params: list[str],
        *,
        client_tags: dict[str, str] | None = None,
        msgid: str | None = None,
        when: float | None = None,
        bot: bool = False,
        sender: User | None = None,
        echo: bool = True,
        tags_only: bool = False,
        labeled: bool = True,
        account: str | None = None,
    ) -> None:
        """Format the message once per tag mode and append it to every recipient.

        ``sender`` (when given) gets the message only with ``echo``. The copy for the
        client whose labeled response is being built is captured into it, unless
        ``labeled`` is False. ``account`` (the sender's, if logged in) goes to those
        with account-tag.
        """
        if len(params) == 2 and (command == "PRIVMSG" or command == "NOTICE"):
            # Target from our model, text already free of CR/LF/NUL: no checks needed.
            body = f":{source} {command} {params[0]} :{params[1]}\r\n"
        else:
            body = Message(command, params, source).to_str() + "\r\n"
        when = time.time() if when is None else when
        sender_conn = sender.conn if sender is not None else None
        skip = sender_conn if not echo else None
        # The copy for a client whose labeled response is being built must be captured
        # (a labeled JOIN answers with its own JOIN line), so it leaves the batch path.
        captured = self.capturing if labeled else None
        if captured is not None and (
            captured is skip
            or captured.user is None
            or captured.user
            not in (recipients.members if isinstance(recipients, Channel) else recipients)
        ):
            captured = None
        if (
            echo
            and sender is not None
            and sender_conn is not None
            and isinstance(recipients, Channel)
            and sender not in recipients.members
        ):
            # A sender outside the room (one without +n) is owed its echo too.
            self.deliver([sender], source, command, params, client_tags=client_tags,
                         msgid=msgid, when=when, bot=bot, sender=sender, tags_only=tags_only,
                         labeled=labeled, account=account)  # fmt: skip
        if isinstance(recipients, Channel) and captured is None:
            self.batch_room(
                recipients, skip, body, client_tags, msgid, when, bot, tags_only, account
            )
            return
        self.write_pending()
        groups = (
            recipients.fanout_groups()
            if isinstance(recipients, Channel)
            else group_by_tag_mode(recipients)
        )
        dirty = self.dirty
        soft = self.soft
        for mode, conns in enumerate(groups):
            if not conns or (tags_only and not mode & TAGS_MSG):
                continue
            data = self._format_variant(mode, body, client_tags, msgid, when, bot, account)
            if captured is not None and captured in conns:
                captured.write(data, dirty, soft)
                others = [c for c in conns if c is not captured and c is not skip]
                append_to_all(others, data, None, dirty, soft)
            else:
                append_to_all(conns, data, skip, dirty, soft)

    def batch_room(
        self,
        chan: Channel,
        skip: Connection | None,
        body: str,
        client_tags: dict[str, str] | None,
        msgid: str | None,
        when: float,
        bot: bool,
        tags_only: bool = False,
        account: str | None = None,
    ) -> None:
        """Add a room message to the open batch (see fanout.py), opening a new one if
        the room, the skipped sender or the membership changed."""
        batch = self.batches.get(chan, skip, self.dirty)
        parts = batch.parts
        for mode, conns in enumerate(batch.groups):
            if conns and not (tags_only and not mode & TAGS_MSG):
                parts[mode].append(
                    self._format_variant(mode, body, client_tags, msgid, when, bot, account)
                )

    def relay_run(self, user: User, chan: Channel, texts: list[str]) -> None:
        """Store and fan out PRIVMSGs from ``user`` to ``chan``: one read's worth.

        The per-message work is one msgid and one formatted line per tag mode in use;
        history keeps the run as one tuple, and everything else (time, source prefix,
        batch, history lock, encoding) is done once for the run. Per-message steps are
        ``map``/``zip`` over C iterators, not comprehensions, which cost a Python frame
        each even for a run of one line, the usual size: 12% less time per call for one
        line, 5% for four (in-process A/B, interleaved). The msgid's number is the
        history sequence.
        """
        now = time.time()
        user.last_spoke = now
        ms = round(now * 1000)
        count = len(texts)
        first = self._msgid_seq + 1
        self._msgid_seq += count
        seqs = range(first, first + count)
        msgids = list(map(self._msgid_format.format, seqs))
        name = chan.name
        source = user.source
        bot = "B" in user.modes  # User.is_bot, without the property call
        self.history.append_run(
            chan.folded, first, ms, source, name, msgids, texts, (("bot", ""),) if bot else ()
        )
        if self.sync and user.conn is not None:
            user.conn.held_for = self._msgid_seq
        skip = None if "echo-message" in user.caps else user.conn
        batch = self.batches.get(chan, skip, self.dirty)
        src = f":{source} PRIVMSG {name} :"
        account = ";account=" + user.account if user.account else ""
        stamp = ""
        parts = batch.parts
        for mode, conns in enumerate(batch.groups):
            if not conns:
                continue
            if mode & TAGS_TIME and not stamp:
                stamp = "time=" + format_ms(ms)
            who = account if mode & TAGS_ACCOUNT else ""
            if mode & TAGS_MSG:
                # Same tag order as _format_variant: time, msgid, account, bot.
                head = "@" + stamp + ";msgid=" if mode & TAGS_TIME else "@msgid="
                tail = who + (";bot " if bot else " ") + src
                if count == 1:
                    data = head + msgids[0] + tail + texts[0] + "\r\n"
                else:
                    lines = zip(repeat(head), msgids, repeat(tail), texts, repeat("\r\n"))
                    data = "".join(map("".join, lines))
            else:
                tags = (stamp + who if stamp else who[1:]) if who or stamp else ""
                line = "@" + tags + " " + src if tags else src
                data = line + ("\r\n" + line).join(texts) + "\r\n"
            parts[mode].append(data.encode())

    def write_pending(self) -> None:
        """Append the open room batches to their members' buffers (see fanout.py)."""
        self.batches.write_all(self.dirty)

    def _format_variant(
        self,
        mode: int,
        body: str,
        client_tags: dict[str, str] | None,
        msgid: str | None,
        when: float,
        bot: bool,
        account: str | None = None,
    ) -> bytes:
        # Built as a string, not a dict through format_tags: this runs for every message
        # and tag mode. Our own msgids and times, and account names (nicks), never need
        # tag-value escaping.
        tags = ""
        if mode & TAGS_TIME:
            tags = "time=" + format_time(when)
        if mode & TAGS_MSG and msgid:
            tags = tags + ";msgid=" + msgid if tags else "msgid=" + msgid
        if mode & TAGS_ACCOUNT and account:
            tags = tags + ";account=" + account if tags else "account=" + account
        if mode & TAGS_MSG:
            if bot:
                tags = tags + ";bot" if tags else "bot"
            if client_tags:
                extra = format_tags(client_tags)
                tags = tags + ";" + extra if tags else extra
        if not tags:
            return body.encode()
        return ("@" + tags + " " + body).encode()

    def store(
        self,
        user: User,
        command: str,
        recipient: str,
        key: str,
        text: str,
        tags: dict[str, str] | None,
        now: float | None = None,
    ) -> tuple[str, float]:
        """Append a message to history; returns its msgid and time."""
        msgid = self.next_msgid()
        seq = self._msgid_seq
        when = round(time.time() if now is None else now, 3)
        kept = tuple(tags.items()) if tags else ()  # already only client (+) tags
        if user.is_bot:
            kept += (("bot", ""),)
        self.history.append(
            StoredMessage(msgid, when, key, user.source, command, recipient, text, kept), seq
        )
        if self.sync and user.conn is not None:
            user.conn.held_for = seq
        return msgid, when
