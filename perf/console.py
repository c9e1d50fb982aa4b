"""What ``chat-perf run`` prints when it is done: the verdict first (what went wrong,
if anything), then one line of numbers and where the files are."""

from __future__ import annotations

from pathlib import Path


def print_verdict(verdict: dict) -> None:
    """The run's problems, first thing on the console, each line marked ``!!``."""
    if verdict["ok"]:
        return
    print("!! chat-perf: this run did not measure what was planned")
    for problem in verdict["problems"]:
        print(f"!!   {problem}")
    if verdict["reasons"]:
        print("!!   most common client failures:")
        for reason, n in verdict["reasons"]:
            print(f"!!     {n:,} x {reason}")
    for hint in verdict["hints"]:
        print(f"!!   hint: {hint}")


def print_summary(s: dict, out: Path) -> None:
    lat = s["latency_ms"]
    tp = s["throughput"]
    acc = s["accounting"]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    clients = s["clients"]
    if s.get("storm"):
        st = s["storm"]
        w = s["connect_ms"]["welcome"]
        within = st["all_registered_s"]
        print(
            f"{s['label']}: storm: {st['registered']:,}/{clients['planned']:,} registered, "
            f"{'all' if st['complete'] else 'those'} within "
            f"{'-' if within is None else f'{within:.3f}'} s; "
            f"time to 001 p50 {ms(w['p50'])} ms p99 {ms(w['p99'])} ms max {ms(w['max'])} ms"
            + _handshakes(s)
        )
    else:
        print(
            f"{s['label']}: {clients['registered']:,}/{clients['planned']:,} clients registered; "
            f"{tp['sent_per_s']:,.0f} msgs/s sent, "
            f"{tp['deliveries_per_s']:,.0f} deliveries/s; "
            f"delivered {acc['delivered']:,} lost {acc['lost']:,} ({acc['loss_rate']:.2%}) "
            f"dup {acc['duplicates']:,} reordered {acc['reordered']:,} "
            f"order disagreements {acc.get('order_disagreements', 0):,}; "
            f"disconnected {clients.get('disconnected', 0):,}/{clients['planned']:,} clients; "
            f"latency ms p50 {ms(lat['p50'])} p90 {ms(lat['p90'])} "
            f"p99 {ms(lat['p99'])} p99.9 {ms(lat['p99.9'])} max {ms(lat['max'])}"
        )
    cpu = _server_cpu(s["server"])
    if cpu:
        print(cpu)
    print(
        f"results in {out}/ (latency_plot.png first; report.html, summary.json, "
        "latency_data.txt, percentiles.txt, latencies.csv, *.png)"
    )


def _server_cpu(server: dict) -> str | None:
    """``server CPU in the measured window: 0.42 cores (pid 1 0.30, pid 2 0.12)``."""
    per_pid = server.get("per_pid") or []
    if server.get("cores") is None or not per_pid:
        return None
    each = ", ".join(
        f"pid {p['pid']} {p['cores']:.2f}" for p in per_pid if p.get("cores") is not None
    )
    text = f"server CPU in the measured window: {server['cores']:.2f} cores"
    return text + (f" ({each})" if len(per_pid) > 1 else f" (pid {per_pid[0]['pid']})")


def _handshakes(s: dict) -> str:
    """``; TCP up p50 ..., TLS done p50 ...`` for a TLS run (both from connect())."""
    if not (s.get("tls") or {}).get("enabled"):
        return ""
    c = s["connect_ms"]
    return "; " + ", ".join(
        f"{what} p50 {c[k]['p50']:.3f} ms p99 {c[k]['p99']:.3f} ms"
        for what, k in (("TCP up", "tcp"), ("TLS done", "tls"))
        if c[k]["p50"] is not None
    )
