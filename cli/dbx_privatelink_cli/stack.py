"""Finding the deployed application: the CloudFormation stack's outputs and parameters."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dbx_privatelink.catalog import Catalog, load_catalog
from dbx_privatelink.wiring import Settings, SettingsError
from dbx_privatelink_cli.common import EXIT_FAILED, CliError, Runtime, stack_name

OWNER_TAG_KEY = "dbx-privatelink:owner"
REQUIRED_OUTPUTS = ("ReconcileStateMachineArn", "TableName")

# The functions' environment variables that template.yaml sets from a stack parameter and the settings read
# (variable -> parameter). The CLI builds the functions' settings from them; a unit test holds this table to
# the template, so a parameter added there is not silently left at its default here.
PARAMETER_ENVIRONMENT: dict[str, str] = {
    "DATABRICKS_HOST": "DatabricksHost",
    "DATABRICKS_SECRET_ID": "DatabricksSecretArn",
    "ENDPOINT_SERVICES_JSON": "EndpointServicesJson",
    "MAX_REMEDIATIONS_PER_HOUR": "MaxRemediationsPerHour",
    "POWERTOOLS_PARAMETERS_MAX_AGE": "DatabricksSecretMaxAgeSeconds",
    "RATE_PACING": "RatePacing",
    "RESOLVER_ENDPOINTS_QUOTA": "ResolverEndpointsQuota",
    "RESOLVER_REQUESTS_PER_SECOND": "ResolverRequestsPerSecond",
    "VERIFIER_SUBNET_IDS": "VerifierSubnetIds",
}


@dataclass(frozen=True)
class StackInfo:
    """What the CLI needs to know about one deployment of template.yaml."""

    name: str
    status: str
    state_machine_arn: str
    table_name: str
    owner_tag: str
    outputs: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def databricks_host(self) -> str | None:
        return self.parameters.get("DatabricksHost") or None

    @property
    def databricks_secret_arn(self) -> str | None:
        return self.parameters.get("DatabricksSecretArn") or None

    def catalog(self) -> Catalog:
        """The Databricks endpoint services the stack's functions know: the shipped catalog and the stack's
        EndpointServicesJson."""
        return load_catalog(self.parameters.get("EndpointServicesJson") or None)

    def settings(self, region: str) -> Settings:
        """The settings the stack's functions run with: the environment template.yaml gives them, built from
        the stack's outputs and parameters, read by `Settings.from_env` as the functions read theirs (plan's
        preflight judges the Resolver endpoint quota the stack was given, not the default). A parameter the
        stack lacks (deployed before it existed) leaves the functions' default."""
        environment = {
            "AWS_REGION": region,
            "OWNER_TAG": self.owner_tag,
            "TABLE_NAME": self.table_name,
            "STATE_MACHINE_ARN": self.state_machine_arn,
        }
        environment |= {
            variable: self.parameters[parameter]
            for variable, parameter in PARAMETER_ENVIRONMENT.items()
            if self.parameters.get(parameter)
        }
        try:
            return Settings.from_env((), environment)
        except SettingsError as exc:
            raise CliError(
                f"stack {self.name!r} gives its functions settings they refuse ({exc}): update the stack with a "
                "valid parameter value (sam deploy --parameter-overrides)",
                name="SettingsError",
            ) from None


def _owner_tag(outputs: dict[str, str], name: str) -> str:
    # The output reads "dbx-privatelink:owner=<stack>"; the functions tag with the value alone.
    key, sep, value = outputs.get("OwnerTag", "").partition("=")
    return value if sep and key == OWNER_TAG_KEY and value else name


def find_stack(runtime: Runtime, name: str) -> StackInfo:
    """The stack's outputs and parameters; a CliError that says what to do when it is missing or broken."""
    cfn = runtime.client("cloudformation")
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        if "does not exist" in message:
            raise CliError(
                f"stack {name!r} does not exist in {runtime.region}: deploy it with `sam deploy --stack-name "
                f"{name}`, or name the deployed stack with --stack or DBX_PRIVATELINK_STACK",
                exit_code=EXIT_FAILED,
                name="StackNotFoundError",
            ) from None
        raise CliError(f"DescribeStacks {name}: {message}", name="AwsError") from None
    except BotoCoreError as exc:
        raise CliError(f"DescribeStacks {name}: {exc}", name="AwsError") from None
    stack: dict[str, Any] = stacks[0]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    missing = [key for key in REQUIRED_OUTPUTS if not outputs.get(key)]
    status = str(stack.get("StackStatus", ""))
    if missing:
        raise CliError(
            f"stack {name!r} ({status}) has no output {', '.join(missing)}: is it a dbx-privatelink stack, and "
            "did its last deployment complete?",
            name="StackOutputsMissingError",
        )
    return StackInfo(
        name=name,
        status=status,
        state_machine_arn=outputs["ReconcileStateMachineArn"],
        table_name=outputs["TableName"],
        owner_tag=_owner_tag(outputs, name),
        outputs=outputs,
        parameters=parameters,
    )


def stack_for(args: argparse.Namespace, runtime: Runtime) -> StackInfo:
    """The stack named by --stack, DBX_PRIVATELINK_STACK or the default."""
    return find_stack(runtime, stack_name(args, runtime.env))
