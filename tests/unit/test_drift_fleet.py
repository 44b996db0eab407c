"""The fleet scan's decisions: the order (least recently scanned first, busy ones left out), the plan of a
tick (budget, concurrency, no overlap with a running tick), and one workspace's scan (budget, marker,
response), against an in-memory table (moto, in process) and fakes of Step Functions, SNS and the scan."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from dbx_privatelink.drift import fleet, tick
from dbx_privatelink.drift.fleet import brief_findings, scan_and_respond
from dbx_privatelink.drift.models import ScanDriftOutput, ScanPlan, ScanPlanInput
from dbx_privatelink.drift.outcomes import FAILED, NOT_REACHED, ScanWorkspaceInput, WorkspaceOutcome
from dbx_privatelink.drift.records import close_repaired, record_drifts, split_findings
from dbx_privatelink.drift.remediation import execution_arn
from dbx_privatelink.drift.scan import ScanResult
from dbx_privatelink.drift.tick import (
    MAX_WORKSPACES_PER_TICK,
    SCAN_TAIL_SECONDS,
    budget_seconds,
    plan_scan,
    scan_order,
)
from dbx_privatelink.drift_store import DriftRecord, DriftStore, ScanCandidate, scanned_stamp
from dbx_privatelink.errors import SpecInvalidError
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.store import RunRecord
from dbx_privatelink.wiring import Deps, Settings

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
RECONCILE = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:dbx-privatelink-reconcile-workspace"
SCAN = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:dbx-privatelink-scan-fleet"
T0 = 1_800_000_000.0


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


class FakeStepFunctions:
    """The reconcile executions remediations start, and the scan executions ListExecutions finds."""

    def __init__(self) -> None:
        self.started: dict[str, str] = {}
        self.scans: list[dict[str, Any]] = []  # {"executionArn", "name", "startDate"}, all RUNNING

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
        arn = execution_arn(stateMachineArn, name)
        self.started[arn] = input
        return {"executionArn": arn}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return {"status": "SUCCEEDED"}

    def list_executions(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["stateMachineArn"] == SCAN and kwargs["statusFilter"] == "RUNNING"
        # Two per page, to go through the pagination.
        start = int(kwargs.get("nextToken", "0"))
        page: dict[str, Any] = {"executions": self.scans[start : start + 2]}
        if start + 2 < len(self.scans):
            page["nextToken"] = str(start + 2)
        return page

    def running_scan(self, name: str, started: float) -> str:
        arn = execution_arn(SCAN, name)
        self.scans.append(
            {"executionArn": arn, "name": name, "startDate": datetime.fromtimestamp(started, UTC)}
        )
        return arn


class FakeSns:
    def __init__(self) -> None:
        self.published: list[dict[str, str]] = []

    def publish(self, **kwargs: str) -> None:
        self.published.append(kwargs)


class FakeScan:
    """The read-only comparison of one workspace: what each workspace looks like, and who was scanned."""

    def __init__(self) -> None:
        self.findings: dict[str, list[str]] = {}
        self.broken: set[str] = set()
        self.scanned: list[str] = []

    def __call__(self, key: str, deps: Deps) -> ScanResult:
        self.scanned.append(key)
        if key in self.broken:
            raise SpecInvalidError(f"{key}: the stored spec no longer validates")
        return ScanResult(key, findings=list(self.findings.get(key, [])))


class World:
    def __init__(self, table: Any) -> None:
        self.now = T0
        self.sfn, self.sns, self.scan = FakeStepFunctions(), FakeSns(), FakeScan()
        settings = Settings(
            region="us-east-1",
            owner_tag="dbx-privatelink",
            table_name="t",
            state_machine_arn=RECONCILE,
            topic_arn=f"arn:aws:sns:us-east-1:{ACCOUNT}:drift",
            max_remediations_per_hour=3,
        )
        self.deps = Deps(settings=settings, clock=lambda: self.now)
        self.store = DriftStore(table)
        self.deps.__dict__.update(drift_store=self.store, store=self.store, sfn=self.sfn, sns=self.sns)
        self._ticks = 0

    def workspaces(self, *keys: str, mode: str = "remediate") -> None:
        for key in keys:
            self.store.put_desired(parse_spec(spec(key, mode)))

    def scan_once(self, key: str) -> WorkspaceOutcome:
        """A tick of one workspace, ten minutes after the previous one."""
        plan = self.plan()
        outcome = scan_and_respond(self.item(plan, 0), self.deps, scan=self.scan)
        self.sfn.scans.clear()
        self.now += 600
        return outcome

    def plan(self, **request: Any) -> ScanPlan:
        """The plan of a tick starting now (its execution RUNNING, as ListExecutions would show it)."""
        self._ticks += 1
        name = f"tick-{self._ticks:03d}"
        arn = self.sfn.running_scan(name, self.now)
        return plan_scan(
            ScanPlanInput(
                scan_id=name,
                execution_arn=arn,
                started_at=datetime.fromtimestamp(self.now, UTC),
                scan_rate_minutes=10,
                max_concurrency=2,
                request=request,
            ),
            self.deps,
        )

    def item(self, plan: ScanPlan, index: int) -> ScanWorkspaceInput:
        return ScanWorkspaceInput(
            workspace_key=plan.workspaces[index].workspace_key,
            index=index,
            scan_id=plan.scan_id,
            scan_time=plan.started_at,
            deadline=plan.deadline,  # type: ignore[arg-type]
            max_concurrency=plan.max_concurrency,
        )

    def tick(self, *, seconds_per_workspace: float = 1.0, **request: Any) -> list[WorkspaceOutcome]:
        """One whole tick, its items one after another (concurrency changes when, not whether, the budget
        is spent), each taking `seconds_per_workspace`; the tick's execution ends with it."""
        plan = self.plan(**request)
        outcomes = []
        for index in range(len(plan.workspaces)):
            outcome = scan_and_respond(self.item(plan, index), self.deps, scan=self.scan)
            outcomes.append(outcome)
            if outcome.outcome != NOT_REACHED:
                self.now += seconds_per_workspace
        self.sfn.scans.clear()
        self.now += 600
        return outcomes


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
        monkeypatch.setattr("dbx_privatelink.drift.remediation._repair_prerequisites", lambda deps, doc: [])
        yield World(table)


