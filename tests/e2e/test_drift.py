"""Drift end to end on the local stack: a human breaks something, CloudTrail reports it (late), the
detector records it and the reconcile state machine repairs it; or, per the drift mode, only notifies."""

from __future__ import annotations

import copy
import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dbx_privatelink.catalog import default_catalog, port_ranges
from dbx_privatelink.drift.models import ScanDriftOutput
from dbx_privatelink.drift_store import DriftRecord, DriftStore
from dbx_privatelink_cli.drift_demo import await_execution
from dbx_privatelink_cli.main import main as cli
from dbx_privatelink_local.seed import DataPlane
from dbx_privatelink_local.stack import LocalStack

from .conftest import Reconciler, spec_for

pytestmark = pytest.mark.e2e

OTHER_ACCOUNT = "111122223333"
# A repair started, or already closed by its run's SUCCEEDED end (the record may be either when read).
STARTED = ("remediation_started", "repaired")


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {timeout}s"
        time.sleep(0.05)


class Drift:
    """The drift side of the local stack: store, executions, deliveries."""

    def __init__(self, stack: LocalStack) -> None:
        assert stack.deployment is not None
        self.stack = stack
        self.outputs = stack.deployment.outputs
        self.store = DriftStore(
            stack.boto_session()
            .resource("dynamodb", endpoint_url=stack.aws.endpoint_url)
            .Table(self.outputs["TableName"])
        )
        self.sfn = stack.client("stepfunctions")
        self.machine = self.outputs["ReconcileStateMachineArn"]
        self.scan_machine = self.outputs["ScanStateMachineArn"]

    def remediations(self, key: str) -> list[dict[str, Any]]:
        """Executions the drift functions started for `key` (named drift-<key>-<digest>)."""
        pages = self.sfn.get_paginator("list_executions").paginate(stateMachineArn=self.machine)
        prefix = f"drift-{key}-"
        return [e for page in pages for e in page["executions"] if e["name"].startswith(prefix)]

    def records(self, key: str) -> list[DriftRecord]:
        return self.store.list_drift(key, limit=100)

    def deliver(self) -> None:
        """Hand every queued CloudTrail event to EventBridge now, and wait until it was delivered."""
        self.stack.aws.cloudtrail.flush()
        assert self.stack.aws.eventbridge.wait_idle(30.0)

    def settle(self, key: str, timeout: float = 60.0) -> None:
        """Until no remediation of `key` runs and every event (the repair's own included) was handled."""
        for _ in range(3):
            wait_for(
                lambda: all(e["status"] != "RUNNING" for e in self.remediations(key)),
                timeout,
                "remediations finished",
            )
            self.deliver()
            time.sleep(0.2)

    def record_with(
        self, key: str, outcome: str | tuple[str, ...], count: int = 1, timeout: float = 30.0
    ) -> list[DriftRecord]:
        """At least `count` records with (one of) the outcome(s), most recently seen first."""
        outcomes = (outcome,) if isinstance(outcome, str) else outcome
        return list(
            wait_for(
                lambda: (
                    (found := [r for r in self.records(key) if r.outcome in outcomes])
                    and len(found) >= count
                    and found
                ),
                timeout,
                f"{count} drift record(s) {outcome} for {key}",
            )
        )

    def succeeded(self, arn: str, timeout: float = 60.0) -> None:
        # A coalesced record may name a run its reserving record has not started yet: await_execution waits.
        status = await_execution(self.sfn, arn, timeout)
        assert status is not None, f"execution {arn} did not end within {timeout} s"
        assert status == "SUCCEEDED", self.sfn.describe_execution(executionArn=arn).get("cause")

    def redeliver(self, event: dict[str, Any]) -> None:
        """Deliver an event again, with the same id, to the rules it matches (EventBridge's at least once)."""
        from moto.events.models import events_backends

        bus = events_backends[self.stack.aws.account_id][self.stack.config.region].event_buses["default"]
        rules = [r for r in bus.rules.values() if r.event_pattern.matches_event(event)]
        assert rules, "no rule matches the event"
        for rule in rules:
            self.stack.aws.eventbridge.dispatch(rule, copy.deepcopy(event))
        assert self.stack.aws.eventbridge.wait_idle(30.0)

    def rule(self, fragment: str) -> Any:
        from moto.events.models import events_backends

        bus = events_backends[self.stack.aws.account_id][self.stack.config.region].event_buses["default"]
        return next(r for r in bus.rules.values() if fragment in r.name)

    def scans(self) -> list[dict[str, Any]]:
        """Every execution of the scan state machine (one per tick), newest first."""
        pages = self.sfn.get_paginator("list_executions").paginate(stateMachineArn=self.scan_machine)
        return [e for page in pages for e in page["executions"]]

    def scans_idle(self, timeout: float = 60.0) -> None:
        """Until no tick of the scan runs (a tick that finds one running scans nothing)."""
        self.stack.aws.eventbridge.wait_idle(timeout)
        wait_for(lambda: all(e["status"] != "RUNNING" for e in self.scans()), timeout, "no scan running")

    def scan_now(self, timeout: float = 60.0) -> ScanDriftOutput:
        """Fire the scan rule once, as its schedule does, and return that tick's output when it ends (again
        after a tick the schedule started just before, which it would leave the fleet to)."""
        rule = self.rule("ScanStateMachine")
        for _ in range(3):
            self.scans_idle(timeout)
            event_id = f"test-scan-{time.time_ns()}"
            event = {
                "version": "0",
                "id": event_id,
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": self.stack.aws.account_id,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "region": self.stack.config.region,
                "resources": [rule.arn],
                "detail": {},
            }
            before = {e["executionArn"] for e in self.scans()}
            self.stack.aws.eventbridge.dispatch(rule, event)
            assert self.stack.aws.eventbridge.wait_idle(timeout)
            output = self.tick_output(event_id, before, timeout)
            if not output.skipped:
                return output
        raise AssertionError(f"three scans in a row were skipped: {output.skipped}")

    def tick_output(self, event_id: str, before: set[str], timeout: float = 60.0) -> ScanDriftOutput:
        """The output of the tick the event `event_id` started (an execution not in `before`), once it
        ended SUCCEEDED."""

        def started() -> str | None:
            for execution in self.scans():
                if execution["executionArn"] in before:
                    continue
                described = self.sfn.describe_execution(executionArn=execution["executionArn"])
                if event_id in described.get("input", ""):
                    return str(execution["executionArn"])
            return None

        arn = wait_for(started, timeout, f"the tick of {event_id} started")
        self.succeeded(arn, timeout)
        return ScanDriftOutput.model_validate_json(self.sfn.describe_execution(executionArn=arn)["output"])


