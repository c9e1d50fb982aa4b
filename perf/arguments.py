"""chat-perf's command line: its options, and the scenario they make."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from perf.scenario import BUILTIN, Scenario


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
                          "'loss_rate>0%%', 'order_disagreements>0', 'disconnects>0', "
                          "'deliveries_per_s<100k' "
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
        action="append",
        default=[],
        metavar="PID",
        help="sample this process's CPU and memory, its children's included; repeat it for "
        "several (a cluster's nodes, its Redis): each is reported and the sum (default: "
        "the spawned server's, else none)",
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
