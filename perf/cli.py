"""``chat-perf``: ``run`` a scenario against a server, ``compare`` finished runs.

Exit codes: 0 ok; 1 the run failed, registered fewer clients than planned or violated a
--fail-if threshold; 2 bad usage; 128 + N when signal N stopped it (130 for Ctrl+C).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from perf import outputs, results
from perf.arguments import build_parser, scenario_from
from perf.compare import compare
from perf.console import print_summary, print_verdict
from perf.coordinator import Coordinator, RunOptions
from perf.procstat import usable_cpus
from perf.progress import ProgressDisplay
from perf.scenario import default_workers
from perf.spawn import SpawnedServer
from perf.thresholds import Threshold, ThresholdError, evaluate, parse
from perf.tls import TlsSettings

__all__ = ["build_parser", "cmd_compare", "cmd_run", "main", "print_verdict", "scenario_from"]


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
        host, pids = server.host, [server.pid, *args.server_pid]
        port = server.tls_port if server.tls_port is not None else server.port
        ca = server.tls_ca
    else:
        (host, port), pids = args.target[0], args.server_pid
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
        server_pids=tuple(dict.fromkeys(p for p in pids if p is not None)),
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
    print_summary(summary, out)
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
