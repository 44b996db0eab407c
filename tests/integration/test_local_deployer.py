"""The SAM deployer: template.yaml into moto as `sam deploy` would, executions running the real handlers."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from integration.local_servers import moto_with_runtime

from dbx_privatelink_local import yaml_cfn
from dbx_privatelink_local.deployer import DeployError, Deployment, deploy_template
from dbx_privatelink_local.lambda_runtime import InProcessLambdaRuntime
from dbx_privatelink_local.sfn import (
    StepFunctionsControl,
    execution_error,
    parse_cause,
)

APP = Path(__file__).resolve().parents[1] / "fixtures" / "sam_app"
TEMPLATE = APP / "template.yaml"
REGION = "us-east-1"


@dataclass
class LocalStack:
    endpoint_url: str
    runtime: InProcessLambdaRuntime
    control: StepFunctionsControl
    session: boto3.session.Session

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def deploy(self, template: Path = TEMPLATE, parameters: dict[str, str] | None = None) -> Deployment:
        return deploy_template(
            template, f"app-{uuid.uuid4().hex[:8]}", parameters, self.endpoint_url, self.runtime
        )

    def run(self, state_machine_arn: str, execution_input: dict[str, Any]) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        arn = sfn.start_execution(stateMachineArn=state_machine_arn, input=json.dumps(execution_input))[
            "executionArn"
        ]
        deadline = time.monotonic() + 30
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "execution still RUNNING after 30 s"
            time.sleep(0.02)
        described["history"] = sfn.get_execution_history(executionArn=arn, maxResults=1000)
        return dict(described)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with moto_with_runtime(step_functions=True) as moto:
        yield LocalStack(moto.endpoint_url, moto.runtime, moto.control, moto.session)


@pytest.fixture
def variant(tmp_path: Path) -> Callable[[Callable[[dict[str, Any]], None]], Path]:
    """The fixture app's template changed by `edit`, written elsewhere with its code paths still resolving."""

    def make(edit: Callable[[dict[str, Any]], None]) -> Path:
        template = yaml_cfn.load(TEMPLATE)
        for resource in template["Resources"].values():
            properties = resource.get("Properties", {})
            for key in ("CodeUri", "ContentUri", "DefinitionUri"):
                if isinstance(properties.get(key), str):
                    properties[key] = str(APP / properties[key])
        edit(template)
        path = tmp_path / "template.json"
        path.write_text(json.dumps(template), encoding="utf-8")
        return path

    return make


def run_input(items: list[dict[str, Any]], wait_seconds: int = 0) -> dict[str, Any]:
    return {"wait_seconds": wait_seconds, "name": "Ada", "items": items}


def failed_lambda_events(execution: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in execution["history"]["events"] if e["type"] == "LambdaFunctionFailed"]


def test_deploy_creates_the_stack_and_its_outputs(stack: LocalStack) -> None:
    # When the fixture app is deployed
    deployment = stack.deploy(parameters={"Stage": "prod"})

    # Then describe_stacks answers as on AWS, and the functions are registered with the runtime
    described = stack.client("cloudformation").describe_stacks(StackName=deployment.stack_name)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    assert outputs == deployment.outputs
    assert set(outputs) == {"PipelineArn", "GreetFunctionName", "GreetFunctionArn", "LayerArn"}
    assert outputs["PipelineArn"].startswith(f"arn:aws:states:{REGION}:")
    assert outputs["LayerArn"].startswith(f"arn:aws:lambda:{REGION}:") and ":layer:" in outputs["LayerArn"]
    greet = deployment.function_by_logical_id("GreetFunction")
    assert greet.function_name == outputs["GreetFunctionName"] == deployment.physical_ids["GreetFunction"]
    assert (greet.handler, greet.code_dir, greet.layer_dirs) == (
        "app.handler",
        APP / "functions" / "greet",
        (APP / "layers" / "common",),
    )
    assert set(deployment.functions) <= set(stack.runtime.sources())
    assert deployment.physical_ids["CommonLayer"] == outputs["LayerArn"]

    # And the definition carries the substituted values, the environment the template's conditions
    definition = stack.client("stepfunctions").describe_state_machine(stateMachineArn=outputs["PipelineArn"])[
        "definition"
    ]
    assert outputs["GreetFunctionArn"] in definition and "${" not in definition
    flaky = deployment.function_by_logical_id("FlakyFunction").function_name
    configuration = stack.client("lambda").get_function_configuration(FunctionName=flaky)
    assert configuration["Environment"]["Variables"] == {"STAGE": "prod", "FLAKY_MODE": "strict"}


def test_resources_moto_cannot_create_are_reported_with_resolved_properties(stack: LocalStack) -> None:
    deployment = stack.deploy()

    (schedule,) = deployment.schedules()
    assert schedule.logical_id == "PipelineHourly"
    assert schedule.properties["ScheduleExpression"] == "rate(1 hour)"
    assert schedule.properties["Target"]["Arn"] == deployment.outputs["PipelineArn"]
    assert "PipelineHourly" not in deployment.physical_ids


