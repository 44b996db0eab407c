"""`dbx-privatelink demo`: the local stack, the sample workspace applied twice, and what now exists.

The stack runs in this process (LocalStack). Both applies go through `apply --wait` itself (apply.run) with
this process's environment pointed at the stack, exactly as an operator's shell would be after the `export`
lines `local up` prints. The summary is read live from the emulated EC2 and the Databricks emulator's API,
not from the execution's output; the second apply proves idempotency by the mutating calls it caused on
each side (CloudTrail events for AWS, the emulator's request log for Databricks; token requests excluded).
Then the drift act (drift_demo.py) breaks the workspace by hand and narrates detection and repair.

Exit status 0 only when both applies SUCCEEDED, the second changed nothing and every drift was repaired.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from dbx_privatelink.catalog import default_catalog
from dbx_privatelink.errors import DbxPrivateLinkError
from dbx_privatelink_cli import apply
from dbx_privatelink_cli.common import EXIT_FAILED, EXIT_OK, CliError, Runtime, databricks_access, load_spec
from dbx_privatelink_cli.drift_demo import run_drift_demo
from dbx_privatelink_cli.local import (
    add_stack_arguments,
    aws_settings,
    emit_ready_line,
    hints,
    rate_limit_report,
    start_stack,
    stop_requested,
    validate_time_scale,
    wait_for,
)
from dbx_privatelink_cli.output import emit_lines, heading, table
from dbx_privatelink_cli.progress import duration

if TYPE_CHECKING:
    from dbx_privatelink.spec import WorkspaceSpec
    from dbx_privatelink_local.stack import LocalStack

MUTATING_HTTP = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ACCOUNT_PREFIX = "/api/2.0/accounts/{account_id}"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="reconcile the sample workspace on the local stack, twice",
        description="Bring up the local stack in this process, apply the sample spec with `apply --wait`, "
        "show what now exists (read live from the emulated AWS and Databricks), then apply it again and "
        "count the mutating calls (none expected); then break the workspace by hand and watch the drift "
        "detected and repaired. Exit status 0 only when both applies SUCCEEDED, the second changed nothing "
        "and every drift was repaired.",
    )
    add_stack_arguments(parser)
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="keep the stack up afterwards (prints the `local up` JSON line on stdout) until Ctrl-C",
    )
    parser.set_defaults(handler=run)


# --- the environment of this process ------------------------------------------------------------------


@contextmanager
def pointed_at(env: Mapping[str, str]) -> Iterator[None]:
    """os.environ with `env` set for the block (boto3 reads AWS_ENDPOINT_URL from it), then as it was."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- counting what a run changed ----------------------------------------------------------------------


def aws_mutations(stack: LocalStack) -> Counter[str]:
    """Mutating EC2 / Route 53 calls so far, by name (every CloudTrail event the stack recorded)."""
    stack.aws.cloudtrail.flush()  # CloudTrail is late on purpose; the count must not be
    return Counter(str(e["detail"]["eventName"]) for e in stack.aws.cloudtrail.events())


def databricks_mutations(stack: LocalStack) -> Counter[str]:
    """Mutating Account API requests so far, by "METHOD /path"; OAuth token requests left out."""
    return Counter(
        {
            op: n
            for op, n in stack.emulator.calls_by_operation().items()
            if op.split(" ", 1)[0] in MUTATING_HTTP and "/oidc/" not in op
        }
    )


def describe_counts(counts: Counter[str]) -> str:
    """ "5 (CreateVpcEndpoint x3, POST /networks, ...)"; Account API paths without their common prefix."""
    if not counts:
        return "0"
    names = Counter({name.replace(ACCOUNT_PREFIX, ""): n for name, n in counts.items()})
    detail = ", ".join(f"{name} x{n}" if n > 1 else name for name, n in sorted(names.items()))
    return f"{counts.total()} ({detail})"


