"""`dbx-privatelink local up`: the whole local stack in the foreground, until Ctrl-C or SIGTERM.

Emulated AWS (moto) with template.yaml deployed, the Lambda functions in this process, the Databricks Account
API emulator, the seeded customer environment and a sample spec. When it is ready, stdout gets exactly one
line: LocalStackInfo as JSON (endpoint URLs, region, stack, Databricks credentials, sample spec path), so a
script can `read` it; everything for people goes to stderr, written before that line.

`--aws-rate-limits` (also taken by `demo`) turns on AWS's request-rate limits in the emulated AWS (EC2's
endpoint-mutation bucket, Route 53 Resolver's 5 requests per second, account-wide in emulated time), so a
fleet applied against the stack meets the throttling it would meet on AWS; on stop, stderr tells how many
calls they refused.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from dbx_privatelink.catalog import default_catalog
from dbx_privatelink_cli.common import DEFAULT_STACK, EXIT_OK, EXIT_USAGE, CliError, Runtime
from dbx_privatelink_cli.output import emit_lines

if TYPE_CHECKING:
    from dbx_privatelink_local.aws import LocalAwsSettings
    from dbx_privatelink_local.stack import LocalStack

DEFAULT_REGION = "us-east-1"
DEFAULT_TIME_SCALE = 0.01
MAX_TIME_SCALE = 1000.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "local",
        help="run the local stack (emulated AWS and Databricks)",
        description="The local stack: emulated AWS with the application deployed and the Databricks "
        "Account API emulator, on 127.0.0.1.",
    )
    actions = parser.add_subparsers(dest="local_command", metavar="ACTION")
    actions.required = True
    up = actions.add_parser(
        "up",
        help="run the local stack in the foreground until Ctrl-C",
        description="Start the local stack and print one JSON line on stdout when it is ready (aws_endpoint_url, "
        "region, stack_name, databricks_host, account_id, client_id, client_secret, sample_spec); hints go "
        "to stderr. Runs until SIGINT or SIGTERM, then stops cleanly (exit status 0).",
    )
    add_stack_arguments(up)
    up.add_argument(
        "--region", default=DEFAULT_REGION, help=f"the emulated AWS region (default {DEFAULT_REGION})"
    )
    up.add_argument(
        "--stack-name", default=DEFAULT_STACK, help=f"the deployed stack's name (default {DEFAULT_STACK!r})"
    )
    up.add_argument(
        "--workdir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the sample spec and environment.json are written (default: a new temporary directory)",
    )
    up.set_defaults(handler=run_up)


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """--time-scale and --aws-rate-limits, shared by `local up` and `demo`."""
    parser.add_argument(
        "--time-scale",
        type=float,
        default=DEFAULT_TIME_SCALE,
        metavar="F",
        help="factor applied to every wait and emulated delay: 0.01 makes a 60 s Wait last 0.6 s, 1 is "
        f"real time (0 < F <= {MAX_TIME_SCALE:g}; default {DEFAULT_TIME_SCALE})",
    )
    parser.add_argument(
        "--aws-rate-limits",
        action="store_true",
        help="enforce AWS's request-rate limits, per account and region in emulated time: EC2 "
        "CreateVpcEndpoint/ModifyVpcEndpoint/DeleteVpcEndpoints 4 at once then 0.3/s (RequestLimitExceeded), "
        "every Route 53 Resolver call 5/s (ThrottlingException); off by default",
    )


def aws_settings(args: argparse.Namespace) -> LocalAwsSettings:
    """The emulated AWS's settings the stack flags ask for."""
    from dbx_privatelink_local.aws import LocalAwsSettings

    return LocalAwsSettings(aws_rate_limits=bool(getattr(args, "aws_rate_limits", False)))


def rate_limit_report(stack: LocalStack) -> list[str]:
    """What the AWS rate limits refused, for stderr; nothing when they are off."""
    limits = stack.aws.rate_limits
    if not any(buckets.enabled for buckets in limits):
        return []
    refused = limits.refused()
    if not refused:
        return ["calls refused by the AWS rate limits: none"]
    counts = ", ".join(f"{operation} {n}" for operation, n in sorted(refused.items()))
    return [f"calls refused by the AWS rate limits: {sum(refused.values())} ({counts})"]


