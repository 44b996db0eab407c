"""`dbx-privatelink apply SPEC [SPEC ...]`: validate specs locally, start a reconcile execution for each, and
optionally follow them.

One SPEC that is a file (or -, stdin) is the single mode: one execution, followed with the full progress
view, one JSON object. Several SPECs, a directory or a glob pattern are a fleet: every spec is validated
before anything starts (one problem anywhere and nothing starts), then one execution per spec, followed
together in one view (fleet.py) and summed up in a table; JSON is then a list with one object per workspace.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dbx_privatelink.errors import DbxPrivateLinkError
from dbx_privatelink.spec import WorkspaceSpec, execution_name
from dbx_privatelink.store import StoreClient
from dbx_privatelink_cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    Runtime,
    add_common_arguments,
    load_spec,
)
from dbx_privatelink_cli.fleet import FleetView, Member, follow_fleet
from dbx_privatelink_cli.output import emit_json, emit_lines, table
from dbx_privatelink_cli.progress import (
    Display,
    FollowTimeoutError,
    HistoryRenderer,
    duration,
    follow_execution,
)
from dbx_privatelink_cli.resources import dns_rows
from dbx_privatelink_cli.specs import LoadedSpec, is_single_file, load_all, refuse_unsupported_regions
from dbx_privatelink_cli.stack import StackInfo, stack_for

EXIT_INTERRUPTED = 130


class _SpecsAction(argparse.Action):
    """Stores every SPEC in `specs`, and in `spec` the one SPEC of the single mode (None for several)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        specs = [str(v) for v in (values or [])]
        namespace.specs = specs
        namespace.spec = specs[0] if len(specs) == 1 else None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "apply",
        help="start a reconcile execution for each workspace spec",
        description="Validate every SPEC locally, then start one reconcile execution of the stack's state "
        "machine per spec. A SPEC is a file, a directory (its *.yaml, *.yml and *.json, not recursive) or a "
        "glob pattern; - reads one spec from stdin. Nothing starts while any spec is invalid or two specs "
        "share a workspace_key. --wait follows the executions until they end; the exit status is 0 only "
        "when every one SUCCEEDED.",
    )
    parser.add_argument(
        "spec",
        metavar="SPEC",
        nargs="+",
        action=_SpecsAction,
        help="workspace spec file (YAML or JSON; - reads stdin), directory of specs, or glob pattern",
    )
    add_common_arguments(parser)
    parser.add_argument("--wait", action="store_true", help="follow the executions until they end")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --wait: stop following after this long (the executions go on)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="with --wait: also show Pass and Choice states"
    )
    parser.set_defaults(handler=run)


def next_generation(store: StoreClient, spec: WorkspaceSpec) -> int:
    """The generation this spec will be stored under: the same spec keeps its generation, a change adds one."""
    try:
        desired = store.get_desired(spec.workspace_key)
    except DbxPrivateLinkError as exc:
        raise CliError(
            f"cannot read the desired state of {spec.workspace_key}: {exc}", name=type(exc).__name__
        ) from None
    if desired is None:
        return 1
    return int(desired.generation) + (0 if desired.spec_hash == spec.spec_hash() else 1)


