"""Accounts in the client's state (ours and members'), and reading REGISTER replies."""

from __future__ import annotations

import asyncio

from chat_protocol.client_account import NO_ANSWER, UNSUPPORTED, read_reply
from chat_protocol.client_requests import PendingRequest, RequestTracker
from chat_protocol.client_state import SessionState
from chat_protocol.client_updates import cap_values
from chat_protocol.message import Message


def feed(state: SessionState, *lines: str) -> SessionState:
    for line in lines:
        state.apply(Message.parse(line))
    return state


def in_room() -> SessionState:
    return feed(
        SessionState("me"),
        ":srv 005 me PREFIX=(ov)@+ :are supported",
        ":me!u@h JOIN #room * :my name",
        ":srv 353 me = #room :@op me",
        ":srv 366 me #room :End of /NAMES list",
    )


def test_cap_values() -> None:
    assert cap_values("sasl=PLAIN,SCRAM-SHA-256 batch draft/account-registration=") == {
        "sasl": "PLAIN,SCRAM-SHA-256",
        "batch": "",
        "draft/account-registration": "",
    }


def test_offered_caps_follow_ls_new_and_del() -> None:
    state = feed(
        SessionState("me"),
        ":srv CAP * LS * :sasl=PLAIN message-tags",
        ":srv CAP * LS :draft/account-registration=before-connect",
    )
    assert state.offered == {
        "sasl": "PLAIN",
        "message-tags": "",
        "draft/account-registration": "before-connect",
    }
    feed(state, ":srv CAP me NEW :account-notify", ":srv CAP me DEL :sasl")
    assert set(state.offered) == {"message-tags", "draft/account-registration", "account-notify"}
    state.reset_connection()
    assert state.offered == {}


def test_own_account_from_900_901_and_account_notify() -> None:
    state = SessionState("me")
    feed(state, ":srv 900 me me!u@host alice :You are now logged in as alice")
    assert state.account == "alice" and state.source == "me!u@host"
    feed(state, ":srv 901 me me!u@host :You are now logged out")
    assert state.account is None
    feed(state, ":me!u@host ACCOUNT bob")
    assert state.account == "bob"
    feed(state, ":me!u@host ACCOUNT *")
    assert state.account is None
    feed(state, ":me!u@host ACCOUNT bob", ":other!u@h ACCOUNT carol")
    assert state.account == "bob"
    state.reset_connection()
    assert state.account is None


def test_extended_join_records_member_accounts() -> None:
    state = feed(
        in_room(),
        ":bob!b@h JOIN #room bob :Bob B",
        ":guest!g@h JOIN #room * :A guest",
        ":plain!p@h JOIN #room",  # without extended-join: still a member
    )
    chan = state.channels["#room"]
    assert set(chan.members) == {"op", "me", "bob", "guest", "plain"}
    assert chan.accounts == {"bob": "bob"}


def test_account_notify_and_tag_update_members() -> None:
    state = feed(in_room(), ":bob!b@h JOIN #room * :Bob")
    chan = state.channels["#room"]
    feed(state, ":bob!b@h ACCOUNT bobby")
    assert chan.accounts == {"bob": "bobby"}
    feed(state, ":bob!b@h ACCOUNT *")
    assert chan.accounts == {}
    feed(state, "@account=opacc :op!o@h PRIVMSG #room :hi")
    assert chan.accounts == {"op": "opacc"}


def test_member_accounts_follow_nick_part_quit_and_names() -> None:
    state = feed(
        in_room(),
        ":bob!b@h JOIN #room bob :Bob",
        ":carol!c@h JOIN #room carol :Carol",
        ":dave!d@h JOIN #room dave :Dave",
    )
    chan = state.channels["#room"]
    feed(state, ":bob!b@h NICK robert")
    assert chan.accounts["robert"] == "bob" and "bob" not in chan.accounts
    feed(state, ":carol!c@h PART #room")
    feed(state, ":dave!d@h QUIT :bye")
    assert chan.accounts == {"robert": "bob"}
    feed(state, ":srv 353 me = #room :@op me", ":srv 366 me #room :End")
    assert chan.accounts == {}


def test_history_does_not_touch_accounts() -> None:
    state = feed(
        in_room(),
        ":srv BATCH +h chathistory #room",
        "@batch=h :old!o@h JOIN #room old :Old",
        "@batch=h;account=op2 :op!o@h PRIVMSG #room :then",
        ":srv BATCH -h",
    )
    assert state.channels["#room"].accounts == {}


# -- REGISTER replies ---------------------------------------------------------------------


def reply(*lines: str) -> list[Message]:
    return [Message.parse(line) for line in lines]


def test_register_success() -> None:
    got = read_reply(
        reply(
            ":srv 900 me me!u@h me :You are now logged in as me",
            ":srv REGISTER SUCCESS me :Account created",
        ),
        "me",
    )
    assert (got.ok, got.code, got.account) == (True, "SUCCESS", "me")
    assert got.text == "Account created"


def test_register_verification_required_is_not_a_login() -> None:
    got = read_reply(reply(":srv REGISTER VERIFICATION_REQUIRED me :Check your mail"), "me")
    assert not got.ok and got.code == "VERIFICATION_REQUIRED"


def test_register_failures() -> None:
    got = read_reply(reply(":srv FAIL REGISTER ACCOUNT_EXISTS me :Account already exists"), "me")
    assert (got.ok, got.code, got.account) == (False, "ACCOUNT_EXISTS", "me")
    got = read_reply(reply(":srv FAIL REGISTER WEAK_PASSWORD * :Too weak"), "me")
    assert (got.code, got.account, got.text) == ("WEAK_PASSWORD", "me", "Too weak")
    got = read_reply(reply(":srv FAIL REGISTER COMPLETE_CONNECTION_REQUIRED :Later"), "me")
    assert (got.code, got.account) == ("COMPLETE_CONNECTION_REQUIRED", "me")
    got = read_reply(reply(":srv 421 me REGISTER :Unknown command"), "me")
    assert got.code == UNSUPPORTED
    assert read_reply([], "me").code == NO_ANSWER


async def test_fenced_request_takes_replies_named_like_it() -> None:
    """Without labeled-response, ``REGISTER SUCCESS`` belongs to the REGISTER request."""
    tracker = RequestTracker()
    pending = PendingRequest(asyncio.get_running_loop().create_future(), command="REGISTER")
    tracker.fenced = pending
    assert tracker.claim(Message.parse(":srv REGISTER SUCCESS me :ok"), [])
    assert not tracker.claim(Message.parse(":x!y@z PRIVMSG #a :hi"), [])
    assert [m.command for m in pending.messages] == ["REGISTER"]
