"""`apply` against moto: the stack's outputs lead to the state machine, the generation comes from the store,
and --wait follows a real execution (moto's ASL interpreter) to its end and reports it."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from integration.test_cli_stack import REGION, deploy_stack, run_cli
from moto import mock_aws

from dbx_privatelink.spec import parse_spec
from dbx_privatelink.store import StoreClient
from dbx_privatelink_local import sfn

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "examples" / "us-east-1.yaml"
ROLE = "arn:aws:iam::123456789012:role/dbx-privatelink-sfn"
SUMMARY = {
    "endpoints": {"workspace": {"id": "vpce-0f3a9c1d2b4e5f601", "state": "available", "action": "created"}},
    "registrations": {
        "workspace": {"id": "9b1f0c7e", "aws_id": "vpce-0f3a9c1d2b4e5f601", "action": "created"}
    },
    "private_access_settings": {"private_access_settings_id": "6c2e4a8f", "action": "created"},
    "network": {"network_id": "0f8e6d4c", "action": "created", "replaced_network_id": None},
    "workspace": {
        "workspace_id": 1234567890123456,
        "action": "created",
        "deployment_name": "acme",
        "status": "RUNNING",
    },
}


def succeeding_machine() -> dict[str, Any]:
    """Ends like reconcile_workspace.asl.json's Reconciled state: {workspace_key, generation, summary}."""
    return {
        "StartAt": "AcquireLease",
        "States": {
            "AcquireLease": {
                "Type": "Pass",
                "Result": {"acquired": True},
                "ResultPath": "$.lease",
                "Next": "WaitForWorkspaceRunning",
            },
            "WaitForWorkspaceRunning": {"Type": "Wait", "Seconds": 0, "Next": "Reconciled"},
            "Reconciled": {
                "Type": "Pass",
                "Parameters": {"workspace_key.$": "$.workspace_key", "generation": 1, "summary": SUMMARY},
                "End": True,
            },
        },
    }


def failing_machine() -> dict[str, Any]:
    return {
        "StartAt": "ReconcileFailed",
        "States": {
            "ReconcileFailed": {
                "Type": "Fail",
                "Error": "PreflightFailedError",
                "Cause": "Preflight found 1 problem(s); nothing was changed:\n- network.vpc_id: VPC vpc-0a1b2c3d4e5f60718 does not exist in this region",
            }
        },
    }


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # moto's interpreter logs a whole state dump on every Fail state; the history has what matters.
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    sfn.status_last()  # an ended execution shows its output once its status says it ended, as on AWS
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.session.Session(region_name=REGION)


