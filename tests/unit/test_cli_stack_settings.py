"""The CLI's settings are the functions' settings: every environment variable template.yaml sets from a stack
parameter, and that the settings read, is in the CLI's table with that parameter; and the CLI reads them
through the functions' own `Settings.from_env`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbx_privatelink.wiring import NEEDS, Settings
from dbx_privatelink_cli.common import CliError
from dbx_privatelink_cli.stack import PARAMETER_ENVIRONMENT, StackInfo
from dbx_privatelink_local import yaml_cfn

TEMPLATE = yaml_cfn.load(Path(__file__).resolve().parents[2] / "template.yaml")


def _parameter_of(value: Any) -> str | None:
    """The stack parameter an environment value is made from: `Ref: P`, or a join of `Ref: P`."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in TEMPLATE["Parameters"]:
        return str(value["Ref"])
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        return _parameter_of(value["Fn::Join"][1])
    return None


def _template_parameter_environment() -> Iterator[tuple[str, str]]:
    scopes = [TEMPLATE["Globals"]["Function"]]
    scopes += [
        r["Properties"] for r in TEMPLATE["Resources"].values() if r["Type"] == "AWS::Serverless::Function"
    ]
    for scope in scopes:
        for variable, value in scope.get("Environment", {}).get("Variables", {}).items():
            parameter = _parameter_of(value)
            if parameter:
                yield variable, parameter


class _Recording(dict[str, str]):
    """An environment that records which variables are read."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)


def _variables_settings_read() -> set[str]:
    required = {var for needs in NEEDS.values() for var in needs}
    env = _Recording({var: "1" for var in required})
    Settings.from_env(tuple(NEEDS), env)
    return env.read


def test_the_cli_table_is_the_templates_parameter_environment_that_settings_read() -> None:
    from_template = dict(_template_parameter_environment())
    read = _variables_settings_read()
    assert (
        "RESOLVER_ENDPOINTS_QUOTA" in read and "POWERTOOLS_PARAMETERS_MAX_AGE" in read
    )  # the recording works
    assert {var: p for var, p in from_template.items() if var in read} == PARAMETER_ENVIRONMENT


def _stack(**parameters: str) -> StackInfo:
    return StackInfo(
        name="s",
        status="UPDATE_COMPLETE",
        state_machine_arn="arn:sm",
        table_name="t",
        owner_tag="s",
        parameters=parameters,
    )


def test_the_cli_settings_take_every_parameter_the_functions_get() -> None:
    settings = _stack(
        DatabricksHost="https://accounts.example",
        DatabricksSecretArn="arn:secret",
        EndpointServicesJson="{}",
        MaxRemediationsPerHour="7",
        DatabricksSecretMaxAgeSeconds="60",
        RatePacing="off",
        ResolverEndpointsQuota="100",
        ResolverRequestsPerSecond="2",
        VerifierSubnetIds="subnet-1,subnet-2",
    ).settings("eu-west-1")
    assert settings == Settings(
        region="eu-west-1",
        owner_tag="s",
        table_name="t",
        state_machine_arn="arn:sm",
        databricks_host="https://accounts.example",
        databricks_secret_id="arn:secret",
        endpoint_services_json="{}",
        max_remediations_per_hour=7,
        secret_max_age_s=60,
        rate_pacing="off",
        resolver_endpoints_quota=100,
        resolver_requests_per_second=2.0,
        verifier_subnet_ids="subnet-1,subnet-2",
    )


def test_a_stack_older_than_a_parameter_leaves_the_functions_default() -> None:
    assert _stack().settings("eu-west-1") == Settings(
        region="eu-west-1", owner_tag="s", table_name="t", state_machine_arn="arn:sm"
    )


def test_a_parameter_the_functions_would_refuse_names_the_variable_and_the_fix() -> None:
    with pytest.raises(CliError) as raised:
        _stack(ResolverEndpointsQuota="0").settings("eu-west-1")
    assert "RESOLVER_ENDPOINTS_QUOTA='0'" in str(raised.value) and "--parameter-overrides" in str(
        raised.value
    )