# --- the order -------------------------------------------------------------------------------------------


def test_never_scanned_first_then_least_recently_scanned_ties_by_key() -> None:
    candidates = [
        ScanCandidate(workspace_key="c", last_scanned_at=scanned_stamp(T0 - 10)),
        ScanCandidate(workspace_key="b", last_scanned_at=scanned_stamp(T0 - 300)),
        ScanCandidate(workspace_key="z"),
        ScanCandidate(workspace_key="a", last_scanned_at=scanned_stamp(T0 - 10)),
        ScanCandidate(workspace_key="y"),
    ]
    planned, busy, deferred = scan_order(candidates, T0)
    assert [c.workspace_key for c in planned] == ["y", "z", "b", "a", "c"]
    assert (busy, deferred) == ([], 0)


def test_workspaces_being_reconciled_are_left_out_and_an_expired_lease_is_not_busy() -> None:
    candidates = [
        ScanCandidate(workspace_key="held", lease_expires_at=int(T0) + 3600),
        ScanCandidate(workspace_key="expired", lease_expires_at=int(T0) - 1),
        ScanCandidate(workspace_key="free"),
    ]
    planned, busy, _ = scan_order(candidates, T0)
    assert [c.workspace_key for c in planned] == ["expired", "free"]
    assert busy == ["held"]


def test_past_the_per_tick_cap_the_rest_waits_first_in_line() -> None:
    candidates = [ScanCandidate(workspace_key=f"ws-{n:04d}") for n in range(MAX_WORKSPACES_PER_TICK + 7)]
    planned, _, deferred = scan_order(candidates, T0)
    assert len(planned) == MAX_WORKSPACES_PER_TICK and deferred == 7
    assert planned[-1].workspace_key == f"ws-{MAX_WORKSPACES_PER_TICK - 1:04d}"


def test_the_stamp_orders_as_text_the_way_it_orders_in_time() -> None:
    moments = [T0 - 86400 * 400, T0 - 1.5, T0 - 0.001, T0, T0 + 0.01, T0 + 9999]
    assert sorted(scanned_stamp(m) for m in moments) == [scanned_stamp(m) for m in moments]


# --- the plan --------------------------------------------------------------------------------------------