def test_an_execution_succeeds_with_the_real_handlers_output(stack: LocalStack) -> None:
    # Given the deployed app
    deployment = stack.deploy(parameters={"GreetingPrefix": "Welcome"})
    key = uuid.uuid4().hex

    # When an execution runs, one item failing once before it succeeds
    execution = stack.run(
        deployment.outputs["PipelineArn"],
        run_input([{"key": f"{key}-a", "fail_times": 1}, {"key": f"{key}-b", "fail_times": 0}]),
    )

    # Then it succeeds with what the handlers returned, the greeting made under the function's own role
    assert execution["status"] == "SUCCEEDED", execution_error(execution["history"])
    output = json.loads(execution["output"])
    role = deployment.physical_ids["GreetFunctionRole"]
    assert output["greeting"] == "Welcome, Ada"
    assert output["stage"] == "local"
    assert output["region"] == REGION
    assert output["attempts"] == [2, 1]
    assert f":assumed-role/{role}/" in output["caller"]


def test_a_custom_exception_is_retried_then_caught_by_its_exact_name(stack: LocalStack) -> None:
    # Given an item that never becomes ready
    deployment = stack.deploy()
    stack.control.clear()

    # When the execution runs
    execution = stack.run(
        deployment.outputs["PipelineArn"], run_input([{"key": uuid.uuid4().hex, "fail_times": 9}])
    )

    # Then the Task was tried three times (two retries with backoff), and the Catch sent the error by name
    # to the Fail state, which ended the execution with it
    assert len(failed_lambda_events(execution)) == 3
    assert [s.requested_seconds for s in stack.control.sleeps("retry")] == [5.0, 10.0]
    assert execution["status"] == "FAILED"
    error, cause = execution_error(execution["history"])
    assert error == "NotReadyError"
    assert parse_cause(cause)["errorType"] == "NotReadyError"


def test_a_wait_lasts_its_scaled_duration(stack: LocalStack) -> None:
    # Given a time scale of 0.001
    deployment = stack.deploy()
    stack.control.clear()

    # When the execution waits 60 s
    execution = stack.run(deployment.outputs["PipelineArn"], run_input([], wait_seconds=60))

    # Then the interpreter slept 60 ms
    assert execution["status"] == "SUCCEEDED"
    (wait,) = stack.control.sleeps("wait")
    assert wait.requested_seconds == 60
    assert wait.scaled_seconds == pytest.approx(0.06)


def test_a_missing_environment_variable_fails_the_execution_with_the_settings_error(
    stack: LocalStack, variant: Callable[[Callable[[dict[str, Any]], None]], Path]
) -> None:
    # Given the app deployed with GreetFunction lacking GREETING_PREFIX
    def drop_prefix(template: dict[str, Any]) -> None:
        del template["Resources"]["GreetFunction"]["Properties"]["Environment"]

    deployment = stack.deploy(variant(drop_prefix))

    # When an execution reaches it
    execution = stack.run(deployment.outputs["PipelineArn"], run_input([]))

    # Then the function's cold start fails and the execution fails with the settings error named
    assert execution["status"] == "FAILED"
    error, cause = execution_error(execution["history"])
    assert error == "SettingsError"
    assert "GREETING_PREFIX" in parse_cause(cause)["errorMessage"]


def test_an_unresolved_substitution_fails_the_deploy(
    stack: LocalStack, variant: Callable[[Callable[[dict[str, Any]], None]], Path]
) -> None:
    # Given a template whose definition uses ${FlakyFunctionArn} without substituting it
    def forget(template: dict[str, Any]) -> None:
        del template["Resources"]["Pipeline"]["Properties"]["DefinitionSubstitutions"]["FlakyFunctionArn"]

    # When it is deployed, then CreateStateMachine's validation fails the deploy
    name = f"broken-{uuid.uuid4().hex[:8]}"
    with pytest.raises(
        DeployError, match=r"InvalidDefinition.*\$\{FlakyFunctionArn\}|\$\{FlakyFunctionArn\}.*Inv"
    ):
        deploy_template(variant(forget), name, None, stack.endpoint_url, stack.runtime)

    # And no stack is left behind
    stacks = stack.client("cloudformation").list_stacks()["StackSummaries"]
    assert all(s["StackStatus"] == "DELETE_COMPLETE" for s in stacks if s["StackName"] == name)


def test_a_task_resource_that_is_not_an_arn_fails_the_deploy(
    stack: LocalStack, variant: Callable[[Callable[[dict[str, Any]], None]], Path]
) -> None:
    # Given a substitution giving the function's name where the Task needs its ARN
    def name_not_arn(template: dict[str, Any]) -> None:
        substitutions = template["Resources"]["Pipeline"]["Properties"]["DefinitionSubstitutions"]
        substitutions["FlakyFunctionArn"] = {"Ref": "FlakyFunction"}

    with pytest.raises(
        DeployError, match="not a valid resource ARN at /States/Work/ItemProcessor/States/Attempt"
    ):
        stack.deploy(variant(name_not_arn))


