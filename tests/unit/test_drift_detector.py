"""The detector's decisions against an in-memory table (moto, in process) and fakes of Step Functions and SNS:
resource mapping, principal and account filtering, duplicates, coalescing, the rate limit, pause, modes."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from dbx_privatelink.drift.detector import detect_drift, workspaces_for
from dbx_privatelink.drift.events import CloudTrailEvent
from dbx_privatelink.drift.records import record_drifts, split_findings
from dbx_privatelink.drift.remediation import (
    drift_execution_name,
    execution_arn,
    follow_up_failed_remediation,
)
from dbx_privatelink.drift_store import DriftRecord, DriftStore
from dbx_privatelink.errors import AwsAccessDeniedError, AwsThrottledError, AwsUnavailableError
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.wiring import Deps, Settings

ACCOUNT = "123456789012"
MACHINE = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:dbx-privatelink-reconcile-workspace"
ENDPOINT = "vpce-0a1b2c3d4e5f60718"


def spec(key: str, mode: str = "remediate") -> dict[str, Any]:
    return {
        "workspace_key": key,
        "region": "us-east-1",
        "databricks": {
            "account_id": "0f5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
            "credentials_id": "cred-1",
            "storage_configuration_id": "storage-1",
            "workspace": {"name": key},
        },
        "network": {
            "vpc_id": "vpc-0a1b2c3d4e5f60718",
            "workspace_subnet_ids": ["subnet-0a1b2c3d4e5f60711", "subnet-0a1b2c3d4e5f60712"],
            "workspace_security_group_ids": ["sg-0a1b2c3d4e5f60711"],
            "endpoint_subnet_ids": ["subnet-0a1b2c3d4e5f60713"],
            "endpoint_security_group_id": "sg-0a1b2c3d4e5f60712",
        },
        "drift": {"mode": mode},
    }


class ExecutionAlreadyExists(Exception):
    pass


def execution_does_not_exist(arn: str) -> ClientError:
    """As boto3 raises it: its modeled ExecutionDoesNotExist is a ClientError with that code."""
    error = {"Code": "ExecutionDoesNotExist", "Message": f"Execution Does Not Exist: '{arn}'"}
    return ClientError({"Error": error}, "DescribeExecution")


class FakeStepFunctions:
    """Start and describe executions; a started execution runs until finish() is called."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}
        self.inputs: dict[str, str] = {}

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
        arn = execution_arn(stateMachineArn, name)
        if arn in self.status:
            raise ExecutionAlreadyExists(name)
        self.status[arn], self.inputs[arn] = "RUNNING", input
        return {"executionArn": arn}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        if executionArn not in self.status:
            raise execution_does_not_exist(executionArn)
        return {"status": self.status[executionArn]}

    def finish(self) -> None:
        self.status = dict.fromkeys(self.status, "SUCCEEDED")


class FakeSns:
    def __init__(self) -> None:
        self.published: list[dict[str, str]] = []

    def publish(self, **kwargs: str) -> None:
        self.published.append(kwargs)


