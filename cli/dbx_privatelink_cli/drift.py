"""`dbx-privatelink drift [WORKSPACE]`, `pause` and `resume`: what drifted, what was done, and the switch.

drift lists the drift records (newest first) with their outcome and, for a remediation, the state of its
reconcile execution; --reset-mode clears the notify override the rate limit set. pause blocks every
remediation of the stack (drift is still recorded and notified); resume lifts it.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from dbx_privatelink.aws.executions import execution_status
from dbx_privatelink.drift.remediation import RESERVATION_GRACE_SECONDS
from dbx_privatelink.drift_store import DriftRecord, DriftStore
from dbx_privatelink.errors import DbxPrivateLinkError
from dbx_privatelink_cli.common import EXIT_OK, CliError, Runtime, add_common_arguments
from dbx_privatelink_cli.output import emit_json, emit_lines, first_line, table
from dbx_privatelink_cli.stack import stack_for


def register(subparsers: Any) -> None:
    drift = subparsers.add_parser(
        "drift",
        help="list drift records (what changed, who, what was done)",
        description="List the drift the detector and the scheduled scan recorded, newest first, with the "
        "outcome and the state of each remediation's reconcile execution.",
    )
    drift.add_argument("workspace", metavar="WORKSPACE", nargs="?", help="one workspace_key (default: all)")
    drift.add_argument("--limit", type=int, default=20, help="records per workspace (default 20)")
    drift.add_argument(
        "--reset-mode",
        action="store_true",
        help="clear the notify override set after too many remediations (needs WORKSPACE)",
    )
    add_common_arguments(drift)
    drift.set_defaults(handler=run_drift)

    pause = subparsers.add_parser(
        "pause",
        help="block every drift remediation of the stack (drift is still recorded and notified)",
        description="Set the stack's pause switch: no remediation starts until `dbx-privatelink resume`.",
    )
    pause.add_argument("--reason", default="", help="why (shown in status and notifications)")
    add_common_arguments(pause)
    pause.set_defaults(handler=run_pause)

    resume = subparsers.add_parser(
        "resume", help="let drift remediations run again", description="Clear the stack's pause switch."
    )
    add_common_arguments(resume)
    resume.set_defaults(handler=run_resume)


def drift_store(runtime: Runtime, table_name: str) -> DriftStore:
    return DriftStore(runtime.resource("dynamodb").Table(table_name))


def repair_status(sfn: Any, record: DriftRecord, now: datetime | None = None) -> str:
    """The status of the execution a drift record names. One Step Functions does not know is STARTING while
    the record is young (it coalesced onto a run another record reserved and is about to start), else
    NOT_FOUND (Step Functions forgets an execution 90 days after it ends); a read that fails says why."""
    arn = record.execution_arn
    if not arn or ":execution:" not in arn:
        return ""
    try:
        status = execution_status(sfn, arn)
    except DbxPrivateLinkError as exc:
        return f"UNKNOWN ({type(exc).__name__})"
    if status is not None:
        return status
    age = (now or datetime.now(UTC)) - datetime.fromisoformat(record.detected_at)
    return "STARTING" if age.total_seconds() < RESERVATION_GRACE_SECONDS else "NOT_FOUND"


def drift_json(record: DriftRecord, status: str) -> dict[str, Any]:
    document = record.model_dump(mode="json")
    document["execution_status"] = status or None
    return document


def drift_summary(store: DriftStore, key: str, spec_mode: str) -> dict[str, Any]:
    """What `status` shows about drift: the effective mode (and why), the pause switch, the last drift."""
    override = store.get_drift_override(key)
    pause = store.get_pause()
    last = store.list_drift(key, limit=1)
    return {
        "mode": override.mode if override else spec_mode,
        "spec_mode": spec_mode,
        "override": override.model_dump() if override else None,
        "paused": pause.paused,
        "last": last[0].model_dump(
            include={
                "detected_at",
                "last_seen_at",
                "count",
                "closed_at",
                "event_name",
                "summary",
                "actor",
                "outcome",
                "execution_arn",
            }
        )
        if last
        else None,
    }


def run_drift(args: argparse.Namespace, runtime: Runtime) -> int:
    if args.reset_mode and not args.workspace:
        raise CliError("--reset-mode needs a WORKSPACE", exit_code=2, name="UsageError")
    stack = stack_for(args, runtime)
    store = drift_store(runtime, stack.table_name)
    sfn = runtime.client("stepfunctions")
    try:
        keys = [args.workspace] if args.workspace else store.list_workspaces()
        if args.reset_mode:
            store.clear_drift_override(args.workspace)
        records = {key: store.list_drift(key, limit=args.limit) for key in keys}
        overrides = {key: store.get_drift_override(key) for key in keys}
        pause = store.get_pause()
    except DbxPrivateLinkError as exc:
        raise CliError(
            f"cannot read the store ({stack.table_name}): {exc}", name=type(exc).__name__
        ) from None
    rows = [(record, repair_status(sfn, record)) for key in keys for record in records[key]]
    if args.output == "json":
        emit_json(
            runtime.out,
            {
                "stack": stack.name,
                "paused": pause.model_dump(),
                "overrides": {k: o.model_dump() for k, o in overrides.items() if o},
                "drift": [drift_json(r, status) for r, status in rows],
            },
        )
        return EXIT_OK
    lines = []
    if pause.paused:
        lines.append(
            f"Remediation is PAUSED (by {pause.by or '?'} at {pause.at}: {pause.reason or 'no reason'})"
        )
    for key, override in overrides.items():
        if override:
            lines.append(f"{key}: drift mode forced to {override.mode} ({override.reason})")
    if not rows:
        lines.append(
            "No drift recorded." if not args.workspace else f"No drift recorded for {args.workspace}."
        )
    else:
        table_rows = [
            ["DETECTED", "LAST SEEN", "SEEN", "WORKSPACE", "EVENT", "WHO", "OUTCOME", "EXECUTION", "WHAT"]
        ]
        table_rows += [
            [
                r.detected_at[:19],
                (r.last_seen_at or r.detected_at)[:19],
                f"{r.count}x",
                r.workspace_key,
                r.event_name,
                r.actor.rsplit("/", 1)[-1] if r.actor else "scan",
                f"{r.outcome} (open)" if r.is_open else r.outcome,
                (r.execution_name or (r.execution_arn or "").rsplit(":", 1)[-1]) + (f" {s}" if s else ""),
                first_line(r.summary + ("; " + "; ".join(r.findings) if r.findings else ""), 100),
            ]
            for r, s in rows
        ]
        lines += table(table_rows, indent="")
    emit_lines(runtime.out, lines)
    return EXIT_OK


def _caller(runtime: Runtime) -> str:
    try:
        return str(runtime.client("sts").get_caller_identity()["Arn"])
    except Exception:  # who paused is informative only
        return runtime.env.get("USER", "unknown")


def run_pause(args: argparse.Namespace, runtime: Runtime) -> int:
    stack = stack_for(args, runtime)
    state = drift_store(runtime, stack.table_name).set_pause(True, _caller(runtime), args.reason)
    if args.output == "json":
        emit_json(runtime.out, {"stack": stack.name, **state.model_dump()})
    else:
        emit_lines(
            runtime.out,
            [f"Drift remediation paused for stack {stack.name} (resume with `dbx-privatelink resume`)."],
        )
    return EXIT_OK


def run_resume(args: argparse.Namespace, runtime: Runtime) -> int:
    stack = stack_for(args, runtime)
    state = drift_store(runtime, stack.table_name).set_pause(False, _caller(runtime))
    if args.output == "json":
        emit_json(runtime.out, {"stack": stack.name, **state.model_dump()})
    else:
        emit_lines(runtime.out, [f"Drift remediation resumed for stack {stack.name}."])
    return EXIT_OK