@pytest.mark.parametrize("substitution", ["GreetFunctionArn", "FlakyFunctionArn"])
def test_a_function_the_state_machine_cannot_find_fails_with_resource_not_found(
    stack: LocalStack, variant: Callable[[Callable[[dict[str, Any]], None]], Path], substitution: str
) -> None:
    # Given a state machine pointing at a function that does not exist (lambda:invoke and plain-ARN forms)
    def absent(template: dict[str, Any]) -> None:
        substitutions = template["Resources"]["Pipeline"]["Properties"]["DefinitionSubstitutions"]
        substitutions[substitution] = {
            "Fn::Sub": "arn:aws:lambda:${AWS::Region}:${AWS::AccountId}:function:absent"
        }

    deployment = stack.deploy(variant(absent))

    # When an execution reaches the Task
    execution = stack.run(
        deployment.outputs["PipelineArn"], run_input([{"key": uuid.uuid4().hex, "fail_times": 0}])
    )

    # Then it fails with Lambda's error name, as on AWS
    assert execution["status"] == "FAILED"
    error, _ = execution_error(execution["history"])
    assert error == "Lambda.ResourceNotFoundException"


def test_deploying_again_replaces_the_stack(stack: LocalStack) -> None:
    first = stack.deploy()

    second = deploy_template(TEMPLATE, first.stack_name, {"Stage": "qa"}, stack.endpoint_url, stack.runtime)

    assert second.stack_id != first.stack_id
    assert any("deleted and created again" in note for note in second.notes)
    execution = stack.run(second.outputs["PipelineArn"], run_input([]))
    assert json.loads(execution["output"])["stage"] == "qa"


def test_operations_resources_are_created_or_left_out_as_the_local_stack_can(
    stack: LocalStack, variant: Callable[[Callable[[dict[str, Any]], None]], Path]
) -> None:
    # Given the app with a table that expires items, a log group with a retention, and an alarm
    def operate(template: dict[str, Any]) -> None:
        template["Resources"].update(
            {
                "Table": {
                    "Type": "AWS::DynamoDB::Table",
                    "Properties": {
                        "BillingMode": "PAY_PER_REQUEST",
                        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                        "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                    },
                },
                "GreetLogGroup": {
                    "Type": "AWS::Logs::LogGroup",
                    "Properties": {
                        "LogGroupName": {"Fn::Sub": "/aws/lambda/${GreetFunction}"},
                        "RetentionInDays": 30,
                    },
                },
                "GreetErrorsAlarm": {
                    "Type": "AWS::CloudWatch::Alarm",
                    "Properties": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": "Errors",
                        "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": "GreetFunction"}}],
                        "Statistic": "Sum",
                        "Period": 300,
                        "EvaluationPeriods": 1,
                        "Threshold": 1,
                        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                    },
                },
            }
        )

    # When it is deployed
    deployment = deploy_template(
        variant(operate), f"ops-{uuid.uuid4().hex[:8]}", None, stack.endpoint_url, stack.runtime
    )

    # Then the table's TTL is on as DescribeTimeToLive shows it on AWS (moto's table model ignores it)
    ttl = stack.client("dynamodb").describe_time_to_live(TableName=deployment.physical_ids["Table"])
    assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    # And the log group exists under the function's name; the alarm is reported as left out
    greet = deployment.function_by_logical_id("GreetFunction").function_name
    groups = stack.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{greet}")["logGroups"]
    assert [g["logGroupName"] for g in groups] == [f"/aws/lambda/{greet}"]
    assert [s.logical_id for s in deployment.skipped if s.type == "AWS::CloudWatch::Alarm"] == [
        "GreetErrorsAlarm"
    ]


def test_a_resource_whose_condition_is_false_is_not_in_the_stack(
    stack: LocalStack, variant: Callable[[Callable[[dict[str, Any]], None]], Path]
) -> None:
    # Given the app with a log group made only when a parameter is set, and it is not
    def conditional(template: dict[str, Any]) -> None:
        template["Parameters"]["Extra"] = {"Type": "String", "Default": ""}
        template["Conditions"]["HasExtra"] = {"Fn::Not": [{"Fn::Equals": [{"Ref": "Extra"}, ""]}]}
        template["Resources"]["ExtraLogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "Condition": "HasExtra",
            "Properties": {"RetentionInDays": 30},
        }

    # When it is deployed
    name = f"cond-{uuid.uuid4().hex[:8]}"
    deployment = deploy_template(variant(conditional), name, None, stack.endpoint_url, stack.runtime)

    # Then, as on AWS, the stack does not list it and DescribeStackResource answers for the others
    cfn = stack.client("cloudformation")
    listed = [
        r["LogicalResourceId"] for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    ]
    assert "ExtraLogGroup" not in listed and "GreetFunction" in listed
    greet = cfn.describe_stack_resource(StackName=name, LogicalResourceId="GreetFunction")
    assert greet["StackResourceDetail"]["PhysicalResourceId"] == deployment.physical_ids["GreetFunction"]
