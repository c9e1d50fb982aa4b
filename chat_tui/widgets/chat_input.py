"""The input line: Up/Down recall what was sent, Tab completes nicks, commands and rooms.

While the line is a command that carries a secret (``/register <password>``), it is
shown as bullets, like a password field, so the password is not on screen.

A paste of several lines is not cut to its first line (``Input`` keeps only that): the
lines go to the app as a ``PastedLines`` message, which sends them.
"""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input

from chat_tui.completion import candidates, word_at

HISTORY_LIMIT = 500


class ChatInput(Input):
    """An ``Input`` with sent-line history and cycling Tab completion.

    | Key | Action |
    | :- | :- |
    | up | Previous sent line |
    | down | Next sent line (then back to the draft) |
    | tab | Complete the word before the cursor; again for the next match |
    """

    BINDINGS = [
        Binding("up", "history(-1)", "Previous line", show=False),
        Binding("down", "history(1)", "Next line", show=False),
        Binding("tab", "complete", "Complete", show=False),
    ]

    class PastedLines(Message):
        """Several lines were pasted; ``lines`` include what the input held around the
        cursor (blank lines dropped). The input is empty now."""

        def __init__(self, lines: list[str]) -> None:
            super().__init__()
            self.lines = lines

    def __init__(self, *, placeholder: str = "", id: str | None = None) -> None:
        super().__init__(placeholder=placeholder, id=id, select_on_focus=False)
        self.sent: list[str] = []
        self._recall: int | None = None
        self._draft = ""
        self.nicks: list[str] = []
        self.rooms: list[str] = []
        self._cycle: list[str] = []
        self._cycle_index = 0
        self._cycle_start = 0
        self._cycle_end = -1

    def on_input_changed(self, event: Input.Changed) -> None:
        """Hide the line while it holds a secret (it still reaches the app as typed)."""
        from chat_tui.commands import holds_secret  # commands imports the app's state

        self.password = " " in self.value and holds_secret(self.value)

    async def _on_key(self, event: events.Key) -> None:
        """Run this widget's own bindings (Ctrl+U, Ctrl+W, Up, Tab…) when the key arrives.

        Left to bubble, a key is matched against the bindings of whatever has focus by
        the time the app looks: when a later key of the same burst (F1, Ctrl+O) has
        opened another screen by then, the edit was silently lost.
        """
        if not event.is_printable:
            for binding in self._bindings.key_to_bindings.get(event.key, ()):
                if binding.priority:
                    continue  # the app ran those before the key was sent here
                event.stop()
                event.prevent_default()
                await self.run_action(binding.action)
                return
        await super()._on_key(event)

    def _on_paste(self, event: events.Paste) -> None:
        # prevent_default: Input's own handler (first line only) must not run as well.
        event.stop()
        event.prevent_default()
        lines = event.text.splitlines()
        start, end = sorted(self.selection)
        if sum(1 for line in lines if line.strip()) <= 1:
            text = next((line for line in lines if line.strip()), "")
            if text:
                self.replace(text, start, end)
            return
        lines[0] = self.value[:start] + lines[0]
        lines[-1] = lines[-1] + self.value[end:]
        self.value = ""
        self.post_message(self.PastedLines([line for line in lines if line.strip()]))

    def remember(self, line: str) -> None:
        """Add a sent line to the recall history (no immediate duplicates)."""
        if line and (not self.sent or self.sent[-1] != line):
            self.sent.append(line)
            del self.sent[:-HISTORY_LIMIT]
        self._recall = None

    def action_history(self, step: int) -> None:
        if not self.sent:
            return
        if self._recall is None:
            if step > 0:
                return
            self._draft = self.value
            index = len(self.sent) - 1
        else:
            index = self._recall + step
        if index >= len(self.sent):
            self._recall = None
            self._set(self._draft)
            return
        self._recall = max(0, index)
        self._set(self.sent[self._recall])

    def _set(self, value: str) -> None:
        self.value = value
        self.cursor_position = len(value)

    def action_complete(self) -> None:
        value, cursor = self.value, self.cursor_position
        continuing = self._cycle and cursor == self._cycle_end
        if not continuing:
            self._cycle = candidates(value, cursor, self.nicks, self.rooms)
            self._cycle_index = 0
            self._cycle_start = word_at(value, cursor)[0]
            if not self._cycle:
                self.app.bell()
                return
        else:
            self._cycle_index = (self._cycle_index + 1) % len(self._cycle)
        choice = self._cycle[self._cycle_index]
        end = self._cycle_end if continuing else cursor
        new_value = value[: self._cycle_start] + choice + value[end:]
        self.value = new_value
        self._cycle_end = self._cycle_start + len(choice)
        self.cursor_position = self._cycle_end