def start(
    runtime: Runtime,
    stack: StackInfo,
    spec: WorkspaceSpec,
    *,
    store: StoreClient | None = None,
    sfn: Any = None,
) -> dict[str, Any]:
    """Start the execution; returns its ARN, name and generation. A fleet passes its store and client in,
    so starting tens of executions builds them once."""
    store = store or StoreClient(runtime.resource("dynamodb").Table(stack.table_name))
    generation = next_generation(store, spec)
    name = execution_name(spec.workspace_key, generation, runtime.now().strftime("%Y%m%dT%H%M%SZ"))
    sfn = sfn or runtime.client("stepfunctions")
    try:
        started = sfn.start_execution(
            stateMachineArn=stack.state_machine_arn, name=name, input=spec.execution_input()
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ExecutionAlreadyExists":
            raise CliError(
                f"an execution named {name} already exists (an apply of the same spec this very second): "
                "run apply again",
                name=code,
            ) from None
        raise CliError(
            f"StartExecution: {code}: {exc.response.get('Error', {}).get('Message', '')}", name=code
        ) from None
    except BotoCoreError as exc:
        raise CliError(f"StartExecution: {exc}", name="AwsError") from None
    return {
        "execution_arn": started["executionArn"],
        "execution_name": name,
        "workspace_key": spec.workspace_key,
        "generation": generation,
    }


def _resources_from_store(runtime: Runtime, stack: StackInfo, key: str) -> dict[str, Any]:
    try:
        observed = StoreClient(runtime.resource("dynamodb").Table(stack.table_name)).get_observed(key) or {}
    except DbxPrivateLinkError:
        return {}
    resources = observed.get("resources")
    return resources if isinstance(resources, dict) else {}


def outcome(
    runtime: Runtime, stack: StackInfo, started: dict[str, Any], described: dict[str, Any]
) -> dict[str, Any]:
    """The one JSON object `apply --wait --output json` prints."""
    status = str(described.get("status", "UNKNOWN"))
    output = json.loads(described["output"]) if described.get("output") else {}
    result: dict[str, Any] = {
        **started,
        "status": status,
        "error": described.get("error"),
        "cause": described.get("cause"),
        "handed_to_lease_holder": False,
        "resources": {},
    }
    if isinstance(output, dict) and isinstance(output.get("summary"), dict):
        result["resources"] = output["summary"]
        result["generation"] = output.get("generation", started["generation"])
    else:
        if isinstance(output, dict) and output.get("handed_to_lease_holder") is True:
            result["handed_to_lease_holder"] = True
        result["resources"] = _resources_from_store(runtime, stack, started["workspace_key"])
    if result["cause"]:
        from dbx_privatelink.errors import human_cause

        result["cause"] = human_cause(str(result["error"] or ""), str(result["cause"]))
    return result


def resource_rows(resources: dict[str, Any]) -> list[list[str]]:
    """The summary of a run (record.py's shape) as table rows: kind, name, id, state, action."""
    rows: list[list[str]] = []
    for role, e in sorted((resources.get("endpoints") or {}).items()):
        rows.append(
            ["endpoint", role, str(e.get("id", "")), str(e.get("state", "")), str(e.get("action", ""))]
        )
    for role, r in sorted((resources.get("registrations") or {}).items()):
        rows.append(
            [
                "registration",
                role,
                str(r.get("id", "")),
                f"of {r.get('aws_id', '')}",
                str(r.get("action", "")),
            ]
        )
    pas = resources.get("private_access_settings") or {}
    if pas:
        rows.append(
            [
                "private access",
                "",
                str(pas.get("private_access_settings_id", "")),
                "",
                str(pas.get("action", "")),
            ]
        )
    net = resources.get("network") or {}
    if net:
        rows.append(["network", "", str(net.get("network_id", "")), "", str(net.get("action", ""))])
    ws = resources.get("workspace") or {}
    if ws:
        rows.append(
            [
                "workspace",
                str(ws.get("deployment_name") or ""),
                str(ws.get("workspace_id", "")),
                str(ws.get("status", "")),
                str(ws.get("action", "")),
            ]
        )
    rows += [[r.kind, r.name, r.resource_id, r.state, r.action] for r in dns_rows(resources.get("dns"))]
    return rows


def _print_outcome(runtime: Runtime, result: dict[str, Any], took: str) -> None:
    lines = [""]
    head = f"{result['status']}: {result['workspace_key']} generation {result['generation']}"
    lines.append(head + (f" ({took})" if took else ""))
    holder = result.get("lease_holder")
    if holder:
        lines.append(f"  reconciled by {holder['execution_name']}, which held this workspace's lease")
    elif result["handed_to_lease_holder"]:
        lines.append(
            "  another execution holds this workspace's lease; it will reconcile this spec once more"
        )
    if result["status"] != "SUCCEEDED":
        lines.append(f"  error: {result['error'] or result['status']}")
        for text in str(result["cause"] or "").splitlines() or ["(no cause given)"]:
            lines.append(f"  {text}")
    rows = resource_rows(result["resources"])
    if rows:
        lines.append("resources:" if result["status"] == "SUCCEEDED" else "resources (as last recorded):")
        lines += table(rows)
    lines.append(f"execution: {result['execution_arn']}")
    if holder:
        lines.append(f"lease holder: {holder['execution_arn']}")
    emit_lines(runtime.out, lines)


def _follow(
    sfn: Any, arn: str, stream: Any, verbose: bool, deadline: float | None, runtime: Runtime
) -> dict[str, Any]:
    """Render one execution's progress until it ends (or the wait's deadline passes)."""
    left = None if deadline is None else max(0.001, deadline - time.monotonic())
    return follow_execution(
        sfn, arn, Display(stream), HistoryRenderer(verbose=verbose), timeout_s=left, sleep=runtime.sleep
    )


def _lease_holder(described: dict[str, Any]) -> tuple[str, str] | None:
    """The (name, ARN) of the execution an ended run handed its spec to, when it did."""
    output = json.loads(described["output"]) if described.get("output") else {}
    if not isinstance(output, dict) or output.get("handed_to_lease_holder") is not True:
        return None
    arn = str(output.get("lease_holder_arn") or "")
    return (str(output.get("lease_holder") or arn.rsplit(":", 1)[-1]), arn) if arn else None


def holder_outcome(
    runtime: Runtime,
    stack: StackInfo,
    started: dict[str, Any],
    spec: WorkspaceSpec,
    described: dict[str, Any],
    holder: tuple[str, str],
) -> dict[str, Any]:
    """The result of an apply whose spec went to the lease holder: the holder's outcome when its last pass
    reconciled this spec (or failed on it), else NOT_APPLIED with why."""
    result = outcome(runtime, stack, started, described)
    result["lease_holder"] = {"execution_name": holder[0], "execution_arn": holder[1]}
    result["handed_to_lease_holder"] = True
    output = json.loads(described["output"]) if described.get("output") else {}
    ours = spec.spec_hash()
    if result["status"] == "SUCCEEDED":
        applied = isinstance(output, dict) and output.get("spec_hash") == ours
    else:
        # A failed holder failed on this spec when the spec became desired, or was rejected, in its run.
        store = StoreClient(runtime.resource("dynamodb").Table(stack.table_name))
        try:
            desired, pending = store.get_desired(spec.workspace_key), store.get_pending(spec.workspace_key)
        except DbxPrivateLinkError:
            desired = pending = None
        applied = (desired is not None and desired.spec_hash == ours) or (
            pending is not None
            and pending.spec_hash == ours
            and pending.state == "rejected"
            and pending.execution_name == holder[0]
        )
    result["spec_applied"] = applied
    if not applied:
        how = result["status"] + (f" with {result['error']}" if result["error"] else "")
        result.update(
            status="NOT_APPLIED",
            error="SpecNotAppliedError",
            cause=f"the lease holder {holder[0]} ended {how} without reconciling this spec; it is pending "
            "(dbx-privatelink status shows it): apply it again"
            + (f"\n{result['cause']}" if result["cause"] else ""),
        )
    return result


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    if is_single_file(args.specs):
        return run_single(args, runtime)
    return run_fleet(args, runtime)


def run_single(args: argparse.Namespace, runtime: Runtime) -> int:
    spec = load_spec(args.spec)  # first: an invalid spec needs no AWS at all
    stack = stack_for(args, runtime)
    refuse_unsupported_regions([LoadedSpec(args.spec, spec)], stack.catalog())
    started = start(runtime, stack, spec)
    if not args.wait:
        if args.output == "json":
            emit_json(runtime.out, {**started, "status": "RUNNING"})
        else:
            emit_lines(runtime.out, [started["execution_arn"]])
        return EXIT_OK

    sfn = runtime.client("stepfunctions")
    # In JSON mode stdout carries only the result: progress goes to stderr.
    progress_stream = runtime.err if args.output == "json" else runtime.out
    emit_lines(
        progress_stream,
        [f"applying {spec.workspace_key} generation {started['generation']}: {started['execution_name']}"],
    )
    deadline = time.monotonic() + args.timeout if args.timeout else None
    followed = started["execution_arn"]
    try:
        described = _follow(sfn, followed, progress_stream, args.verbose, deadline, runtime)
        holder = _lease_holder(described)
        if holder is not None:
            # This run only marked the lease: the holder reconciles this spec before it releases.
            followed = holder[1]
            emit_lines(
                progress_stream,
                [
                    "",
                    f"execution {holder[0]} holds the lease of {spec.workspace_key}; it reconciles this spec "
                    "before it releases: following it",
                ],
            )
            held = _follow(sfn, followed, progress_stream, args.verbose, deadline, runtime)
    except FollowTimeoutError as exc:
        raise CliError(f"{exc}; the execution goes on: {followed}", name="FollowTimeoutError") from None
    except KeyboardInterrupt:
        emit_lines(runtime.err, ["", f"stopped following; the execution goes on: {followed}"])
        return EXIT_INTERRUPTED
    if holder is None:
        result = outcome(runtime, stack, started, described)
    else:
        result = holder_outcome(runtime, stack, started, spec, held, holder)
        described = held
    start_date, stop_date = described.get("startDate"), described.get("stopDate")
    took = duration((stop_date - start_date).total_seconds()) if start_date and stop_date else ""
    if args.output == "json":
        emit_json(runtime.out, result)
    else:
        _print_outcome(runtime, result, took)
    return EXIT_OK if result["status"] == "SUCCEEDED" else EXIT_FAILED


# --- a fleet: several specs, a directory, a glob -----------------------------------------------------------


def not_started(spec: WorkspaceSpec, exc: CliError) -> dict[str, Any]:
    """The result of a spec whose StartExecution failed: the keys of a started one, and why."""
    return {
        "workspace_key": spec.workspace_key,
        "execution_arn": None,
        "execution_name": None,
        "generation": None,
        "status": "NOT_STARTED",
        "error": exc.name,
        "cause": str(exc),
    }


def start_fleet(
    runtime: Runtime, stack: StackInfo, loaded: list[LoadedSpec], progress: Any
) -> list[dict[str, Any]]:
    """Start one execution per spec, in order, as fast as the two calls each (GetItem, StartExecution)
    allow; a spec that fails to start is reported and the others still start."""
    store = StoreClient(runtime.resource("dynamodb").Table(stack.table_name))
    sfn = runtime.client("stepfunctions")
    width = max(len(item.spec.workspace_key) for item in loaded)
    results: list[dict[str, Any]] = []
    try:
        for item in loaded:
            key = item.spec.workspace_key
            try:
                started = start(runtime, stack, item.spec, store=store, sfn=sfn)
            except CliError as exc:
                results.append(not_started(item.spec, exc))
                emit_lines(runtime.err, [f"error: {key} ({item.path}) not started: {exc}"])
                continue
            results.append({**started, "status": "RUNNING"})
            if progress is not None:
                emit_lines(
                    progress,
                    [f"{key.ljust(width)}  generation {started['generation']}  {started['execution_arn']}"],
                )
    except KeyboardInterrupt:
        arns = [r["execution_arn"] for r in results if r["execution_arn"]]
        emit_lines(
            runtime.err,
            [
                "",
                f"interrupted after starting {len(arns)} of {len(loaded)} execution(s); "
                + ("the started ones go on:" if arns else "none was started"),
                *[f"  {arn}" for arn in arns],
            ],
        )
        raise
    return results


def _duration_of(described: dict[str, Any]) -> str:
    start_date, stop_date = described.get("startDate"), described.get("stopDate")
    return duration((stop_date - start_date).total_seconds()) if start_date and stop_date else ""


def fleet_summary(results: list[dict[str, Any]], took: dict[str, str]) -> list[str]:
    """The table after a fleet's wait (workspace, generation, status, duration, error), then the cause and
    execution of each one that did not succeed."""
    rows = [["WORKSPACE", "GEN", "STATUS", "DURATION", "ERROR"]]
    for r in results:
        error = str(r.get("error") or "")
        if r.get("handed_to_lease_holder") and not r.get("lease_holder"):
            error = "handed to the execution holding the lease"
        rows.append(
            [
                r["workspace_key"],
                str(r["generation"] if r.get("generation") is not None else "-"),
                str(r["status"]),
                took.get(r["workspace_key"], ""),
                error,
            ]
        )
    succeeded = sum(1 for r in results if r["status"] == "SUCCEEDED")
    lines = ["", f"{succeeded} of {len(results)} SUCCEEDED", *table(rows)]
    for r in results:
        if r["status"] in ("SUCCEEDED", "RUNNING"):
            continue
        lines += ["", f"{r['workspace_key']}: {r.get('error') or r['status']}"]
        lines += [f"  {text}" for text in str(r.get("cause") or "(no cause given)").splitlines()]
        if r.get("execution_arn"):
            lines.append(f"  execution: {r['execution_arn']}")
    return lines


def _still_running(started: dict[str, Any]) -> dict[str, Any]:
    """The result of an execution still running when the wait stopped: the keys of an ended one."""
    return {
        **started,
        "status": "RUNNING",
        "error": None,
        "cause": None,
        "handed_to_lease_holder": False,
        "resources": {},
    }


def run_fleet(args: argparse.Namespace, runtime: Runtime) -> int:
    loaded = load_all(args.specs)  # first: one invalid spec and nothing starts, with no AWS call at all
    stack = stack_for(args, runtime)
    refuse_unsupported_regions(loaded, stack.catalog())
    json_out = args.output == "json"
    # In JSON mode stdout carries only the result: progress goes to stderr.
    progress_stream = runtime.err if json_out else runtime.out
    if args.wait:
        count = len(loaded)
        emit_lines(
            progress_stream, [f"applying {count} spec{'s' if count != 1 else ''} with stack {stack.name}"]
        )
    starts = start_fleet(runtime, stack, loaded, None if json_out and not args.wait else progress_stream)
    failed_to_start = sum(1 for r in starts if r["status"] == "NOT_STARTED")
    if not args.wait:
        if json_out:
            emit_json(runtime.out, starts)
        if failed_to_start:
            emit_lines(runtime.err, [f"{failed_to_start} of {len(starts)} execution(s) not started"])
        return EXIT_FAILED if failed_to_start else EXIT_OK

    sfn = runtime.client("stepfunctions")
    started = [r for r in starts if r["status"] == "RUNNING"]
    members = [
        Member(
            r["workspace_key"],
            r["execution_arn"],
            HistoryRenderer(verbose=args.verbose),
            followed_at=time.monotonic(),
        )
        for r in started
    ]
    if members:
        emit_lines(progress_stream, [""])
    view = FleetView(progress_stream, [m.key for m in members])
    timed_out: FollowTimeoutError | None = None
    deadline = time.monotonic() + args.timeout if args.timeout else None
    holders: dict[str, tuple[tuple[str, str], Member]] = {}
    try:
        follow_fleet(sfn, members, view, timeout_s=args.timeout, sleep=runtime.sleep)
        # Runs that only marked a held lease: follow the holders, which reconcile those specs next.
        for m in members:
            holder = _lease_holder(m.described or {})
            if holder is not None:
                renderer = HistoryRenderer(verbose=args.verbose)
                holders[m.key] = (holder, Member(m.key, holder[1], renderer, followed_at=time.monotonic()))
        if holders:
            emit_lines(
                progress_stream,
                [
                    "",
                    *[
                        f"{k}: execution {h[0]} holds the lease; following it"
                        for k, (h, _) in holders.items()
                    ],
                ],
            )
            left = None if deadline is None else max(0.001, deadline - time.monotonic())
            followed = [hm for _, hm in holders.values()]
            members += followed
            follow_fleet(
                sfn,
                followed,
                FleetView(progress_stream, [hm.key for hm in followed]),
                timeout_s=left,
                sleep=runtime.sleep,
            )
    except FollowTimeoutError as exc:
        timed_out = exc
    except (ClientError, BotoCoreError) as exc:
        going_on = [m.execution_arn for m in members if m.described is None]
        raise CliError(
            f"stopped following: {exc}; {len(going_on)} execution(s) go on: {', '.join(going_on)}",
            name="AwsError",
        ) from None
    except KeyboardInterrupt:
        going_on = [m.execution_arn for m in members if m.described is None]
        emit_lines(
            runtime.err,
            ["", f"stopped following; {len(going_on)} execution(s) go on:", *[f"  {a}" for a in going_on]],
        )
        return EXIT_INTERRUPTED

    by_arn = {m.execution_arn: m for m in members}
    specs = {item.spec.workspace_key: item.spec for item in loaded}
    results: list[dict[str, Any]] = []
    took: dict[str, str] = {}
    for r in starts:
        member = by_arn.get(r["execution_arn"] or "")
        key = r["workspace_key"]
        if member is not None and key in holders:
            holder, member = holders[key]
            if member.described is not None:
                results.append(
                    holder_outcome(
                        runtime,
                        stack,
                        {k: v for k, v in r.items() if k != "status"},
                        specs[key],
                        member.described,
                        holder,
                    )
                )
                took[key] = _duration_of(member.described)
                continue
        if member is None:
            results.append({**r, "handed_to_lease_holder": False, "resources": {}})
        elif member.described is None:
            results.append(_still_running({k: v for k, v in r.items() if k != "status"}))
            took[r["workspace_key"]] = duration(member.seconds(time.monotonic()))
        else:
            results.append(
                outcome(runtime, stack, {k: v for k, v in r.items() if k != "status"}, member.described)
            )
            took[r["workspace_key"]] = _duration_of(member.described)
    if json_out:
        emit_json(runtime.out, results)
    else:
        emit_lines(runtime.out, fleet_summary(results, took))
    if timed_out is not None:
        going_on = [m.execution_arn for m in members if m.described is None]
        emit_lines(
            runtime.err,
            [f"error: {timed_out}; they go on:", *[f"  {a}" for a in going_on]],
        )
    return EXIT_OK if all(r["status"] == "SUCCEEDED" for r in results) else EXIT_FAILED
