"""Reading an execution another run names: a drift record's repair, a lease's holder.

A record that coalesced onto a remediation another record reserved a moment ago names an execution Step
Functions does not know until the reserving record calls StartExecution: the demo's drift act waits for it
(this once ended the demo) and `drift` lists it as STARTING. A lease holder is taken for ended only when
Step Functions does not know it: a read that fails (throttled, denied) raises, so that no execution takes
the lease of a holder that may still run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from dbx_privatelink.aws.executions import holder_running
from dbx_privatelink.drift.remediation import RESERVATION_GRACE_SECONDS
from dbx_privatelink.drift_store import DriftRecord
from dbx_privatelink.errors import AwsAccessDeniedError, AwsThrottledError, DbxPrivateLinkError
from dbx_privatelink_cli.drift import repair_status
from dbx_privatelink_cli.drift_demo import await_execution

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"
DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
WAITING = json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}})


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
    # An ARN that is not an execution ARN is a bug in the record, not a run about to start: raised as the
    # domain's AWS error, with Step Functions' own refusal as its cause
    with pytest.raises(DbxPrivateLinkError, match="DescribeExecution") as raised:
        await_execution(sfn, "arn:aws:states:us-east-1:123456789012:stateMachine:reconcile", timeout=30)
    cause = raised.value.__cause__
    assert isinstance(cause, ClientError) and cause.response["Error"]["Code"] != "ExecutionDoesNotExist"


def _record(arn: str | None, detected: datetime) -> DriftRecord:
    return DriftRecord(
        event_id="scan-1",
        workspace_key="privatelink-test",
        source="scan",
        detected_at=detected.isoformat(timespec="microseconds"),
        outcome="coalesced",
        execution_arn=arn,
    )


def test_drift_lists_a_reserved_run_as_starting_and_an_unknown_old_one_as_not_found(sfn: Any) -> None:
    arn = _unknown_execution(sfn)
    now = datetime.now(UTC)
    young = _record(arn, now - timedelta(seconds=5))
    old = _record(arn, now - timedelta(seconds=RESERVATION_GRACE_SECONDS + 1))
    assert repair_status(sfn, young, now) == "STARTING"
    assert repair_status(sfn, old, now) == "NOT_FOUND"
    assert repair_status(sfn, _record(None, now), now) == ""


def test_drift_lists_a_started_run_by_its_status_and_a_failed_read_by_its_error(sfn: Any) -> None:
    created = sfn.create_state_machine(name="reconcile", definition=DEFINITION, roleArn=ROLE)
    started = sfn.start_execution(stateMachineArn=created["stateMachineArn"], name="drift-1")
    now = datetime.now(UTC)
    status = repair_status(sfn, _record(started["executionArn"], now), now)
    assert status in ("RUNNING", "SUCCEEDED")
    # A read Step Functions refuses is not taken for a run that is starting: the error is named
    assert repair_status(Refusing(), _record(started["executionArn"], now), now) == (
        "UNKNOWN (AwsAccessDeniedError)"
    )


class Refusing:
    """Step Functions refusing DescribeExecution with `code`."""

    def __init__(self, code: str = "AccessDeniedException") -> None:
        self.code = code

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        error = {"Code": self.code, "Message": f"refused on {executionArn}"}
        raise ClientError({"Error": error}, "DescribeExecution")


def test_a_lease_holder_step_functions_does_not_know_has_ended_and_a_running_one_runs(sfn: Any) -> None:
    # A holder that waits an hour runs, whether moto's interpreter is on in this process (a local stack ran
    # here before) or off (executions stay RUNNING): the status does not change between two reads
    created = sfn.create_state_machine(name="holder", definition=WAITING, roleArn=ROLE)
    running = sfn.start_execution(stateMachineArn=created["stateMachineArn"], name="holder")["executionArn"]
    gone = _unknown_execution(sfn)
    try:
        assert holder_running(sfn, running) is True
    finally:
        sfn.stop_execution(executionArn=running)
    assert holder_running(sfn, gone) is False
    # A holder without an ARN is trusted until its lease expires
    assert holder_running(sfn, "") is True


@pytest.mark.parametrize(
    ("code", "error"),
    [("ThrottlingException", AwsThrottledError), ("AccessDeniedException", AwsAccessDeniedError)],
)
def test_a_lease_holder_that_cannot_be_read_is_not_taken_for_ended(code: str, error: type[Exception]) -> None:
    # The step fails (and is retried) instead of taking the lease from a holder that may still run
    with pytest.raises(error, match="DescribeExecution"):
        holder_running(Refusing(code), "arn:aws:states:us-east-1:123456789012:execution:reconcile:holder")
