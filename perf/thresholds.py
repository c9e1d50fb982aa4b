"""``--fail-if`` expressions such as ``p99>50ms`` or ``loss_rate>0.1%``, checked after a run."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_EXPR = re.compile(
    r"^\s*(?P<metric>[a-z][a-z0-9_.]*)\s*(?P<op>>=|<=|>|<|==)\s*"
    r"(?P<value>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>ms|us|µs|s|%|k|m)?\s*$",
    re.IGNORECASE,
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq,
}  # fmt: skip
_TIME_UNITS = {"ms": 1.0, "us": 0.001, "µs": 0.001, "s": 1000.0}
_COUNT_UNITS = {"k": 1e3, "m": 1e6}

# metric -> (where in summary.json, kind). Latency metrics compare in milliseconds.
METRICS: dict[str, tuple[tuple[str, ...], str]] = {
    **{p: (("latency_ms", p), "time") for p in ("p50", "p90", "p99", "p99.9", "max", "mean")},
    **{f"echo_{p}": (("echo_latency_ms", p), "time") for p in ("p50", "p99", "max")},
    "connect_p99": (("connect_ms", "welcome", "p99"), "time"),
    "connect_max": (("connect_ms", "welcome", "max"), "time"),
    "loss": (("accounting", "lost"), "count"),
    "loss_rate": (("accounting", "loss_rate"), "ratio"),
    "duplicates": (("accounting", "duplicates"), "count"),
    "reordered": (("accounting", "reordered"), "count"),
    "order_disagreements": (("accounting", "order_disagreements"), "count"),
    "deliveries_per_s": (("throughput", "deliveries_per_s"), "count"),
    "sent_per_s": (("throughput", "sent_per_s"), "count"),
    "failed_clients": (("clients", "failed"), "count"),
    "disconnects": (("clients", "disconnected"), "count"),
    "all_registered": (("storm", "all_registered_s"), "seconds"),
}


class ThresholdError(ValueError):
    """A --fail-if expression that cannot be understood."""


@dataclass(frozen=True, slots=True)
class Threshold:
    text: str
    metric: str
    op: str
    limit: float  # in the metric's own unit (ms, ratio, count, seconds)

    def check(self, summary: dict[str, Any]) -> str | None:
        """A violation message, or None when the run is within the limit."""
        path, _ = METRICS[self.metric]
        value: Any = summary
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            return f"{self.text}: {self.metric} was not measured in this run"
        if _OPS[self.op](float(value), self.limit):
            shown, limit = _fmt(self.metric, value), _fmt(self.metric, self.limit)
            return f"{self.text}: {self.metric} = {shown} (limit {self.op} {limit})"
        return None


def parse(text: str) -> Threshold:
    m = _EXPR.match(text)
    if not m:
        raise ThresholdError(
            f"cannot read --fail-if {text!r}; expected e.g. 'p99>50ms' or 'loss_rate>0.1%'"
        )
    metric = m["metric"].lower()
    if metric not in METRICS:
        raise ThresholdError(f"unknown metric {metric!r} in --fail-if; known: {', '.join(METRICS)}")
    kind = METRICS[metric][1]
    value = float(m["value"])
    unit = (m["unit"] or "").lower()
    if kind == "time":
        value *= _TIME_UNITS.get(unit, 1.0) if unit else 1.0
        if unit and unit not in _TIME_UNITS:
            raise ThresholdError(f"{text!r}: {metric} is a time; use ms, us or s")
    elif kind == "seconds":
        value *= {"ms": 0.001, "us": 1e-6, "µs": 1e-6, "s": 1.0, "": 1.0}.get(unit, 1.0)
    elif kind == "ratio":
        value = value / 100.0 if unit == "%" else value
    elif unit in _COUNT_UNITS:
        value *= _COUNT_UNITS[unit]
    elif unit:
        raise ThresholdError(f"{text!r}: {metric} is a count; use no unit, k or m")
    return Threshold(text.strip(), metric, m["op"], value)


def evaluate(thresholds: list[Threshold], summary: dict[str, Any]) -> list[str]:
    return [v for t in thresholds if (v := t.check(summary)) is not None]


def _fmt(metric: str, value: float) -> str:
    kind = METRICS[metric][1]
    if kind == "time":
        return f"{value:.3f} ms"
    if kind == "ratio":
        return f"{value:.4%}"
    if kind == "seconds":
        return f"{value:.3f} s"
    return f"{value:,.0f}"