# --- what exists, read live ---------------------------------------------------------------------------


def endpoint_rows(ec2: Any, spec: WorkspaceSpec) -> tuple[list[list[str]], dict[str, str]]:
    """The VPC's endpoints as rows (role, id, service, state, private DNS), and role per AWS endpoint id."""
    services = default_catalog().region(spec.region)
    found = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [spec.network.vpc_id]}])[
        "VpcEndpoints"
    ]
    dns_names = _private_dns_names(ec2, sorted({str(e["ServiceName"]) for e in found}))
    rows: list[list[str]] = []
    roles: dict[str, str] = {}
    for endpoint in sorted(found, key=lambda e: str(e["ServiceName"])):
        state = str(endpoint.get("State", "")).lower()
        if state in ("deleted", "deleting"):
            continue
        service = str(endpoint["ServiceName"])
        use_case = services.use_case_of(service) if services else None
        role = {"WORKSPACE_ACCESS": "workspace", "DATAPLANE_RELAY_ACCESS": "relay"}.get(
            use_case or "", service.rsplit(".", 1)[-1]
        )
        roles[str(endpoint["VpcEndpointId"])] = role
        if endpoint.get("VpcEndpointType") == "Gateway":
            dns = "n/a (gateway)"
        elif endpoint.get("PrivateDnsEnabled"):
            name = dns_names.get(service)
            dns = f"on ({name})" if name else "on"
        else:
            dns = "off"
        rows.append([role, str(endpoint["VpcEndpointId"]), service, state, dns])
    order = {"workspace": 0, "relay": 1}
    rows.sort(key=lambda r: (order.get(r[0], 2), r[0]))
    return rows, roles


def _private_dns_names(ec2: Any, service_names: list[str]) -> dict[str, str]:
    """The private DNS name each endpoint service offers (DescribeVpcEndpointServices)."""
    if not service_names:
        return {}
    try:
        described = ec2.describe_vpc_endpoint_services(ServiceNames=service_names)["ServiceDetails"]
    except ClientError:
        return {}  # the names only decorate the summary
    return {str(d["ServiceName"]): str(d["PrivateDnsName"]) for d in described if d.get("PrivateDnsName")}


def live_summary(runtime: Runtime, stack: LocalStack, spec: WorkspaceSpec) -> tuple[list[str], bool]:
    """What now exists, read from EC2 and the Account API; True when everything is in its good state."""
    lines: list[str] = []
    ec2 = runtime.client("ec2")
    rows, roles = endpoint_rows(ec2, spec)
    good = {f"{r[0]} endpoint": r[3] == "available" for r in rows if r[0] in ("workspace", "relay")}
    lines += [heading(f"VPC endpoints in {spec.network.vpc_id} (EC2)")]
    lines += table([["ROLE", "ID", "SERVICE", "STATE", "PRIVATE DNS"], *rows])

    info = stack.info
    access = databricks_access(runtime, info.account_id, host=info.databricks_host, secret_id=None)
    if access.client is None:
        raise CliError(f"cannot read the Databricks emulator: {access.source}")
    client = access.client
    try:
        registrations = [r for r in client.list_vpc_endpoints() if r.aws_vpc_endpoint_id in roles]
        workspaces = [
            w
            for w in client.list_workspaces()
            if w.workspace_name == _workspace_name(spec) or _is_target(w, spec)
        ]
        workspace = workspaces[0] if workspaces else None
        pas = (
            client.get_private_access_settings(workspace.private_access_settings_id)
            if workspace and workspace.private_access_settings_id
            else None
        )
        network = client.get_network(workspace.network_id) if workspace and workspace.network_id else None
    except DbxPrivateLinkError as exc:
        raise CliError(f"reading the Databricks emulator: {exc}", name=type(exc).__name__) from None

    lines += ["", heading(f"Databricks account {info.account_id} (Account API at {info.databricks_host})")]
    rows = [["KIND", "ID", "DETAIL", "STATE"]]
    for r in sorted(registrations, key=lambda r: r.use_case or ""):
        rows.append(
            [
                "registration",
                r.vpc_endpoint_id,
                f"{r.use_case} for {r.aws_vpc_endpoint_id} ({roles[r.aws_vpc_endpoint_id]})",
                str(r.state),
            ]
        )
        good[f"registration {r.use_case}"] = r.state == "available"
    if pas is not None:
        rows.append(
            [
                "private access",
                pas.private_access_settings_id,
                f"level {pas.private_access_level}, public access {'on' if pas.public_access_enabled else 'off'}",
                "",
            ]
        )
    if network is not None:
        rows.append(
            [
                "network",
                network.network_id,
                f"rest_api {','.join(network.vpc_endpoints.rest_api) or '-'}, relay "
                f"{','.join(network.vpc_endpoints.dataplane_relay) or '-'}",
                f"vpc_status {network.vpc_status}",
            ]
        )
        good["network"] = network.vpc_status == "VALID"
    if workspace is not None:
        rows.append(
            [
                "workspace",
                str(workspace.workspace_id),
                f"{workspace.workspace_name}, deployment {workspace.deployment_name or '-'}",
                str(workspace.workspace_status),
            ]
        )
        good["workspace"] = workspace.workspace_status == "RUNNING"
    lines += table(rows)
    expected = {"workspace endpoint", "relay endpoint", "network", "workspace"}
    complete = expected <= good.keys() and len(registrations) >= 2
    return lines, complete and all(good.values())


