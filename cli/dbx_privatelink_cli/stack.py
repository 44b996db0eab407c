"""Finding the deployed application: the CloudFormation stack's outputs and parameters."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dbx_privatelink.catalog import Catalog, load_catalog
from dbx_privatelink.wiring import Settings
from dbx_privatelink_cli.common import EXIT_FAILED, CliError, Runtime, stack_name

OWNER_TAG_KEY = "dbx-privatelink:owner"
REQUIRED_OUTPUTS = ("ReconcileStateMachineArn", "TableName")


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
        """The settings the stack's functions run with, as far as the CLI needs them: plan's preflight judges
        the Resolver endpoint quota the stack was given, not the default (the template's patterns make both
        numbers whole)."""
        defaults = Settings(region=region, owner_tag=self.owner_tag)
        quota = self.parameters.get("ResolverEndpointsQuota")
        rate = self.parameters.get("ResolverRequestsPerSecond")
        return defaults._replace(
            table_name=self.table_name,
            databricks_host=self.databricks_host or "",
            databricks_secret_id=self.databricks_secret_arn or "",
            endpoint_services_json=self.parameters.get("EndpointServicesJson", ""),
            state_machine_arn=self.state_machine_arn,
            resolver_endpoints_quota=int(quota) if quota else defaults.resolver_endpoints_quota,
            resolver_requests_per_second=float(rate) if rate else defaults.resolver_requests_per_second,
        )


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