@pytest.fixture(scope="module")
def drift(stack: LocalStack) -> Drift:
    return Drift(stack)


@pytest.fixture(scope="module", autouse=True)
def scheduled_scan_off(stack: LocalStack, drift: Drift) -> Iterator[Callable[[bool], None]]:
    """The schedule stays off unless a test turns it on, so each test knows which path saw a drift first
    (tests that need a scan fire it themselves, through the same rule target). Off means no tick runs
    either: a tick is an execution that outlives the schedule's last firing by the time it takes."""
    events = stack.client("events")
    name = drift.rule("ScanStateMachine").name

    def switch(on: bool) -> None:
        (events.enable_rule if on else events.disable_rule)(Name=name)
        if not on:
            drift.scans_idle()

    switch(False)
    yield switch
    switch(True)


@pytest.fixture
def run_cli(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], tuple[int, str]]:
    """The dbx-privatelink CLI pointed at the local stack: (exit status, standard output)."""
    env = stack.client_environment()
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def run(argv: list[str]) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        code = cli(argv, env=env, out=out, err=err)
        assert code in (0, 1), err.getvalue()
        return code, out.getvalue()

    return run


@pytest.fixture(scope="module")
def topic_queue(stack: LocalStack, drift: Drift) -> Callable[[], list[dict[str, Any]]]:
    """An SQS queue subscribed to the notification topic; returns a reader of the messages so far."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url = sqs.create_queue(QueueName="drift-notifications-test")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=drift.outputs["NotificationTopicArn"], Protocol="sqs", Endpoint=arn)
    seen: list[dict[str, Any]] = []

    def read() -> list[dict[str, Any]]:
        for _ in range(20):
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                break
            for message in batch:
                seen.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return list(seen)

    return read


@pytest.fixture
def workspace(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane, request: pytest.FixtureRequest
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """A reconciled workspace in a VPC of its own: (spec, the run's summary)."""
    key = "d-" + request.node.name.replace("_", "-").removeprefix("test-")[:30].strip("-")
    spec = spec_for(stack, data_plane, key)
    spec["drift"] = {"mode": getattr(request, "param", "remediate")}
    run = reconciler.run(spec)
    assert run.status == "SUCCEEDED", run.cause
    stack.aws.cloudtrail.flush()  # the reconcile's own calls: they must start nothing
    assert stack.aws.eventbridge.wait_idle(30.0)
    yield spec, run.output["summary"]


def _private_dns(stack: LocalStack, endpoint_id: str) -> bool:
    found = stack.client("ec2").describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]
    return bool(found["PrivateDnsEnabled"]) and found["State"] == "available"