def _workspace_name(spec: WorkspaceSpec) -> str | None:
    return spec.databricks.workspace.name


def _is_target(workspace: Any, spec: WorkspaceSpec) -> bool:
    existing = spec.databricks.workspace.existing_workspace_id
    return existing is not None and workspace.workspace_id == existing


# --- the demo -----------------------------------------------------------------------------------------


def intro(stack: LocalStack) -> list[str]:
    info, env = stack.info, stack.environment
    assert env is not None
    scale = stack.config.time_scale
    return [
        heading("dbx-privatelink demo: the sample workspace on the local stack"),
        f"Everything below runs in this process, on 127.0.0.1, at time scale {scale:g}: every wait and "
        f"emulated delay lasts {scale:g} of its real length (a 60 s Wait: {60 * scale:g} s).",
        "",
        f"  AWS         {info.aws_endpoint_url}  moto, region {info.region}, access key testing/testing",
        f"              CloudFormation stack {info.stack_name!r} deployed from template.yaml: Step Functions,",
        "              the Lambda functions (run in this process), DynamoDB; EC2 with VPC endpoints that",
        "              need acceptance, Secrets Manager, CloudTrail events -> EventBridge",
        f"  Databricks  {info.databricks_host}  Account API emulator, account {info.account_id}",
        f"  customer    VPC {env.vpc_id} (10.0.0.0/22): workspace subnets {', '.join(env.workspace_subnet_ids)},",
        f"              endpoint subnet {env.endpoint_subnet_id}, groups {env.workspace_sg_id} (workspace) and "
        f"{env.endpoint_sg_id} (endpoints);",
        f"              standby set {', '.join([*env.standby_subnet_ids, env.standby_sg_id])} (network.standby);",
        f"              Databricks credentials {env.credentials_id}, storage {env.storage_configuration_id}",
        f"  spec        {info.sample_spec}",
        "",
    ]


