"""chat-tui in a real terminal (tmux): what a user sees after /leave, with two zero-setup
clients, and after a bracketed paste of several lines."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess
from tests.tui.tmux import Tmux

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

Connect = Callable[..., RawClient]


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    terminal = Tmux(tmp_path)
    yield terminal
    terminal.close()


def topic_row(screen: str) -> str:
    """The topic line: the first row right of the sidebar."""
    return screen.splitlines()[0]


def test_leave_then_type_shows_where_the_text_went(
    tmux: Tmux, server: ServerProcess, connect: Connect
) -> None:
    bob = connect("bob")
    bob.join("#general")
    win = tmux.start("--server", server.address, "--nick", "alice", "--join", "#random,#general")
    tmux.wait_text(win, "#general")
    tmux.wait_for(win, lambda s: "#random" in topic_row(s) or "#general" in topic_row(s), "a room")
    tmux.keys(win, "M-1")
    tmux.wait_for(win, lambda s: "#random" in topic_row(s), "#random in view")
    tmux.type(win, "/leave")
    tmux.keys(win, "Enter")
    tmux.wait_for(win, lambda s: "#general" in topic_row(s), "#general in view after /leave")
    tmux.type(win, "where does this go")
    tmux.keys(win, "Enter")
    bob.expect("PRIVMSG", pattern="where does this go")
    screen = tmux.wait_text(win, "where does this go")
    assert "#general" in topic_row(screen) and "#random" not in screen


def test_two_zero_setup_clients_share_one_server_that_goes_with_the_last(
    tmux: Tmux,
) -> None:
    first = tmux.start("--nick", "ann")
    tmux.wait_text(first, "#general")
    port_file = tmux.home / "data" / "distchat" / "local-server.json"
    pid = json.loads(port_file.read_text())["pid"]
    second = tmux.start("--nick", "ben")
    tmux.wait_text(second, "#general")
    tmux.wait_for(second, lambda s: "ben" in s and "●" in s, "ben connected")
    tmux.type(second, "hello from ben")
    tmux.keys(second, "Enter")
    tmux.wait_text(first, "hello from ben")  # one server: ann sees it
    tmux.type(first, "hello from ann")
    tmux.keys(first, "Enter")
    tmux.wait_text(second, "hello from ann")
    log = (tmux.home / "data" / "distchat" / "local-server.log").read_text()
    assert "UNIQUE constraint" not in log and "gave up" not in log
    tmux.keys(first, "C-q")  # the client that started the server quits first
    tmux.wait_for(first, lambda s: "joined the running one" not in s and "started it" in s,
                  "first client exited")  # fmt: skip
    assert alive(pid)
    tmux.type(second, "still here")
    tmux.keys(second, "Enter")
    tmux.wait_text(second, "still here")
    tmux.keys(second, "C-q")
    tmux.wait_text(second, "joined the running one")
    tmux.wait_for(
        second, lambda s: not alive(pid) and not port_file.exists(), "the local server to stop"
    )


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        os.kill(pid, 0)
        return True


def test_bracketed_paste_sends_every_line(
    tmux: Tmux, server: ServerProcess, connect: Connect
) -> None:
    bob = connect("bob")
    bob.join("#general")
    win = tmux.start("--server", server.address, "--nick", "alice", "--join", "#general")
    tmux.wait_for(win, lambda s: "#general" in topic_row(s), "#general")
    bob.expect("JOIN", pattern="alice")
    tmux.paste(win, "first line\nsecond line\nthird line\n")
    for text in ("first line", "second line", "third line"):
        bob.expect("PRIVMSG", pattern=text)
    tmux.wait_text(win, "third line")
    tmux.paste(win, "\n".join(f"row {i}" for i in range(1, 7)))
    tmux.wait_text(win, "Paste 6 lines into #general?")
    tmux.keys(win, "o")  # as one message
    msg = bob.expect("PRIVMSG", pattern="row 1")
    assert msg.params[-1] == "row 1 row 2 row 3 row 4 row 5 row 6"  # type: ignore[union-attr]


def test_closing_the_terminal_of_the_last_client_stops_the_local_server(tmux: Tmux) -> None:
    win = tmux.start("--nick", "ann")
    tmux.wait_text(win, "#general")
    port_file = tmux.home / "data" / "distchat" / "local-server.json"
    pid = json.loads(port_file.read_text())["pid"]
    tmux.wait_for(win, lambda s: "● connected" in s, "connected")
    tmux.tmux("kill-window", "-t", win)  # the terminal goes away: SIGHUP
    deadline = time.monotonic() + 20
    while alive(pid) or port_file.exists():
        assert time.monotonic() < deadline, "the local server outlived its last client"
        time.sleep(0.1)
