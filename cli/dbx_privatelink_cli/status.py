"""`dbx-privatelink status WORKSPACE`: the last run, every resource with its recorded and live state, health.

Health: HEALTHY (the last run succeeded and every live read agrees), FAILED (the last run failed: its error
is shown), DEGRADED (the last run succeeded but something live is off), UNKNOWN (never reconciled),
DECOMMISSIONED (destroyed or detached: its records are history, nothing is read live; exit status 0).
What is "off" is decided by the drift scan's own checks (drift/scan.py observe_workspace), so status and
the scan never disagree: endpoints, the VPC and groups preflight requires, the DNS half (Resolver endpoints,
rules and their targets, associations, private hosted zones, the last verification) and Databricks.

`dbx-privatelink status` without WORKSPACE lists every workspace of the stack from the store alone: health
as the last run recorded it (RUNNING while an execution holds the lease), the last run, the drift mode. No
live reads there: a fleet of tens of workspaces would cost hundreds of EC2 and Databricks calls; the
single-workspace form is the one that checks live.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Any

from dbx_privatelink.aws.executions import execution_status
from dbx_privatelink.drift.scan import observe_workspace
from dbx_privatelink.drift_store import DriftStore, PauseState
from dbx_privatelink.errors import DbxPrivateLinkError, SpecInvalidError
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.store import Lease, StoreClient
from dbx_privatelink.wiring import Deps
from dbx_privatelink_cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    RegionalSession,
    Runtime,
    add_common_arguments,
    databricks_access,
)
from dbx_privatelink_cli.drift import drift_summary
from dbx_privatelink_cli.output import emit_json, emit_lines, first_line, table
from dbx_privatelink_cli.resources import dns_rows, verification_lines
from dbx_privatelink_cli.stack import stack_for


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show a workspace's last run, resources and health (without WORKSPACE: every workspace)",
        description="Read the workspace's recorded state and check it live with the drift scan's checks "
        "(EC2, Route 53 Resolver and Route 53, and Databricks when credentials are available). Without "
        "WORKSPACE, list every workspace of the stack with its health as recorded (no live checks), last run "
        "and drift mode. Exit status 0 when HEALTHY or DECOMMISSIONED "
        "(every workspace, or none), 1 otherwise.",
    )
    parser.add_argument(
        "workspace", metavar="WORKSPACE", nargs="?", help="the spec's workspace_key (default: list all)"
    )
    add_common_arguments(parser)
    parser.set_defaults(handler=run)


@dataclass
class ResourceStatus:
    kind: str
    name: str
    resource_id: str
    recorded: str = ""
    live: str = ""
    problem: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "id": self.resource_id,
            "recorded_state": self.recorded or None,
            "live_state": self.live or None,
            "problem": self.problem or None,
        }


@dataclass
class WorkspaceStatus:
    workspace_key: str
    stack: str
    region: str
    health: str = "UNKNOWN"
    reasons: list[str] = field(default_factory=list)
    desired_generation: int | None = None
    applied_generation: int | None = None
    last_run: dict[str, Any] | None = None
    last_error: dict[str, Any] | None = None
    lease: dict[str, Any] | None = None
    resources: list[ResourceStatus] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    live_notes: list[str] = field(default_factory=list)
    drift: dict[str, Any] | None = None
    decommission: dict[str, Any] | None = None
    dns: dict[str, Any] | None = None  # the recorded DNS result, for its verification
    # A spec applied but not desired: waiting for its preflight, or rejected (and why).
    pending: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "workspace_key": self.workspace_key,
            "stack": self.stack,
            "region": self.region,
            "health": self.health,
            "reasons": self.reasons,
            "generation": {"desired": self.desired_generation, "applied": self.applied_generation},
            "pending": self.pending,
            "last_run": self.last_run,
            "last_error": self.last_error,
            "lease": self.lease,
            "resources": [r.to_json() for r in self.resources],
            "dns_verification": (self.dns or {}).get("verification"),
            "runs": self.runs,
            "notes": self.live_notes,
            "drift": self.drift,
            "decommission": self.decommission,
        }


# A decommissioned workspace is not unhealthy: its health says so, and status exits 0 for it.
SETTLED_HEALTH = frozenset({"HEALTHY", "DECOMMISSIONED"})


def decommission_text(state: str, mode: str, at: str) -> str:
    """One line on a workspace's decommission, for both forms of status."""
    when = f" at {at}" if at else ""
    if state == "decommissioned":
        what = "deleted" if mode == "delete" else "detached: still running, no longer managed"
        return f"decommissioned ({what}){when}; an apply of its spec manages it again"
    if state == "decommissioning":
        return f"being decommissioned ({mode}) since {at or 'now'}"
    return f"decommission ({mode}) failed{when}: run destroy again to finish it"


