"""`dbx-privatelink`: the operator CLI of the dbx-privatelink application.

Subcommands live in their own modules; each exposes `register(subparsers)`, which adds its parser (with
common.add_common_arguments for --stack/--region/--output) and sets `handler`, called as
handler(args, runtime) -> exit status. A handler that needs the deployed stack calls stack.stack_for(args,
runtime) once it has validated its own input. Adding a subcommand is one line in SUBCOMMANDS.

Exit status: 0 success, 1 the operation failed (or an execution apply --wait or destroy --wait followed
ended not SUCCEEDED), 2 bad usage or an invalid spec (nothing was started), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, NoCredentialsError

from dbx_privatelink_cli import (
    apply,
    demo,
    destroy,
    dns,
    doctor,
    drift,
    forwarders,
    local,
    plan,
    schema,
    status,
)
from dbx_privatelink_cli.common import EXIT_FAILED, EXIT_USAGE, CliError, Runtime
from dbx_privatelink_cli.output import emit_json

SUBCOMMANDS: tuple[ModuleType, ...] = (
    apply,
    plan,
    status,
    destroy,
    drift,
    forwarders,
    dns,
    demo,
    local,
    schema,
    doctor,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits itself; main returns the status instead
        raise CliError(f"{self.prog}: {message}", exit_code=EXIT_USAGE, name="UsageError")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dbx-privatelink",
        description="Put Databricks workspaces on AWS PrivateLink: one reconcile execution per workspace spec.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(
    argv: list[str] | None = None,
    *,
    session: Any = None,
    env: Mapping[str, str] | None = None,
    out: Any = None,
    err: Any = None,
    stdin: Any = None,
) -> int:
    """Run one command; returns the exit status. The keyword arguments let tests supply the world."""
    out = out or sys.stdout
    err = err or sys.stderr
    env = os.environ if env is None else env
    args: argparse.Namespace | None = None
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help and --version end here
            return int(exc.code or 0)
        runtime = Runtime(
            session=session or boto3.session.Session(),
            region_arg=getattr(args, "region", None),
            out=out,
            err=err,
            env=env,
            stdin=stdin or sys.stdin,
        )
        return int(args.handler(args, runtime))
    except CliError as exc:
        return _fail(exc, args, out, err)
    except NoCredentialsError:
        return _fail(
            CliError(
                "no AWS credentials: configure a profile or set AWS_ACCESS_KEY_ID", name="NoCredentialsError"
            ),
            args,
            out,
            err,
        )
    except BotoCoreError as exc:
        return _fail(CliError(str(exc), name=type(exc).__name__), args, out, err)
    except KeyboardInterrupt:
        err.write("\ninterrupted\n")
        return 130


def _fail(exc: CliError, args: argparse.Namespace | None, out: Any, err: Any) -> int:
    err.write(f"error: {exc}\n")
    err.flush()
    if args is not None and getattr(args, "output", "text") == "json":
        emit_json(out, {"ok": False, "error": exc.name, "message": str(exc)})
    return exc.exit_code if exc.exit_code else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
