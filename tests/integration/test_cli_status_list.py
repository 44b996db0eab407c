"""`status` without WORKSPACE: every workspace of the stack from the store (a table shaped as template.yaml's,
on moto), health as recorded, RUNNING while a running execution holds the lease, the drift mode."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml
from integration.test_cli_stack import (  # noqa: F401 (aws is a fixture)
    REGION,
    AwsCalls,
    aws,
    deploy_stack,
    run_cli,
)

from dbx_privatelink.drift_store import DriftStore
from dbx_privatelink.spec import parse_spec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "us-east-1.yaml"
ROLE = "arn:aws:iam::123456789012:role/dbx-privatelink-sfn"


def _store(session: Any) -> DriftStore:
    outputs = deploy_stack(session)
    return DriftStore(session.resource("dynamodb", region_name=REGION).Table(outputs["TableName"]))


def _desired(store: DriftStore, key: str, *, drift_mode: str = "remediate") -> None:
    document = yaml.safe_load(EXAMPLE.read_text())
    document.update(workspace_key=key, drift={"mode": drift_mode})
    store.put_desired(parse_spec(document))


def _observed(store: DriftStore, key: str, health: str, **extra: Any) -> None:
    outcome = "FAILED" if health == "FAILED" else "SUCCEEDED"
    store.update_observed(
        key,
        {
            "generation": 1,
            "health": health,
            "last_run": {
                "execution": f"{key}-g1-20261121T200102Z",
                "outcome": outcome,
                "ended_at": "2026-11-21T20:03:00+00:00",
            },
            **extra,
        },
    )


def _execution(session: Any, name: str) -> str:
    """An execution moto keeps RUNNING (it does not interpret the machine here) until it is stopped."""
    sfn = session.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(
        name=f"m-{name}",
        definition=json.dumps(
            {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}
        ),
        roleArn=ROLE,
    )["stateMachineArn"]
    return str(sfn.start_execution(stateMachineArn=machine, name=name)["executionArn"])


def _hold_lease(store: DriftStore, key: str, holder: str, holder_arn: str) -> None:
    assert store.acquire_lease(key, holder, holder_arn, int(time.time())).acquired


def test_no_workspaces_is_a_clear_message_and_exit_0(aws: Any) -> None:  # noqa: F811
    _store(aws)
    code, out, _err = run_cli(["status"], aws)
    assert code == 0
    assert out.startswith("No workspaces in stack dbx-privatelink (us-east-1) yet: apply a spec first")
    code, out, _err = run_cli(["status", "--output", "json"], aws)
    assert (code, json.loads(out)) == (0, [])


def test_every_workspace_healthy_exits_0_with_a_line_each(aws: Any) -> None:  # noqa: F811
    # Given two reconciled workspaces, one of them in notify mode
    store = _store(aws)
    for key, mode in (("acme-eu", "remediate"), ("acme-us", "notify")):
        _desired(store, key, drift_mode=mode)
        _observed(store, key, "HEALTHY")
    calls = AwsCalls(aws)
    # When every workspace's status is asked for
    code, out, _err = run_cli(["status"], aws)
    # Then a headline and a line each, exit 0
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Workspaces of stack dbx-privatelink (us-east-1): 2 (2 HEALTHY)"
    assert lines[1].split() == ["WORKSPACE", "HEALTH", "LAST", "RUN", "ENDED", "DRIFT", "NOTE"]
    assert lines[2].split() == ["acme-eu", "HEALTHY", "SUCCEEDED", "2026-11-21T20:03:00+00:00", "remediate"]
    assert lines[3].split() == ["acme-us", "HEALTHY", "SUCCEEDED", "2026-11-21T20:03:00+00:00", "notify"]
    # ... from the store alone: no live EC2 or Databricks reads, no execution described (no lease held)
    assert {op.split(":")[0] for op in calls.counts} == {"cloudformation", "dynamodb"}


def test_failed_degraded_unknown_and_running_exit_1_each_with_why(aws: Any) -> None:  # noqa: F811
    # Given one workspace of each kind: failed, degraded as recorded, never reconciled, being reconciled
    store = _store(aws)
    for key in ("w-failed", "w-degraded", "w-unknown", "w-running", "w-healthy"):
        _desired(store, key)
    _observed(
        store,
        "w-failed",
        "FAILED",
        last_error={
            "error": "PreflightFailedError",
            "cause": "Preflight found 1 problem(s)\n- network.vpc_id",
        },
    )
    _observed(store, "w-degraded", "DEGRADED")
    _observed(store, "w-running", "HEALTHY")
    _observed(store, "w-healthy", "HEALTHY")
    running = _execution(aws, "w-running-g2-20261122T100000Z")
    _hold_lease(store, "w-running", "w-running-g2-20261122T100000Z", running)
    # When listed as JSON
    code, out, _err = run_cli(["status", "--output", "json"], aws)
    # Then exit 1, and each says what it is and why
    assert code == 1
    rows = {row["workspace_key"]: row for row in json.loads(out)}
    assert [row["workspace_key"] for row in json.loads(out)] == sorted(rows)
    assert {key: row["health"] for key, row in rows.items()} == {
        "w-degraded": "DEGRADED",
        "w-failed": "FAILED",
        "w-healthy": "HEALTHY",
        "w-running": "RUNNING",
        "w-unknown": "UNKNOWN",
    }
    assert rows["w-failed"]["reasons"] == [
        "last run failed: PreflightFailedError: Preflight found 1 problem(s)"
    ]
    assert rows["w-failed"]["last_error"]["error"] == "PreflightFailedError"
    assert rows["w-unknown"]["reasons"][0] == "never reconciled successfully"
    assert rows["w-unknown"]["last_run"] is None
    assert rows["w-running"]["running"] == {
        "execution": "w-running-g2-20261122T100000Z",
        "execution_arn": running,
    }
    assert rows["w-running"]["reasons"] == ["reconciling now: w-running-g2-20261122T100000Z"]
    assert set(rows["w-healthy"]) == {
        "workspace_key",
        "health",
        "reasons",
        "generation",
        "last_run",
        "last_error",
        "running",
        "drift",
        "pending",
    }
    assert rows["w-healthy"]["pending"] is None
    # ... and the text form has the same, a line each, with the first reason as the note
    code, out, _err = run_cli(["status"], aws)
    assert code == 1
    assert "(1 DEGRADED, 1 FAILED, 1 HEALTHY, 1 RUNNING, 1 UNKNOWN)" in out.splitlines()[0]
    line = next(line for line in out.splitlines() if line.split()[:1] == ["w-failed"])
    assert line.split()[1:3] == ["FAILED", "FAILED"]
    assert line.endswith("last run failed: PreflightFailedError: Preflight found 1 problem(s)")
    assert "dbx-privatelink status WORKSPACE checks one workspace live" in out


def test_a_lease_left_by_an_execution_that_ended_is_not_running(aws: Any) -> None:  # noqa: F811
    # Given a healthy workspace whose lease is held by an execution that was stopped before releasing it
    store = _store(aws)
    _desired(store, "acme-eu")
    _observed(store, "acme-eu", "HEALTHY")
    arn = _execution(aws, "acme-eu-g1-20261122T100000Z")
    _hold_lease(store, "acme-eu", "acme-eu-g1-20261122T100000Z", arn)
    aws.client("stepfunctions", region_name=REGION).stop_execution(executionArn=arn)
    # When listed
    code, out, _err = run_cli(["status", "--output", "json"], aws)
    # Then the recorded health stands, and the stale lease is said
    [row] = json.loads(out)
    assert (code, row["health"], row["running"]) == (0, "HEALTHY", None)
    assert row["reasons"] == ["the lease is held by acme-eu-g1-20261122T100000Z, which is ABORTED"]


def test_a_lease_held_by_an_execution_step_functions_does_not_know_is_said_so(aws: Any) -> None:  # noqa: F811
    # Given a healthy workspace whose lease names an execution Step Functions has no record of
    store = _store(aws)
    _desired(store, "acme-eu")
    _observed(store, "acme-eu", "HEALTHY")
    arn = _execution(aws, "acme-eu-g1-20261122T100000Z").replace("acme-eu-g1-", "acme-eu-g0-")
    _hold_lease(store, "acme-eu", "acme-eu-g0-20261122T100000Z", arn)
    # When listed
    code, out, _err = run_cli(["status", "--output", "json"], aws)
    # Then it is not taken for running, and the reason says what Step Functions said
    [row] = json.loads(out)
    assert (code, row["health"], row["running"]) == (0, "HEALTHY", None)
    assert row["reasons"] == [
        "the lease is held by acme-eu-g0-20261122T100000Z, which is unknown to Step Functions (ended)"
    ]


def test_the_drift_column_shows_a_forced_mode_and_the_global_pause(aws: Any) -> None:  # noqa: F811
    # Given a workspace forced to notify after too many remediations, and the stack paused
    store = _store(aws)
    _desired(store, "acme-eu")
    _observed(store, "acme-eu", "HEALTHY")
    store.set_drift_override("acme-eu", "notify", "6 remediations in an hour")
    store.set_pause(True, "ops@example.com", "change freeze")
    # When listed
    code, out, _err = run_cli(["status"], aws)
    # Then the mode says it is forced, and the pause is on the workspace's line and above the table
    assert code == 0
    assert "Drift remediation is PAUSED for the stack by ops@example.com: change freeze" in out
    line = next(line for line in out.splitlines() if line.split()[:1] == ["acme-eu"])
    assert line.endswith("notify (forced), paused")
    code, out, _err = run_cli(["status", "--output", "json"], aws)
    [row] = json.loads(out)
    assert row["drift"]["mode"] == "notify" and row["drift"]["spec_mode"] == "remediate"
    assert row["drift"]["override"]["reason"] == "6 remediations in an hour"
    assert row["drift"]["paused"] is True


def test_a_generation_not_applied_yet_is_noted(aws: Any) -> None:  # noqa: F811
    store = _store(aws)
    _desired(store, "acme-eu")
    _observed(store, "acme-eu", "HEALTHY")
    _desired(store, "acme-eu", drift_mode="notify")  # a changed spec: generation 2, not reconciled
    code, out, _err = run_cli(["status", "--output", "json"], aws)
    [row] = json.loads(out)
    assert code == 0
    assert row["generation"] == {"desired": 2, "applied": 1}
    assert row["reasons"] == ["generation 2 is not applied yet (applied: 1)"]
