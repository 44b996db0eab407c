"""EventBridge on the emulated AWS delivers matched events to SQS, Step Functions and Lambda targets,
honours Input, InputPath and InputTransformer, dead-letters what it cannot deliver, and fires schedules."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from integration.local_servers import operator_client

from dbx_privatelink_local.aws import LocalAws, LocalAwsSettings
from dbx_privatelink_local.lambda_runtime import InProcessLambdaRuntime
from dbx_privatelink_local.timescale import TimeScale

REGION = "us-east-1"
ACCOUNT = "123456789012"
# One emulated minute lasts 0.6 s; a failed delivery is retried after 0.3 s.
SETTINGS = LocalAwsSettings(cloudtrail_delay=3600, delivery_max_attempts=3, delivery_retry_interval=30)


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(SETTINGS, time_scale=TimeScale(0.01)) as local:
        yield local


@pytest.fixture(autouse=True)
def clean(aws: LocalAws) -> None:
    aws.reset()


def _client(aws: LocalAws, service: str) -> Any:
    return operator_client(aws, service, REGION)


def _queue(aws: LocalAws, name: str) -> tuple[str, str]:
    sqs = _client(aws, "sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _messages(aws: LocalAws, url: str) -> list[dict[str, Any]]:
    answer = _client(aws, "sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return list(answer.get("Messages", []))


def _put(aws: LocalAws, detail: dict[str, Any], source: str = "dbx.test") -> None:
    entries = _client(aws, "events").put_events(
        Entries=[{"Source": source, "DetailType": "Endpoint Changed", "Detail": json.dumps(detail)}]
    )
    assert entries["FailedEntryCount"] == 0


def _rule(aws: LocalAws, name: str, targets: list[dict[str, Any]], **rule: Any) -> None:
    events = _client(aws, "events")
    if "ScheduleExpression" not in rule:
        rule.setdefault("EventPattern", json.dumps({"source": ["dbx.test"]}))
    events.put_rule(Name=name, **rule)
    events.put_targets(Rule=name, Targets=targets)


def test_sqs_target_gets_the_event_as_eventbridge_sends_it(aws: LocalAws) -> None:
    url, arn = _queue(aws, "plain")
    _rule(aws, "to-sqs", [{"Id": "q", "Arn": arn}])

    _put(aws, {"endpoint": "vpce-1"})

    assert aws.eventbridge.wait_for(1, timeout=10, rule_name="to-sqs", outcome="ok")
    [message] = _messages(aws, url)
    body = json.loads(message["Body"])
    assert (body["source"], body["detail-type"], body["detail"]) == (
        "dbx.test",
        "Endpoint Changed",
        {"endpoint": "vpce-1"},
    )
    assert (body["account"], body["region"]) == (ACCOUNT, REGION)


def test_input_transformer_fills_the_template(aws: LocalAws) -> None:
    url, arn = _queue(aws, "transformed")
    transformer = {
        "InputPathsMap": {"endpoint": "$.detail.endpoint", "ports": "$.detail.ports"},
        "InputTemplate": '{"id": <endpoint>, "ports": <ports>, "text": "endpoint <endpoint> by <aws.events.rule-name>"}',
    }
    _rule(aws, "transform", [{"Id": "q", "Arn": arn, "InputTransformer": transformer}])

    _put(aws, {"endpoint": "vpce-2", "ports": [443, 6666]})

    assert aws.eventbridge.wait_for(1, timeout=10, rule_name="transform", outcome="ok")
    [message] = _messages(aws, url)
    assert json.loads(message["Body"]) == {
        "id": "vpce-2",
        "ports": [443, 6666],
        "text": "endpoint vpce-2 by transform",
    }


def test_input_path_and_constant_input(aws: LocalAws) -> None:
    path_url, path_arn = _queue(aws, "input-path")
    const_url, const_arn = _queue(aws, "input-const")
    _rule(
        aws,
        "shaped",
        [
            {"Id": "path", "Arn": path_arn, "InputPath": "$.detail"},
            {"Id": "const", "Arn": const_arn, "Input": '{"workspace": "ws-1"}'},
        ],
    )

    _put(aws, {"endpoint": "vpce-3"})

    assert len(aws.eventbridge.wait_for(2, timeout=10, rule_name="shaped", outcome="ok")) == 2
    assert json.loads(_messages(aws, path_url)[0]["Body"]) == {"endpoint": "vpce-3"}
    assert json.loads(_messages(aws, const_url)[0]["Body"]) == {"workspace": "ws-1"}


def test_disabled_rules_and_other_sources_get_nothing(aws: LocalAws) -> None:
    url, arn = _queue(aws, "enabled")
    off_url, off_arn = _queue(aws, "disabled")
    _rule(aws, "on", [{"Id": "q", "Arn": arn}])
    _rule(aws, "off", [{"Id": "q", "Arn": off_arn}], State="DISABLED")

    _put(aws, {"n": 1}, source="someone.else")
    _put(aws, {"n": 2})

    assert aws.eventbridge.wait_for(1, timeout=10, rule_name="on", outcome="ok")
    assert aws.eventbridge.wait_idle(timeout=10)
    assert [json.loads(m["Body"])["detail"] for m in _messages(aws, url)] == [{"n": 2}]
    assert aws.eventbridge.deliveries(rule_name="off") == []
    assert _messages(aws, off_url) == []


def _echo_machine(aws: LocalAws, name: str) -> str:
    """A Pass state machine run by moto's interpreter: its output is the event's detail."""
    return str(
        _client(aws, "stepfunctions").create_state_machine(
            name=name,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn",
            definition=json.dumps(
                {
                    "StartAt": "Echo",
                    "States": {"Echo": {"Type": "Pass", "InputPath": "$.detail", "End": True}},
                }
            ),
        )["stateMachineArn"]
    )


def _events_role(aws: LocalAws, name: str, may_start: str, *, trusted: str = "events.amazonaws.com") -> str:
    """A role EventBridge assumes, allowed states:StartExecution on `may_start`, as SAM creates it."""
    iam = _client(aws, "iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": [trusted]}, "Action": ["sts:AssumeRole"]}],
    }
    arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "states:StartExecution", "Resource": may_start}],
    }
    iam.put_role_policy(RoleName=name, PolicyName="start", PolicyDocument=json.dumps(policy))
    return arn


def test_step_functions_target_starts_an_execution(aws: LocalAws) -> None:
    # Given a Pass state machine run by moto's interpreter, and a role allowed to start it
    aws.enable_state_machine_execution()
    try:
        sfn = _client(aws, "stepfunctions")
        machine = _echo_machine(aws, "reconcile")
        role = _events_role(aws, "events-reconcile", machine)
        _rule(aws, "to-sfn", [{"Id": "sm", "Arn": machine, "RoleArn": role}])

        # When an event matches
        _put(aws, {"workspace": "ws-1"})

        # Then an execution ran with the event as input
        assert aws.eventbridge.wait_for(1, timeout=10, rule_name="to-sfn", outcome="ok")
        [execution] = sfn.list_executions(stateMachineArn=machine)["executions"]
        described = _until_finished(sfn, execution["executionArn"])
        assert described["status"] == "SUCCEEDED"
        assert json.loads(described["input"])["source"] == "dbx.test"
        assert json.loads(described["output"]) == {"workspace": "ws-1"}
    finally:
        aws.enable_state_machine_execution(False)


@pytest.mark.parametrize(
    "role",
    ["none", "missing", "not-trusted", "other-machine"],
)
def test_step_functions_target_without_a_role_allowed_to_start_it_is_dead_lettered(
    aws: LocalAws, role: str
) -> None:
    # Given a state machine whose target role is absent, unknown, trusts another service, or may start
    # another machine only
    dlq_url, dlq_arn = _queue(aws, f"sfn-dlq-{role}")
    machine = _echo_machine(aws, f"guarded-{role}")
    roles = {
        "none": None,
        "missing": f"arn:aws:iam::{ACCOUNT}:role/never-created",
        "not-trusted": _events_role(aws, "lambda-trusted", machine, trusted="lambda.amazonaws.com"),
        "other-machine": _events_role(aws, "other-machine", machine + "-other"),
    }
    target: dict[str, Any] = {
        "Id": "sm",
        "Arn": machine,
        "DeadLetterConfig": {"Arn": dlq_arn},
        "RetryPolicy": {"MaximumRetryAttempts": 0},
    }
    if roles[role]:
        target["RoleArn"] = roles[role]
    _rule(aws, f"guarded-{role}", [target])

    # When an event matches
    _put(aws, {"workspace": "ws-7"})

    # Then no execution starts and the event is dead-lettered with NO_PERMISSIONS, as on AWS
    assert aws.eventbridge.wait_for(1, timeout=10, rule_name=f"guarded-{role}", outcome="dead_lettered")
    assert _client(aws, "stepfunctions").list_executions(stateMachineArn=machine)["executions"] == []
    [message] = _messages(aws, dlq_url)
    assert message["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "NO_PERMISSIONS"


def test_a_schedule_starts_one_execution_per_tick_each_with_its_own_name(aws: LocalAws) -> None:
    # Given a rule every emulated minute (0.6 s here) whose target is a state machine, with its role
    aws.enable_state_machine_execution()
    try:
        sfn = _client(aws, "stepfunctions")
        machine = _echo_machine(aws, "scan")
        _rule(
            aws,
            "scan-every-minute",
            [{"Id": "sm", "Arn": machine, "RoleArn": _events_role(aws, "events-scan", machine)}],
            ScheduleExpression="rate(1 minute)",
        )

        # When two periods pass
        assert len(aws.eventbridge.wait_for(2, timeout=10, rule_name="scan-every-minute", outcome="ok")) >= 2
        _client(aws, "events").disable_rule(Name="scan-every-minute")

        # Then each tick started an execution of its own, with the Scheduled Event as input
        executions = sfn.list_executions(stateMachineArn=machine)["executions"]
        assert len(executions) >= 2
        assert len({e["name"] for e in executions}) == len(executions)
        described = _until_finished(sfn, executions[0]["executionArn"])
        assert json.loads(described["input"])["detail-type"] == "Scheduled Event"
    finally:
        aws.enable_state_machine_execution(False)


def _until_finished(sfn: Any, execution_arn: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = dict(sfn.describe_execution(executionArn=execution_arn))
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


def test_undeliverable_event_goes_to_the_dead_letter_queue(aws: LocalAws) -> None:
    # Given a target whose state machine does not exist, with a DLQ and one retry
    dlq_url, dlq_arn = _queue(aws, "drift-dlq")
    missing = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:gone"
    _rule(
        aws,
        "broken",
        [
            {
                "Id": "sm",
                "Arn": missing,
                "DeadLetterConfig": {"Arn": dlq_arn},
                "RetryPolicy": {"MaximumRetryAttempts": 1},
            }
        ],
    )

    # When an event matches
    _put(aws, {"workspace": "ws-9"})

    # Then two attempts fail and the event lands in the DLQ with EventBridge's attributes
    assert aws.eventbridge.wait_for(1, timeout=10, rule_name="broken", outcome="dead_lettered")
    assert [d.attempt for d in aws.eventbridge.deliveries(rule_name="broken", outcome="error")] == [1, 2]
    [message] = _messages(aws, dlq_url)
    assert json.loads(message["Body"])["detail"] == {"workspace": "ws-9"}
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["TARGET_ARN"] == missing
    assert attributes["RULE_ARN"].endswith(":rule/broken")
    assert attributes["ERROR_CODE"]


def test_failed_delivery_without_dlq_is_dropped_after_its_attempts(aws: LocalAws) -> None:
    _rule(aws, "nowhere", [{"Id": "sm", "Arn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:gone"}])

    _put(aws, {"workspace": "ws-8"})

    assert aws.eventbridge.wait_for(1, timeout=10, rule_name="nowhere", outcome="dropped")
    assert (
        len(aws.eventbridge.deliveries(rule_name="nowhere", outcome="error"))
        == SETTINGS.delivery_max_attempts
    )


def test_scheduled_rule_fires_scheduled_events(aws: LocalAws) -> None:
    # Given a rule every emulated minute (0.6 s here) with an SQS target
    url, arn = _queue(aws, "ticks")
    _rule(aws, "every-minute", [{"Id": "q", "Arn": arn}], ScheduleExpression="rate(1 minute)")

    # When two periods pass
    deliveries = aws.eventbridge.wait_for(2, timeout=10, rule_name="every-minute", outcome="ok")

    # Then it fired Scheduled Events naming the rule
    assert len(deliveries) >= 2
    _client(aws, "events").disable_rule(Name="every-minute")
    body = json.loads(_messages(aws, url)[0]["Body"])
    assert (body["source"], body["detail-type"], body["detail"]) == ("aws.events", "Scheduled Event", {})
    assert body["resources"] == [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/every-minute"]


def test_schedule_only_rules_ignore_bus_events(aws: LocalAws) -> None:
    _, arn = _queue(aws, "hourly")
    ping_url, ping_arn = _queue(aws, "ping")
    _rule(aws, "hourly", [{"Id": "q", "Arn": arn}], ScheduleExpression="rate(1 hour)")
    _rule(aws, "ping", [{"Id": "q", "Arn": ping_arn}])

    _put(aws, {"n": 1})

    assert aws.eventbridge.wait_for(1, timeout=10, rule_name="ping", outcome="ok")
    assert aws.eventbridge.wait_idle(timeout=10)
    assert aws.eventbridge.deliveries(rule_name="hourly") == []
    assert len(_messages(aws, ping_url)) == 1


HANDLER = """
import json, os