def apply_once(
    runtime: Runtime, stack: LocalStack, label: str
) -> tuple[int, float, Counter[str], Counter[str]]:
    """One `apply SPEC --wait` with the progress view; its exit status, seconds, and mutating calls."""
    info = stack.info
    emit_lines(runtime.out, [heading(f"{label}: dbx-privatelink apply {info.sample_spec} --wait"), ""])
    aws_before, dbx_before = aws_mutations(stack), databricks_mutations(stack)
    args = argparse.Namespace(
        spec=info.sample_spec,
        specs=[info.sample_spec],
        stack=info.stack_name,
        region=info.region,
        output="text",
        wait=True,
        timeout=None,
        verbose=False,
    )
    began = time.monotonic()
    try:
        status = apply.run(args, runtime)
    except CliError as exc:
        emit_lines(runtime.out, [f"apply failed: {exc}"])
        status = exc.exit_code or EXIT_FAILED
    took = time.monotonic() - began
    return status, took, aws_mutations(stack) - aws_before, databricks_mutations(stack) - dbx_before


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    from dbx_privatelink_local.stack import LocalStack, LocalStackConfig

    stack = LocalStack(
        LocalStackConfig(time_scale=validate_time_scale(args.time_scale), aws=aws_settings(args))
    )
    out = runtime.out
    emit_lines(runtime.err, ["starting the local stack ..."])
    began = time.monotonic()
    try:
        start_stack(stack)
        emit_lines(runtime.err, [f"local stack ready in {duration(time.monotonic() - began)}"])
        env = stack.client_environment()
        with pointed_at(env):
            local = Runtime(
                session=boto3.session.Session(),
                region_arg=stack.info.region,
                out=out,
                err=runtime.err,
                env=os.environ,
                sleep=runtime.sleep,
            )
            emit_lines(out, intro(stack))
            first, took, aws_first, dbx_first = apply_once(local, stack, "1. apply")
            spec = load_spec(stack.info.sample_spec)
            summary, healthy = live_summary(local, stack, spec)
            emit_lines(
                out,
                [
                    "",
                    heading("What now exists (read live from the emulated EC2 and the Account API)"),
                    "",
                    *summary,
                    "",
                    f"first apply: {'SUCCEEDED' if first == EXIT_OK else 'did not succeed'} in "
                    f"{duration(took)}",
                    f"  mutating AWS calls:        {describe_counts(aws_first)}",
                    f"  mutating Databricks calls: {describe_counts(dbx_first)}",
                    "",
                ],
            )
            second, took2, aws_second, dbx_second = apply_once(local, stack, "2. apply again")
            unchanged = not aws_second and not dbx_second
            emit_lines(
                out,
                [
                    "",
                    heading("Idempotency: the same spec applied again"),
                    f"second apply: {'SUCCEEDED' if second == EXIT_OK else 'did not succeed'} in "
                    f"{duration(took2)}",
                    f"  mutating AWS calls:        {describe_counts(aws_second)}",
                    f"  mutating Databricks calls: {describe_counts(dbx_second)}",
                    "  => no change: nothing was created, modified or deleted on either side"
                    if unchanged
                    else "  => CHANGED: the second apply should have changed nothing",
                    "",
                ],
            )
            repaired = run_drift_demo(stack, out)
            ok = first == EXIT_OK and second == EXIT_OK and unchanged and repaired
            emit_lines(
                out,
                [
                    *rate_limit_report(stack),
                    f"demo {'done' if ok else 'FAILED'} in {duration(time.monotonic() - began)}"
                    + ("" if healthy else " (some resources were not in their good state when read)"),
                ],
            )
            if args.keep_running:
                keep_running(runtime, stack)
        return EXIT_OK if ok else EXIT_FAILED
    finally:
        stack.stop()


def keep_running(runtime: Runtime, stack: LocalStack) -> None:
    """Until SIGINT or SIGTERM: the `local up` JSON line on stdout, the hints on stderr."""
    with stop_requested() as stop:
        emit_lines(
            runtime.err,
            ["", *hints(stack.client_environment(), stack.info, stack.config.aws.aws_rate_limits)],
        )
        emit_ready_line(runtime.out, stack.info.to_json())
        wait_for(stop)
        emit_lines(runtime.err, ["stopping the local stack ..."])