class World:
    def __init__(self, table: Any) -> None:
        self.now = 1_800_000_000.0
        self.sfn, self.sns = FakeStepFunctions(), FakeSns()
        settings = Settings(
            region="us-east-1",
            owner_tag="dbx-privatelink",
            table_name="t",
            state_machine_arn=MACHINE,
            topic_arn=f"arn:aws:sns:us-east-1:{ACCOUNT}:drift",
            max_remediations_per_hour=3,
            own_role_arns=f"arn:aws:iam::{ACCOUNT}:role/dbx-privatelink-EnablePrivateDnsFunctionRole-AB12",
        )
        self.deps = Deps(settings=settings, clock=lambda: self.now)
        self.store = DriftStore(table)
        # The adapters the drift path uses; security-group repairs are covered by the e2e tests.
        self.deps.__dict__.update(drift_store=self.store, store=self.store, sfn=self.sfn, sns=self.sns)

    def workspace(self, key: str, mode: str = "remediate", resources: tuple[str, ...] = (ENDPOINT,)) -> None:
        self.store.put_desired(parse_spec(spec(key, mode)))
        self.store.index_resources(key, list(resources))

    def event(self, event_id: str = "ev-1", **detail: Any) -> CloudTrailEvent:
        raw: dict[str, Any] = {
            "id": event_id,
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.ec2",
            "account": ACCOUNT,
            "time": "2027-01-15T08:00:00Z",
            "detail": {
                "eventID": f"trail-{event_id}",
                "eventName": "ModifyVpcEndpoint",
                "eventSource": "ec2.amazonaws.com",
                "eventTime": "2027-01-15T08:00:00Z",
                "recipientAccountId": ACCOUNT,
                "userIdentity": {
                    "type": "IAMUser",
                    "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
                    "accountId": ACCOUNT,
                },
                "requestParameters": {
                    "ModifyVpcEndpointRequest": {"VpcEndpointId": ENDPOINT, "PrivateDnsEnabled": False}
                },
            },
        }
        raw["detail"].update(detail)
        return CloudTrailEvent.model_validate(copy.deepcopy(raw))


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        table = boto3.resource("dynamodb", region_name="us-east-1").create_table(
            TableName="t",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        w = World(table)
        # Prerequisite repairs read EC2: none needed in these tests.
        monkeypatch.setattr("dbx_privatelink.drift.remediation._repair_prerequisites", lambda deps, doc: [])
        yield w


def test_a_shared_endpoint_maps_to_every_workspace_and_resolver_ids_fall_back_to_recorded_state(
    world: World,
) -> None:
    world.workspace("ws-a")
    world.workspace("ws-b")
    world.store.update_observed(
        "ws-b", {"resources": {"dns": {"forward_rule_id": "rslvr-rr-0123456789abcdef0"}}}
    )
    assert workspaces_for(world.store, [ENDPOINT]) == {"ws-a": [ENDPOINT], "ws-b": [ENDPOINT]}
    assert workspaces_for(world.store, ["rslvr-rr-0123456789abcdef0"]) == {
        "ws-b": ["rslvr-rr-0123456789abcdef0"]
    }
    assert workspaces_for(world.store, ["vpce-0ffffffffffffffff"]) == {}


def test_a_human_change_starts_one_remediation_per_workspace_with_the_desired_spec(world: World) -> None:
    world.workspace("ws-a")
    out = detect_drift(world.event(), world.deps)
    [outcome] = out.workspaces
    assert outcome.outcome == "remediation_started"
    assert outcome.execution_arn == execution_arn(MACHINE, drift_execution_name("ws-a", "ev-1"))
    assert json.loads(world.sfn.inputs[outcome.execution_arn]) == world.store.get_desired("ws-a").spec
    [record] = world.store.list_drift("ws-a")
    assert record.actor.endswith(":user/alice") and record.execution_arn == outcome.execution_arn
    assert record.notified and "private DNS turned off" in world.sns.published[0]["Message"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"recipientAccountId": "111122223333"}, "111122223333"),
        ({"errorCode": "UnauthorizedOperation"}, "failed"),
        (
            {
                "userIdentity": {
                    "type": "AssumedRole",
                    "accountId": ACCOUNT,
                    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/dbx-privatelink-EnablePrivateDnsFunctionRole-AB12/x",
                }
            },
            "own call",
        ),
        (
            {"requestParameters": {"ModifyVpcEndpointRequest": {"VpcEndpointId": "vpce-0ffffffffffffffff"}}},
            "no workspace",
        ),
    ],
)
def test_events_that_start_nothing(world: World, change: dict[str, Any], reason: str) -> None:
    world.workspace("ws-a")
    out = detect_drift(world.event(**change), world.deps)
    assert out.outcome == "ignored" and reason in out.reason
    assert world.sfn.status == {} and world.store.list_drift("ws-a") == []


