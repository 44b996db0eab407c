"""What every subcommand shares: the error that ends a command, the common flags, the AWS session, the spec
file, and the Databricks client built from the stack's secret or the environment."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from botocore.config import Config

from dbx_privatelink.aws.secrets import SecretsClient
from dbx_privatelink.databricks.client import DatabricksAccountClient
from dbx_privatelink.errors import DbxPrivateLinkError, SpecInvalidError
from dbx_privatelink.spec import WorkspaceSpec, input_problems, parse_spec
from dbx_privatelink_cli.documents import DuplicateKeyError, parse_document

DEFAULT_STACK = "dbx-privatelink"
STACK_ENV = "DBX_PRIVATELINK_STACK"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


class CliError(Exception):
    """Ends the command with a message for the operator and an exit status; `name` labels it in JSON."""

    def __init__(self, message: str, *, exit_code: int = EXIT_FAILED, name: str = "CliError") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.name = name


def add_common_arguments(parser: argparse.ArgumentParser, *, output: bool = True) -> None:
    """--stack, --region and --output, spelled the same in every subcommand."""
    parser.add_argument(
        "--stack",
        default=None,
        help=f"the deployed stack's name (default: ${STACK_ENV} or {DEFAULT_STACK!r})",
    )
    parser.add_argument(
        "--region", default=None, help="AWS region (default: $AWS_REGION or $AWS_DEFAULT_REGION)"
    )
    if output:
        parser.add_argument("--output", choices=("text", "json"), default="text", help="output format")


def add_mode_arguments(parser: argparse.ArgumentParser) -> None:
    """--mode and --delete-existing-workspace, spelled the same for destroy and plan --destroy."""
    parser.add_argument(
        "--mode",
        choices=("detach", "delete"),
        default="detach",
        help="detach (default): stop managing the workspace, delete nothing; delete: the workspace and "
        "everything the application made for it that no other workspace uses",
    )
    parser.add_argument(
        "--delete-existing-workspace",
        action="store_true",
        help="with --mode delete: also delete a workspace that existed before the application "
        "(databricks.workspace.existing_workspace_id)",
    )


def stack_name(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return str(getattr(args, "stack", None) or env.get(STACK_ENV) or DEFAULT_STACK)


@dataclass
class Runtime:
    """How a command reaches the world: the boto3 session, the environment and the streams it writes to."""

    session: Any
    region_arg: str | None = None
    out: Any = sys.stdout
    err: Any = sys.stderr
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    # Where a command asks for confirmation (destroy); a terminal, or it refuses to ask.
    stdin: Any = field(default_factory=lambda: sys.stdin)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep

    @cached_property
    def region(self) -> str:
        """--region, else AWS_REGION, AWS_DEFAULT_REGION, the profile's region; resolved on first use, so a
        command that fails on its spec never needs one."""
        region = (
            self.region_arg
            or self.env.get("AWS_REGION")
            or self.env.get("AWS_DEFAULT_REGION")
            or self.session.region_name
        )
        if not region:
            raise CliError(
                "no AWS region: pass --region or set AWS_REGION", exit_code=EXIT_USAGE, name="UsageError"
            )
        return str(region)

    def client(self, service: str) -> Any:
        # No endpoint_url here: boto3 honours AWS_ENDPOINT_URL, so the same code reaches AWS and the local stack.
        region = self.region  # first: without a region the operator gets a usage error, not a botocore one
        return self.session.client(service, region_name=region, config=BOTO_CONFIG)

    def resource(self, service: str) -> Any:
        region = self.region
        return self.session.resource(service, region_name=region, config=BOTO_CONFIG)


class RegionalSession:
    """The runtime's session with its region and client settings, in the shape the domain's Deps uses."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def client(self, service: str, region_name: str | None = None, config: Any = None) -> Any:
        region = region_name or self._runtime.region
        return self._runtime.session.client(service, region_name=region, config=config or BOTO_CONFIG)

    def resource(self, service: str, region_name: str | None = None, config: Any = None) -> Any:
        region = region_name or self._runtime.region
        return self._runtime.session.resource(service, region_name=region, config=config or BOTO_CONFIG)


def load_spec_document(path: str, stdin: Any = None) -> Any:
    """The spec file's content: JSON for *.json, YAML otherwise ("-" reads standard input); a key given twice
    is refused."""
    try:
        text = (stdin or sys.stdin).read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(
            f"{path}: cannot read the spec file ({exc.strerror})", exit_code=EXIT_USAGE, name="UsageError"
        ) from None
    try:
        return parse_document(text, is_json=path.endswith(".json"))
    except DuplicateKeyError as exc:
        raise CliError(f"{path}: {exc}", exit_code=EXIT_USAGE, name="SpecInvalidError") from None
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise CliError(
            f"{path}: not valid {'JSON' if path.endswith('.json') else 'YAML'}: {exc}",
            exit_code=EXIT_USAGE,
            name="SpecInvalidError",
        ) from None


def load_spec(path: str, stdin: Any = None) -> WorkspaceSpec:
    """Read and validate a spec locally; every problem names its field and the fix (exit status 2)."""
    document = load_spec_document(path, stdin)
    if not isinstance(document, dict):
        raise CliError(
            f"{path}: a workspace spec is a mapping (workspace_key, region, databricks, network ...), "
            f"found {type(document).__name__}",
            exit_code=EXIT_USAGE,
            name="SpecInvalidError",
        )
    try:
        spec = parse_spec(document)
    except SpecInvalidError as exc:
        raise CliError(f"{path}: {exc}", exit_code=EXIT_USAGE, name="SpecInvalidError") from None
    problems = input_problems(spec)
    if problems:
        raise CliError(
            f"{path}: Invalid workspace spec:\n- " + "\n- ".join(problems),
            exit_code=EXIT_USAGE,
            name="SpecInvalidError",
        )
    return spec


@dataclass(frozen=True)
class DatabricksAccess:
    """Where the Databricks credentials came from, and the client when there are any."""

    client: DatabricksAccountClient | None
    source: str  # "environment", "secret <arn>", or why there is no client


def databricks_access(
    runtime: Runtime, account_id: str, *, host: str | None, secret_id: str | None
) -> DatabricksAccess:
    """A Databricks client from DATABRICKS_CLIENT_ID/SECRET, else from the stack's secret; None with a reason.

    The environment wins so an operator can use their own service principal against any stack.
    """
    env = runtime.env
    host = env.get("DATABRICKS_HOST") or host
    if not host:
        return DatabricksAccess(
            None, "no Databricks host: set DATABRICKS_HOST or deploy the stack with DatabricksHost"
        )
    client_id, client_secret = env.get("DATABRICKS_CLIENT_ID"), env.get("DATABRICKS_CLIENT_SECRET")
    source = "environment (DATABRICKS_CLIENT_ID)"
    if not (client_id and client_secret):
        if not secret_id:
            return DatabricksAccess(
                None,
                "no Databricks credentials: set DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET, "
                "or deploy the stack with DatabricksSecretArn",
            )
        try:
            principal = SecretsClient(runtime.client("secretsmanager")).service_principal(secret_id)
        except DbxPrivateLinkError as exc:
            return DatabricksAccess(None, f"cannot read the Databricks secret: {exc}")
        client_id, client_secret = principal.client_id, principal.client_secret.get_secret_value()
        source = f"secret {secret_id}"
    try:
        client = DatabricksAccountClient(host, account_id, client_id, client_secret)
    except ValueError as exc:  # an http host that is not loopback: nothing was sent
        return DatabricksAccess(None, f"DATABRICKS_HOST: {exc}")
    return DatabricksAccess(client, source)
