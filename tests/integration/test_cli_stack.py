"""Finding the deployed stack: outputs and parameters from CloudFormation (moto), and what the CLI says when
the stack is missing or is not a dbx-privatelink stack.

Also the shared setup of the CLI's integration tests: a stack shaped like template.yaml's outputs."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dbx_privatelink_cli.common import CliError, Runtime
from dbx_privatelink_cli.main import main
from dbx_privatelink_cli.stack import find_stack

REGION = "us-east-1"
STACK = "dbx-privatelink"


def stack_template(*, outputs: bool = True) -> str:
    """A tiny template with template.yaml's parameters, table shape and outputs (no Lambdas needed)."""
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {
            "StateMachineArn": {"Type": "String"},
            "DatabricksSecretArn": {"Type": "String", "Default": ""},
            "DatabricksHost": {"Type": "String", "Default": "https://accounts.cloud.databricks.com"},
            "EndpointServicesJson": {"Type": "String", "Default": ""},
        },
        "Resources": {
            "Table": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "BillingMode": "PAY_PER_REQUEST",
                    "AttributeDefinitions": [
                        {"AttributeName": "pk", "AttributeType": "S"},
                        {"AttributeName": "sk", "AttributeType": "S"},
                    ],
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                },
            }
        },
    }
    if outputs:
        template["Outputs"] = {
            "ReconcileStateMachineArn": {"Value": {"Ref": "StateMachineArn"}},
            "TableName": {"Value": {"Ref": "Table"}},
            "OwnerTag": {"Value": {"Fn::Sub": "dbx-privatelink:owner=${AWS::StackName}"}},
        }
    return json.dumps(template)


def deploy_stack(
    session: Any, *, name: str = STACK, state_machine_arn: str = "", outputs: bool = True, **parameters: str
) -> dict[str, str]:
    """Create the stack; returns its outputs."""
    cfn = session.client("cloudformation", region_name=REGION)
    arn = state_machine_arn or f"arn:aws:states:{REGION}:123456789012:stateMachine:{name}-reconcile-workspace"
    params = {"StateMachineArn": arn, **parameters}
    cfn.create_stack(
        StackName=name,
        TemplateBody=stack_template(outputs=outputs),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
    )
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


class AwsCalls:
    """Every AWS operation made through a session, counted by service and name."""

    def __init__(self, session: Any) -> None:
        self.counts: Counter[str] = Counter()
        session.events.register("before-call", self._record, unique_id=f"test-calls-{id(self)}")

    def _record(self, model: Any, **_: Any) -> None:
        self.counts[f"{model.service_model.service_name}:{model.name}"] += 1

    def operations(self) -> set[str]:
        return {key.split(":", 1)[1] for key in self.counts}


def run_cli(argv: list[str], session: Any, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, session=session, env={"AWS_REGION": REGION, **(env or {})}, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto in-process, fake credentials, no endpoint override from the developer's shell."""
    for var in (
        "AWS_ENDPOINT_URL",
        "AWS_PROFILE",
        "DATABRICKS_HOST",
        "DATABRICKS_CLIENT_ID",
        "DATABRICKS_CLIENT_SECRET",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def test_outputs_and_parameters_are_found(aws: Any) -> None:
    # Given a deployed stack
    outputs = deploy_stack(
        aws, DatabricksHost="http://127.0.0.1:9999", EndpointServicesJson='{"regions": {}}'
    )
    # When the CLI looks it up
    info = find_stack(Runtime(session=aws, region_arg=REGION, env={}), STACK)
    # Then the state machine, the table and the owner tag value come from its outputs
    assert info.state_machine_arn == outputs["ReconcileStateMachineArn"]
    assert info.table_name == outputs["TableName"]
    assert outputs["OwnerTag"] == f"dbx-privatelink:owner={STACK}"
    assert info.owner_tag == STACK
    assert info.databricks_host == "http://127.0.0.1:9999"
    assert info.settings(REGION).endpoint_services_json == '{"regions": {}}'
    assert info.settings(REGION).owner_tag == STACK


def test_a_missing_stack_says_how_to_name_the_right_one(aws: Any) -> None:
    with pytest.raises(CliError) as caught:
        find_stack(Runtime(session=aws, region_arg=REGION, env={}), "nope")
    assert "nope" in str(caught.value)
    assert "--stack" in str(caught.value)
    assert caught.value.exit_code == 1


def test_a_stack_without_the_outputs_is_refused(aws: Any) -> None:
    deploy_stack(aws, name="other-app", outputs=False)
    with pytest.raises(CliError) as caught:
        find_stack(Runtime(session=aws, region_arg=REGION, env={}), "other-app")
    assert "ReconcileStateMachineArn" in str(caught.value)
    assert caught.value.name == "StackOutputsMissingError"


def test_the_stack_name_comes_from_the_environment_when_not_given(aws: Any) -> None:
    # Given two stacks, the environment names the second
    deploy_stack(aws)
    deploy_stack(aws, name="dbx-privatelink-blue")
    # When status runs without --stack for a workspace nobody applied
    code, _out, err = run_cli(["status", "ghost"], aws, env={"DBX_PRIVATELINK_STACK": "dbx-privatelink-blue"})
    # Then it looked in the named stack
    assert code == 1
    assert "dbx-privatelink-blue" in err
    code, _out, err = run_cli(["status", "ghost", "--stack", "missing-stack"], aws)
    assert code == 1
    assert "stack 'missing-stack' does not exist" in err