def handler(event, context):
    if event.get("detail", {}).get("fail"):
        raise RuntimeError("asked to fail")
    with open(os.environ["RECORD_TO"], "a") as out:
        out.write(json.dumps(event) + "\\n")
    return {"ok": True}
"""


@pytest.fixture
def lambda_target(aws: LocalAws, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real function run by the local stack's in-process Lambda runtime; it records events to a file."""
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    record = tmp_path / "events.jsonl"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("app.py", HANDLER)
    role = _client(aws, "iam").create_role(
        RoleName="drift-detector",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    function = _client(aws, "lambda").create_function(
        FunctionName="drift-detector",
        Runtime="python3.13",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": archive.getvalue()},
        Environment={"Variables": {"RECORD_TO": str(record)}},
    )["FunctionArn"]
    runtime = InProcessLambdaRuntime(aws.endpoint_url, region=REGION).install()
    runtime.register("drift-detector", code)
    try:
        yield function, record
    finally:
        runtime.uninstall()


def test_lambda_target_is_invoked_with_the_event(aws: LocalAws, lambda_target: tuple[str, Path]) -> None:
    function, record = lambda_target
    _rule(aws, "to-lambda", [{"Id": "fn", "Arn": function}])

    _put(aws, {"endpoint": "vpce-7"})

    assert aws.eventbridge.wait_for(1, timeout=20, rule_name="to-lambda", outcome="ok")
    [event] = [json.loads(line) for line in record.read_text().splitlines()]
    assert event["detail"] == {"endpoint": "vpce-7"}
    assert event["detail-type"] == "Endpoint Changed"


def test_lambda_function_error_is_not_a_delivery_failure(
    aws: LocalAws, lambda_target: tuple[str, Path]
) -> None:
    function, _ = lambda_target
    dlq_url, dlq_arn = _queue(aws, "lambda-dlq")
    _rule(aws, "to-failing-lambda", [{"Id": "fn", "Arn": function, "DeadLetterConfig": {"Arn": dlq_arn}}])

    _put(aws, {"fail": True})

    [delivery] = aws.eventbridge.wait_for(1, timeout=20, rule_name="to-failing-lambda")
    assert delivery.outcome == "function_error"
    assert aws.eventbridge.wait_idle(timeout=10)
    assert _messages(aws, dlq_url) == []
