"""``chat-perf``: ``run`` a scenario against a server, ``compare`` finished runs.

Exit codes: 0 ok, 1 a --fail-if threshold was violated (or the run failed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from perf import charts, report, results
from perf.compare import compare
from perf.coordinator import Coordinator, RunOptions
from perf.progress import ProgressDisplay
from perf.scenario import BUILTIN, Scenario, default_workers
from perf.spawn import SpawnedServer
from perf.thresholds import Threshold, ThresholdError, evaluate, parse


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    host = host.strip("[]") or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1"):
        # Load tests hammer the target; keep them on this machine by design.
        raise argparse.ArgumentTypeError("chat-perf only targets loopback (127.0.0.1)")
    return "127.0.0.1" if host == "localhost" else host, int(port)


def _target(text: str) -> list[tuple[str, int]]:
    """``HOST:PORT[,HOST:PORT...]``: several nodes of one cluster share the clients."""
    targets = [_address(part) for part in text.split(",") if part.strip()]
    if not targets:
        raise argparse.ArgumentTypeError("expected HOST:PORT[,HOST:PORT...]")
    return targets


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chat-perf", description="Load-test an IRC server and chart it."
    )
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one scenario and write results to --out")
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--target",
        type=_target,
        metavar="HOST:PORT[,...]",
        help="an IRC server on loopback; several (a cluster's nodes) share the clients round-robin",
    )
    where.add_argument("--spawn", action="store_true", help="start a local chat-server for the run")
    run.add_argument(
        "--scenario", choices=sorted(BUILTIN), help="a built-in scenario (default: chat)"
    )
    run.add_argument("--clients", type=int, help="number of simulated users")
    run.add_argument("--rooms", type=int, help="rooms; client i joins room i %% rooms")
    run.add_argument("--senders", type=int, help="how many clients send")
    pace = run.add_mutually_exclusive_group()
    pace.add_argument(
        "--rate", type=float, metavar="MSGS_PER_S", help="total messages/s over all senders"
    )
    pace.add_argument(
        "--saturate", action="store_true", help="send as fast as the server acknowledges"
    )
    run.add_argument("--window", type=int, help="messages in flight per sender with --saturate")
    run.add_argument("--duration", type=float, help="seconds of traffic (default 10)")
    run.add_argument("--ramp-up", type=float, help="spread connections over this many seconds")
    run.add_argument("--msg-size", type=int, help="message body size in bytes (default 64)")
    run.add_argument("--out", type=Path, default=Path("perf-out"), help="output directory")
    run.add_argument("--label", help="name of this run in reports (default: scenario@target)")
    run.add_argument("--fail-if", action="append", default=[], metavar="EXPR",
                     help="e.g. 'p99>50ms', 'loss_rate>0%%', 'disconnects>0', "
                          "'deliveries_per_s<100k'")  # fmt: skip
    run.add_argument(
        "--workers", type=int, help="generator processes (default: one per usable CPU)"
    )
    run.add_argument("--server-pid", type=int, help="sample this server process's CPU and memory")
    run.add_argument("--server-cpus", help="with --spawn: pin the server with taskset -c CPUS")
    run.add_argument("--drain", type=float, default=3.0, help="max seconds to wait for stragglers")
    run.add_argument("--raw-cap", type=int, default=200_000, help="max rows in latencies.csv")
    run.add_argument("--no-progress", action="store_true", help="no live display")

    cmp_ = sub.add_parser("compare", help="overlay finished runs in the same charts and a table")
    cmp_.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    cmp_.add_argument("--out", type=Path, default=Path("perf-compare"))
    cmp_.add_argument("--label", action="append", default=[], help="label per DIR, in order")
    return p


def scenario_from(args: argparse.Namespace) -> Scenario:
    """A built-in scenario with the command line's overrides; ``custom`` without one."""
    custom = any(v is not None for v in (args.clients, args.rooms, args.senders, args.rate))
    name = args.scenario or ("custom" if custom or args.saturate else "chat")
    base = BUILTIN[args.scenario or "chat"]
    overrides: dict[str, object] = {
        "name": name,
        "clients": args.clients,
        "rooms": args.rooms,
        "senders": args.senders,
        "duration": args.duration,
        "ramp_up": args.ramp_up,
        "msg_size": args.msg_size,
        "window": args.window,
    }
    if args.rate is not None:
        overrides.update(rate=args.rate, saturate=False)
    if args.saturate:
        overrides.update(saturate=True, rate=None)
    scn = replace(base, **{k: v for k, v in overrides.items() if v is not None})
    if args.senders is None and scn.senders > scn.clients:
        scn = replace(scn, senders=scn.clients)
    if args.rooms is None and not scn.storm and scn.rooms > scn.clients:
        scn = replace(scn, rooms=scn.clients)
    scn.validate()
    return scn