def machine(session: Any, definition: dict[str, Any]) -> str:
    sfn = session.client("stepfunctions", region_name=REGION)
    arn: str = sfn.create_state_machine(
        name="dbx-privatelink-reconcile-workspace", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    return arn


def only_execution(session: Any, state_machine_arn: str) -> dict[str, Any]:
    sfn = session.client("stepfunctions", region_name=REGION)
    executions = sfn.list_executions(stateMachineArn=state_machine_arn)["executions"]
    assert len(executions) == 1
    described: dict[str, Any] = sfn.describe_execution(executionArn=executions[0]["executionArn"])
    return described


def test_apply_starts_one_execution_with_the_spec_and_prints_its_arn(aws: Any) -> None:
    # Given the stack and no earlier apply
    arn = machine(aws, succeeding_machine())
    deploy_stack(aws, state_machine_arn=arn)
    # When the example spec is applied without --wait
    code, out, _err = run_cli(["apply", str(SPEC_PATH)], aws)
    # Then one execution runs, named <key>-g1-<UTC stamp>, with the validated spec as its input
    assert code == 0
    execution = only_execution(aws, arn)
    assert out.strip() == execution["executionArn"]
    assert re.fullmatch(r"acme-analytics-g1-\d{8}T\d{6}Z", execution["name"])
    spec = parse_spec(yaml.safe_load(SPEC_PATH.read_text()))
    assert parse_spec(json.loads(execution["input"])).spec_hash() == spec.spec_hash()


@pytest.mark.parametrize(("same_spec", "generation"), [(True, 4), (False, 5)])
def test_the_generation_follows_the_stored_spec(aws: Any, same_spec: bool, generation: int) -> None:
    # Given generation 4 stored, of this spec or of another one
    arn = machine(aws, succeeding_machine())
    outputs = deploy_stack(aws, state_machine_arn=arn)
    document = yaml.safe_load(SPEC_PATH.read_text())
    stored = document if same_spec else {**document, "drift": {"mode": "notify"}}
    table = aws.resource("dynamodb", region_name=REGION).Table(outputs["TableName"])
    table.put_item(
        Item={
            "pk": "WS#acme-analytics",
            "sk": "DESIRED",
            "spec": parse_spec(stored).canonical_json(),
            "spec_hash": parse_spec(stored).spec_hash(),
            "generation": 4,
        }
    )
    # When it is applied
    code, out, _err = run_cli(["apply", str(SPEC_PATH), "--output", "json"], aws)
    # Then the same spec keeps 4, a changed one gets 5
    assert code == 0
    started = json.loads(out)
    assert started["generation"] == generation
    assert started["status"] == "RUNNING"
    assert f"-g{generation}-" in only_execution(aws, arn)["name"]


def test_apply_wait_follows_to_success_and_reports_the_resources_as_json(aws: Any) -> None:
    arn = machine(aws, succeeding_machine())
    deploy_stack(aws, state_machine_arn=arn)
    code, out, err = run_cli(["apply", str(SPEC_PATH), "--wait", "--output", "json"], aws)
    assert code == 0
    result = json.loads(out)  # stdout holds exactly one JSON object; progress went to stderr
    assert result["status"] == "SUCCEEDED"
    assert result["execution_arn"] == only_execution(aws, arn)["executionArn"]
    assert result["error"] is None and result["cause"] is None
    assert result["resources"]["workspace"]["workspace_id"] == 1234567890123456
    assert result["resources"]["endpoints"]["workspace"]["id"] == "vpce-0f3a9c1d2b4e5f601"
    assert set(result) >= {
        "execution_arn",
        "execution_name",
        "status",
        "error",
        "cause",
        "resources",
        "generation",
    }
    assert "execution SUCCEEDED" in err


def test_apply_wait_on_failure_prints_the_error_and_cause_and_exits_1(aws: Any) -> None:
    # Given a workspace with resources recorded by an earlier run, and an execution that will fail
    arn = machine(aws, failing_machine())
    outputs = deploy_stack(aws, state_machine_arn=arn)
    store = StoreClient(aws.resource("dynamodb", region_name=REGION).Table(outputs["TableName"]))
    store.update_observed("acme-analytics", {"health": "HEALTHY", "resources": SUMMARY})
    # When it is applied with --wait
    code, out, _err = run_cli(["apply", str(SPEC_PATH), "--wait"], aws)
    # Then the error name and the human cause are shown, with the resources as last recorded
    assert code == 1
    assert "FAILED: acme-analytics generation 1" in out
    assert "error: PreflightFailedError" in out
    assert "- network.vpc_id: VPC vpc-0a1b2c3d4e5f60718 does not exist in this region" in out
    assert "resources (as last recorded):" in out
    assert "vpce-0f3a9c1d2b4e5f601" in out
    assert "FAIL  ReconcileFailed" in out


def test_apply_wait_json_on_failure(aws: Any) -> None:
    arn = machine(aws, failing_machine())
    deploy_stack(aws, state_machine_arn=arn)
    code, out, _err = run_cli(["apply", str(SPEC_PATH), "--wait", "--output", "json"], aws)
    assert code == 1
    result = json.loads(out)
    assert result["status"] == "FAILED"
    assert result["error"] == "PreflightFailedError"
    assert result["cause"].startswith("Preflight found 1 problem(s)")
    assert result["resources"] == {}


# --- another execution holds the lease: apply --wait follows it -------------------------------------------

HOLDER_MACHINE = "dbx-privatelink-reconcile-workspace-holder"


def holder_execution(session: Any, ending: dict[str, Any]) -> str:
    """An execution of the workspace that holds its lease (its own machine, so the stack's machine starts
    only the apply's), ending in `ending`; returns its ARN."""
    sfn = session.client("stepfunctions", region_name=REGION)
    definition = {
        "StartAt": "AcquireLease",
        "States": {
            "AcquireLease": {
                "Type": "Pass",
                "Result": {"acquired": True},
                "ResultPath": "$.lease",
                "Next": "End",
            },
            "End": ending,
        },
    }
    arn = sfn.create_state_machine(name=HOLDER_MACHINE, definition=json.dumps(definition), roleArn=ROLE)
    started = sfn.start_execution(stateMachineArn=arn["stateMachineArn"], name="acme-analytics-g1-holder")
    return str(started["executionArn"])


def handing_machine(holder_arn: str, spec_hash: str) -> dict[str, Any]:
    """Ends like reconcile_workspace.asl.json's HandOverToLeaseHolder: the lease was held by `holder_arn`."""
    return {
        "StartAt": "HandOverToLeaseHolder",
        "States": {
            "HandOverToLeaseHolder": {
                "Type": "Pass",
                "Result": {
                    "workspace_key": "acme-analytics",
                    "generation": 2,
                    "handed_to_lease_holder": True,
                    "reason": "execution acme-analytics-g1-holder holds the lease",
                    "spec_hash": spec_hash,
                    "lease_holder": "acme-analytics-g1-holder",
                    "lease_holder_arn": holder_arn,
                },
                "Next": "HandedToLeaseHolder",
            },
            "HandedToLeaseHolder": {"Type": "Succeed"},
        },
    }


def reconciled_ending(spec_hash: str) -> dict[str, Any]:
    return {
        "Type": "Pass",
        "Parameters": {
            "workspace_key": "acme-analytics",
            "generation": 2,
            "spec_hash": spec_hash,
            "summary": SUMMARY,
        },
        "End": True,
    }


def _spec_hash() -> str:
    return parse_spec(yaml.safe_load(SPEC_PATH.read_text())).spec_hash()


def test_apply_wait_under_a_held_lease_follows_the_holder_and_reports_its_outcome(aws: Any) -> None:
    # Given an execution holding the lease whose last pass reconciles the applied spec
    holder = holder_execution(aws, reconciled_ending(_spec_hash()))
    deploy_stack(aws, state_machine_arn=machine(aws, handing_machine(holder, _spec_hash())))
    # When the spec is applied with --wait
    code, out, err = run_cli(["apply", str(SPEC_PATH), "--wait", "--output", "json"], aws)
    # Then the apply says who holds the lease, follows it to its end and reports its outcome
    assert code == 0, err
    assert "execution acme-analytics-g1-holder holds the lease of acme-analytics" in err
    result = json.loads(out)
    assert result["status"] == "SUCCEEDED" and result["spec_applied"] is True
    assert result["lease_holder"] == {"execution_name": "acme-analytics-g1-holder", "execution_arn": holder}
    assert result["resources"]["workspace"]["workspace_id"] == 1234567890123456
    assert result["generation"] == 2


def test_apply_wait_under_a_held_lease_reports_the_holders_failure_on_this_spec(aws: Any) -> None:
    # Given a holder whose pass for the applied spec fails in preflight (the store has the rejection)
    holder = holder_execution(
        aws, {"Type": "Fail", "Error": "PreflightFailedError", "Cause": "Preflight found 1 problem(s)"}
    )
    outputs = deploy_stack(aws, state_machine_arn=machine(aws, handing_machine(holder, _spec_hash())))
    store = StoreClient(aws.resource("dynamodb", region_name=REGION).Table(outputs["TableName"]))
    spec = parse_spec(yaml.safe_load(SPEC_PATH.read_text()))
    store.put_pending(spec, "acme-analytics-g1-mine")
    store.reject_pending(
        spec.workspace_key, spec.spec_hash(), "PreflightFailedError", "Preflight found 1 problem(s)"
    )
    store._t.update_item(  # the holder's rerun rejected it
        Key={"pk": "WS#acme-analytics", "sk": "PENDING"},
        UpdateExpression="SET execution_name = :n",
        ExpressionAttributeValues={":n": "acme-analytics-g1-holder"},
    )
    # When the spec is applied with --wait
    code, out, _err = run_cli(["apply", str(SPEC_PATH), "--wait"], aws)
    # Then the holder's failure is the apply's outcome (not SUCCEEDED), exit 1
    assert code == 1
    assert "following it" in out
    assert "FAILED: acme-analytics" in out and "error: PreflightFailedError" in out
    assert "reconciled by acme-analytics-g1-holder" in out
    assert f"lease holder: {holder}" in out


def test_apply_wait_under_a_held_lease_says_when_the_holder_did_not_reconcile_this_spec(aws: Any) -> None:
    # Given a holder that ends having reconciled another spec (it could not run again for this one)
    holder = holder_execution(aws, reconciled_ending("another-spec-hash"))
    deploy_stack(aws, state_machine_arn=machine(aws, handing_machine(holder, _spec_hash())))
    # When the spec is applied with --wait
    code, out, _err = run_cli(["apply", str(SPEC_PATH), "--wait", "--output", "json"], aws)
    # Then the apply does not claim success: the spec was not applied, and why
    assert code == 1
    result = json.loads(out)
    assert result["status"] == "NOT_APPLIED" and result["spec_applied"] is False
    assert result["error"] == "SpecNotAppliedError"
    assert "acme-analytics-g1-holder ended SUCCEEDED without reconciling this spec" in result["cause"]
