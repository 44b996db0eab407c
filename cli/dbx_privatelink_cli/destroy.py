"""`dbx-privatelink destroy WORKSPACE [--mode detach|delete] [--wait] [--yes]`: decommission a workspace, and
`dbx-privatelink plan --destroy WORKSPACE`: the same plan, read-only.

destroy shows the plan first (every resource with delete / keep / gone and why, read-only by construction
and by guard, as `plan` is), asks for the workspace key as confirmation unless --yes, then starts one
execution of the stack's decommission state machine; --wait follows it with the live progress view.

A workspace the stack does not manage, or one already decommissioned, is said so and the command exits 0
having called nothing that changes anything (no execution is started). Exit status as apply: 0 done (or
started, without --wait), 1 failed or not confirmed, 2 bad usage (delete mode of a retrofitted workspace
without --delete-existing-workspace), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dbx_privatelink.decommission.models import DecommissionPlan, PlanItem
from dbx_privatelink.decommission.plan import plan_decommission
from dbx_privatelink.errors import DbxPrivateLinkError, human_cause
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.wiring import Deps
from dbx_privatelink_cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    RegionalSession,
    Runtime,
    add_common_arguments,
    add_mode_arguments,
    databricks_access,
)
from dbx_privatelink_cli.output import emit_json, emit_lines, table
from dbx_privatelink_cli.plan import MutatingCallError, read_only
from dbx_privatelink_cli.progress import (
    Display,
    FollowTimeoutError,
    HistoryRenderer,
    duration,
    follow_execution,
)
from dbx_privatelink_cli.stack import StackInfo, stack_for

EXIT_INTERRUPTED = 130
NOTHING_TO_DO = ("not_managed", "already_decommissioned")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "destroy",
        help="decommission a workspace: stop managing it (detach) or take down what the application made",
        description="Show the plan (every resource with delete / keep and why), ask for confirmation unless "
        "--yes, then start the stack's decommission state machine for WORKSPACE. detach (default) stops "
        "managing it and deletes nothing; delete deletes the workspace, its network and private access "
        "settings, and the endpoints, registrations and Route 53 Resolver resources no other workspace uses. "
        "A workspace not managed, or already decommissioned, is said so (exit 0, nothing changed).",
    )
    parser.add_argument("workspace", metavar="WORKSPACE", help="the spec's workspace_key")
    add_mode_arguments(parser)
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_common_arguments(parser)
    parser.add_argument("--wait", action="store_true", help="follow the execution until it ends")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --wait: stop following after this long (the execution goes on)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="with --wait: also show Pass and Choice states"
    )
    parser.set_defaults(handler=run)


def build_plan(
    runtime: Runtime, stack: StackInfo, key: str, mode: str, *, delete_existing: bool = False
) -> DecommissionPlan:
    """The decommission's plan, as the state machine's PlanDecommission step would make it (read-only:
    Route 53 Resolver reads are paced by this process alone, never through the table)."""
    settings = stack.settings(runtime.region)._replace(rate_pacing="off")
    deps = Deps(settings=settings, session=RegionalSession(runtime))
    desired = deps.store.get_desired(key)
    client = None
    note = ""
    if desired is not None:
        access = databricks_access(
            runtime,
            parse_spec(desired.spec).databricks.account_id,
            host=stack.databricks_host,
            secret_id=stack.databricks_secret_arn,
        )
        client, note = access.client, access.source
    plan = plan_decommission(
        key,
        "delete" if mode == "delete" else "detach",
        deps,
        client,
        delete_existing_workspace=delete_existing,
    )
    if client is None and desired is not None:
        plan.notes.append(f"Databricks: {note}")
    return plan


def _id_text(item: PlanItem) -> str:
    return ", ".join(item.ids) if item.ids else "-"


def plan_lines(plan: DecommissionPlan, stack: str, region: str) -> list[str]:
    """The plan for people: one line per resource in the order it is taken down."""
    lines = [f"Destroy plan for {plan.workspace_key} (mode {plan.mode}, stack {stack}, {region})", ""]
    if plan.status in NOTHING_TO_DO:
        return [*lines, plan.reason]
    if plan.status == "refused":
        lines += [f"Refused: {plan.reason}", ""]
    rows = [["ACTION", "KIND", "NAME", "ID", "WHY"]]
    rows += [[i.action, i.kind, i.name or "-", _id_text(i), i.reason] for i in plan.items]
    lines += table(rows)
    lines += [f"note: {n}" for n in plan.notes]
    counts = plan.counts()
    lines += ["", "Summary: " + ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))]
    return lines


def plan_document(plan: DecommissionPlan, stack: str, region: str) -> dict[str, Any]:
    return {"stack": stack, "region": region, **plan.model_dump(mode="json"), "counts": plan.counts()}


def run_plan(args: argparse.Namespace, runtime: Runtime) -> int:
    """`plan --destroy WORKSPACE`: the plan, changing nothing; 0 when destroy could proceed (or has nothing
    to do), 1 when it would be refused."""
    stack = stack_for(args, runtime)
    plan = _guarded_plan(args, runtime, stack, args.destroy)
    if args.output == "json":
        emit_json(runtime.out, plan_document(plan, stack.name, runtime.region))
    else:
        emit_lines(runtime.out, plan_lines(plan, stack.name, runtime.region))
    return EXIT_FAILED if plan.status == "refused" else EXIT_OK


def _guarded_plan(args: argparse.Namespace, runtime: Runtime, stack: StackInfo, key: str) -> DecommissionPlan:
    with read_only(runtime.session):
        try:
            return build_plan(runtime, stack, key, args.mode, delete_existing=args.delete_existing_workspace)
        except MutatingCallError as exc:
            raise CliError(str(exc), name="MutatingCallError") from None
        except DbxPrivateLinkError as exc:
            raise CliError(f"cannot plan the decommission of {key}: {exc}", name=type(exc).__name__) from None


def _confirm(runtime: Runtime, key: str) -> bool:
    """Ask for the workspace key on the terminal; anything else declines. Without a terminal to ask on,
    --yes is required (a pipe must not delete by accident)."""
    stdin = runtime.stdin
    isatty = getattr(stdin, "isatty", None)
    if not (isatty and isatty()):
        raise CliError(
            "destroy asks for confirmation on a terminal: pass --yes to run it without one",
            exit_code=EXIT_USAGE,
            name="UsageError",
        )
    runtime.err.write(f"Type {key} to decommission it as planned: ")
    runtime.err.flush()
    return bool(stdin.readline().strip() == key)


def execution_name(key: str, mode: str, stamp: str) -> str:
    """The decommission execution's name: readable, unique per start, at most 80 characters."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"decommission-{key}-{mode}-{stamp}")[:80]