def cmd_run(args: argparse.Namespace) -> int:
    try:
        thresholds: list[Threshold] = [parse(t) for t in args.fail_if]
        scn = scenario_from(args)
    except (ThresholdError, ValueError) as exc:
        print(f"chat-perf: {exc}", file=sys.stderr)
        return 2
    server: SpawnedServer | None = None
    if args.spawn:
        try:
            server = SpawnedServer(cpus=args.server_cpus).start()
        except (RuntimeError, OSError) as exc:
            print(f"chat-perf: could not spawn chat-server: {exc}", file=sys.stderr)
            return 1
        host, port, pid = server.host, server.port, server.pid
    else:
        (host, port), pid = args.target[0], args.server_pid
    more_targets = () if server else tuple(args.target[1:])
    target = ",".join(f"{h}:{p}" for h, p in [(host, port), *more_targets])
    label = args.label or f"{scn.name}@{'chat-server' if server else target}"
    cpus = len(os.sched_getaffinity(0))
    opts = RunOptions(
        host=host,
        port=port,
        scenario=scn,
        workers=args.workers or default_workers(scn.clients, cpus),
        label=label,
        server_pid=pid,
        drain_s=args.drain,
        raw_cap=args.raw_cap,
        more_targets=more_targets,
    )
    try:
        with ProgressDisplay(label, enabled=not args.no_progress) as display:
            data = Coordinator(opts, display.update).run()
    finally:
        if server is not None:
            server.stop()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    summary = results.build_summary(data, target, spawned=server is not None)
    violations = evaluate(thresholds, summary) if not data.aborted_reason else []
    summary["thresholds"] = {"checked": [t.text for t in thresholds], "violated": violations}
    results.write_csv(data, out / "latencies.csv")
    results.write_json(summary, out / "summary.json")
    runs = [(label, summary)]
    made = charts.draw_all(runs, out)
    report.write_markdown(runs, made, out / "report.md", f"chat-perf run: {label}")
    report.write_html(runs, made, out / "report.html", f"chat-perf run: {label}")
    _print_summary(summary, out)
    for w in summary["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    if data.aborted_reason and not data.interrupted:
        print(f"chat-perf: run failed: {data.aborted_reason}", file=sys.stderr)
        for e in data.worker_errors[:3]:
            print(e, file=sys.stderr)
        return 1
    if violations:
        for v in violations:
            print(f"chat-perf: threshold violated: {v}", file=sys.stderr)
        return 1
    return 0


def _print_summary(s: dict, out: Path) -> None:
    lat = s["latency_ms"]
    tp = s["throughput"]
    acc = s["accounting"]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    clients = s["clients"]
    print(
        f"{s['label']}: {tp['sent_per_s']:,.0f} msgs/s sent, "
        f"{tp['deliveries_per_s']:,.0f} deliveries/s; "
        f"delivered {acc['delivered']:,} lost {acc['lost']:,} ({acc['loss_rate']:.2%}) "
        f"dup {acc['duplicates']:,} reordered {acc['reordered']:,}; "
        f"disconnected {clients.get('disconnected', 0):,}/{clients['planned']:,} clients; "
        f"latency ms p50 {ms(lat['p50'])} p90 {ms(lat['p90'])} "
        f"p99 {ms(lat['p99'])} p99.9 {ms(lat['p99.9'])} max {ms(lat['max'])}"
    )
    if s.get("storm"):
        st = s["storm"]
        w = s["connect_ms"]["welcome"]
        print(
            f"storm: {st['registered']:,}/{s['scenario']['clients']:,} registered, all within "
            f"{st['all_registered_s'] if st['all_registered_s'] is not None else '-'} s; "
            f"time to 001 p50 {ms(w['p50'])} ms p99 {ms(w['p99'])} ms"
        )
    print(f"results in {out}/ (report.html, summary.json, latencies.csv, *.png)")


def cmd_compare(args: argparse.Namespace) -> int:
    try:
        files = compare(args.dirs, args.out, args.label)
    except (FileNotFoundError, ValueError) as exc:
        print(f"chat-perf: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(files)} files to {args.out}/ (compare.html, compare.md, compare_*.png)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    return cmd_compare(args)