def test_a_human_role_named_like_the_stacks_roles_is_not_the_application(world: World) -> None:
    """Given a break-glass role `<stack>-Breakglass-admin` (it fits `<stack>-<LogicalId>-<suffix>`),
    when it turns private DNS off, then the change is repaired: only the roles the template names are ours."""
    world.workspace("ws-a")
    human = {
        "type": "AssumedRole",
        "accountId": ACCOUNT,
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/dbx-privatelink-Breakglass-admin/alice",
    }
    out = detect_drift(world.event(userIdentity=human), world.deps)
    assert [o.outcome for o in out.workspaces] == ["remediation_started"]
    [record] = world.store.list_drift("ws-a")
    assert record.actor.endswith("assumed-role/dbx-privatelink-Breakglass-admin/alice")


def test_the_same_event_twice_starts_one_run(world: World) -> None:
    world.workspace("ws-a")
    detect_drift(world.event("ev-1"), world.deps)
    world.sfn.finish()
    again = detect_drift(world.event("ev-1"), world.deps)
    assert [o.outcome for o in again.workspaces] == ["duplicate"]
    assert len(world.sfn.status) == 1 and len(world.store.list_drift("ws-a")) == 1


def test_a_burst_joins_the_running_remediation(world: World) -> None:
    world.workspace("ws-a")
    outcomes = [detect_drift(world.event(f"ev-{i}"), world.deps).workspaces[0].outcome for i in range(10)]
    assert outcomes == ["remediation_started"] + ["coalesced"] * 9
    assert len(world.sfn.status) == 1


def test_a_change_a_later_remediation_already_saw_starts_nothing(world: World) -> None:
    world.workspace("ws-a")
    world.now = 1_900_000_000.0  # the remediation started long after the event's eventTime
    detect_drift(world.event("ev-late-1"), world.deps)
    world.sfn.finish()
    out = detect_drift(world.event("ev-late-2"), world.deps)
    assert out.workspaces[0].outcome == "coalesced" and len(world.sfn.status) == 1


def test_past_the_hourly_limit_the_workspace_goes_to_notify_mode_with_an_alert(world: World) -> None:
    world.workspace("ws-a")
    outcomes = []
    for i in range(5):
        world.now += 600
        outcomes.append(
            detect_drift(world.event(f"ev-{i}", eventTime="2099-01-01T00:00:00Z"), world.deps)
            .workspaces[0]
            .outcome
        )
        world.sfn.finish()
    assert outcomes == ["remediation_started"] * 3 + ["rate_limited", "notified"]
    override = world.store.get_drift_override("ws-a")
    assert override is not None and override.mode == "notify"
    assert any(p["Subject"].startswith("ALERT") for p in world.sns.published)
    # An hour after the first, the window has room again, but the override stays until an operator clears it
    world.now += 3600
    assert (
        detect_drift(world.event("ev-9", eventTime="2099-01-01T00:00:00Z"), world.deps).workspaces[0].outcome
        == "notified"
    )
    world.store.clear_drift_override("ws-a")
    assert (
        detect_drift(world.event("ev-10", eventTime="2099-01-01T00:00:00Z"), world.deps).workspaces[0].outcome
        == "remediation_started"
    )


def test_pause_blocks_remediation_and_notify_and_off_modes_change_nothing(world: World) -> None:
    world.workspace("ws-a")
    world.workspace("ws-n", mode="notify", resources=("vpce-0a1b2c3d4e5f60719",))
    world.workspace("ws-o", mode="off", resources=("vpce-0a1b2c3d4e5f60710",))
    world.store.set_pause(True, "alice", "maintenance")
    assert detect_drift(world.event("ev-p"), world.deps).workspaces[0].outcome == "paused"
    notify = world.event(
        "ev-n", requestParameters={"ModifyVpcEndpointRequest": {"VpcEndpointId": "vpce-0a1b2c3d4e5f60719"}}
    )
    assert detect_drift(notify, world.deps).workspaces[0].outcome == "notified"
    off = world.event(
        "ev-o", requestParameters={"ModifyVpcEndpointRequest": {"VpcEndpointId": "vpce-0a1b2c3d4e5f60710"}}
    )
    assert detect_drift(off, world.deps).workspaces[0].outcome == "ignored"
    assert world.sfn.status == {} and world.store.list_drift("ws-o") == []
    world.store.set_pause(False, "alice")
    assert detect_drift(world.event("ev-r"), world.deps).workspaces[0].outcome == "remediation_started"