def test_the_plan_lists_the_table_in_scan_order_with_the_budget_and_concurrency(world: World) -> None:
    # Given three workspaces: one scanned long ago, one scanned recently, one never; and a fourth reconciling
    world.workspaces("ws-old", "ws-new", "ws-never", "ws-busy")
    world.store.mark_scanned("ws-old", T0 - 3000, "earlier")
    world.store.mark_scanned("ws-new", T0 - 60, "earlier")
    assert world.store.acquire_lease("ws-busy", "exec-1", "arn:exec-1", int(T0)).acquired
    # When a tick plans
    plan = world.plan()
    # Then never scanned comes first, then the oldest; the busy one is left out and counted
    assert [w.workspace_key for w in plan.workspaces] == ["ws-never", "ws-old", "ws-new"]
    assert plan.workspaces[1].last_scanned_at == scanned_stamp(T0 - 3000)
    assert (plan.busy, plan.busy_count, plan.deferred, plan.skipped) == (["ws-busy"], 1, 0, "")
    # And the budget is the interval less the tail the last items may take
    assert plan.budget_seconds == budget_seconds(10) == 600 - SCAN_TAIL_SECONDS
    started = datetime.fromtimestamp(T0, UTC)
    assert plan.deadline == (started + timedelta(seconds=plan.budget_seconds)).isoformat(
        timespec="milliseconds"
    )
    assert plan.max_concurrency == 2


