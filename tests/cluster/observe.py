"""What a client sees of the cluster: shared by the cluster tests."""

from __future__ import annotations

from tests.support.rawclient import RawClient


def sees(observer: RawClient, nick: str) -> bool:
    """True once ``observer``'s node knows ``nick`` (ISON answers from its replica)."""
    observer.send(f"ISON {nick}")
    reply = observer.expect("303")
    return nick.lower() in reply.param(1).lower().split()


def in_room(observer: RawClient, room: str, *nicks: str) -> bool:
    observer.send(f"NAMES {room}")
    names = {
        n.lstrip("@+").lower()
        for m in observer.collect_until("366")
        if m.command == "353"
        for n in m.param(3).split()
    }
    return {n.lower() for n in nicks} <= names


def privmsgs(client: RawClient, count: int) -> list[tuple[str, str, str, str]]:
    """The next ``count`` PRIVMSGs as (msgid, time, sender nick, text)."""
    out = []
    while len(out) < count:
        m = client.expect("PRIVMSG", timeout=10)
        out.append((m.tags["msgid"], m.tags["time"], m.nick or "", m.param(1)))
    return out


def lusers(client: RawClient) -> dict[str, str]:
    """LUSERS as {numeric: text after the nick}."""
    client.send("LUSERS")
    return {m.command: " ".join(m.params[1:]) for m in client.collect_until("266")}