def test_a_failed_remediation_is_said_once_on_its_drift_record_and_notified(world: World) -> None:
    world.workspace("ws-a")
    [started] = detect_drift(world.event("ev-1"), world.deps).workspaces
    name = drift_execution_name("ws-a", "ev-1")
    # Given the remediation ended FAILED (RecordFailure wrote the run and the error on the workspace)
    cause = "give it new network.workspace_subnet_ids and new network.workspace_security_group_ids"
    world.store.update_observed(
        "ws-a",
        {
            "health": "FAILED",
            "last_error": {"error": "SpecInvalidError", "cause": cause},
            "last_run": {"execution": name, "outcome": "FAILED"},
        },
    )
    published = len(world.sns.published)
    # When the scan follows it up (twice)
    first = follow_up_failed_remediation("ws-a", world.deps)
    second = follow_up_failed_remediation("ws-a", world.deps)
    # Then the one record says remediation_failed with the cause, and one notification went out
    assert first is not None and second is None
    [record] = world.store.list_drift("ws-a")
    assert record.outcome == "remediation_failed" and record.execution_arn == started.execution_arn
    assert any("SpecInvalidError" in a and cause in a for a in record.actions)
    assert len(world.sns.published) == published + 1
    assert cause in world.sns.published[-1]["Message"] and "FAILED" in world.sns.published[-1]["Message"]


def test_a_failed_run_not_started_by_drift_is_not_followed_up(world: World) -> None:
    world.workspace("ws-a")
    detect_drift(world.event("ev-1"), world.deps)
    world.store.update_observed("ws-a", {"last_run": {"execution": "ws-a-apply-1", "outcome": "FAILED"}})
    assert follow_up_failed_remediation("ws-a", world.deps) is None
    assert [r.outcome for r in world.store.list_drift("ws-a")] == ["remediation_started"]


# --- one record per open drift, and claims that only a condition refuses -------------------------------


def test_an_event_and_the_scans_after_it_in_notify_mode_are_one_record_and_one_notification(
    world: World,
) -> None:
    # Given a workspace in notify mode; when a human turns private DNS off twice and the scan sees it too
    world.workspace("ws-a", mode="notify")
    detect_drift(world.event("ev-1"), world.deps)
    detect_drift(world.event("ev-2"), world.deps)
    scan = DriftRecord(
        event_id="tick-1",
        workspace_key="ws-a",
        source="scan",
        outcome="notified",
        mode="notify",
        findings=[f"workspace endpoint {ENDPOINT} has private DNS off"],
    )
    record_drifts(split_findings(scan), world.deps)
    # Then the drift is one record, seen three times, with the event's who and the scan's finding
    [record] = world.store.list_drift("ws-a")
    assert record.count == 3 and record.actor.endswith(":user/alice") and record.findings == scan.findings
    assert len(world.sns.published) == 1 and world.sfn.status == {}


def test_a_repeat_in_another_mode_updates_the_record_without_a_second_notification(world: World) -> None:
    world.workspace("ws-a")
    world.store.set_pause(True, "alice")
    detect_drift(world.event("ev-1"), world.deps)
    world.store.set_pause(False, "alice")
    world.store.set_drift_override("ws-a", "notify", "test")
    detect_drift(world.event("ev-2"), world.deps)
    [record] = world.store.list_drift("ws-a")
    assert record.outcome == "notified" and record.count == 2 and len(world.sns.published) == 1


