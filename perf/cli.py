"""``chat-perf``: ``run`` a scenario against a server, ``compare`` finished runs.

Exit codes: 0 ok; 1 the run failed, registered fewer clients than planned or violated a
--fail-if threshold; 2 bad usage; 128 + N when signal N stopped it (130 for Ctrl+C).
"""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import replace
from pathlib import Path

from perf import outputs, results
from perf.compare import compare
from perf.coordinator import Coordinator, RunOptions
from perf.procstat import usable_cpus
from perf.progress import ProgressDisplay
from perf.scenario import BUILTIN, Scenario, default_workers
from perf.spawn import SpawnedServer
from perf.thresholds import Threshold, ThresholdError, evaluate, parse
from perf.tls import TlsSettings


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


def _scenario_table() -> str:
    lines = ["scenarios (what --scenario sets; the options above override it):"]
    for name, scn in sorted(BUILTIN.items()):
        if scn.storm:
            what = f"{scn.clients:,} clients registering at once"
        else:
            load = (
                f"flat out, {scn.window} messages in flight per sender"
                if scn.saturate
                else f"{scn.rate:g} msg/s in total"
            )
            what = (
                f"{scn.clients} clients, {scn.rooms} room{'s' * (scn.rooms != 1)}, "
                f"{scn.senders} senders, {load}"
            )
        lines.append(f"  {name:<7} {what}")
    base = BUILTIN["chat"]
    lines.append(
        f"every scenario: --duration {base.duration:g} s, --ramp-up {base.ramp_up:g} s, "
        f"--msg-size {base.msg_size} B, --window {base.window} unless it says otherwise"
    )
    lines.append(
        "exit codes: 0 ok; 1 the run failed, registered fewer clients than planned or "
        "violated a --fail-if; 2 bad usage; 128+N stopped by signal N (130: Ctrl+C)"
    )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chat-perf", description="Load-test an IRC server and chart it."
    )
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run one scenario and write results to --out",
        description="Run one scenario against a server and write data, charts and reports.",
        epilog=_scenario_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--target",
        type=_target,
        metavar="HOST:PORT[,...]",
        help="an IRC server on loopback; several (a cluster's nodes) share the clients round-robin",
    )
    where.add_argument(
        "--spawn",
        action="store_true",
        help="start a local chat-server (--no-flood-limit) on a free port for the run",
    )
    run.add_argument(
        "--tls",
        action="store_true",
        help="clients speak TLS: --target is a TLS port; with --spawn the server gets a TLS "
        "port and a throwaway self-signed certificate, which clients check "
        "(default: plaintext)",
    )
    run.add_argument(
        "--tls-ca",
        type=Path,
        metavar="FILE",
        help="with --tls --target: check the server's certificate against this PEM CA "
        "(default: NO verification, acceptable only for benchmarking on loopback)",
    )
    run.add_argument(
        "--scenario", choices=sorted(BUILTIN), help="a built-in scenario (default: chat)"
    )
    run.add_argument(
        "--clients", type=int, help="number of simulated users (default: the scenario's)"
    )
    run.add_argument(
        "--rooms", type=int, help="rooms; client i joins room i %% rooms (default: the scenario's)"
    )
    run.add_argument("--senders", type=int, help="how many clients send (default: the scenario's)")
    pace = run.add_mutually_exclusive_group()
    pace.add_argument(
        "--rate",
        type=float,
        metavar="MSGS_PER_S",
        help="total messages/s over all senders (default: the scenario's; chat 200)",
    )
    pace.add_argument(
        "--saturate",
        action="store_true",
        help="send as fast as the server acknowledges (default: the scenario's)",
    )
    run.add_argument(
        "--window",
        type=int,
        help=f"messages in flight per sender with --saturate (default: the scenario's, "
        f"else {BUILTIN['chat'].window})",
    )
    run.add_argument(
        "--duration",
        type=float,
        help=f"seconds of traffic (default: {BUILTIN['chat'].duration:g})",
    )
    run.add_argument(
        "--ramp-up",
        type=float,
        help=f"spread connections over this many seconds (default: {BUILTIN['chat'].ramp_up:g})",
    )
    run.add_argument(
        "--msg-size",
        type=int,
        help=f"message body size in bytes (default: {BUILTIN['chat'].msg_size})",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=Path("perf-out"),
        help="output directory; an earlier run's files there are replaced (default: %(default)s)",
    )
    run.add_argument("--label", help="name of this run in reports (default: SCENARIO@TARGET)")
    run.add_argument("--fail-if", action="append", default=[], metavar="EXPR",
                     help="exit 1 if this holds after the run, e.g. 'p99>50ms', "
                          "'loss_rate>0%%', 'disconnects>0', 'deliveries_per_s<100k' "
                          "(repeatable; default: none)")  # fmt: skip
    run.add_argument(
        "--workers",
        type=int,
        help="generator processes (default: one per usable CPU, but at most 8 and at most "
        "one per 50 clients)",
    )
    run.add_argument(
        "--server-pid",
        type=int,
        help="sample this server process's CPU and memory (default: the spawned server's, "
        "else none)",
    )
    run.add_argument(
        "--server-cpus", help="with --spawn: pin the server with taskset -c CPUS (default: no pin)"
    )
    run.add_argument(
        "--drain",
        type=float,
        default=3.0,
        help="max seconds to wait for stragglers after sending (default: %(default)s)",
    )
    run.add_argument(
        "--raw-cap",
        type=int,
        default=200_000,
        help="max rows in latencies.csv and latency_data.txt; more are sampled uniformly "
        "(default: %(default)s)",
    )
    run.add_argument(
        "--no-progress", action="store_true", help="no live display (default: live display)"
    )

    cmp_ = sub.add_parser(
        "compare",
        help="overlay finished runs in the same charts and a table",
        description="Overlay finished runs (their --out directories) in the same charts, "
        "with a table and a change column against the first run.",
    )
    cmp_.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    cmp_.add_argument(
        "--out",
        type=Path,
        default=Path("perf-compare"),
        help="output directory; an earlier comparison's files there are replaced "
        "(default: %(default)s)",
    )
    cmp_.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="LABEL[,LABEL...]",
        help="labels of the DIRs, in order: repeat it or separate them by commas "
        "(default: each run's own label)",
    )
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
    if args.tls_ca is not None and (not args.tls or args.spawn):
        print("chat-perf: --tls-ca needs --tls and --target (--spawn makes its own "
              "certificate)", file=sys.stderr)  # fmt: skip
        return 2
    if args.tls_ca is not None and not args.tls_ca.is_file():
        print(f"chat-perf: --tls-ca: no such file: {args.tls_ca}", file=sys.stderr)
        return 2
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
        # An earlier run's files must not sit beside this run's (or pass for them if
        # this one fails before writing).
        outputs.clear_stale(out, outputs.RUN_FILES)
    except OSError as exc:
        print(f"chat-perf: cannot write to {out}: {exc}", file=sys.stderr)
        return 2
    server: SpawnedServer | None = None
    if args.spawn:
        try:
            server = SpawnedServer(cpus=args.server_cpus, tls=args.tls).start()
        except (RuntimeError, OSError) as exc:
            print(f"chat-perf: could not spawn chat-server: {exc}", file=sys.stderr)
            return 1
        host, pid = server.host, server.pid
        port = server.tls_port if server.tls_port is not None else server.port
        ca = server.tls_ca
    else:
        (host, port), pid = args.target[0], args.server_pid
        ca = args.tls_ca
    tls = TlsSettings(str(ca) if ca else None) if args.tls else None
    more_targets = () if server else tuple(args.target[1:])
    target = ",".join(f"{h}:{p}" for h, p in [(host, port), *more_targets])
    label = args.label or f"{scn.name}@{'chat-server' if server else target}" + (
        " (TLS)" if tls else ""
    )
    opts = RunOptions(
        host=host,
        port=port,
        scenario=scn,
        workers=args.workers or default_workers(scn.clients, usable_cpus()),
        label=label,
        server_pid=pid,
        drain_s=args.drain,
        raw_cap=args.raw_cap,
        more_targets=more_targets,
        tls=tls,
    )
    try:
        with ProgressDisplay(label, enabled=not args.no_progress) as display:
            data = Coordinator(opts, display.update).run()
    finally:
        if server is not None:
            server.stop()
    summary = results.build_summary(data, target, spawned=server is not None)
    violations = evaluate(thresholds, summary) if not data.aborted_reason else []
    summary["thresholds"] = {"checked": [t.text for t in thresholds], "violated": violations}
    outputs.write_run(data, summary, out, f"chat-perf run: {label}")
    print_verdict(summary["verdict"])
    _print_summary(summary, out)
    for w in summary["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    for v in violations:
        print(f"chat-perf: threshold violated: {v}", file=sys.stderr)
    if data.interrupted:
        signum = data.interrupt_signal or signal.SIGINT
        print(f"chat-perf: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum
    if not summary["verdict"]["ok"]:
        print(f"chat-perf: run failed: {summary['verdict']['problems'][0]}", file=sys.stderr)
        for e in data.worker_errors[:3]:
            print(e, file=sys.stderr)
        return 1
    return 1 if violations else 0


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


def _print_summary(s: dict, out: Path) -> None:
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
            f"dup {acc['duplicates']:,} reordered {acc['reordered']:,}; "
            f"disconnected {clients.get('disconnected', 0):,}/{clients['planned']:,} clients; "
            f"latency ms p50 {ms(lat['p50'])} p90 {ms(lat['p90'])} "
            f"p99 {ms(lat['p99'])} p99.9 {ms(lat['p99.9'])} max {ms(lat['max'])}"
        )
    print(
        f"results in {out}/ (latency_plot.png first; report.html, summary.json, "
        "latency_data.txt, percentiles.txt, latencies.csv, *.png)"
    )


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


def _labels(given: list[str]) -> list[str]:
    """``--label a,b`` and ``--label a --label b`` alike."""
    return [part.strip() for text in given for part in text.split(",") if part.strip()]


def cmd_compare(args: argparse.Namespace) -> int:
    labels = _labels(args.label)
    if labels and len(labels) != len(args.dirs):
        print(
            f"chat-perf: {len(labels)} label(s) for {len(args.dirs)} run(s); give one per DIR",
            file=sys.stderr,
        )
        return 2
    try:
        files, warnings = compare(args.dirs, args.out, labels)
    except (FileNotFoundError, ValueError) as exc:
        print(f"chat-perf: {exc}", file=sys.stderr)
        return 2
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {len(files)} files to {args.out}/ (compare.html, compare.md, compare_*.png)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    return cmd_compare(args)
