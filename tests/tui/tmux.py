"""Drive chat-tui in a real terminal: a private tmux server, keys in, screen text out."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

WIDTH, HEIGHT = 120, 35


class Tmux:
    """One tmux server on its own socket; windows run ``chat-tui`` with a given env."""

    def __init__(self, tmp_path: Path) -> None:
        self.socket = f"chat-tui-test-{uuid.uuid4().hex[:8]}"
        self.home = tmp_path / "home"
        self.home.mkdir(exist_ok=True)
        # Zero-setup clients keep their data here, not in the real user's directories.
        self.env = {
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.home / "data"),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "TERM": "xterm-256color",
            "PYTHONPATH": os.getcwd(),
        }
        self.windows = 0

    def tmux(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True, text=True, timeout=10, check=check,
        )  # fmt: skip
        return result.stdout

    def start(self, *chat_tui_args: str, env: Mapping[str, str] | None = None) -> str:
        """Open a window running ``chat-tui ARGS``; returns its target name."""
        name = f"w{self.windows}"
        self.windows += 1
        variables = " ".join(
            f"{key}={shlex.quote(value)}" for key, value in {**self.env, **(env or {})}.items()
        )
        argv = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "chat_tui", *chat_tui_args])
        # ``; sleep`` keeps the window (and what the client printed) after it exits.
        command = f"cd {shlex.quote(os.getcwd())} && env {variables} {argv}; sleep 600"
        if name == "w0":
            self.tmux(
                "new-session", "-d", "-s", "t", "-n", name, "-x", str(WIDTH), "-y", str(HEIGHT),
                command,
            )  # fmt: skip
        else:
            self.tmux("new-window", "-d", "-t", "t", "-n", name, command)
        return f"t:{name}"

    def screen(self, target: str) -> str:
        return self.tmux("capture-pane", "-p", "-t", target)

    def wait_for(
        self, target: str, condition: Callable[[str], bool], what: str, timeout: float = 20.0
    ) -> str:
        """Poll the screen until ``condition(screen)``; fail with the screen after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen(target)
            if condition(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen:\n{text}")
            time.sleep(0.1)

    def wait_text(self, target: str, needle: str, timeout: float = 20.0) -> str:
        return self.wait_for(target, lambda s: needle in s, repr(needle), timeout)

    def keys(self, target: str, *keys: str) -> None:
        self.tmux("send-keys", "-t", target, *keys)

    def type(self, target: str, text: str) -> None:
        self.tmux("send-keys", "-t", target, "-l", text)

    def paste(self, target: str, text: str) -> None:
        """A bracketed paste, as a terminal sends one (tmux adds the brackets when the
        application asked for them, which Textual does)."""
        self.tmux("set-buffer", "-b", "paste", text)
        self.tmux("paste-buffer", "-p", "-d", "-b", "paste", "-t", target)

    def close(self) -> None:
        self.tmux("kill-server", check=False)
