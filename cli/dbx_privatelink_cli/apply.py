"""`dbx-privatelink apply SPEC`: validate the spec locally, start one reconcile execution, optionally follow it."""

from __future__ import annotations

import argparse
import json
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
from dbx_privatelink_cli.output import emit_json, emit_lines, table
from dbx_privatelink_cli.progress import (
    Display,
    FollowTimeoutError,
    HistoryRenderer,
    duration,
    follow_execution,
)
from dbx_privatelink_cli.stack import StackInfo, stack_for

EXIT_INTERRUPTED = 130


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "apply",
        help="start a reconcile execution for a workspace spec",
        description="Validate SPEC locally, then start one reconcile execution of the stack's state machine "
        "with it. --wait follows the execution until it ends; the exit status is 0 only when it SUCCEEDED.",
    )
    parser.add_argument("spec", metavar="SPEC", help="workspace spec file (YAML or JSON; - reads stdin)")
    add_common_arguments(parser)
    parser.add_argument("--wait", action="store_true", help="follow the execution until it ends")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --wait: stop following after this long",
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


def start(runtime: Runtime, stack: StackInfo, spec: WorkspaceSpec) -> dict[str, Any]:
    """Start the execution; returns its ARN, name and generation."""
    store = StoreClient(runtime.resource("dynamodb").Table(stack.table_name))
    generation = next_generation(store, spec)
    name = execution_name(spec.workspace_key, generation, runtime.now().strftime("%Y%m%dT%H%M%SZ"))
    sfn = runtime.client("stepfunctions")
    try:
        started = sfn.start_execution(
            stateMachineArn=stack.state_machine_arn, name=name, input=json.dumps(spec.model_dump(mode="json"))
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
        from dbx_privatelink.reconcile.record import human_cause

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
    return rows


def _print_outcome(runtime: Runtime, result: dict[str, Any], took: str) -> None:
    lines = [""]
    head = f"{result['status']}: {result['workspace_key']} generation {result['generation']}"
    lines.append(head + (f" ({took})" if took else ""))
    if result["handed_to_lease_holder"]:
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
    emit_lines(runtime.out, lines)


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    spec = load_spec(args.spec)  # first: an invalid spec needs no AWS at all
    stack = stack_for(args, runtime)
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
    try:
        described = follow_execution(
            sfn,
            started["execution_arn"],
            Display(progress_stream),
            HistoryRenderer(verbose=args.verbose),
            timeout_s=args.timeout,
            sleep=runtime.sleep,
        )
    except FollowTimeoutError as exc:
        raise CliError(
            f"{exc}; the execution goes on: {started['execution_arn']}", name="FollowTimeoutError"
        ) from None
    except KeyboardInterrupt:
        emit_lines(runtime.err, ["", f"stopped following; the execution goes on: {started['execution_arn']}"])
        return EXIT_INTERRUPTED
    result = outcome(runtime, stack, started, described)
    start_date, stop_date = described.get("startDate"), described.get("stopDate")
    took = duration((stop_date - start_date).total_seconds()) if start_date and stop_date else ""
    if args.output == "json":
        emit_json(runtime.out, result)
    else:
        _print_outcome(runtime, result, took)
    return EXIT_OK if result["status"] == "SUCCEEDED" else EXIT_FAILED