def pending_text(pending: dict[str, Any], desired_generation: int | None) -> list[str]:
    """The spec applied but not desired: waiting for its preflight, or rejected with the reason."""
    p = pending
    if p["state"] != "rejected":
        return [
            f"Pending spec: waiting for its preflight (applied by {p['execution_name']} at {p['received_at']})"
        ]
    kept = (
        f"the desired spec (generation {desired_generation}) stays in force"
        if desired_generation
        else "there is no desired spec yet"
    )
    lines = [f"Pending spec: rejected by {p['execution_name']} at {p['rejected_at']}: {p['error']}"]
    lines += [f"  {line}" for line in str(p.get("cause") or "").splitlines()]
    lines.append(f"  {kept}; apply a corrected spec")
    return lines


def _recorded_resources(resources: dict[str, Any]) -> list[ResourceStatus]:
    rows = [
        ResourceStatus("vpc endpoint", role, str(e.get("id", "")), str(e.get("state", "")))
        for role, e in sorted((resources.get("endpoints") or {}).items())
    ]
    rows += [
        ResourceStatus("registration", role, str(r.get("id", "")), f"of {r.get('aws_id', '')}")
        for role, r in sorted((resources.get("registrations") or {}).items())
    ]
    if pas := resources.get("private_access_settings"):
        rows.append(
            ResourceStatus("private access settings", "", str(pas.get("private_access_settings_id", "")))
        )
    if net := resources.get("network"):
        rows.append(ResourceStatus("network", "", str(net.get("network_id", ""))))
    if ws := resources.get("workspace"):
        rows.append(
            ResourceStatus(
                "workspace",
                str(ws.get("deployment_name") or ""),
                str(ws.get("workspace_id", "")),
                str(ws.get("status", "")),
            )
        )
    rows += [ResourceStatus(r.kind, r.name, r.resource_id, r.state) for r in dns_rows(resources.get("dns"))]
    return rows


def _live_deps(runtime: Runtime, stack: Any) -> Deps:
    """The domain's adapters for the drift scan's checks. Read-only: Route 53 Resolver reads are paced by
    this process alone, never through the table."""
    settings = stack.settings(runtime.region)._replace(rate_pacing="off")
    return Deps(settings=settings, session=RegionalSession(runtime))


def _check_live(
    runtime: Runtime, stack: Any, desired: Any, observed: dict[str, Any], result: WorkspaceStatus
) -> list[str]:
    """Read the workspace live with the drift scan's checks (one judgement of what is wrong for both) and
    put each observation on its resource's row; returns every finding."""
    spec = parse_spec(desired.spec)
    account_id = spec.databricks.account_id
    access = databricks_access(
        runtime, account_id, host=stack.databricks_host, secret_id=stack.databricks_secret_arn
    )
    client = access.client
    if client is None:
        result.live_notes.append(f"Databricks not checked live: {access.source}")
    observations = observe_workspace(
        spec, observed, _live_deps(runtime, stack), (lambda: client) if client is not None else None
    )
    rows = {(r.kind, r.resource_id): r for r in result.resources}
    findings: list[str] = []
    for o in observations:
        if o.kind == "unchecked":
            result.live_notes.append(f"not all checked live: {o.finding.removeprefix('could not check: ')}")
            continue
        row = rows.get((o.kind, o.resource_id))
        if row is not None:
            row.live = o.live
            row.problem = row.problem or o.finding
        if o.finding and o.finding not in findings:
            findings.append(o.finding)
    return findings