def _human_turns_private_dns_off(stack: LocalStack, endpoint_id: str) -> None:
    # The stack's default credentials are the operator's IAM user, not one of the application's roles.
    stack.client("ec2").modify_vpc_endpoint(VpcEndpointId=endpoint_id, PrivateDnsEnabled=False)


def scan_until(
    drift: Drift,
    switch: Callable[[bool], None],
    key: str,
    outcome: str | tuple[str, ...],
    timeout: float = 60.0,
) -> list[DriftRecord]:
    """Turn the schedule on until the scan recorded `outcome` for `key` (bounded), then off again; the
    records of that tick (a drift each, most recently seen first)."""
    outcomes = (outcome,) if isinstance(outcome, str) else outcome
    switch(True)
    try:
        [first, *_] = drift.record_with(key, outcomes, timeout=timeout)
    finally:
        switch(False)  # and waits until no tick runs: every record the tick makes is written
    return [r for r in drift.records(key) if r.event_id == first.event_id and r.outcome in outcomes]


def _app_role_events(stack: LocalStack, since: int) -> list[str]:
    events = stack.aws.cloudtrail.events()[since:]
    return [
        e["detail"]["eventName"]
        for e in events
        if e["detail"]["userIdentity"].get("type") == "AssumedRole"
        and "/dbx-privatelink-" in e["detail"]["userIdentity"].get("arn", "")
    ]


def _detect(stack: LocalStack, event: dict[str, Any]) -> dict[str, Any]:
    """Hand one event to the deployed DetectDrift, as EventBridge does; its output."""
    assert stack.deployment is not None
    name = stack.deployment.function_by_logical_id("DetectDriftFunction").function_name
    answer = stack.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
    assert "FunctionError" not in answer, answer["Payload"].read()
    return dict(json.loads(answer["Payload"].read()))


@pytest.mark.parametrize("workspace", ["notify"], indirect=True)
def test_the_applications_own_calls_are_known_by_the_role_arns_the_template_gives(
    stack: LocalStack, drift: Drift, workspace: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    """The template passes DetectDrift the ARNs of the stack's roles (OWN_ROLE_ARNS from the roles' own
    resources): a call of EnablePrivateDns is the application's, the same call by a human role named like
    the stack's roles is not."""
    spec, summary = workspace
    key, endpoint = spec["workspace_key"], summary["endpoints"]["workspace"]["id"]
    # Given the reconcile's own ModifyVpcEndpoint on the workspace endpoint (indexed for drift by now)
    [own] = [
        e
        for e in stack.aws.cloudtrail.events("ModifyVpcEndpoint")
        if endpoint in json.dumps(e["detail"]["requestParameters"])
        and "EnablePrivateDnsFunctionRole" in e["detail"]["userIdentity"].get("arn", "")
    ]
    # When it is handed to the detector again, then it is ignored as the application's own call
    out = _detect(stack, {**own, "id": own["id"] + "-again"})
    assert (out["outcome"], out["reason"]) == ("ignored", "the application's own call"), out
    # When the same call comes from a role named like the stack's roles, then it is a drift of the workspace
    identity = own["detail"]["userIdentity"]
    human = f"{stack.deployment.stack_name}-Breakglass-admin"  # type: ignore[union-attr]
    account = identity["accountId"]
    forged = {
        **own,
        "id": own["id"] + "-breakglass",
        "detail": {
            **own["detail"],
            "eventID": own["detail"]["eventID"] + "-breakglass",
            "userIdentity": {
                "type": "AssumedRole",
                "accountId": account,
                "arn": f"arn:aws:sts::{account}:assumed-role/{human}/alice",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "arn": f"arn:aws:iam::{account}:role/{human}",
                        "accountId": account,
                        "userName": human,
                    }
                },
            },
        },
    }
    out = _detect(stack, forged)
    assert [w["outcome"] for w in out["workspaces"]] == ["notified"], out
    assert [r.actor for r in drift.records(key)] == [f"arn:aws:sts::{account}:assumed-role/{human}/alice"]


