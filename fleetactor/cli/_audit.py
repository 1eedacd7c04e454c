"""The ``fleetactor audit`` subcommand: replay an audit log and report what it found."""

from __future__ import annotations

import argparse

from fleetactor.audit import AuditReport, FleetReport, MalformedLineError, percentile, replay_file
from fleetactor.cli._arguments import print_error
from fleetactor.cli._output import format_seconds, format_table, print_json

DESCRIPTION = """\
Replay an audit log (JSON lines written with --audit-log) and recompute the
fleet's active workers from the events themselves. Checks that no grant
raised active workers above max_workers, that every grant reported the
active count the replay computes, that seq increases strictly per fleet,
that timestamps (UTC) never go back within one process of a fleet, and that
every request reached an end (served, failed or cancelled). Several fleets
may share one file.

Exit status: 0 when every check holds; 1 when a check fails, naming the
first offending line, or when the file has no audit events; 2 when the file
cannot be read or a line is not an audit record."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="check an audit log against the cap and print a summary",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="PATH", help="audit log file, one JSON object per line")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object instead of text")
    parser.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    prog = "fleetactor audit"
    try:
        report = replay_file(arguments.path)
    except MalformedLineError as error:
        print_error(prog, f"{arguments.path}: line {error.line_number} is malformed: {error.reason}")
        return 2
    except OSError as error:
        print_error(prog, f"cannot read {arguments.path}: {error.strerror or error}")
        return 2

    if arguments.json:
        print_json(report.to_dict())
    else:
        print(format_report(arguments.path, report))

    if report.ok:
        return 0
    if report.empty:
        print_error(prog, f"{arguments.path}: no audit events; the file is empty, so there is nothing to check")
        return 1
    print_error(prog, f"{arguments.path}: {report.violations[0]}")
    return 1


def format_report(path: str, report: AuditReport) -> str:
    fleets = len(report.fleets)
    blocks = [f"audit log {path}: {report.lines} lines, {fleets} fleet{'' if fleets == 1 else 's'}"]
    blocks.extend(_format_fleet(fleet) for fleet in report.fleets)
    if report.ok:
        verdict = "result: OK: no grant exceeded the cap, every grant reported the replayed active count, every request reached an end"
    elif report.empty:
        verdict = "result: FAILED: no audit events"
    else:
        count = len(report.violations)
        verdict = f"result: FAILED: {count} violation{'' if count == 1 else 's'}; the first: {report.violations[0]}"
    blocks.append(verdict)
    return "\n\n".join(blocks)


def _format_fleet(fleet: FleetReport) -> str:
    waits = fleet.waits_s
    rows: list[tuple[str, object]] = [
        ("max workers", "-" if fleet.max_workers is None else fleet.max_workers),
        ("requests", fleet.requests),
        ("grants", fleet.grants),
        ("queued", fleet.queued),
        ("joined", fleet.joined),
        ("peak active", fleet.peak_active),
        ("served", fleet.served),
        ("failed", fleet.failed),
        ("cancelled", fleet.cancelled),
        ("abandoned at shutdown", fleet.abandoned),
        ("recovered from a journal", fleet.recovered),
        ("restarts", fleet.restarts),
        ("workers stopped", fleet.workers_stopped),
        ("foreign stopped", fleet.foreign_stopped),
        ("launch failures", fleet.launch_failures),
        ("  of which requeued", fleet.requeued),
        ("launch retries", fleet.launch_retries),
        ("reconciles", fleet.reconciles),
        ("failed reconciles", fleet.reconcile_failures),
        ("queue wait p50", format_seconds(percentile(waits, 0.50))),
        ("queue wait p95", format_seconds(percentile(waits, 0.95))),
        ("queue wait max", format_seconds(max(waits, default=None))),
    ]
    header = f"fleet {fleet.fleet}"
    notes = []
    if waits:
        notes.append(f"  queue waits: {len(waits)} queued requests, from spawn.queued to their first spawn.granted")
    if fleet.max_workers is not None and fleet.peak_active > fleet.max_workers:
        notes.append(
            f"  note: active reached {fleet.peak_active} on line {fleet.peak_active_line}, above max_workers "
            f"{fleet.max_workers}, when a listing found tasks that match no launch (foreign tasks); no grant caused it"
        )
    if fleet.seq_gaps:
        notes.append(f"  note: seq skips {fleet.seq_gaps} time(s); lines may be missing from this log")
    if not fleet.stopped:
        notes.append("  note: no fleet.stopped; the log may be cut short")
    return "\n".join([header, format_table(rows, indent="  "), *notes])