def collect(runtime: Runtime, stack_name: str, table_name: str, key: str, stack: Any) -> WorkspaceStatus:
    """Everything `status` shows, from the store and live reads."""
    store = StoreClient(runtime.resource("dynamodb").Table(table_name))
    try:
        desired, observed = store.get_desired(key), store.get_observed(key)
        runs, lease = store.list_runs(key, limit=5), store.get_lease(key)
        pending = store.get_pending(key)
    except DbxPrivateLinkError as exc:
        raise CliError(f"cannot read the store ({table_name}): {exc}", name=type(exc).__name__) from None
    if desired is None and observed is None and not runs:
        raise CliError(
            f"no workspace {key!r} in stack {stack_name}: apply its spec first (dbx-privatelink apply SPEC)",
            name="WorkspaceNotFoundError",
        )
    observed = observed or {}
    result = WorkspaceStatus(key, stack_name, runtime.region)
    result.desired_generation = desired.generation if desired else None
    result.applied_generation = observed.get("generation")
    result.last_run = observed.get("last_run")
    result.last_error = observed.get("last_error")
    if pending is not None:
        result.pending = pending.model_dump(exclude={"spec"})
    result.runs = [
        r.model_dump(include={"ended_at", "outcome", "generation", "execution_name", "error", "cause"})
        for r in runs
    ]
    if lease is not None and lease.expires_at > time.time():
        result.lease = {"holder": lease.holder, "holder_arn": lease.holder_arn, "dirty": lease.dirty}
    result.resources = _recorded_resources(observed.get("resources") or {})
    dns = (observed.get("resources") or {}).get("dns")
    result.dns = dns if isinstance(dns, dict) else None
    spec_mode = str(((desired.spec if desired else {}).get("drift") or {}).get("mode", "remediate"))
    try:
        result.drift = drift_summary(
            DriftStore(runtime.resource("dynamodb").Table(table_name)), key, spec_mode
        )
    except DbxPrivateLinkError as exc:
        result.live_notes.append(f"drift state not read: {exc}")

    marker = desired.decommission if desired else None
    if marker is not None and marker.state != "failed":
        # Decommissioned (or being decommissioned): its records are history, nothing live to compare.
        result.health = "DECOMMISSIONED" if marker.state == "decommissioned" else "DECOMMISSIONING"
        result.reasons = [decommission_text(marker.state, marker.mode, marker.ended_at or marker.started_at)]
        result.decommission = observed.get("decommission") or {"mode": marker.mode, "state": marker.state}
        return result
    problems: list[str] = []
    if desired is not None:
        try:
            problems = _check_live(runtime, stack, desired, observed, result)
        except SpecInvalidError as exc:
            result.live_notes.append(
                f"not checked live: the stored spec is not valid: {first_line(str(exc))}"
            )
    recorded = observed.get("health")
    if recorded == "FAILED":
        result.health = "FAILED"
        error = result.last_error or {}
        result.reasons = [
            f"last run failed: {error.get('error', '?')}: {first_line(str(error.get('cause', '')))}"
        ]
    elif recorded == "HEALTHY":
        result.health = "DEGRADED" if problems else "HEALTHY"
        result.reasons = problems
    else:
        result.reasons = ["never reconciled successfully"] if not result.last_run else problems
    if result.desired_generation and result.applied_generation != result.desired_generation:
        result.reasons.append(
            f"generation {result.desired_generation} is not applied yet (applied: {result.applied_generation or 'none'})"
        )
    return result


