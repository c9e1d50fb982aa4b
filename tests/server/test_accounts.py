"""Accounts on a real server: SASL PLAIN and SCRAM-SHA-256, REGISTER, owned nicks,
what an account gives (account-tag, account-notify, extended-join, WHOIS, +R, OPER),
failed-login throttling, and ``chat-server account`` beside a running server."""

from __future__ import annotations

import base64
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.rawclient import RawClient
from tests.support.sasl import add_account, plain, scram, send_payload, start
from tests.support.servers import ServerProcess


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "server.db"
    for name, password in (("jilles", "sesame"), ("Scramtest", "sesame"), ("alice", "wonderland")):
        result = add_account(path, name, password)
        assert result.returncode == 0, result.stderr
    return path


@pytest.fixture
def srv(tmp_path: Path, db: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path, "--oper-accounts", "alice", history_db=db) as server:
        yield server


@pytest.fixture
def client(srv: ServerProcess) -> Iterator[Callable[..., RawClient]]:
    opened: list[RawClient] = []

    def make(caps: str = "sasl") -> RawClient:
        c = RawClient(srv.host, srv.port)
        opened.append(c)
        if caps:
            c.send(f"CAP REQ :{caps}")
            c.expect("CAP", pattern=" ACK ")
        return c

    yield make
    for c in opened:
        c.close()


def finish(c: RawClient, nick: str) -> list:
    """NICK, USER, CAP END; everything up to the welcome or a refusal of the nick."""
    c.send(f"NICK {nick}")
    c.send(f"USER {nick} 0 * :{nick} real")
    c.send("CAP END")
    got = [c.expect(lambda m: m.command in ("001", "433"))]
    if got[0].command == "001":
        got.append(c.expect(lambda m: m.command in ("376", "422")))
    c.nick = nick
    return got


def logged_in(c: RawClient, account: str, password: str, nick: str | None = None) -> RawClient:
    assert plain(c, account, password) == "903"
    assert finish(c, nick or account)[0].command == "001"
    return c


# -- SASL -----------------------------------------------------------------------------


def test_cap_ls_offers_mechanisms_and_registration(client: Callable[..., RawClient]) -> None:
    c = client(caps="")
    c.send("CAP LS 302")
    caps = c.expect("CAP").params[-1].split()
    assert "sasl=PLAIN,SCRAM-SHA-256" in caps
    assert "draft/account-registration=before-connect" in caps
    assert {"account-tag", "account-notify", "extended-join"} <= set(caps)


def test_plain_logs_in_before_registration_and_keeps_the_owned_nick(
    client: Callable[..., RawClient],
) -> None:
    c = client()
    start(c, "PLAIN")
    send_payload(c, b"jilles\0jilles\0sesame")
    loggedin = c.expect("900")
    assert loggedin.params[2] == "jilles" and loggedin.params[1].startswith("*!")
    c.expect("903")
    assert finish(c, "jilles")[0].command == "001"


def test_plain_without_authzid_and_with_non_ascii_password(
    srv: ServerProcess, db: Path, client: Callable[..., RawClient]
) -> None:
    assert add_account(db, "foo", "é" * 100).returncode == 0
    os.kill(srv.pid or 0, signal.SIGHUP)  # not needed for logging in: credentials are read fresh
    assert plain(client(), "foo", "é" * 100) == "903"
    assert plain(client(), "jilles", "sesame", authzid="") == "903"


def test_plain_refusals(client: Callable[..., RawClient]) -> None:
    assert plain(client(), "jilles", "millet") == "904"  # wrong password
    assert plain(client(), "nobody", "sesame") == "904"  # no such account
    assert plain(client(), "jilles", "sesame", authzid="alice") == "904"  # acting as another


def test_plain_payload_split_in_400_byte_lines(
    srv: ServerProcess, db: Path, client: Callable[..., RawClient]
) -> None:
    assert add_account(db, "long", "bar" * 100).returncode == 0
    assert add_account(db, "exact", "x" * 288).returncode == 0
    assert plain(client(), "long", "bar" * 100) == "903"  # 404 bytes: two lines
    payload = b"exact\0exact\0" + b"x" * 288  # 300 bytes: exactly 400 in base64, then "+"
    assert len(base64.b64encode(payload)) == 400
    assert plain(client(), "exact", "x" * 288, authzid="exact") == "903"


def test_scram_logs_in_and_the_server_proves_itself(client: Callable[..., RawClient]) -> None:
    result = scram(client(), "Scramtest", "sesame")
    assert result.outcome == "903"
    assert result.server_signature_ok


