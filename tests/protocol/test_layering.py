"""The protocol package stays free of Textual and of the server (DESIGN.md packages)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("chat_protocol.client", ("textual", "chat_server", "chat_tui", "bot", "perf")),
        ("chat_server.server", ("textual", "chat_tui", "bot", "perf")),
        ("bot.cli", ("textual", "chat_server", "chat_tui")),
    ],
)
def test_imports_stay_in_their_layer(module: str, forbidden: tuple[str, ...]) -> None:
    code = (
        f"import sys, {module}\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