def render_text(s: WorkspaceStatus) -> list[str]:
    lines = [f"Workspace {s.workspace_key} (stack {s.stack}, {s.region})", f"Health: {s.health}"]
    lines += [f"  - {r}" for r in s.reasons]
    lines.append(f"Generation: desired {s.desired_generation or '-'}, applied {s.applied_generation or '-'}")
    if s.last_run:
        lr = s.last_run
        lines.append(
            f"Last run: {lr.get('outcome', '?')} {lr.get('execution', '')} ended {lr.get('ended_at', '?')}"
        )
    if s.last_error and s.health == "FAILED":
        lines.append(f"Last error: {s.last_error.get('error', '?')} at {s.last_error.get('at', '?')}")
        lines += [f"  {line}" for line in str(s.last_error.get("cause", "")).splitlines()]
    if s.pending:
        lines += pending_text(s.pending, s.desired_generation)
    if s.lease:
        lines.append(
            f"Reconciling now: {s.lease['holder']}"
            + (" (another change is queued)" if s.lease["dirty"] else "")
        )
    if s.decommission and s.health in ("DECOMMISSIONED", "DECOMMISSIONING"):
        d = s.decommission
        for section in ("deleted", "kept"):
            if d.get(section):
                lines += ["", f"Decommission: {section}"]
                lines += table(
                    [
                        [i["kind"], i.get("name") or "-", ", ".join(i.get("ids") or []), i.get("reason", "")]
                        for i in d[section]
                    ]
                )
    if s.drift:
        d = s.drift
        why = f" (forced: {d['override']['reason']})" if d["override"] else ""
        lines.append(
            f"Drift mode: {d['mode']}{why}" + (" - remediation PAUSED for the stack" if d["paused"] else "")
        )
        if d["last"]:
            last = d["last"]
            lines.append(f"Last drift: {last['detected_at'][:19]} {last['summary']} -> {last['outcome']}")
    if s.resources:
        lines += ["", "Resources"]
        rows = [["KIND", "NAME", "ID", "RECORDED", "LIVE"]]
        rows += [
            [r.kind, r.name, r.resource_id, r.recorded, r.live + (" !" if r.problem else "")]
            for r in s.resources
        ]
        lines += table(rows)
    if s.dns and s.health not in ("DECOMMISSIONED", "DECOMMISSIONING"):
        lines += ["", *verification_lines(s.dns)]
    lines += [f"note: {n}" for n in s.live_notes]
    if s.runs:
        lines += ["", "Recent runs"]
        rows = [["ENDED", "OUTCOME", "GEN", "EXECUTION", "ERROR"]]
        rows += [
            [
                str(r["ended_at"]),
                str(r["outcome"]),
                str(r["generation"]),
                str(r["execution_name"]),
                str(r.get("error") or ""),
            ]
            for r in s.runs
        ]
        lines += table(rows)
    return lines


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    stack = stack_for(args, runtime)
    if args.workspace is None:
        return run_list(args, runtime, stack)
    result = collect(runtime, stack.name, stack.table_name, args.workspace, stack)
    if args.output == "json":
        emit_json(runtime.out, result.to_json())
    else:
        emit_lines(runtime.out, render_text(result))
    return EXIT_OK if result.health in SETTLED_HEALTH else EXIT_FAILED


# --- every workspace, from the store -------------------------------------------------------------------


@dataclass
class WorkspaceSummary:
    """One line of `status` without WORKSPACE."""

    workspace_key: str
    health: str = "UNKNOWN"
    reasons: list[str] = field(default_factory=list)
    desired_generation: int | None = None
    applied_generation: int | None = None
    last_run: dict[str, Any] | None = None
    last_error: dict[str, Any] | None = None
    running: dict[str, Any] | None = None
    drift: dict[str, Any] = field(default_factory=dict)
    pending: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "workspace_key": self.workspace_key,
            "health": self.health,
            "reasons": self.reasons,
            "generation": {"desired": self.desired_generation, "applied": self.applied_generation},
            "pending": self.pending,
            "last_run": self.last_run,
            "last_error": self.last_error,
            "running": self.running,
            "drift": self.drift,
        }


RECORDED_HEALTH = frozenset({"HEALTHY", "FAILED", "DEGRADED", "DECOMMISSIONED"})


def _holder_status(sfn: Any, lease: Lease) -> str:
    """The lease holder's execution status, judged as AcquireLease judges it: a holder without an ARN is
    trusted until the lease expires, one Step Functions does not know has ended; a read that fails is
    shown as such (AcquireLease would fail and retry, not take the lease)."""
    if not lease.holder_arn:
        return "RUNNING"
    try:
        status = execution_status(sfn, lease.holder_arn)
    except DbxPrivateLinkError as exc:
        return f"not describable ({type(exc).__name__})"
    return status or "unknown to Step Functions (ended)"