def test_scram_wrong_password_wrong_proof_and_unknown_account(
    client: Callable[..., RawClient],
) -> None:
    assert scram(client(), "Scramtest", "millet").outcome == "904"
    assert scram(client(), "Scramtest", "sesame", bad_proof=True).outcome == "904"
    assert scram(client(), "nobody", "sesame").outcome == "904"


def test_scram_unknown_account_looks_like_a_wrong_password(
    client: Callable[..., RawClient],
) -> None:
    """The server answers a stable salt for a name without an account, so probing
    names tells nothing; the exchange fails only at the proof."""
    salts = []
    for _ in range(2):
        c = client()
        start(c, "SCRAM-SHA-256")
        send_payload(c, b"n,,n=nobody,r=abcdefgh")
        first = base64.b64decode(c.expect("AUTHENTICATE").params[0]).decode()
        salts.append(dict(p.split("=", 1) for p in first.split(","))["s"])
    assert salts[0] == salts[1]


def test_bad_exchanges_get_clear_numerics(client: Callable[..., RawClient]) -> None:
    c = client()
    c.send("AUTHENTICATE FOO")
    assert c.expect("908").params[1] == "PLAIN,SCRAM-SHA-256"
    c.expect("904")
    start(c, "PLAIN")
    c.send("AUTHENTICATE *")
    c.expect("906")
    start(c, "PLAIN")
    c.send("AUTHENTICATE " + "A" * 401)
    c.expect("905")
    start(c, "PLAIN")
    c.send("AUTHENTICATE !!!notbase64")
    c.expect("904")
    start(c, "SCRAM-SHA-256")
    send_payload(c, b"p=tls-unique,,n=jilles,r=abc")  # channel binding: not offered
    c.expect("904")
    no_cap = client(caps="")
    no_cap.send("AUTHENTICATE PLAIN")
    no_cap.expect("904")
    # Nothing took the connection down: it still registers.
    assert finish(c, "stillhere")[0].command == "001"


def test_reauthenticate_after_registration(client: Callable[..., RawClient]) -> None:
    c = client()
    assert finish(c, "someone")[0].command == "001"
    assert plain(c, "jilles", "sesame") == "903"
    assert plain(c, "alice", "wonderland") == "903"
    c.send("WHOIS someone")
    assert c.expect("330").params[2] == "alice"


def test_failed_logins_are_throttled_per_address_and_logged(
    srv: ServerProcess, client: Callable[..., RawClient]
) -> None:
    for _ in range(4):  # three free failures, then the address must wait
        assert plain(client(), "jilles", "wrong") == "904"
    assert plain(client(), "jilles", "sesame") == "904"  # not even checked while waiting
    srv.wait_log("SASL login failed from 127.0.0.1", timeout=5)


# -- owned nicks ----------------------------------------------------------------------


def test_owned_nick_refused_without_login(client: Callable[..., RawClient]) -> None:
    c = client(caps="")
    c.send("NICK jilles")
    c.send("USER j 0 * :j")
    refused = c.expect("433")
    assert "registered" in refused.params[-1]
    c.send("NICK notjilles")
    c.expect("001")
    c.send("NICK JILLES")  # casefolded: still the account's
    c.expect("433")
    other = client()
    logged_in(other, "jilles", "sesame", nick="jill")
    other.send("NICK Jilles")
    other.expect(lambda m: m.command == "NICK" and m.params[0] == "Jilles")


# -- REGISTER -------------------------------------------------------------------------


def test_register_before_connect_then_log_in_elsewhere_and_after_restart(
    srv: ServerProcess, client: Callable[..., RawClient]
) -> None:
    c = client(caps="draft/account-registration")
    c.send("NICK bar")
    c.send("REGISTER * * shivarampassphrase")
    success = c.expect("REGISTER")
    assert success.params[:2] == ["SUCCESS", "bar"]
    assert c.expect("900").params[2] == "bar"
    assert finish(c, "bar")[0].command == "001"
    assert plain(client(), "bar", "shivarampassphrase") == "903"
    srv.restart()
    assert scram(client(), "bar", "shivarampassphrase").outcome == "903"
    someone = client(caps="")
    someone.send("NICK bar")
    someone.send("USER b 0 * :b")
    someone.expect("433")


