"""The live display while a run goes: phase, clients, messages, rates, recent p99."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table


class ProgressDisplay:
    """A rich Live panel on a terminal; a plain line a second otherwise (CI logs)."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label = label
        self.console = Console(stderr=True)
        self.live: Live | None = None
        self.enabled = enabled
        self._last_line = 0.0
        self._last: dict[str, Any] = {}
        self._rate_mark: tuple[float, int] | None = None
        self.rate = 0.0

    def __enter__(self) -> ProgressDisplay:
        if self.enabled and self.console.is_terminal:
            self.live = Live(self._render({}), console=self.console, refresh_per_second=4)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._render(self._last))
            self.live.__exit__(None, None, None)

    def update(self, snap: dict[str, Any]) -> None:
        now = time.monotonic()
        delivered = snap.get("delivered", 0)
        if self._rate_mark is None or now - self._rate_mark[0] >= 1.0:
            if self._rate_mark is not None:
                self.rate = (delivered - self._rate_mark[1]) / (now - self._rate_mark[0])
            self._rate_mark = (now, delivered)
        self._last = snap
        if self.live is not None:
            self.live.update(self._render(snap))
        elif self.enabled and now - self._last_line >= 1.0:
            self._last_line = now
            print(self._line(snap), file=sys.stderr, flush=True)

    def _line(self, s: dict[str, Any]) -> str:
        p99 = s.get("p99_ms")
        return (
            f"[{self.label}] {s.get('phase', '?')} {s.get('elapsed_s', 0):.1f}s "
            f"clients {s.get('ready', 0)}/{s.get('clients', 0)} "
            f"sent {s.get('sent', 0):,} delivered {s.get('delivered', 0):,} "
            f"({self.rate:,.0f}/s) p99 {'-' if p99 is None else f'{p99:.2f} ms'}"
            + (f" disconnected {s['disconnected']:,}" if s.get("disconnected") else "")
        )

    def _render(self, s: dict[str, Any]) -> Table:
        table = Table(title=f"chat-perf · {self.label}", show_header=False, expand=False)
        table.add_column(style="bold cyan")
        table.add_column(justify="right")
        dur = s.get("duration_s") or 0
        elapsed = s.get("elapsed_s", 0.0)
        bar = ""
        if dur:
            done = min(1.0, elapsed / dur)
            bar = "█" * int(done * 30) + "░" * (30 - int(done * 30))
        table.add_row("phase", f"{s.get('phase', 'starting')}  {bar}")
        table.add_row("elapsed", f"{elapsed:.1f} s" + (f" / {dur:g} s" if dur else ""))
        table.add_row(
            "clients",
            f"{s.get('registered', 0):,} registered · {s.get('ready', 0):,} ready · "
            f"{s.get('closed', 0):,} failed ({s.get('disconnected', 0):,} after joining) / "
            f"{s.get('clients', 0):,}",
        )
        table.add_row("sent", f"{s.get('sent', 0):,}")
        table.add_row("delivered", f"{s.get('delivered', 0):,}  ({self.rate:,.0f}/s)")
        p99 = s.get("p99_ms")
        table.add_row("recent p99", "-" if p99 is None else f"{p99:.2f} ms")
        if s.get("interrupts"):
            table.add_row("", "[yellow]stopping (Ctrl+C again skips the drain)[/]")
        return table