def test_a_manual_start_overrides_budget_and_concurrency_and_a_schedule_event_does_not(world: World) -> None:
    world.workspaces("ws-a")
    scheduled = {"id": "e1", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    assert (world.plan(**scheduled).budget_seconds, world.plan(**scheduled).max_concurrency) == (540, 2)
    world.sfn.scans.clear()
    plan = world.plan(budget_seconds=0, max_concurrency=1)
    assert (plan.budget_seconds, plan.max_concurrency, plan.deadline) == (0, 1, plan.started_at)


def test_a_budget_shorter_than_the_tail_is_zero_and_the_first_wave_still_runs() -> None:
    assert budget_seconds(1) == 0
    assert budget_seconds(2) == 60
    assert budget_seconds(1440) == 1440 * 60 - SCAN_TAIL_SECONDS


def test_a_tick_scans_nothing_while_an_earlier_tick_still_runs(world: World) -> None:
    # Given a tick that started a minute ago and still runs (among others that started later)
    world.workspaces("ws-a")
    world.sfn.running_scan("slow-tick", T0 - 60)
    world.sfn.running_scan("zz-later", T0 + 5)
    world.sfn.running_scan("yy-later", T0 + 6)
    # When the next tick plans
    plan = world.plan()
    # Then it leaves the fleet to the running one
    assert plan.workspaces == [] and "slow-tick is still running" in plan.skipped
    # And the slow tick, planning at its own start, is not held back by the later ones
    world.sfn.scans = [s for s in world.sfn.scans if s["name"] != "slow-tick"]
    world.now = T0 - 60
    assert world.plan().skipped == ""


def test_of_two_ticks_started_in_the_same_instant_exactly_one_scans(world: World) -> None:
    world.workspaces("ws-a")
    world.sfn.running_scan("aaa", T0)
    plan = world.plan()  # named tick-001, started at T0 too: "aaa" sorts first
    assert plan.skipped and plan.workspaces == []
    world.sfn.scans.clear()
    world.sfn.running_scan("zzz", T0)
    assert world.plan().skipped == ""  # tick-002 sorts before zzz


# --- one workspace ---------------------------------------------------------------------------------------


def test_a_workspace_in_sync_is_marked_scanned(world: World) -> None:
    world.workspaces("ws-a")
    plan = world.plan()
    outcome = scan_and_respond(world.item(plan, 0), world.deps, scan=world.scan)
    assert outcome == WorkspaceOutcome(workspace_key="ws-a", outcome="in sync")
    assert world.store.get_scanned("ws-a") == scanned_stamp(T0)


def test_a_drifted_workspace_is_recorded_and_remediated_with_its_findings_in_brief(world: World) -> None:
    world.workspaces("ws-a")
    world.scan.findings["ws-a"] = [f"finding {n}: " + "x" * 300 for n in range(5)]
    plan = world.plan()
    outcome = scan_and_respond(world.item(plan, 0), world.deps, scan=world.scan)
    assert outcome.outcome == "remediation_started" and outcome.mode == "remediate"
    assert outcome.execution_arn in world.sfn.started
    assert outcome.findings == brief_findings(world.scan.findings["ws-a"])
    assert len(outcome.findings) == 4 and outcome.findings[-1] == "(+2 more in the drift record)"
    # Five findings of five kinds are five drifts: a record each, keeping its finding whole
    records = world.store.list_drift("ws-a")
    assert sorted(f for r in records for f in r.findings) == world.scan.findings["ws-a"]
    assert all(len(r.findings) == 1 and r.execution_arn == outcome.execution_arn for r in records)
    assert all(
        r.source == "scan" and r.event_id == plan.scan_id and r.event_time == plan.started_at for r in records
    )
    # A retry of the same item (its Lambda failed after recording) records nothing twice
    again = scan_and_respond(world.item(plan, 0), world.deps, scan=world.scan)
    assert again.outcome == "duplicate" and len(world.store.list_drift("ws-a")) == 5
    assert len(world.sfn.started) == 1


def test_past_the_deadline_an_item_after_the_first_wave_is_not_reached_and_keeps_its_place(
    world: World,
) -> None:
    world.workspaces("ws-a", "ws-b", "ws-c")
    plan = world.plan(budget_seconds=30)
    world.now = T0 + 30  # the deadline
    first_wave = [scan_and_respond(world.item(plan, i), world.deps, scan=world.scan) for i in (0, 1)]
    late = scan_and_respond(world.item(plan, 2), world.deps, scan=world.scan)
    assert [o.outcome for o in first_wave] == ["in sync", "in sync"]
    assert late == WorkspaceOutcome(workspace_key="ws-c", outcome=NOT_REACHED)
    assert world.scan.scanned == ["ws-a", "ws-b"] and world.store.get_scanned("ws-c") is None
    # Just before the deadline it would have been scanned
    world.now = T0 + 29.9
    assert scan_and_respond(world.item(plan, 2), world.deps, scan=world.scan).outcome == "in sync"


def test_a_workspace_whose_scan_fails_raises_for_its_item_and_goes_to_the_back_of_the_line(
    world: World,
) -> None:
    world.workspaces("ws-a", "ws-b")
    world.scan.broken.add("ws-a")
    plan = world.plan()
    with pytest.raises(SpecInvalidError):
        scan_and_respond(world.item(plan, 0), world.deps, scan=world.scan)
    assert scan_and_respond(world.item(plan, 1), world.deps, scan=world.scan).outcome == "in sync"
    world.now += 600
    world.sfn.scans.clear()
    assert [w.workspace_key for w in world.plan().workspaces] == ["ws-a", "ws-b"]  # marked before it failed


# --- over successive ticks -------------------------------------------------------------------------------


def test_successive_ticks_that_reach_only_a_few_still_reach_every_workspace_in_turn(world: World) -> None:
    # Given five workspaces and ticks whose budget is spent at once: only the first wave (2) is scanned
    keys = [f"ws-{n}" for n in range(5)]
    world.workspaces(*keys)
    reached: list[list[str]] = []
    for _ in range(4):
        outcomes = world.tick(budget_seconds=0)
        assert len(outcomes) == 5
        reached.append([o.workspace_key for o in outcomes if o.outcome != NOT_REACHED])
    # Then each tick takes up where the last one stopped, and no workspace waits more than three ticks
    assert reached == [["ws-0", "ws-1"], ["ws-2", "ws-3"], ["ws-4", "ws-0"], ["ws-1", "ws-2"]]
    assert {k for tick in reached[:3] for k in tick} == set(keys)


def test_a_workspace_that_always_fails_does_not_hold_the_front_of_the_line(world: World) -> None:
    world.workspaces("ws-0", "ws-1", "ws-2")
    world.scan.broken.add("ws-0")
    seen: list[str] = []
    for _ in range(3):
        plan = world.plan(budget_seconds=0, max_concurrency=1)
        item = world.item(plan, 0)
        with contextlib.suppress(SpecInvalidError):
            scan_and_respond(item, world.deps, scan=world.scan)
        seen.append(item.workspace_key)
        world.sfn.scans.clear()
        world.now += 600
    assert seen == ["ws-0", "ws-1", "ws-2"]


# --- the contract with the ASL and the template ---------------------------------------------------------


def _scan_asl() -> dict[str, Any]:
    return dict(json.loads((ROOT / "statemachine" / "scan_fleet.asl.json").read_text()))


def test_the_asl_reports_a_failed_item_with_the_outcome_the_model_counts() -> None:
    processor = _scan_asl()["States"]["ScanWorkspaces"]["ItemProcessor"]["States"]
    assert processor["ReportScanFailure"]["Parameters"]["outcome"] == FAILED
    output = ScanDriftOutput(
        scan_id="s",
        started_at="t",
        workspaces=[
            WorkspaceOutcome(workspace_key="a", outcome=FAILED, error="SpecInvalidError"),
            WorkspaceOutcome(workspace_key="b", outcome=NOT_REACHED),
            WorkspaceOutcome(workspace_key="c", outcome="remediation_started", findings=["x"]),
            WorkspaceOutcome(workspace_key="d", outcome="in sync"),
        ],
    )
    assert [w.workspace_key for w in output.failed] == ["a"] and output.not_reached == ["b"]
    assert [w.workspace_key for w in output.reached] == ["c", "d"]
    assert [w.workspace_key for w in output.drifted] == ["c"]


def test_the_tail_is_the_scan_functions_timeout() -> None:
    template = yaml.safe_load((ROOT / "template.yaml").read_text())  # long-form intrinsics: plain YAML
    assert template["Resources"]["ScanWorkspaceFunction"]["Properties"]["Timeout"] == SCAN_TAIL_SECONDS


def test_a_tick_at_the_cap_stays_under_the_state_payload_limit_even_when_everything_drifted() -> None:
    """Step Functions refuses a state over 256 KB: the plan and every outcome at their longest."""
    key = "w" + "x" * 39
    plan = ScanPlan(
        scan_id="x" * 80,
        started_at=scanned_stamp(T0),
        deadline=scanned_stamp(T0),
        budget_seconds=86400,
        max_concurrency=40,
        workspaces=[{"workspace_key": key, "last_scanned_at": scanned_stamp(T0)}] * MAX_WORKSPACES_PER_TICK,  # type: ignore[list-item]
        busy=[key] * tick.BUSY_LISTED,
        busy_count=10_000,
        deferred=10_000,
        skipped="",
    )
    outcome = WorkspaceOutcome(
        workspace_key=key,
        outcome="x" * fleet.MAX_OUTCOME_CHARS,
        mode="remediate",
        execution_arn=execution_arn(RECONCILE, "drift-" + "x" * 74),
        findings=brief_findings(["y" * 1000] * 50),
        error="DatabricksAlreadyExistsError",
    )
    state = {
        "request": {"id": "x" * 36, "detail-type": "Scheduled Event", "resources": ["x" * 120], "detail": {}},
        "plan": plan.model_dump(mode="json"),
        "outcomes": [outcome.model_dump(mode="json")] * MAX_WORKSPACES_PER_TICK,
    }
    assert len(json.dumps(state).encode()) < 256 * 1024


# --- drift records tell the truth once --------------------------------------------------------------

DNS_OFF = "workspace endpoint vpce-0a1b2c3d4e5f60718 has private DNS off"
RULE_GONE = "endpoint security group sg-0a1b2c3d4e5f60712 lacks ingress TCP 443 from 10.0.0.0/16"


@pytest.mark.parametrize("paused", [False, True], ids=["notify mode", "paused"])
def test_an_open_drift_seen_by_every_scan_is_one_record_and_one_notification(
    world: World, paused: bool
) -> None:
    # Given a workspace in notify mode (or remediation paused) whose workspace endpoint has private DNS off
    world.workspaces("ws-a", mode="remediate" if paused else "notify")
    world.store.set_pause(paused, "alice")
    world.scan.findings["ws-a"] = [DNS_OFF]
    # When the scan finds it tick after tick
    outcomes = [world.scan_once("ws-a").outcome for _ in range(4)]
    # Then one record counts the four sightings, and one notification went out
    assert outcomes == ["paused" if paused else "notified"] * 4
    [record] = world.store.list_drift("ws-a")
    assert record.count == 4 and record.is_open and record.last_seen_at > record.detected_at
    assert record.notified and len(world.sns.published) == 1
    assert DNS_OFF in world.sns.published[0]["Message"]
    assert world.sfn.started == {}
    # When a second thing drifts: one more record and one more notification, for it alone
    world.scan.findings["ws-a"] = [DNS_OFF, RULE_GONE]
    world.scan_once("ws-a")
    world.scan_once("ws-a")
    counts = {r.findings[0]: r.count for r in world.store.list_drift("ws-a")}
    assert counts == {DNS_OFF: 6, RULE_GONE: 2}
    assert len(world.sns.published) == 2 and RULE_GONE in world.sns.published[1]["Message"]
    assert DNS_OFF not in world.sns.published[1]["Message"]
    # When someone puts both back by hand: the next scan closes them, resolved, and says nothing
    world.scan.findings["ws-a"] = []
    assert world.scan_once("ws-a").outcome == "in sync"
    records = world.store.list_drift("ws-a")
    assert {(r.outcome, r.is_open) for r in records} == {("resolved", False)} and len(records) == 2
    assert len(world.sns.published) == 2
    # And the same drift again later is a new drift: a new record, a new notification
    world.scan.findings["ws-a"] = [DNS_OFF]
    world.scan_once("ws-a")
    assert [r.is_open for r in world.store.list_drift("ws-a")] == [True, False, False]
    assert len(world.sns.published) == 3


def test_a_finding_whose_state_or_message_changes_is_still_the_same_drift(world: World) -> None:
    world.workspaces("ws-a", mode="notify")
    network = "network 0f5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5c"
    world.scan.findings["ws-a"] = [f"{network} is WARNED: subnet in use"]
    world.scan_once("ws-a")
    world.scan.findings["ws-a"] = [f"{network} is BROKEN: security group sg-0a1b2c3d4e5f60711 is gone"]
    world.scan_once("ws-a")
    [record] = world.store.list_drift("ws-a")
    assert record.count == 2 and "BROKEN" in record.findings[0] and len(world.sns.published) == 1


def test_a_repair_run_that_succeeded_and_a_healthy_scan_make_the_record_repaired(world: World) -> None:
    # Given a scan that found a drift and started a repair
    world.workspaces("ws-a")
    world.scan.findings["ws-a"] = [DNS_OFF]
    started = world.scan_once("ws-a")
    assert started.outcome == "remediation_started"
    [record] = world.store.list_drift("ws-a")
    # When the repair run SUCCEEDED (RecordAndRelease wrote its run) and the next scan finds it healthy
    world.store.add_run(
        "ws-a", RunRecord(execution_name=str(record.execution_name), outcome="SUCCEEDED", summary={})
    )
    world.scan.findings["ws-a"] = []
    world.scan_once("ws-a")
    # Then the record is closed repaired, and nothing more was notified
    [closed] = world.store.list_drift("ws-a")
    assert closed.outcome == "repaired" and not closed.is_open
    assert closed.execution_arn == started.execution_arn and len(world.sns.published) == 1


def test_a_successful_run_closes_the_drifts_it_was_started_for_as_repaired(world: World) -> None:
    # Given a drift the scan started a repair run for
    world.workspaces("ws-a")
    world.scan.findings["ws-a"] = [DNS_OFF]
    world.scan_once("ws-a")
    [record] = world.store.list_drift("ws-a")
    # When RecordAndRelease of that run closes what it repaired
    closed = close_repaired("ws-a", str(record.execution_name), str(record.execution_arn), world.store)
    # Then the record is repaired at once, before any scan
    assert closed == [record.fingerprint]
    [repaired] = world.store.list_drift("ws-a")
    assert repaired.outcome == "repaired" and repaired.closed_at
    assert close_repaired("ws-a", "ws-a-apply-7", "", world.store) == []


def test_a_scan_that_could_not_read_a_side_closes_nothing(world: World) -> None:
    world.workspaces("ws-a", mode="notify")
    world.scan.findings["ws-a"] = [DNS_OFF]
    world.scan_once("ws-a")
    # When the next scan sees another drift but could not read Databricks
    world.scan.findings["ws-a"] = [RULE_GONE, "could not check: DatabricksUnavailableError: 503"]
    world.scan_once("ws-a")
    # Then the first drift stays open: that scan cannot tell that it is gone
    assert sorted((r.findings[0], r.is_open) for r in world.store.list_drift("ws-a")) == [
        (RULE_GONE, True),
        (DNS_OFF, True),
    ]


def test_two_scans_of_one_workspace_at_once_make_one_record(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two scans that both read "no open drift" before either wrote (two ticks, a retried item)
    world.workspaces("ws-a", mode="notify")
    first = DriftRecord(event_id="tick-a", workspace_key="ws-a", source="scan", findings=[DNS_OFF])
    second = first.model_copy(update={"event_id": "tick-b", "detected_at": "2027-01-15T08:00:01+00:00"})
    first.outcome = second.outcome = "notified"
    read, reads = world.store.list_open_drift, []

    def first_read_stale(key: str) -> list[DriftRecord]:
        reads.append(key)
        return [] if len(reads) == 2 else read(key)  # the second scan's first read: before the first wrote

    monkeypatch.setattr(world.store, "list_open_drift", first_read_stale)
    # When both record it
    record_drifts(split_findings(first), world.deps)
    record_drifts(split_findings(second), world.deps)
    # Then the conditional write lets one open it and the other counts it
    assert len(reads) >= 3, "the second scan read again after its write was refused"
    [record] = world.store.list_drift("ws-a")
    assert record.count == 2 and len(world.sns.published) == 1