def summarize(
    store: DriftStore, sfn: Any, key: str, *, paused: bool, now: float | None = None
) -> WorkspaceSummary:
    """A workspace's line, from its desired and pending specs, observed state, lease and drift override:
    five reads, plus a DescribeExecution when its lease is held."""
    desired, observed = store.get_desired(key), store.get_observed(key) or {}
    lease, override = store.get_lease(key), store.get_drift_override(key)
    s = WorkspaceSummary(key)
    s.desired_generation = desired.generation if desired else None
    s.applied_generation = observed.get("generation")
    s.last_run = observed.get("last_run")
    s.last_error = observed.get("last_error")
    recorded = observed.get("health")
    s.health = recorded if recorded in RECORDED_HEALTH else "UNKNOWN"
    marker = desired.decommission if desired else None
    if marker is not None:
        s.reasons.append(decommission_text(marker.state, marker.mode, marker.ended_at or marker.started_at))
        if marker.state == "decommissioned":
            s.health = "DECOMMISSIONED"
    if s.health == "FAILED":
        error = s.last_error or {}
        s.reasons.append(
            f"last run failed: {error.get('error', '?')}: {first_line(str(error.get('cause', '')))}"
        )
    elif s.health == "UNKNOWN":
        s.reasons.append("never reconciled successfully" if not s.last_run else "no health recorded")
    if lease is not None and lease.expires_at > (time.time() if now is None else now):
        holder = _holder_status(sfn, lease)
        if holder == "RUNNING":
            s.health = "RUNNING"
            s.running = {"execution": lease.holder, "execution_arn": lease.holder_arn or None}
            doing = (
                "decommissioning"
                if marker is not None and marker.execution_name == lease.holder
                else "reconciling"
            )
            s.reasons.insert(0, f"{doing} now: {lease.holder}")
        else:
            s.reasons.append(f"the lease is held by {lease.holder}, which is {holder}")
    if s.desired_generation and s.applied_generation != s.desired_generation and marker is None:
        s.reasons.append(
            f"generation {s.desired_generation} is not applied yet "
            f"(applied: {s.applied_generation or 'none'})"
        )
    pending = store.get_pending(key)
    if pending is not None:
        s.pending = pending.model_dump(exclude={"spec"})
        s.reasons.append(
            f"spec rejected: {pending.error}: {first_line(str(pending.cause or ''))}"
            if pending.state == "rejected"
            else f"spec pending since {pending.received_at}"
        )
    spec_mode = str(((desired.spec if desired else {}).get("drift") or {}).get("mode", "remediate"))
    s.drift = {
        "mode": override.mode if override else spec_mode,
        "spec_mode": spec_mode,
        "override": override.model_dump() if override else None,
        "paused": paused,
    }
    return s


def _drift_text(drift: dict[str, Any]) -> str:
    return (
        str(drift["mode"])
        + (" (forced)" if drift["override"] else "")
        + (", paused" if drift["paused"] else "")
    )


def _last_run_text(last_run: dict[str, Any] | None) -> tuple[str, str]:
    if not last_run:
        return "-", ""
    return str(last_run.get("outcome", "?")), str(last_run.get("ended_at", ""))


def render_list(stack_name: str, region: str, rows: list[WorkspaceSummary], pause: PauseState) -> list[str]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.health] = counts.get(row.health, 0) + 1
    tally = ", ".join(f"{n} {health}" for health, n in sorted(counts.items()))
    lines = [f"Workspaces of stack {stack_name} ({region}): {len(rows)} ({tally})"]
    if pause.paused:
        by = f" by {pause.by}" if pause.by else ""
        lines.append(
            f"Drift remediation is PAUSED for the stack{by}" + (f": {pause.reason}" if pause.reason else "")
        )
    cells = [["WORKSPACE", "HEALTH", "LAST RUN", "ENDED", "DRIFT", "NOTE"]]
    for row in rows:
        outcome, ended = _last_run_text(row.last_run)
        cells.append(
            [
                row.workspace_key,
                row.health,
                outcome,
                ended,
                _drift_text(row.drift),
                row.reasons[0] if row.reasons else "",
            ]
        )
    lines += table(cells)
    if any(r.health not in SETTLED_HEALTH for r in rows):
        lines.append("")
        lines.append(
            "dbx-privatelink status WORKSPACE checks one workspace live and shows its resources and runs."
        )
    return lines


def run_list(args: argparse.Namespace, runtime: Runtime, stack: Any) -> int:
    store = DriftStore(runtime.resource("dynamodb").Table(stack.table_name))
    sfn = runtime.client("stepfunctions")
    try:
        keys = store.list_workspaces(with_pending=True)
        pause = store.get_pause()
        rows = [summarize(store, sfn, key, paused=pause.paused) for key in keys]
    except DbxPrivateLinkError as exc:
        raise CliError(
            f"cannot read the store ({stack.table_name}): {exc}", name=type(exc).__name__
        ) from None
    if args.output == "json":
        emit_json(runtime.out, [row.to_json() for row in rows])
    elif not rows:
        emit_lines(
            runtime.out,
            [
                f"No workspaces in stack {stack.name} ({runtime.region}) yet: apply a spec first (dbx-privatelink apply SPEC)."
            ],
        )
    else:
        emit_lines(runtime.out, render_list(stack.name, runtime.region, rows, pause))
    return EXIT_OK if all(row.health in SETTLED_HEALTH for row in rows) else EXIT_FAILED