def test_register_refusals(client: Callable[..., RawClient]) -> None:
    holder = client(caps="")
    assert finish(holder, "root")[0].command == "001"
    c = client(caps="")
    c.send("REGISTER * * longenoughpassword")
    assert c.expect("FAIL").params[:2] == ["REGISTER", "NEED_NICK"]
    c.send("NICK root")  # in use: refused, but REGISTER * names it still
    c.send("REGISTER * * longenoughpassword")
    assert c.expect("FAIL").params[1:3] == ["USERNAME_EXISTS", "root"]
    c.send("NICK jilles")
    c.send("REGISTER * * longenoughpassword")
    assert c.expect("FAIL").params[1:3] == ["ACCOUNT_EXISTS", "jilles"]
    c.send("NICK newbie")
    c.send("REGISTER * * short")
    assert c.expect("FAIL").params[1] == "WEAK_PASSWORD"
    c.send("REGISTER * not-an-address longenoughpassword")
    assert c.expect("FAIL").params[1] == "INVALID_EMAIL"
    c.send("REGISTER * * " + "p" * 301)
    assert c.expect("FAIL").params[1] == "UNACCEPTABLE_PASSWORD"
    c.send("REGISTER newbie newbie@example.org longenoughpassword")
    assert c.expect("REGISTER").params[:2] == ["SUCCESS", "newbie"]
    c.send("REGISTER * * anotherpassword")
    assert c.expect("FAIL").params[1] == "ALREADY_REGISTERED"


