"""`dbx-privatelink dns explain --vpc VPC NAME`: how a query for NAME resolves from inside VPC, step by step.

Computed from live AWS API state (Route 53 private hosted zones, Route 53 Resolver rules, associations and
endpoints, VPC endpoints with private DNS) with the same resolution logic the local stack's DNS servers
use; nothing is queried over DNS. Works against AWS and the local stack alike (boto3 honours
AWS_ENDPOINT_URL).

Exit status: 0 when the name gets an answer or leaves for a server that gives it (ANSWER, FORWARDED,
PUBLIC), 1 when it cannot resolve (NXDOMAIN, NODATA, SERVFAIL), 2 bad usage (an unknown VPC).
"""

from __future__ import annotations

import argparse
from typing import Any

from dbx_privatelink.aws.dns_state import DnsStateClient
from dbx_privatelink.dns.resolution import ResolutionPath, explain
from dbx_privatelink.errors import DbxPrivateLinkError
from dbx_privatelink_cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Runtime,
    add_common_arguments,
)
from dbx_privatelink_cli.output import emit_json, emit_lines

_RESOLVED = {"ANSWER", "FORWARDED", "PUBLIC"}
_OUTCOME_TEXT = {
    "ANSWER": "answer",
    "NODATA": "no A record (NODATA)",
    "NXDOMAIN": "NXDOMAIN",
    "FORWARDED": "forwarded: the answer is whatever the target server says",
    "PUBLIC": "left to public DNS (not queried)",
    "SERVFAIL": "SERVFAIL",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dns",
        help="explain how names resolve inside a VPC (Route 53 Resolver rules, private zones, endpoints)",
        description="DNS diagnostics computed from live AWS API state.",
    )
    commands = parser.add_subparsers(dest="dns_command", metavar="DNS_COMMAND")
    commands.required = True
    explain_parser = commands.add_parser(
        "explain",
        help="the steps a query for NAME takes from inside a VPC",
        description="Which Route 53 Resolver rule, private hosted zone or endpoint private DNS answers NAME "
        "when it is asked inside VPC, and why (the most specific match wins), hop by hop through forwarding "
        "rules and inbound endpoints, to the answer. Exit status 0 when NAME resolves or is forwarded, 1 "
        "when it cannot resolve (NXDOMAIN, NODATA, SERVFAIL).",
    )
    explain_parser.add_argument("--vpc", required=True, metavar="VPC", help="the VPC the query is asked in")
    explain_parser.add_argument("name", metavar="NAME", help="the DNS name to resolve")
    add_common_arguments(explain_parser)
    explain_parser.set_defaults(handler=run_explain)


def run_explain(args: argparse.Namespace, runtime: Runtime) -> int:
    vpc_id = str(args.vpc)
    reader = DnsStateClient(
        runtime.client("ec2"), runtime.client("route53"), runtime.client("route53resolver"), runtime.region
    )
    try:
        state = reader.read([vpc_id])
    except DbxPrivateLinkError as exc:
        raise CliError(str(exc), name=type(exc).__name__) from None
    vpc = state.vpc(vpc_id)
    if vpc is None:
        raise CliError(
            f"{vpc_id} is not a VPC of {runtime.region}: pass --vpc with a VPC id of that region (or --region)",
            exit_code=EXIT_USAGE,
            name="UsageError",
        )
    path = explain(state, vpc_id, args.name)
    if args.output == "json":
        emit_json(
            runtime.out,
            {"ok": path.outcome in _RESOLVED, "region": runtime.region, "resolver_ip": vpc.resolver_ip}
            | path.model_dump(mode="json"),
        )
    else:
        emit_lines(runtime.out, render(path, resolver_ip=vpc.resolver_ip))
    return EXIT_OK if path.outcome in _RESOLVED else EXIT_FAILED


def render(path: ResolutionPath, *, resolver_ip: str) -> list[str]:
    """The path for people: each hop, the rule or zone that won and why, the targets, the answer."""
    lines = [f"{path.name} asked in {path.vpc_id} (its Route 53 Resolver: {resolver_ip})", ""]
    for number, step in enumerate(path.steps, start=1):
        lines.append(f"{number:>2}. [{step.vpc_id}] {step.name}: {step.action} -> {step.decided_by}")
        lines.append(f"      why: {step.why}")
        if step.targets:
            via = f" via {step.via}" if step.via else ""
            lines.append(f"      targets: {', '.join(step.targets)}{via}")
    lines.append("")
    if path.cnames:
        lines.append(
            "CNAME chain: " + " -> ".join([path.cnames[0][0], *(target for _, target in path.cnames)])
        )
    answer = ", ".join(path.addresses) if path.addresses else _OUTCOME_TEXT[path.outcome]
    lines.append(f"Answer: {answer}")
    lines.append(f"Answered by: {path.answered_by}")
    lines.append(f"Because: {path.reason}")
    return lines