def validate_time_scale(value: float) -> float:
    if not (math.isfinite(value) and 0 < value <= MAX_TIME_SCALE):
        raise CliError(
            f"--time-scale must be greater than 0 and at most {MAX_TIME_SCALE:g} (got {value:g})",
            exit_code=EXIT_USAGE,
            name="UsageError",
        )
    return value


def validate_region(region: str) -> str:
    known = sorted(default_catalog().regions)
    if region not in known:
        raise CliError(
            f"--region {region!r}: Databricks offers no PrivateLink endpoint services there that the catalog "
            f"knows; choose one of {', '.join(known)}",
            exit_code=EXIT_USAGE,
            name="UsageError",
        )
    return region


def hints(env: dict[str, str], info: Any, rate_limits: bool = False) -> list[str]:
    """What a person needs to point boto3, the AWS CLI, the Databricks SDK and this CLI at the stack."""
    limits = "on: EC2 endpoint mutations 4 then 0.3/s, Route 53 Resolver 5/s (emulated seconds)"
    return [
        f"local stack {info.stack_name!r} is up in {info.region}:",
        f"  AWS (emulated)          {info.aws_endpoint_url}   access key testing / secret testing",
        *([f"  AWS rate limits         {limits}"] if rate_limits else []),
        f"  Databricks Account API  {info.databricks_host}   account {info.account_id}",
        f"  sample spec             {info.sample_spec}",
        "",
        "in another shell, point the AWS CLI, boto3, the Databricks SDK and dbx-privatelink at it:",
        *(f"  export {key}={value}" for key, value in env.items()),
        "then, for example:",
        "  aws ec2 describe-vpcs",
        f"  dbx-privatelink apply {info.sample_spec} --wait",
        "",
        "Ctrl-C stops the stack.",
    ]


@contextmanager
def stop_requested() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while the block runs; the previous handlers come back after it."""
    stop = threading.Event()

    def _set(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _set) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def emit_ready_line(out: Any, line: str) -> None:
    """The one stdout line of `local up`. Anything written to this process's stdout afterwards (moto prints
    warnings there, e.g. when a late EventBridge delivery invokes a Lambda function while the stack stops)
    goes to stderr instead, so scripts can rely on stdout holding that line and nothing else."""
    emit_lines(out, [line])
    if out is not sys.stdout or sys.stdout is not sys.__stdout__:
        return  # a stream handed in by a caller (tests): nothing else writes there
    # Without file descriptors to redirect (an embedded interpreter) the line is out all the same.
    with contextlib.suppress(AttributeError, OSError, io.UnsupportedOperation):
        os.dup2(sys.stderr.fileno(), out.fileno())


def wait_for(stop: threading.Event) -> None:
    # A short timeout, so the main thread returns to the interpreter and runs the signal handler promptly.
    while not stop.wait(0.2):
        pass


def start_stack(stack: LocalStack) -> None:
    """stack.start(), with a failure to start (a template that does not deploy, a port in use) told as one
    message rather than a traceback."""
    try:
        stack.start()
    except Exception as exc:  # the stack's parts raise many kinds; for the operator they mean one thing
        stack.stop()
        raise CliError(
            f"the local stack did not start: {type(exc).__name__}: {exc}", name="LocalStackStartError"
        ) from None


def run_up(args: argparse.Namespace, runtime: Runtime) -> int:
    from dbx_privatelink_local.stack import LocalStack, LocalStackConfig

    config = LocalStackConfig(
        region=validate_region(args.region),
        time_scale=validate_time_scale(args.time_scale),
        stack_name=args.stack_name,
        workdir=args.workdir,
        aws=aws_settings(args),
    )
    stack = LocalStack(config)
    with stop_requested() as stop:
        emit_lines(runtime.err, [f"starting the local stack in {config.region} ..."])
        try:
            start_stack(stack)
            info = stack.info
            # Hints first: whoever waits for the JSON line can rely on stderr being complete by then.
            emit_lines(runtime.err, hints(stack.client_environment(), info, config.aws.aws_rate_limits))
            emit_ready_line(runtime.out, info.to_json())
            wait_for(stop)
            emit_lines(runtime.err, [*rate_limit_report(stack), "stopping the local stack ..."])
        finally:
            stack.stop()
    emit_lines(runtime.err, ["stopped"])
    return EXIT_OK