def test_closed_registration(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory("--no-open-registration")
    c = RawClient(srv.host, srv.port)
    c.send("CAP LS 302")
    assert "draft/account-registration" not in c.expect("CAP").params[-1]
    c.send("NICK carol")
    c.send("REGISTER * * longenoughpassword")
    assert c.expect("FAIL").params[1] == "TEMPORARILY_UNAVAILABLE"
    c.close()


# -- what an account gives --------------------------------------------------------------


def test_account_tag_notify_extended_join_and_whois(client: Callable[..., RawClient]) -> None:
    watcher = client(caps="sasl account-tag account-notify extended-join message-tags")
    assert finish(watcher, "watcher")[0].command == "001"
    watcher.join("#room")
    alice = client()
    logged_in(alice, "alice", "wonderland")
    alice.send("JOIN #room")
    join = watcher.expect("JOIN")
    assert join.params == ["#room", "alice", "alice real"]
    anon = client()
    assert finish(anon, "anon")[0].command == "001"
    anon.send("JOIN #room")
    assert watcher.expect("JOIN").params == ["#room", "*", "anon real"]
    alice.send("PRIVMSG #room :hello")
    assert watcher.expect("PRIVMSG").tags.get("account") == "alice"
    alice.send("PRIVMSG watcher :direct")
    assert watcher.expect("PRIVMSG").tags.get("account") == "alice"
    anon.send("PRIVMSG #room :anonymous")
    assert "account" not in watcher.expect("PRIVMSG").tags
    assert plain(anon, "jilles", "sesame") == "903"
    notify = watcher.expect("ACCOUNT")
    assert notify.source.startswith("anon!") and notify.params == ["jilles"]
    watcher.send("WHOIS alice")
    whois = watcher.expect("330")
    assert whois.params[1:3] == ["alice", "alice"]
    # A client without account-tag gets no account tag.
    plain_tags = client(caps="message-tags")
    assert finish(plain_tags, "plaintags")[0].command == "001"
    plain_tags.join("#room")
    alice.send("PRIVMSG #room :again")
    assert "account" not in plain_tags.expect("PRIVMSG").tags
    alice.join("#elsewhere")  # every message from a logged-in user carries it, INVITE too
    alice.send("INVITE watcher #elsewhere")
    assert watcher.expect("INVITE").tags.get("account") == "alice"


def test_registered_only_room(client: Callable[..., RawClient]) -> None:
    alice = client()
    logged_in(alice, "alice", "wonderland")
    alice.join("#members")
    alice.send("MODE #members +R")
    alice.expect("MODE")
    anon = client(caps="")
    assert finish(anon, "anon")[0].command == "001"
    anon.send("JOIN #members")
    assert anon.expect("477").params[1] == "#members"
    jilles = client()
    logged_in(jilles, "jilles", "sesame")
    assert jilles.join("#members")[-1].command == "366"


def test_oper_by_account(client: Callable[..., RawClient]) -> None:
    alice = client()
    logged_in(alice, "alice", "wonderland")
    alice.send("OPER alice")
    alice.expect("381")
    jilles = client()
    logged_in(jilles, "jilles", "sesame")
    jilles.send("OPER jilles")
    jilles.expect("461")  # no account right, no password given


def test_direct_messages_belong_to_the_account(client: Callable[..., RawClient]) -> None:
    """A DM to alice while she is away is hers when she logs in; a connection that
    takes a free nick reads only what came after it took it."""
    bob = client(caps="")
    assert finish(bob, "bob")[0].command == "001"
    bob.send("PRIVMSG alice :are you there?")
    bob.expect("401")  # nobody is alice: nothing stored for her
    alice = client(caps="sasl draft/chathistory batch server-time message-tags")
    logged_in(alice, "alice", "wonderland")
    bob.send("PRIVMSG alice :first")
    alice.expect("PRIVMSG")
    alice.close()
    again = client(caps="sasl draft/chathistory batch server-time message-tags")
    logged_in(again, "alice", "wonderland")
    texts = [
        m.params[-1] for m in again.answer("CHATHISTORY LATEST bob * 10") if m.command == "PRIVMSG"
    ]
    assert texts == ["first"]


# -- chat-server account ---------------------------------------------------------------


def test_account_command_line_beside_a_running_server(
    srv: ServerProcess, db: Path, client: Callable[..., RawClient]
) -> None:
    result = add_account(db, "dave", "davespassword", "--email", "dave@example.org")
    assert result.returncode == 0, result.stderr
    assert plain(client(), "dave", "davespassword") == "903"  # read fresh: no reload needed
    os.kill(srv.pid or 0, signal.SIGHUP)  # the owned nicks now include dave

    def refused() -> bool:
        c = client(caps="")
        c.send("NICK dave")
        c.send("USER d 0 * :d")
        return c.expect(lambda m: m.command in ("001", "433")).command == "433"

    deadline = time.monotonic() + 10
    while not refused():
        assert time.monotonic() < deadline, "dave's nick was never reserved"
    run = [sys.executable, "-m", "chat_server", "account"]
    listing = subprocess.run(
        [*run, "list", "--db", str(db)], capture_output=True, text=True, timeout=60
    )
    assert "dave\t" in listing.stdout and "dave@example.org" in listing.stdout
    changed = subprocess.run(
        [*run, "passwd", "dave", "--db", str(db)],
        input="newpassword\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert changed.returncode == 0, changed.stderr
    assert plain(client(), "dave", "davespassword") == "904"
    assert plain(client(), "dave", "newpassword") == "903"
    gone = subprocess.run(
        [*run, "del", "dave", "--db", str(db)], capture_output=True, text=True, timeout=60
    )
    assert gone.returncode == 0
    assert plain(client(), "dave", "newpassword") == "904"


def test_account_command_line_errors(tmp_path: Path, db: Path) -> None:
    run = [sys.executable, "-m", "chat_server", "account"]
    again = add_account(db, "jilles", "whatever")
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = add_account(db, "no spaces", "whatever")
    assert bad.returncode == 2 and "not a valid account name" in bad.stderr
    empty = subprocess.run(
        [*run, "add", "x", "--db", str(db)], input="", capture_output=True, text=True, timeout=60
    )
    assert empty.returncode == 1 and "no password" in empty.stderr
    missing = subprocess.run(
        [*run, "list", "--db", str(tmp_path / "none.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1 and "no database" in missing.stderr
    rows = sqlite3.connect(db).execute("SELECT name, password, scram FROM accounts").fetchall()
    assert all(pw.startswith("scrypt$") and '"stored_key"' in keys for _, pw, keys in rows)
    assert not any("sesame" in pw + keys for _, pw, keys in rows)


def test_read_markers_belong_to_the_account(client: Callable[..., RawClient]) -> None:
    caps = "sasl draft/read-marker"
    phone = client(caps=caps)
    logged_in(phone, "alice", "wonderland")
    laptop = client(caps=caps)
    logged_in(laptop, "alice", "wonderland", nick="alice_laptop")
    phone.join("#room")
    laptop.join("#room")
    phone.send("MARKREAD #room timestamp=2026-01-02T03:04:05.678Z")
    assert phone.expect("MARKREAD").params == ["#room", "timestamp=2026-01-02T03:04:05.678Z"]
    assert laptop.expect("MARKREAD").params == ["#room", "timestamp=2026-01-02T03:04:05.678Z"]
    later = client(caps=caps)
    logged_in(later, "alice", "wonderland", nick="alice_later")
    later.send("JOIN #room")
    assert later.expect("MARKREAD").params == ["#room", "timestamp=2026-01-02T03:04:05.678Z"]