class FailingTable:
    """A table whose conditional PutItem fails with one DynamoDB error code."""

    def __init__(self, code: str) -> None:
        self.code = code

    def put_item(self, **kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": self.code, "Message": self.code}}, "PutItem")


def test_only_a_failed_condition_means_the_event_was_claimed_already() -> None:
    assert (
        DriftStore(FailingTable("ConditionalCheckFailedException")).claim_drift_event("ws-a", "e", 1) is False
    )
    with pytest.raises(AwsThrottledError):
        DriftStore(FailingTable("ProvisionedThroughputExceededException")).claim_drift_event("ws-a", "e", 1)
    with pytest.raises(AwsAccessDeniedError):
        DriftStore(FailingTable("AccessDeniedException")).claim_drift_event("ws-a", "e", 1)


def test_a_claim_that_fails_otherwise_surfaces_and_the_event_is_handled_when_retried(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a table that throttles the claim once
    world.workspace("ws-a")
    claim = world.store.claim_drift_event
    throttled = iter([True])

    def throttle_once(key: str, event_id: str, now: int) -> bool:
        if next(throttled, False):
            raise AwsThrottledError("DynamoDB PutItem failed: ThrottlingException")
        return claim(key, event_id, now)

    monkeypatch.setattr(world.store, "claim_drift_event", throttle_once)
    # When the event arrives: the invocation fails (Lambda retries an asynchronous invocation)
    with pytest.raises(AwsThrottledError):
        detect_drift(world.event("ev-1"), world.deps)
    assert world.store.list_drift("ws-a") == [] and world.sfn.status == {}
    # Then the retry handles it: not dropped as a duplicate
    [outcome] = detect_drift(world.event("ev-1"), world.deps).workspaces
    assert outcome.outcome == "remediation_started" and len(world.store.list_drift("ws-a")) == 1


def test_a_notification_that_could_not_be_published_goes_out_with_the_next_sighting(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a workspace in notify mode and SNS down when its drift is first seen
    world.workspace("ws-a", mode="notify")
    publish = world.sns.publish

    def down(**kwargs: str) -> None:
        raise AwsUnavailableError("SNS Publish: AWS could not be reached")

    monkeypatch.setattr(world.sns, "publish", down)
    with pytest.raises(AwsUnavailableError):
        detect_drift(world.event("ev-1"), world.deps)
    [record] = world.store.list_drift("ws-a")
    assert not record.notified
    # When SNS is back and the drift is seen again, then it is notified, once
    monkeypatch.setattr(world.sns, "publish", publish)
    detect_drift(world.event("ev-2"), world.deps)
    detect_drift(world.event("ev-3"), world.deps)
    [record] = world.store.list_drift("ws-a")
    assert record.notified and record.count == 3 and len(world.sns.published) == 1


def test_two_findings_of_one_scan_on_the_events_resource_are_one_sighting(world: World) -> None:
    world.workspace("ws-a", mode="notify")
    detect_drift(world.event("ev-1"), world.deps)
    scan = DriftRecord(
        event_id="tick-1",
        workspace_key="ws-a",
        source="scan",
        outcome="notified",
        mode="notify",
        findings=[
            f"workspace endpoint {ENDPOINT} has private DNS off",
            f"registration of {ENDPOINT} is rejected",
        ],
    )
    record_drifts(split_findings(scan), world.deps)
    [record] = world.store.list_drift("ws-a")
    assert record.count == 2 and record.findings == scan.findings


def test_an_event_whose_record_could_not_be_written_is_recorded_by_the_retry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a table that throttles the drift record's first write (after the claim and the remediation)
    world.workspace("ws-a")
    open_drift = world.store.open_drift
    throttled = iter([True])

    def throttle_once(record: DriftRecord) -> DriftRecord | None:
        if next(throttled, False):
            raise AwsThrottledError("DynamoDB PutItem failed: ThrottlingException")
        return open_drift(record)

    monkeypatch.setattr(world.store, "open_drift", throttle_once)
    with pytest.raises(AwsThrottledError):
        detect_drift(world.event("ev-1"), world.deps)
    # When Lambda retries the event: it gave its claim back, so it is recorded, joining the run it started
    [outcome] = detect_drift(world.event("ev-1"), world.deps).workspaces
    assert outcome.outcome == "coalesced" and len(world.sfn.status) == 1
    [record] = world.store.list_drift("ws-a")
    assert record.event_id == "ev-1" and record.execution_arn == outcome.execution_arn