# --- every drift kind: detected, recorded, repaired --------------------------------------------------


def test_private_dns_turned_off_is_detected_recorded_and_repaired(
    stack: LocalStack, drift: Drift, workspace: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    spec, summary = workspace
    key, endpoint = spec["workspace_key"], summary["endpoints"]["workspace"]["id"]
    # Given a healthy workspace; when a human turns private DNS off on its workspace endpoint
    _human_turns_private_dns_off(stack, endpoint)
    assert not _private_dns(stack, endpoint)
    assert "ModifyVpcEndpoint" in stack.aws.cloudtrail.pending(), "CloudTrail reports it late"
    drift.deliver()
    # Then the drift is recorded with what, who and when, and a repair runs
    [record] = drift.record_with(key, STARTED)
    assert record.event_name == "ModifyVpcEndpoint" and record.resource_ids == [endpoint]
    assert record.actor.endswith(":user/operator")
    assert record.before == {"private_dns_enabled": True} and record.after == {"private_dns_enabled": False}
    assert record.execution_arn and record.execution_arn.endswith(record.execution_name or "?")
    drift.succeeded(record.execution_arn)
    assert wait_for(lambda: _private_dns(stack, endpoint), 30, "private DNS on again")
    # And the repair's own ModifyVpcEndpoint starts no second run; the run SUCCEEDED: the record is repaired
    drift.settle(key)
    assert len(drift.remediations(key)) == 1
    assert [r.outcome for r in drift.records(key)] == ["repaired"]


def test_revoked_security_group_rules_are_restored(
    stack: LocalStack, drift: Drift, workspace: tuple[dict[str, Any], dict[str, Any]], data_plane: DataPlane
) -> None:
    spec, _ = workspace
    key = spec["workspace_key"]
    ec2 = stack.client("ec2")
    lo, hi = port_ranges(default_catalog().endpoint_sg_ingress_tcp_ports)[0]
    revoked = {"IpProtocol": "tcp", "FromPort": lo, "ToPort": hi, "IpRanges": [{"CidrIp": data_plane.cidr}]}
    # When a human revokes the endpoint group's ingress rule and the workspace group's UDP within itself
    ec2.revoke_security_group_ingress(GroupId=data_plane.endpoint_sg_id, IpPermissions=[revoked])
    self_udp = {
        "IpProtocol": "udp",
        "FromPort": 0,
        "ToPort": 65535,
        "UserIdGroupPairs": [{"GroupId": data_plane.workspace_sg_id}],
    }
    ec2.revoke_security_group_ingress(GroupId=data_plane.workspace_sg_id, IpPermissions=[self_udp])
    drift.deliver()
    # Then both are recorded, the rules come back and the reconcile passes preflight again
    records = drift.record_with(key, STARTED)
    [started] = [r for r in records if r.execution_name]
    assert started.event_name.startswith("RevokeSecurityGroup")
    drift.succeeded(str(started.execution_arn))
    drift.settle(key)
    restored = [a for r in drift.records(key) for a in r.actions if "allow" in a]
    assert any(data_plane.endpoint_sg_id in a and f"TCP {lo}" in a for a in restored), restored
    assert any(data_plane.workspace_sg_id in a and "UDP ingress within" in a for a in restored), restored
    groups = {
        g["GroupId"]: g
        for g in ec2.describe_security_groups(
            GroupIds=[data_plane.endpoint_sg_id, data_plane.workspace_sg_id]
        )["SecurityGroups"]
    }
    ingress = groups[data_plane.endpoint_sg_id]["IpPermissions"]
    assert any(p.get("FromPort") == lo and p.get("ToPort") == hi for p in ingress)
    within = groups[data_plane.workspace_sg_id]["IpPermissions"]
    assert any(p.get("IpProtocol") == "udp" and p.get("UserIdGroupPairs") for p in within)
    assert len(drift.remediations(key)) == 1
    # Two groups, two drifts: both repaired by the one run
    assert [r.outcome for r in drift.records(key)] == ["repaired", "repaired"]


def test_a_failed_apply_leaves_the_desired_spec_and_drift_repair_intact(
    stack: LocalStack,
    drift: Drift,
    reconciler: Reconciler,
    workspace: tuple[dict[str, Any], dict[str, Any]],
    run_cli: Callable[[list[str]], tuple[int, str]],
) -> None:
    spec, summary = workspace
    key, endpoint = spec["workspace_key"], summary["endpoints"]["workspace"]["id"]
    good = drift.store.get_desired(key)
    assert good is not None
    # Given a healthy workspace, when a spec with a typo'd subnet id is applied
    typo = copy.deepcopy(spec)
    typo["network"]["workspace_subnet_ids"][0] = "subnet-0badc0ffee0badc0f"
    run = reconciler.run(typo)
    # Then the run fails in preflight, the desired spec is still the good one, the workspace still HEALTHY
    assert run.status == "FAILED" and run.error == "PreflightFailedError", run.cause
    assert drift.store.get_desired(key) == good
    assert (drift.store.get_observed(key) or {})["health"] == "HEALTHY"
    pending = drift.store.get_pending(key)
    assert (
        pending is not None
        and pending.state == "rejected"
        and "subnet-0badc0ffee0badc0f" in (pending.cause or "")
    )
    # And `status` shows the rejected spec and why
    code, out = run_cli(["status", key])
    assert code == 0, out
    assert "Pending spec: rejected" in out and "subnet-0badc0ffee0badc0f" in out
    # And when a human turns private DNS off, drift repair reconciles the good spec and puts it back
    _human_turns_private_dns_off(stack, endpoint)
    drift.deliver()
    [record] = drift.record_with(key, "remediation_started")
    assert record.execution_arn
    drift.succeeded(record.execution_arn)
    assert wait_for(lambda: _private_dns(stack, endpoint), 30, "private DNS on again")


def test_apply_wait_under_a_held_lease_follows_the_holder_through_the_new_spec(
    stack: LocalStack,
    drift: Drift,
    reconciler: Reconciler,
    workspace: tuple[dict[str, Any], dict[str, Any]],
    run_cli: Callable[[list[str]], tuple[int, str]],
    tmp_path: Any,
) -> None:
    spec, _summary = workspace
    key = spec["workspace_key"]
    # Given a reconcile of the workspace holding its lease (held up by one slow Databricks answer); its spec
    # differs from the applied one, so it reconciles in full instead of finding the workspace converged
    stack.emulator.add_fault("latency", method="GET", path="*", count=1, latency_s=5.0)
    holder = reconciler._start({**copy.deepcopy(spec), "drift": {"mode": "off"}})
    wait_for(
        lambda: (lease := drift.store.get_lease(key)) is not None and lease.holder_arn == holder, 30, "lease"
    )
    # When a changed spec is applied with --wait meanwhile
    changed = {**copy.deepcopy(spec), "drift": {"mode": "notify"}}
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))
    code, out = run_cli(["apply", str(path), "--wait", "--output", "json"])
    # Then the apply followed the holder, whose second pass reconciled the changed spec, and reports that
    result = json.loads(out)
    assert code == 0, result
    assert result["handed_to_lease_holder"] is True and result["lease_holder"]["execution_arn"] == holder
    assert result["status"] == "SUCCEEDED" and result["spec_applied"] is True
    desired = drift.store.get_desired(key)
    assert desired is not None and desired.spec["drift"]["mode"] == "notify"
    assert drift.store.get_pending(key) is None


