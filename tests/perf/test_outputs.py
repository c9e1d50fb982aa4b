"""The files of an output folder: the original system's latency_data.txt and
latency_plot.png, percentiles.txt, no stale files from an earlier run, reports that
show only what a run measured, --help with defaults, and ``compare``'s table."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from perf.charts.frame import subtitle
from tests.perf.conftest import chat_perf, load_summary

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _data_lines(path: Path) -> tuple[list[str], list[float]]:
    lines = path.read_text().splitlines()
    head = [ln for ln in lines if ln.startswith("#")]
    return head, [float(ln) for ln in lines if not ln.startswith("#")]


def test_latency_data_is_every_delivery_in_ms(chat_out: Path) -> None:
    s = load_summary(chat_out)
    head, values = _data_lines(chat_out / "latency_data.txt")
    assert head == []  # all samples: plain numbers, as the original wrote them
    with (chat_out / "latencies.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(values) == len(rows) == s["accounting"]["delivered"] == 3000
    assert values == [round(int(r["latency_us"]) / 1000, 3) for r in rows]
    assert min(values) > 0
    assert max(values) <= s["latency_ms"]["max"] + 0.001  # HDR's max: its bucket's top


def test_latency_plot_is_the_first_chart(chat_out: Path) -> None:
    assert (chat_out / "latency_plot.png").read_bytes()[:8] == PNG_MAGIC
    md = (chat_out / "report.md").read_text()
    assert md.split("## Charts", 1)[1].strip().startswith("![latency_plot](latency_plot.png)")
    html = (chat_out / "report.html").read_text()
    assert html.index('alt="latency_plot"') < html.index('alt="latency_over_time"')


def test_percentiles_table_is_hdrhistogram_style(chat_out: Path) -> None:
    s = load_summary(chat_out)
    lines = (chat_out / "percentiles.txt").read_text().splitlines()
    assert lines[0].startswith("# chat-a: delivery latency") and "ms" in lines[0]
    assert lines[1].split() == ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    table = [ln.split() for ln in lines[3:] if ln and not ln.startswith("#")]
    values = [float(r[0]) for r in table]
    assert values == sorted(values) and float(table[-1][1]) == 1.0
    assert int(table[-1][2]) == s["latency_ms"]["count"]
    at = next(i for i, r in enumerate(table) if float(r[1]) >= 0.5)
    assert float(table[at - 1][0]) <= s["latency_ms"]["p50"] <= float(table[at][0])
    assert lines[-1].startswith("#[Max") and f"{s['latency_ms']['max']:.3f}" in lines[-1]


def test_a_sampled_run_says_its_rate(tmp_path: Path) -> None:
    proc = chat_perf(
        "run", "--spawn", "--clients", "12", "--rooms", "1", "--senders", "4", "--rate", "200",
        "--duration", "1", "--raw-cap", "200", "--workers", "1", "--out", str(tmp_path),
        "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    s = load_summary(tmp_path)
    info = s["latencies_csv"]
    assert info["sampled"] and info["stride"] > 1
    head, values = _data_lines(tmp_path / "latency_data.txt")
    assert head == [
        f"# sampled: 1 delivery in {info['stride']} ({info['rows']:,} of {info['of']:,}), "
        "the same rows as latencies.csv"
    ]
    assert len(values) == info["rows"]


def test_storm_folder_has_both_files_for_registration_times(storm_out: Path) -> None:
    s = load_summary(storm_out)
    head, values = _data_lines(storm_out / "latency_data.txt")
    assert head == [] and len(values) == s["storm"]["registered"] == 200
    assert min(values) > 0 and max(values) <= s["connect_ms"]["welcome"]["max"] + 0.001
    assert (storm_out / "latency_plot.png").read_bytes()[:8] == PNG_MAGIC
    assert "time from connect to 001" in (storm_out / "percentiles.txt").read_text()


def test_storm_report_has_no_traffic_rows(storm_out: Path) -> None:
    md = (storm_out / "report.md").read_text()
    table = md.split("| metric", 1)[1].split("\n\n", 1)[0]
    for irrelevant in ("deliveries", "sent (msgs/s)", "| lost", "latency p", "disconnected"):
        assert irrelevant not in table, irrelevant
    assert "time to 001 p50" in table and "all registered within" in table


def test_an_earlier_runs_files_are_replaced(chat_out: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "connect_cdf.png").write_bytes(PNG_MAGIC + b"old storm chart")
    (out / "report.html").write_text("OLD REPORT")
    (out / "notes.txt").write_text("mine")
    proc = chat_perf(
        "run", "--spawn", "--clients", "4", "--rooms", "1", "--senders", "1", "--rate", "20",
        "--duration", "1", "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not (out / "connect_cdf.png").exists()  # not a chart of this run
    assert "OLD REPORT" not in (out / "report.html").read_text()
    assert (out / "notes.txt").read_text() == "mine"  # not ours: left alone
    assert "chat-perf" in (out / "report.html").read_text()


def test_help_shows_defaults() -> None:
    run = chat_perf("run", "--help")
    assert run.returncode == 0
    text = " ".join(run.stdout.split())
    for expected in (
        "(default: chat)",
        "(default: 10)",
        "(default: 64)",
        "(default: perf-out)",
        "(default: 3.0)",
        "(default: 200000)",
        "chat 200 clients, 20 rooms, 200 senders, 200 msg/s in total",
        "130: Ctrl+C",
    ):
        assert expected in text, expected
    cmp_ = " ".join(chat_perf("compare", "--help").stdout.split())
    assert "(default: perf-compare)" in cmp_ and "separate them by commas" in cmp_


def _second_run(chat_out: Path, tmp_path: Path, scale: float) -> Path:
    """A copy of the chat run whose throughput and latency are ``scale`` times as high."""
    other = tmp_path / "other"
    shutil.copytree(chat_out, other)
    s = load_summary(other)
    s["label"] = "copy"
    s["throughput"]["deliveries_per_s"] *= scale
    s["latency_ms"]["p99"] *= scale
    (other / "summary.json").write_text(json.dumps(s))
    return other


def test_compare_has_a_change_column_and_two_labels(chat_out: Path, tmp_path: Path) -> None:
    other = _second_run(chat_out, tmp_path, 1.5)
    dest = tmp_path / "cmp"
    proc = chat_perf("compare", str(chat_out), str(other), "--label", "before,after", "--out",
                     str(dest))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "different scenarios" not in proc.stderr
    md = (dest / "compare.md").read_text()
    assert "| metric | before | after | Δ % |" in md
    rows = {r.split("|")[1].strip(): r for r in md.splitlines() if r.startswith("| ")}
    assert rows["deliveries/s"].rstrip(" |").endswith("+50.0 %")
    assert rows["latency p99 (ms)"].rstrip(" |").endswith("+50.0 %")
    assert rows["lost"].rstrip(" |").endswith("0.0 %")
    assert (dest / "latency_plot.png").read_bytes()[:8] == PNG_MAGIC
    assert (dest / "percentiles.txt").read_text().count("Value") == 2


def test_compare_warns_when_scenarios_differ(
    chat_out: Path, storm_out: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "cmp"
    proc = chat_perf("compare", str(chat_out), str(storm_out), "--out", str(dest))
    assert proc.returncode == 0, proc.stderr
    assert "different scenarios" in proc.stderr and "clients differs" in proc.stderr
    head = (dest / "compare.md").read_text().split("| metric")[0]
    assert "different scenarios" in head and "name differs (chat-a: custom, " in head


def test_compare_charts_name_each_runs_own_scenario(chat_out: Path, storm_out: Path) -> None:
    runs = [("a", load_summary(chat_out)), ("b", load_summary(storm_out))]
    footer = subtitle(runs).splitlines()
    assert footer[0].startswith("a: scenario custom: 24 clients, 4 rooms")
    assert footer[1].startswith("b: scenario storm: 200 clients")


def test_compare_rejects_a_label_count_that_does_not_match(chat_out: Path, tmp_path: Path) -> None:
    proc = chat_perf("compare", str(chat_out), "--label", "a,b", "--out", str(tmp_path))
    assert proc.returncode == 2 and "2 label(s) for 1 run(s)" in proc.stderr
