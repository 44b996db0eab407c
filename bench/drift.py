"""Drift figures on the local stack: from a human change to its repair, and what a scan costs.

    .venv/bin/python bench/drift.py [--time-scale 0.01] [--repeats 3]

1. Time from a change (private DNS turned off on the workspace endpoint) to its repair, split into
   event delivery (change -> the CloudTrail event on the bus: the emulated CloudTrail delay of 300 s, i.e.
   about 5 minutes on AWS, scaled), detection (event -> the reconcile execution started: the detector maps,
   records and starts), and the reconcile run (start -> SUCCEEDED). Measured with the CloudTrail delay, and
   again with the event flushed at once (what the application itself adds).
2. The API calls the scan of one workspace costs (AWS by operation, Databricks Account API by operation):
   scan_and_respond(), what one item of the scan's Map runs, called in this process against the stack
   (its reads, its follow-up of a failed repair, its SCANNED marker).
3. One tick of the scan state machine over that one-workspace fleet, started as its schedule starts it:
   states entered, Lambda invocations and wall time.
Wall-clock seconds of this machine; the Lambda code runs in-process, so cold starts are not included.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT, REPO_ROOT / "layers" / "core", REPO_ROOT / "local", REPO_ROOT / "cli"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import boto3  # noqa: E402
import yaml  # noqa: E402

from dbx_privatelink.drift.fleet import scan_and_respond  # noqa: E402
from dbx_privatelink.drift.models import ScanDriftOutput  # noqa: E402
from dbx_privatelink.drift.outcomes import ScanWorkspaceInput  # noqa: E402
from dbx_privatelink.drift_store import DriftStore  # noqa: E402
from dbx_privatelink.wiring import Deps, Settings  # noqa: E402
from dbx_privatelink_local.stack import LocalStack, LocalStackConfig  # noqa: E402


def _wait(predicate: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise TimeoutError("condition not met")


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value)).timestamp()


def one_repair(
    stack: LocalStack, store: DriftStore, key: str, endpoint: str, *, flush: bool
) -> dict[str, float]:
    ec2, sfn = stack.client("ec2"), stack.client("stepfunctions")
    trail = stack.aws.cloudtrail
    before = len(trail.events("ModifyVpcEndpoint"))
    known = {r.event_id for r in store.list_drift(key, limit=200)}
    seen_event: dict[str, float] = {}

    def watch() -> None:
        trail.wait_for("ModifyVpcEndpoint", timeout=120, count=before + 1)
        seen_event["at"] = time.time()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    changed = time.time()
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint, PrivateDnsEnabled=False)
    if flush:
        trail.flush()
    record = _wait(
        lambda: next(
            (r for r in store.list_drift(key, limit=200) if r.event_id not in known and r.execution_arn), None
        ),
        120,
    )
    described = _wait(
        lambda: (d := sfn.describe_execution(executionArn=record.execution_arn))["status"] != "RUNNING" and d,
        120,
    )
    watcher.join(5)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    started, stopped = _epoch(described["startDate"]), _epoch(described["stopDate"])
    # Let the repair's own event go by before the next round.
    trail.flush()
    stack.aws.eventbridge.wait_idle(30)
    return {
        "event_delivery_s": seen_event.get("at", started) - changed,
        "detection_s": started - seen_event.get("at", started),
        "reconcile_s": stopped - started,
        "total_s": stopped - changed,
    }


def scan_cost(stack: LocalStack, key: str) -> tuple[Counter[str], Counter[str], float]:
    assert stack.deployment is not None
    env = stack.client_environment()
    os.environ.update({k: env[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    session = boto3.session.Session(region_name=stack.config.region)
    aws: Counter[str] = Counter()
    session.events.register(
        "before-call", lambda model, **_: aws.update([f"{model.service_model.service_name}:{model.name}"])
    )
    settings = Settings(
        region=stack.config.region,
        owner_tag=stack.config.stack_name,
        table_name=stack.deployment.outputs["TableName"],
        databricks_host=stack.info.databricks_host,
        databricks_secret_id=stack.environment.secret_arn if stack.environment else "",
        state_machine_arn=stack.deployment.outputs["ReconcileStateMachineArn"],
    )
    deps = Deps(settings=settings, session=session)
    deps.databricks(stack.info.account_id)  # the OAuth token and the secret read are once per cold start
    aws.clear()
    dbx_before = Counter(stack.emulator.calls_by_operation())
    now = datetime.now(UTC)
    item = ScanWorkspaceInput(
        workspace_key=key,
        index=0,
        scan_id=f"bench-scan-{time.time_ns()}",
        scan_time=now.isoformat(),
        deadline=now + timedelta(minutes=10),
        max_concurrency=1,
    )
    began = time.monotonic()
    outcome = scan_and_respond(item, deps)
    took = time.monotonic() - began
    assert outcome.outcome == "in sync", outcome
    dbx = Counter(stack.emulator.calls_by_operation()) - dbx_before
    return aws, dbx, took


def one_tick(stack: LocalStack) -> tuple[ScanDriftOutput, int, int, float]:
    """One execution of the scan state machine, with a Scheduled Event as its input: the tick's output,
    states entered, Lambda invocations, wall seconds."""
    assert stack.deployment is not None
    sfn = stack.client("stepfunctions")
    event = {"version": "0", "id": f"bench-{time.time_ns()}", "detail-type": "Scheduled Event", "detail": {}}
    began = time.monotonic()
    arn = sfn.start_execution(
        stateMachineArn=stack.deployment.outputs["ScanStateMachineArn"], input=json.dumps(event)
    )["executionArn"]
    described = _wait(
        lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d, 120
    )
    took = time.monotonic() - began
    assert described["status"] == "SUCCEEDED", described.get("cause")
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered = sum(1 for e in history if e["type"].endswith("StateEntered"))
    invocations = sum(1 for e in history if e["type"] == "LambdaFunctionScheduled")
    return ScanDriftOutput.model_validate_json(described["output"]), entered, invocations, took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    # Repeated repairs of one workspace would hit the default limit of 3 an hour: raise it for the bench.
    config = LocalStackConfig(
        time_scale=args.time_scale, parameters={"ScanRateMinutes": "10", "MaxRemediationsPerHour": "60"}
    )
    with LocalStack(config) as stack:
        assert stack.deployment is not None
        sfn, events = stack.client("stepfunctions"), stack.client("events")
        # The scan would race the event for the same change: measure the event path alone.
        scan_rule = next(r["Name"] for r in events.list_rules()["Rules"] if "ScanStateMachine" in r["Name"])
        events.disable_rule(Name=scan_rule)
        spec = yaml.safe_load(Path(stack.info.sample_spec).read_text())
        machine = stack.deployment.outputs["ReconcileStateMachineArn"]
        started = sfn.start_execution(
            stateMachineArn=machine, name="bench-drift-apply", input=json.dumps(spec)
        )
        _wait(
            lambda: sfn.describe_execution(executionArn=started["executionArn"])["status"] != "RUNNING", 300
        )
        table = stack.boto_session().resource("dynamodb", endpoint_url=stack.aws.endpoint_url)
        store = DriftStore(table.Table(stack.deployment.outputs["TableName"]))
        key = spec["workspace_key"]
        endpoint = store.get_observed(key)["resources"]["endpoints"]["workspace"]["id"]  # type: ignore[index]
        stack.aws.cloudtrail.flush()
        stack.aws.eventbridge.wait_idle(30)
        lines = [
            f"dbx-privatelink drift bench (time scale {args.time_scale}, {args.repeats} repeats, medians)",
            "",
        ]
        for flush in (False, True):
            runs = [one_repair(stack, store, key, endpoint, flush=flush) for _ in range(args.repeats)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            label = "event flushed at once" if flush else "CloudTrail delay 300 s emulated"
            lines += [
                f"change -> repair ({label}):",
                f"  event delivery  {med['event_delivery_s']:6.2f} s"
                + (
                    ""
                    if flush
                    else f"  (= {med['event_delivery_s'] / args.time_scale / 60:.1f} emulated minutes)"
                ),
                f"  detection       {med['detection_s']:6.2f} s  (event on the bus -> reconcile execution started)",
                f"  reconcile run   {med['reconcile_s']:6.2f} s  (Wait states scaled by {args.time_scale})",
                f"  total           {med['total_s']:6.2f} s",
                "",
            ]
        aws, dbx, took = scan_cost(stack, key)
        lines += [
            f"the scan of one workspace: {sum(aws.values())} AWS calls, {sum(dbx.values())} Databricks calls, "
            f"{took:.2f} s",
            "  AWS:        " + ", ".join(f"{op} {n}" for op, n in sorted(aws.items())),
            "  Databricks: " + ", ".join(f"{op} {n}" for op, n in sorted(dbx.items())),
        ]
        ticks = [one_tick(stack) for _ in range(args.repeats)]
        output, entered, invocations, _ = ticks[-1]
        assert [w.workspace_key for w in output.reached] == [key], output
        lines += [
            f"one scan tick of a one-workspace fleet: {entered} states entered, {invocations} Lambda invocations, "
            f"{statistics.median(t[3] for t in ticks):.2f} s",
        ]
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