def test_vpc_dns_hostnames_turned_off_is_restored(
    stack: LocalStack, drift: Drift, workspace: tuple[dict[str, Any], dict[str, Any]], data_plane: DataPlane
) -> None:
    spec, _ = workspace
    key = spec["workspace_key"]
    ec2 = stack.client("ec2")
    ec2.modify_vpc_attribute(VpcId=data_plane.vpc_id, EnableDnsHostnames={"Value": False})
    drift.deliver()
    [record] = drift.record_with(key, STARTED)
    assert record.summary == f"enableDnsHostnames turned off on {data_plane.vpc_id}"
    drift.succeeded(str(record.execution_arn))
    value = ec2.describe_vpc_attribute(VpcId=data_plane.vpc_id, Attribute="enableDnsHostnames")
    assert value["EnableDnsHostnames"]["Value"] is True


def test_scan_catches_a_databricks_side_change(
    stack: LocalStack,
    drift: Drift,
    workspace: tuple[dict[str, Any], dict[str, Any]],
    scheduled_scan_off: Callable[[bool], None],
) -> None:
    spec, summary = workspace
    key = spec["workspace_key"]
    pas_id = summary["private_access_settings"]["private_access_settings_id"]
    backend = stack.emulator.backend
    current = backend.get_private_access_settings(pas_id)
    # When someone changes the private access settings in the account console (no CloudTrail event)
    backend.replace_private_access_settings(
        pas_id,
        {
            "private_access_settings_name": current["private_access_settings_name"],
            "region": current["region"],
            "public_access_enabled": not current["public_access_enabled"],
            "private_access_level": current["private_access_level"],
        },
    )
    # Then the scheduled scan (every 10 emulated minutes: 6 s here) finds it and a reconcile puts it back
    [record] = scan_until(drift, scheduled_scan_off, key, STARTED)
    assert record.source == "scan" and record.actor == ""
    assert any("public_access_enabled" in f for f in record.findings), record.findings
    drift.succeeded(str(record.execution_arn))
    assert (
        backend.get_private_access_settings(pas_id)["public_access_enabled"]
        == current["public_access_enabled"]
    )


