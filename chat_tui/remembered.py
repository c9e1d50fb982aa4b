"""Rooms that come back: the rooms the user is in, kept per server in ``state.json`` in
the data directory, and joined again at the next start when neither ``--join`` nor the
config names rooms.

The file is small JSON, written whole to a temporary file and renamed over the old one,
so a crash leaves the old list or the new one, never half of one::

    {"version": 1, "rooms": {"local": ["#general", "#dev"], "irc.example.net:6697": [...]}}
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

VERSION = 1
LOCAL = "local"  # the key of the local server, whose port changes from run to run


def read_file(path: Path) -> dict[str, Any]:
    """The parsed file, or an empty document when it is missing or unreadable (a broken
    file costs the remembered rooms, never the start)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class RememberedRooms:
    """The remembered rooms of one server (``key``) in the file at ``path``."""

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = key
        self._saved: list[str] | None = None

    def load(self) -> list[str]:
        rooms = read_file(self.path).get("rooms", {})
        found = rooms.get(self.key) if isinstance(rooms, dict) else None
        if not isinstance(found, list):
            return []
        self._saved = [r for r in found if isinstance(r, str) and r]
        return list(self._saved)

    def save(self, rooms: list[str]) -> bool:
        """Write ``rooms`` for this server unless that is what the file holds already;
        other servers' lists are kept. Returns whether it wrote."""
        if rooms == self._saved:
            return False
        data = read_file(self.path)
        table = data.get("rooms")
        if not isinstance(table, dict):
            table = {}
        table[self.key] = rooms
        data.update(version=VERSION, rooms=table)
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            return False
        self._saved = list(rooms)
        return True
