"""benchmarks.run: a run of some scenarios keeps the others' results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import run as bench


def _write(d: Path, name: str, rate: float) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(json.dumps({"throughput": {"deliveries_per_s": rate}}))


def test_a_scenario_left_out_keeps_its_complete_rounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    ours, theirs = tmp_path / "runs" / "rooms-distchat", tmp_path / "runs" / "rooms-ngircd"
    for k, (a, b) in enumerate([(5, 4), (6, 5), (7, 6)], 1):
        _write(ours, f"round-{k}.json", a)
        if k < 3:  # ngircd's third round never finished: that round is left out
            _write(theirs, f"round-{k}.json", b)
    _write(ours, "summary.json", 7)
    _write(theirs, "summary.json", 5)
    runs: dict[str, dict[str, Path]] = {}
    rounds: dict[str, list[dict[str, dict]]] = {}
    bench._keep_earlier("rooms", ["distchat", "ngircd"], runs, rounds)
    assert runs == {"rooms": {"distchat": ours, "ngircd": theirs}}
    rates = [
        {n: s["throughput"]["deliveries_per_s"] for n, s in r.items()} for r in rounds["rooms"]
    ]
    assert rates == [{"distchat": 5, "ngircd": 4}, {"distchat": 6, "ngircd": 5}]
    # Results from before round files: the summaries are the one round.
    for f in [*ours.glob("round-*.json"), *theirs.glob("round-*.json")]:
        f.unlink()
    bench._keep_earlier("rooms", ["distchat", "ngircd"], runs, rounds)
    assert [{n: s["throughput"]["deliveries_per_s"] for n, s in r.items()}
            for r in rounds["rooms"]] == [{"distchat": 7, "ngircd": 5}]  # fmt: skip
    # Nothing measured for a scenario (or one server of it): nothing is made up.
    bench._keep_earlier("chat", ["distchat", "ngircd"], runs, rounds)
    (theirs / "summary.json").unlink()
    del runs["rooms"], rounds["rooms"]
    bench._keep_earlier("rooms", ["distchat", "ngircd"], runs, rounds)
    assert runs == {} and rounds == {}
