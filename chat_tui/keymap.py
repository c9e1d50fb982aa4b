"""Default key bindings by action id; the config's ``[keybindings]`` overrides them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.binding import BindingType

# action id -> (default keys, action, description shown in help and footer)
DEFAULT_KEYS: dict[str, tuple[str, str, str]] = {
    "next_room": ("ctrl+n", "step_room(1)", "Next room"),
    "previous_room": ("ctrl+p", "step_room(-1)", "Previous room"),
    "next_unread": ("alt+a", "next_unread", "Next unread (mentions first)"),
    "switch_room": ("ctrl+k", "switch_room", "Find a room"),
    "search": ("ctrl+f", "search", "Search messages"),
    "copy_mode": ("ctrl+y", "copy_mode", "Copy messages (select lines)"),
    "toggle_members": ("f2", "toggle_members", "Members"),
    "room_list": ("f3", "room_list", "Room list"),
    "help": ("f1", "help", "Help"),
    "scroll_up": ("pageup", "scroll_pane(-1)", "Scroll up"),
    "scroll_down": ("pagedown", "scroll_pane(1)", "Scroll down"),
    "quit": ("ctrl+q", "quit", "Quit"),
    **{f"room_{i}": (f"alt+{i}", f"jump_room({i})", f"Room {i}") for i in range(1, 10)},
}

# Keys in copy mode (Ctrl+Y), bound on the message pane while it has the focus; their
# ids are rebindable under [keybindings] like the ones above.
COPY_MODE_KEYS: dict[str, tuple[str, str, str]] = {
    "copy_up": ("up,k", "select(-1)", "Line above"),
    "copy_down": ("down,j", "select(1)", "Line below"),
    "copy_extend_up": ("shift+up", "select(-1, True)", "Extend up"),
    "copy_extend_down": ("shift+down", "select(1, True)", "Extend down"),
    "copy_selected": ("enter,y", "copy", "Copy"),
    "copy_leave": ("escape,q", "leave", "Leave"),
}
SHOWN_IN_COPY_FOOTER = {"copy_selected", "copy_leave"}
KEY_SIGNS = {"up": "↑", "down": "↓", "escape": "esc"}  # shorter names in the status line

SHOWN_IN_FOOTER = {"help", "switch_room", "toggle_members", "room_list", "quit"}

COMMAND_PALETTE_KEY = "ctrl+o"  # Ctrl+P belongs to "previous room"


def key_help(keybindings: dict[str, str]) -> list[tuple[str, str]]:
    """(keys, description) for every key the help lists, as ``keybindings`` rebinds them."""
    keys = []
    for binding_id, (default, _action, description) in DEFAULT_KEYS.items():
        if binding_id.startswith("room_") and binding_id != "room_list":
            continue
        keys.append((keybindings.get(binding_id, default), description))
    keys.append(("alt+1 … alt+9", "Go to room 1-9"))
    keys.append((COMMAND_PALETTE_KEY, "Command palette"))
    keys.append(("up / down", "recall sent lines"))
    keys.append(("tab", "complete nick, /cmd, #room"))
    up, down, extend, copy, leave = _copy_keys(keybindings, " / ")
    keys.append((f"{up} / {down}", "copy mode: line above / below"))
    keys.append((extend, "copy mode: extend the selection"))
    keys.append((f"{copy} / {leave}", "copy mode: copy / leave"))
    return keys


def _copy_keys(
    keybindings: dict[str, str], between: str, signs: dict[str, str] | None = None
) -> tuple[str, str, str, str, str]:
    """Copy mode's first keys as bound (up, down, extend up/down, copy, leave), with
    key names replaced by ``signs``; "shift+up / down" when extending is shift+moving."""

    def key(binding_id: str) -> str:
        first = keybindings.get(binding_id, COPY_MODE_KEYS[binding_id][0]).split(",")[0]
        for name, sign in (signs or {}).items():
            first = first.replace(name, sign)
        return first

    up, down = key("copy_up"), key("copy_down")
    extend_up, extend_down = key("copy_extend_up"), key("copy_extend_down")
    extend = f"{extend_up}{between}{extend_down}"
    if (extend_up, extend_down) == (f"shift+{up}", f"shift+{down}"):
        extend = f"shift+{up}{between}{down}"  # short: the help fits in 60 columns
    return up, down, extend, key("copy_selected"), key("copy_leave")


def copy_mode_hint(keybindings: dict[str, str]) -> str:
    """The status line's reminder of copy mode's keys, as ``keybindings`` rebinds them
    (short: it has to fit beside the connection state in 80 columns)."""
    up, down, extend, copy, leave = _copy_keys(keybindings, "/", KEY_SIGNS)
    return f"copy: {up}/{down} moves, {extend} extends, {copy} copies, {leave} leaves"


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


def bindings() -> list[BindingType]:
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


def copy_mode_bindings() -> list[BindingType]:
    """The message pane's bindings in copy mode, with ids for ``App.update_keymap``."""
    from textual.binding import Binding

    return [
        Binding(keys, action, description, show=binding_id in SHOWN_IN_COPY_FOOTER, id=binding_id)
        for binding_id, (keys, action, description) in COPY_MODE_KEYS.items()
    ]
