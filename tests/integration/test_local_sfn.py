"""Which ASL features moto's interpreter runs as Step Functions does: the team writes the ASL from these."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from integration.local_servers import moto_with_runtime

from dbx_privatelink_local.deployer import zip_directory
from dbx_privatelink_local.sfn import (
    StepFunctionsControl,
    execution_error,
)

APP = Path(__file__).resolve().parents[1] / "fixtures" / "sam_app"
REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sfn-probe"


@dataclass
class Interpreter:
    control: StepFunctionsControl
    sfn: Any
    flaky_arn: str

    def create(self, definition: dict[str, Any]) -> str:
        return str(
            self.sfn.create_state_machine(
                name=f"probe-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE
            )["stateMachineArn"]
        )

    def execute(self, machine: str, execution_input: dict[str, Any]) -> dict[str, Any]:
        arn = self.sfn.start_execution(stateMachineArn=machine, input=json.dumps(execution_input))[
            "executionArn"
        ]
        deadline = time.monotonic() + 30
        while (described := self.sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "execution still RUNNING after 30 s"
            time.sleep(0.02)
        described["history"] = self.sfn.get_execution_history(executionArn=arn, maxResults=1000)
        return dict(described)

    def run(self, definition: dict[str, Any], execution_input: dict[str, Any]) -> dict[str, Any]:
        return self.execute(self.create(definition), execution_input)


@pytest.fixture(scope="module")
def interpreter() -> Iterator[Interpreter]:
    with moto_with_runtime(step_functions=True) as moto:
        assert moto.control is not None
        iam = moto.session.client("iam", endpoint_url=moto.endpoint_url)
        role_arn = iam.create_role(RoleName="flaky-probe", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        flaky = moto.session.client("lambda", endpoint_url=moto.endpoint_url).create_function(
            FunctionName="flaky-probe",
            Runtime="python3.13",
            Role=role_arn,
            Handler="app.handler",
            Code={"ZipFile": zip_directory(APP / "functions" / "flaky")},
            Environment={"Variables": {"FLAKY_MODE": "probe"}},
        )
        moto.runtime.register("flaky-probe", APP / "functions" / "flaky", [APP / "layers" / "common"])
        yield Interpreter(
            moto.control,
            moto.session.client("stepfunctions", endpoint_url=moto.endpoint_url),
            flaky["FunctionArn"],
        )


def test_intrinsic_functions(interpreter: Interpreter) -> None:
    definition = {
        "StartAt": "Compute",
        "States": {
            "Compute": {
                "Type": "Pass",
                "Parameters": {
                    "formatted.$": "States.Format('Hello, {} of {}', $.name, $.team)",
                    "sum.$": "States.MathAdd($.a, $.b)",
                    "length.$": "States.ArrayLength($.list)",
                    "parsed.$": "States.StringToJson($.json)",
                    "text.$": "States.JsonToString($.obj)",
                },
                "End": True,
            }
        },
    }
    execution_input = {
        "name": "Ada",
        "team": "ops",
        "a": 2,
        "b": 3,
        "list": [1, 2, 3],
        "json": '{"x":1}',
        "obj": {"y": 2},
    }

    execution = interpreter.run(definition, execution_input)

    assert execution["status"] == "SUCCEEDED", execution_error(execution["history"])
    assert json.loads(execution["output"]) == {
        "formatted": "Hello, Ada of ops",
        "sum": 5,
        "length": 3,
        "parsed": {"x": 1},
        "text": '{"y":2}',
    }


def test_choice_parallel_wait_map_result_selector_and_fail_paths(interpreter: Interpreter) -> None:
    # A Choice into a Parallel of a Wait (SecondsPath) and a Map (ItemsPath, ItemSelector,
    # MaxConcurrency), its result shaped by ResultSelector/ResultPath, ending in a Fail whose error and
    # cause come from ErrorPath/CausePath.
    definition = {
        "StartAt": "Decide",
        "States": {
            "Decide": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.mode", "StringEquals": "fan", "Next": "Fan"}],
                "Default": "Describe",
            },
            "Fan": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Pause",
                        "States": {"Pause": {"Type": "Wait", "SecondsPath": "$.wait", "End": True}},
                    },
                    {
                        "StartAt": "Each",
                        "States": {
                            "Each": {
                                "Type": "Map",
                                "ItemsPath": "$.items",
                                "ItemSelector": {
                                    "value.$": "$$.Map.Item.Value",
                                    "index.$": "$$.Map.Item.Index",
                                },
                                "MaxConcurrency": 2,
                                "ItemProcessor": {
                                    "ProcessorConfig": {"Mode": "INLINE"},
                                    "StartAt": "Double",
                                    "States": {
                                        "Double": {
                                            "Type": "Pass",
                                            "Parameters": {
                                                "v.$": "States.MathAdd($.value, $.value)",
                                                "i.$": "$.index",
                                            },
                                            "End": True,
                                        }
                                    },
                                },
                                "End": True,
                            }
                        },
                    },
                ],
                "ResultSelector": {"doubled.$": "$[1]"},
                "ResultPath": "$.fan",
                "Next": "Describe",
            },
            "Describe": {
                "Type": "Pass",
                "Parameters": {"errorName.$": "$.errorName", "cause.$": "States.JsonToString($.fan)"},
                "Next": "Stop",
            },
            "Stop": {"Type": "Fail", "ErrorPath": "$.errorName", "CausePath": "$.cause"},
        },
    }
    interpreter.control.clear()

    execution = interpreter.run(
        definition, {"mode": "fan", "wait": 30, "items": [1, 2, 3], "errorName": "ProbeError"}
    )

    assert execution["status"] == "FAILED"
    error, cause = execution_error(execution["history"])
    assert error == "ProbeError"
    assert json.loads(cause or "") == {"doubled": [{"v": 2, "i": 0}, {"v": 4, "i": 1}, {"v": 6, "i": 2}]}
    assert [(s.requested_seconds, s.scaled_seconds) for s in interpreter.control.sleeps("wait")] == [
        (30, pytest.approx(0.03))
    ]


def retrying_task(flaky_arn: str, retrier: dict[str, Any]) -> dict[str, Any]:
    return {
        "StartAt": "Attempt",
        "States": {
            "Attempt": {
                "Type": "Task",
                "Resource": flaky_arn,
                "Retry": [{"ErrorEquals": ["NotReadyError"], **retrier}],
                "End": True,
            }
        },
    }


def test_retry_backoff_is_capped_by_max_delay_seconds(interpreter: Interpreter) -> None:
    interpreter.control.clear()
    retrier = {"IntervalSeconds": 10, "BackoffRate": 3, "MaxAttempts": 3, "MaxDelaySeconds": 15}

    execution = interpreter.run(
        retrying_task(interpreter.flaky_arn, retrier), {"key": uuid.uuid4().hex, "fail_times": 3}
    )

    assert execution["status"] == "SUCCEEDED", execution_error(execution["history"])
    assert json.loads(execution["output"])["attempts"] == 4
    assert [s.requested_seconds for s in interpreter.control.sleeps("retry")] == [10, 15, 15]


def test_retry_full_jitter_draws_each_interval_below_its_backoff(interpreter: Interpreter) -> None:
    interpreter.control.clear()
    retrier = {
        "IntervalSeconds": 10,
        "BackoffRate": 3,
        "MaxAttempts": 3,
        "MaxDelaySeconds": 15,
        "JitterStrategy": "FULL",
    }

    execution = interpreter.run(
        retrying_task(interpreter.flaky_arn, retrier), {"key": uuid.uuid4().hex, "fail_times": 3}
    )

    assert execution["status"] == "SUCCEEDED", execution_error(execution["history"])
    intervals = [s.requested_seconds for s in interpreter.control.sleeps("retry")]
    assert len(intervals) == 3
    assert all(0 <= i <= cap for i, cap in zip(intervals, [10, 15, 15], strict=True))
    assert intervals != [10, 15, 15]


@pytest.mark.parametrize(
    ("resource", "parameters", "expected"),
    [
        (
            "arn:aws:states:::aws-sdk:ec2:describeVpcs",
            {"VpcIds": ["vpc-0000000000000000f"]},
            "Ec2.Ec2Exception",
        ),
        (
            "arn:aws:states:::aws-sdk:route53resolver:getResolverRule",
            {"ResolverRuleId": "rslvr-rr-0000000000000000f"},
            "Route53Resolver.ResourceNotFoundException",
        ),
        (
            "arn:aws:states:::aws-sdk:route53:getHostedZone",
            {"Id": "Z0000000000000000000F"},
            "Route53.NoSuchHostedZoneException",
        ),
    ],
)
def test_aws_sdk_errors_are_named_as_on_aws(
    interpreter: Interpreter, resource: str, parameters: dict[str, Any], expected: str
) -> None:
    definition = {
        "StartAt": "Call",
        "States": {"Call": {"Type": "Task", "Resource": resource, "Parameters": parameters, "End": True}},
    }

    execution = interpreter.run(definition, {})

    assert execution["status"] == "FAILED"
    error, _ = execution_error(execution["history"])
    assert error == expected


def test_an_execution_started_without_a_name_is_named_with_a_uuid(interpreter: Interpreter) -> None:
    # Given a state machine that outputs its execution's name
    definition = {
        "StartAt": "Name",
        "States": {"Name": {"Type": "Pass", "Parameters": {"name.$": "$$.Execution.Name"}, "End": True}},
    }

    # When two executions start without a name and with the same input
    machine = interpreter.create(definition)
    first = interpreter.execute(machine, {})
    second = interpreter.execute(machine, {})

    # Then each has its own UUID name, in its ARN and in the context object
    names = [json.loads(e["output"])["name"] for e in (first, second)]
    assert [e["name"] for e in (first, second)] == names
    assert all(uuid.UUID(n) for n in names) and names[0] != names[1]
    assert first["executionArn"].endswith(f":{names[0]}")


def test_an_ended_execution_has_its_output_before_its_status_says_it_ended() -> None:
    # Given an execution whose program ended, that records what a reader would see when its status is set
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    from dbx_privatelink_local.sfn import status_last

    seen: list[tuple[str, Any]] = []

    class Execution:
        output: Any = None

        def __setattr__(self, name: str, value: Any) -> None:
            if name == "exec_status":
                seen.append((getattr(value, "value", value), self.output))
            object.__setattr__(self, name, value)

    class Env:
        def program_state(self) -> ProgramEnded:
            return ProgramEnded()

        class states:  # moto's attribute name
            @staticmethod
            def get_input() -> dict[str, Any]:
                return {"handed_to_lease_holder": True}

    class Worker:
        env = Env()

    execution = Execution()
    execution.exec_worker = Worker()  # type: ignore[attr-defined]
    status_last()
    # When the interpreter reflects the end
    BaseExecutionWorkerCommunication(execution)._reflect_execution_status()  # type: ignore[arg-type]
    # Then the output was there when the status turned SUCCEEDED
    assert seen == [("SUCCEEDED", {"handed_to_lease_holder": True})], seen
