"""Default key bindings by action id; the config's ``[keybindings]`` overrides them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.binding import Binding

# action id -> (default keys, action, description shown in help and footer)
DEFAULT_KEYS: dict[str, tuple[str, str, str]] = {
    "next_room": ("ctrl+n", "step_room(1)", "Next room"),
    "previous_room": ("ctrl+p", "step_room(-1)", "Previous room"),
    "next_unread": ("alt+a", "next_unread", "Next unread (mentions first)"),
    "switch_room": ("ctrl+k", "switch_room", "Find a room"),
    "search": ("ctrl+f", "search", "Search messages"),
    "toggle_members": ("f2", "toggle_members", "Members"),
    "room_list": ("f3", "room_list", "Room list"),
    "help": ("f1", "help", "Help"),
    "scroll_up": ("pageup", "scroll_pane(-1)", "Scroll up"),
    "scroll_down": ("pagedown", "scroll_pane(1)", "Scroll down"),
    "quit": ("ctrl+q", "quit", "Quit"),
    **{f"room_{i}": (f"alt+{i}", f"jump_room({i})", f"Room {i}") for i in range(1, 10)},
}

SHOWN_IN_FOOTER = {"help", "switch_room", "toggle_members", "room_list", "quit"}

COMMAND_PALETTE_KEY = "ctrl+o"  # Ctrl+P belongs to "previous room"


def key_help(keybindings: dict[str, str]) -> list[tuple[str, str]]:
    """(keys, description) for every app binding, as ``keybindings`` rebinds them."""
    keys = []
    for binding_id, (default, _action, description) in DEFAULT_KEYS.items():
        if binding_id.startswith("room_") and binding_id != "room_list":
            continue
        keys.append((keybindings.get(binding_id, default), description))
    keys.append(("alt+1 … alt+9", "Go to room 1-9"))
    keys.append((COMMAND_PALETTE_KEY, "Command palette"))
    return keys


def read_alt_digits() -> None:
    """Make Esc+digit (how xterm, tmux, GNOME Terminal... send Alt+1..9) arrive as alt+N.

    Textual maps these sequences to the characters macOS WezTerm types for Option+digit
    ("¡", "™", "£"...), so Alt+2 would type "™" into the input instead of going to
    room 2. Dropping those few entries lets Textual's parser report them as alt+digit.
    (A terminal that sends "™" itself, like macOS Terminal, still types "™".)
    """
    try:
        from textual._ansi_sequences import ANSI_SEQUENCES_KEYS
    except ImportError:  # a Textual without that table: nothing to undo
        return
    table: Any = ANSI_SEQUENCES_KEYS
    for digit in "123456789":
        sequence = "\x1b" + digit
        if isinstance(table.get(sequence), str):
            del table[sequence]


def bindings() -> list[Binding]:
    """App bindings with ids, so ``App.set_keymap`` can rebind them from the config."""
    from textual.binding import Binding  # config loading stays free of Textual

    return [
        Binding(
            keys,
            action,
            description,
            show=binding_id in SHOWN_IN_FOOTER,
            priority=True,
            id=binding_id,
        )
        for binding_id, (keys, action, description) in DEFAULT_KEYS.items()
    ]
