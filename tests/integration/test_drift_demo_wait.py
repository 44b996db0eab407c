"""The demo's drift act waits on the repair a drift record names, and that run may not have started yet: a
record that coalesced onto a remediation another record reserved a moment ago names an execution Step
Functions does not know until the reserving record calls StartExecution (this once ended the demo)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from dbx_privatelink_cli.drift_demo import await_execution

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"
DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    with mock_aws():
        yield boto3.client("stepfunctions", region_name=REGION)


class StartedLate:
    """Step Functions as a coalesced record sees it: the execution is unknown for the first looks, then it
    runs, then it has ended."""

    def __init__(self, sfn: Any, arn: str, unknown_for: int, running_for: int, status: str) -> None:
        self.sfn, self.arn, self.status = sfn, arn, status
        self.unknown_for, self.running_for = unknown_for, running_for
        self.looks = 0

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        self.looks += 1
        if self.looks <= self.unknown_for:
            return dict(self.sfn.describe_execution(executionArn=executionArn))  # raises, as AWS does
        running = self.looks <= self.unknown_for + self.running_for
        return {"executionArn": executionArn, "status": "RUNNING" if running else self.status}


def _unknown_execution(sfn: Any) -> str:
    created = sfn.create_state_machine(name="reconcile", definition=DEFINITION, roleArn=ROLE)
    machine = str(created["stateMachineArn"])
    head, _, name = machine.rpartition(":stateMachine:")
    return f"{head}:execution:{name}:drift-privatelink-test-0123456789abcdef"


def test_an_execution_not_started_yet_is_waited_for_until_it_ends(sfn: Any) -> None:
    # Given a drift record naming an execution reserved but not started: unknown for 2 looks, running for 2
    arn = _unknown_execution(sfn)
    late = StartedLate(sfn, arn, unknown_for=2, running_for=2, status="SUCCEEDED")
    # When the demo waits on it
    status = await_execution(late, arn, timeout=30)
    # Then it waited through the unknown and running looks and reports the end
    assert status == "SUCCEEDED"
    assert late.looks == 5


def test_a_failed_repair_is_reported_as_its_status(sfn: Any) -> None:
    arn = _unknown_execution(sfn)
    late = StartedLate(sfn, arn, unknown_for=1, running_for=0, status="FAILED")
    assert await_execution(late, arn, timeout=30) == "FAILED"


def test_an_execution_that_never_starts_is_none_when_the_time_is_up(sfn: Any) -> None:
    arn = _unknown_execution(sfn)
    assert await_execution(sfn, arn, timeout=0.3) is None


def test_other_errors_are_not_taken_for_a_run_not_started(sfn: Any) -> None:
    # An ARN that is not an execution ARN is a bug in the record, not a run about to start
    with pytest.raises(ClientError) as raised:
        await_execution(sfn, "arn:aws:states:us-east-1:123456789012:stateMachine:reconcile", timeout=30)
    assert raised.value.response["Error"]["Code"] != "ExecutionDoesNotExist"