def start(runtime: Runtime, machine: str, key: str, args: argparse.Namespace) -> dict[str, Any]:
    name = execution_name(key, args.mode, runtime.now().strftime("%Y%m%dT%H%M%SZ"))
    request = {"workspace_key": key, "mode": args.mode}
    if args.delete_existing_workspace:
        request["delete_existing_workspace"] = True
    try:
        started = runtime.client("stepfunctions").start_execution(
            stateMachineArn=machine, name=name, input=json.dumps(request)
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise CliError(
            f"StartExecution: {code}: {exc.response.get('Error', {}).get('Message', '')}", name=code
        ) from None
    except BotoCoreError as exc:
        raise CliError(f"StartExecution: {exc}", name="AwsError") from None
    return {
        "workspace_key": key,
        "mode": args.mode,
        "execution_arn": started["executionArn"],
        "execution_name": name,
    }


def outcome(started: dict[str, Any], described: dict[str, Any]) -> dict[str, Any]:
    """The one JSON object `destroy --wait --output json` prints."""
    output = json.loads(described["output"]) if described.get("output") else {}
    result = {
        **started,
        "status": str(described.get("status", "UNKNOWN")),
        "error": described.get("error"),
        "cause": human_cause(str(described.get("error") or ""), str(described.get("cause") or ""))
        if described.get("cause")
        else None,
        "deleted": [],
        "kept": [],
        "gone": [],
        "orphans": [],
    }
    if isinstance(output, dict):
        for section in ("deleted", "kept", "gone", "orphans"):
            result[section] = output.get(section) or []
        if output.get("outcome") in NOTHING_TO_DO:
            result["reason"] = output.get("reason")
    return result


def result_lines(result: dict[str, Any], took: str) -> list[str]:
    lines = [
        "",
        f"{result['status']}: decommission of {result['workspace_key']} ({result['mode']})"
        + (f" in {took}" if took else ""),
    ]
    if result["status"] != "SUCCEEDED":
        lines.append(f"  error: {result['error'] or result['status']}")
        lines += [f"  {text}" for text in str(result["cause"] or "(no cause given)").splitlines()]
    if result.get("reason"):
        lines.append(f"  {result['reason']}")
    for section in ("deleted", "kept"):
        items = result[section]
        if items:
            lines.append(f"{section}:")
            lines += table(
                [
                    [
                        i["kind"],
                        i.get("name") or "-",
                        ", ".join(i.get("ids") or []) or "-",
                        i.get("reason", ""),
                    ]
                    for i in items
                ]
            )
    for orphan in result["orphans"]:
        lines.append(
            f"orphan {orphan['kind']} {orphan['name']} ({orphan['id']}): {orphan['action']}, {orphan['reason']}"
        )
    lines.append(f"execution: {result['execution_arn']}")
    return lines


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    key = args.workspace
    if args.delete_existing_workspace and args.mode != "delete":
        raise CliError(
            "--delete-existing-workspace goes with --mode delete", exit_code=EXIT_USAGE, name="UsageError"
        )
    stack = stack_for(args, runtime)
    machine = stack.outputs.get("DecommissionStateMachineArn")
    if not machine:
        raise CliError(
            f"stack {stack.name} has no decommission state machine (output DecommissionStateMachineArn): deploy "
            "this version of the application first",
            name="StackOutputsMissingError",
        )
    plan = _guarded_plan(args, runtime, stack, key)
    json_out = args.output == "json"
    if plan.status in NOTHING_TO_DO:
        if json_out:
            emit_json(
                runtime.out,
                {
                    "workspace_key": key,
                    "mode": args.mode,
                    "status": plan.status.upper(),
                    "reason": plan.reason,
                },
            )
        else:
            emit_lines(runtime.out, [plan.reason])
        return EXIT_OK
    if plan.status == "refused":
        raise CliError(plan.reason, exit_code=EXIT_USAGE, name="DecommissionRefusedError")
    # In JSON mode stdout carries only the result: the plan and the progress go to stderr.
    people = runtime.err if json_out else runtime.out
    emit_lines(people, plan_lines(plan, stack.name, runtime.region))
    if not args.yes and not _confirm(runtime, key):
        emit_lines(runtime.err, ["not confirmed: nothing was started"])
        return EXIT_FAILED
    started = start(runtime, machine, key, args)
    if not args.wait:
        if json_out:
            emit_json(runtime.out, {**started, "status": "RUNNING"})
        else:
            emit_lines(runtime.out, [started["execution_arn"]])
        return EXIT_OK
    emit_lines(people, ["", f"decommissioning {key} ({args.mode}): {started['execution_name']}"])
    try:
        described = follow_execution(
            runtime.client("stepfunctions"),
            started["execution_arn"],
            Display(people),
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
    result = outcome(started, described)
    start_date, stop_date = described.get("startDate"), described.get("stopDate")
    took = duration((stop_date - start_date).total_seconds()) if start_date and stop_date else ""
    if json_out:
        emit_json(runtime.out, {**result, "plan": plan.model_dump(mode="json")})
    else:
        emit_lines(runtime.out, result_lines(result, took))
    return EXIT_OK if result["status"] == "SUCCEEDED" else EXIT_FAILED