# --- no loops, no duplicates, no foreign events -----------------------------------------------------


def test_the_same_event_twice_and_a_burst_of_ten_lead_to_one_repair_each(
    stack: LocalStack, drift: Drift, workspace: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    spec, summary = workspace
    key, endpoint = spec["workspace_key"], summary["endpoints"]["workspace"]["id"]
    # Given one human change whose event EventBridge delivers twice
    _human_turns_private_dns_off(stack, endpoint)
    drift.deliver()
    [event] = [
        e
        for e in stack.aws.cloudtrail.events("ModifyVpcEndpoint")
        if e["detail"]["userIdentity"]["type"] == "IAMUser"
        and e["detail"]["requestParameters"]["ModifyVpcEndpointRequest"]["VpcEndpointId"] == endpoint
    ]
    drift.redeliver(event)
    drift.settle(key)
    # Then one repair ran and the duplicate was recognised
    assert len(drift.remediations(key)) == 1
    assert [r.event_id for r in drift.records(key)] == [event["id"]]
    assert wait_for(lambda: _private_dns(stack, endpoint), 30, "private DNS on again")

    # When ten changes arrive in a burst
    for _ in range(10):
        _human_turns_private_dns_off(stack, endpoint)
    drift.deliver()
    drift.settle(key)
    # Then one more repair ran; the other nine joined it: one record counts them (a change that reached
    # the detector after that run closed the drift is one more, joined to the run that had read it)
    assert len(drift.remediations(key)) == 2
    burst = [r for r in drift.records(key) if r.event_id != event["id"]]
    assert sum(r.count for r in burst) == 10 and len(burst) <= 2, burst
    assert [r.execution_name for r in burst if r.execution_name] == [burst[-1].execution_name]
    assert {r.outcome for r in burst} <= {"repaired", "coalesced"}, burst
    assert wait_for(lambda: _private_dns(stack, endpoint), 30, "private DNS on again")


def test_an_event_from_another_account_is_ignored(
    stack: LocalStack, drift: Drift, workspace: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    spec, summary = workspace
    key, endpoint = spec["workspace_key"], summary["endpoints"]["workspace"]["id"]
    # Given an event about the workspace's endpoint, from another account (a forwarded bus, a shared trail)
    foreign = {
        "version": "0",
        "id": "foreign-event-1",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ec2",
        "account": OTHER_ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": stack.config.region,
        "resources": [],
        "detail": {
            "eventID": "foreign-1",
            "eventName": "ModifyVpcEndpoint",
            "eventSource": "ec2.amazonaws.com",
            "recipientAccountId": OTHER_ACCOUNT,
            "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{OTHER_ACCOUNT}:user/someone"},
            "requestParameters": {
                "ModifyVpcEndpointRequest": {"VpcEndpointId": endpoint, "PrivateDnsEnabled": False}
            },
        },
    }
    # Then the rules, pinned to the stack's account, do not match it
    assert not drift.rule("Ec2ApiCalls").event_pattern.matches_event(foreign)
    # And the detector refuses it even when it reaches it (a forwarded bus, a misconfigured rule)
    payload = (
        stack.client("lambda")
        .invoke(
            FunctionName=drift.rule("Ec2ApiCalls").targets[0]["Arn"], Payload=json.dumps(foreign).encode()
        )["Payload"]
        .read()
    )
    result = json.loads(payload)
    assert result["outcome"] == "ignored" and OTHER_ACCOUNT in result["reason"], result
    assert drift.records(key) == [] and drift.remediations(key) == []
    assert _private_dns(stack, endpoint)


# --- modes and safety -------------------------------------------------------------------------------


@pytest.mark.parametrize("workspace", ["notify"], indirect=True)
def test_notify_mode_records_and_notifies_without_a_mutating_call(
    stack: LocalStack,
    drift: Drift,
    workspace: tuple[dict[str, Any], dict[str, Any]],
    topic_queue: Callable[[], list[dict[str, Any]]],
) -> None:
    spec, summary = workspace
    key, endpoint = spec["workspace_key"], summary["endpoints"]["workspace"]["id"]
    topic_queue()
    trail_before = len(stack.aws.cloudtrail.events())
    dbx_before = stack.emulator.calls_by_operation()
    _human_turns_private_dns_off(stack, endpoint)
    drift.deliver()
    [record] = drift.record_with(key, "notified")
    assert record.mode == "notify" and record.notified and record.execution_arn is None
    messages = wait_for(
        lambda: [m for m in topic_queue() if key in m.get("Subject", "") + m.get("Message", "")], 10, "SNS"
    )
    assert "private DNS turned off" in messages[0]["Message"] and "user/operator" in messages[0]["Message"]
    # When the scan sees the drift too, tick after tick
    drift.scan_now()
    drift.scan_now()
    drift.settle(key)
    # Then it is still the one record, seen once more per tick, and it was notified once
    [seen] = drift.records(key)
    assert seen.event_id == record.event_id and seen.count == 3 and seen.closed_at == ""
    assert any("private DNS off" in f for f in seen.findings), seen.findings
    notified = {m["MessageId"] for m in topic_queue() if key in m.get("Subject", "") + m.get("Message", "")}
    assert len(notified) == 1, notified
    # And in notify mode nothing was changed
    assert drift.remediations(key) == []
    assert _app_role_events(stack, trail_before) == []
    dbx_after = stack.emulator.calls_by_operation()
    writes = {
        op: n - dbx_before.get(op, 0)
        for op, n in dbx_after.items()
        if op.split(" ", 1)[0] in ("POST", "PUT", "PATCH", "DELETE") and "/oidc/" not in op
    }
    assert not any(writes.values()), writes
    assert not _private_dns(stack, endpoint), "notify mode left the drift in place"


def test_a_workspace_changed_back_over_and_over_ends_in_notify_mode_with_an_alert(
    stack: LocalStack,
    drift: Drift,
    workspace: tuple[dict[str, Any], dict[str, Any]],
    topic_queue: Callable[[], list[dict[str, Any]]],
    run_cli: Callable[[list[str]], tuple[int, str]],
) -> None:
    spec, summary = workspace
    key, endpoint = spec["workspace_key"], summary["endpoints"]["workspace"]["id"]
    # Given MaxRemediationsPerHour 3 (the default); when a human turns private DNS off again after each repair
    for round_ in range(1, 4):
        _human_turns_private_dns_off(stack, endpoint)
        drift.deliver()
        records = drift.record_with(key, STARTED, count=round_)
        drift.succeeded(str(records[0].execution_arn))
        assert wait_for(lambda: _private_dns(stack, endpoint), 30, "repaired")
        drift.settle(key)
    _human_turns_private_dns_off(stack, endpoint)
    drift.deliver()
    # Then the fourth change is only recorded, the workspace is in notify mode, and an alert went out
    [limited] = drift.record_with(key, "rate_limited")
    assert limited.mode == "notify"
    override = drift.store.get_drift_override(key)
    assert override is not None and override.mode == "notify"
    alerts = wait_for(
        lambda: [
            m for m in topic_queue() if m.get("Subject", "").startswith("ALERT") and key in m["Subject"]
        ],
        10,
        "the alert",
    )
    assert "too many remediations" in alerts[0]["Message"]
    drift.settle(key)
    assert len(drift.remediations(key)) == 3
    assert not _private_dns(stack, endpoint)
    # And status shows the mode with its reason
    _, out = run_cli(["status", key, "--output", "json"])
    status = json.loads(out)
    assert status["drift"]["mode"] == "notify" and status["drift"]["override"]["mode"] == "notify"
    assert status["drift"]["last"]["outcome"] == "rate_limited"


def test_pause_blocks_every_remediation_until_resume(
    stack: LocalStack,
    drift: Drift,
    workspace: tuple[dict[str, Any], dict[str, Any]],
    run_cli: Callable[[list[str]], tuple[int, str]],
) -> None:
    spec, summary = workspace
    key, endpoint = spec["workspace_key"], summary["endpoints"]["workspace"]["id"]
    assert run_cli(["pause", "--reason", "maintenance"])[0] == 0
    try:
        _human_turns_private_dns_off(stack, endpoint)
        drift.deliver()
        [paused] = drift.record_with(key, "paused")
        drift.scan_now()
        # The scan is blocked as well, and it sees the same drift: one record, seen twice
        [seen] = drift.record_with(key, "paused")
        assert seen.event_id == paused.event_id and seen.count == 2 and seen.notified
        assert drift.remediations(key) == []
        assert not _private_dns(stack, endpoint)
    finally:
        assert run_cli(["resume"])[0] == 0
    # When remediation resumes, the next scan repairs what was left (still the one drift)
    drift.scan_now()
    [record] = drift.record_with(key, STARTED)
    assert record.event_id == paused.event_id and record.count == 3
    drift.succeeded(str(record.execution_arn))
    assert wait_for(lambda: _private_dns(stack, endpoint), 30, "repaired after resume")
    code, out = run_cli(["drift", key, "--output", "json"])
    listed = json.loads(out)["drift"]
    assert code == 0
    assert [(d["outcome"], d["count"]) for d in listed] == [("repaired", 3)]
    assert listed[0]["execution_status"] == "SUCCEEDED" and listed[0]["closed_at"]


def test_the_dot_rule_disassociated_from_the_data_plane_vpc_is_associated_again(
    stack: LocalStack, drift: Drift, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    env = stack.environment
    assert env is not None
    # Given a workspace with custom DNS: a "." rule to the corporate servers associated with its VPC
    spec = spec_for(stack, data_plane, "d-dot-rule")
    spec["dns"] = {
        "custom_dns": {
            "dns_vpc_id": env.dns_vpc_id,
            "resolver_subnet_ids": env.dns_subnet_ids,
            "allowed_cidrs": [data_plane.cidr],
            "corporate_dns_ips": env.corporate_dns_ips,
        }
    }
    run = reconciler.run(spec)
    assert run.status == "SUCCEEDED", run.cause
    drift.deliver()
    [dot] = [
        a
        for a in run.output["summary"]["dns"]["associations"]
        if a["domain"] == "." and a["vpc_id"] == data_plane.vpc_id
    ]
    r53r = stack.client("route53resolver")

    def associated() -> bool:
        found = r53r.list_resolver_rule_associations(
            Filters=[
                {"Name": "VPCId", "Values": [data_plane.vpc_id]},
                {"Name": "ResolverRuleId", "Values": [dot["resolver_rule_id"]]},
            ]
        )["ResolverRuleAssociations"]
        return any(a["Status"] == "COMPLETE" for a in found)

    # When a human disassociates it
    r53r.disassociate_resolver_rule(ResolverRuleId=dot["resolver_rule_id"], VPCId=data_plane.vpc_id)
    assert not associated()
    drift.deliver()
    # Then the drift is recorded against the workspace and the reconcile associates it again
    [record] = drift.record_with("d-dot-rule", STARTED)
    assert record.event_name == "DisassociateResolverRule"
    assert dot["resolver_rule_id"] in record.resource_ids
    drift.succeeded(str(record.execution_arn))
    assert wait_for(associated, 30, '"." rule associated again')
    drift.settle("d-dot-rule")
    assert len(drift.remediations("d-dot-rule")) == 1
