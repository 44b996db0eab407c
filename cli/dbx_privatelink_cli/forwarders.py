"""`dbx-privatelink forwarders WORKSPACE --format bind|dnsmasq|unbound|windows`: the on-prem conditional
forwarder configuration sending the inbound domains to the inbound endpoint's live IPs (seed 004).

The domains come from the desired spec (dns.inbound.domains), the endpoint from the observed state
(resources.dns.inbound.resolver_endpoint_id), the IPs from Route 53 Resolver now: only ATTACHED addresses,
the ones the endpoint answers on. The configuration goes to stdout, notes to stderr.
"""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dbx_privatelink.aws.errors import error_code, map_aws_error
from dbx_privatelink.dns.forwarders import FORMATS, ForwarderInputError, ReplicationScope, header, render
from dbx_privatelink.errors import DbxPrivateLinkError
from dbx_privatelink.store import StoreClient
from dbx_privatelink_cli.common import EXIT_OK, CliError, Runtime, add_common_arguments
from dbx_privatelink_cli.output import emit_json
from dbx_privatelink_cli.stack import stack_for

# IpAddressStatus: ATTACHED is the one status in which the address answers queries; every other one is on its
# way in (CREATING, ATTACHING, REMAP_ATTACHING, UPDATING), on its way out, or failed.
LIVE_IP_STATUS = "ATTACHED"
_SCOPES: dict[str, ReplicationScope | None] = {
    "forest": "Forest",
    "domain": "Domain",
    "legacy": "Legacy",
    "none": None,
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "forwarders",
        help="print the on-prem DNS conditional forwarders for a workspace's inbound endpoint",
        description="Print the conditional forwarder configuration (BIND, dnsmasq, Unbound or Windows DNS) "
        "that sends the workspace's dns.inbound.domains to its Route 53 Resolver inbound endpoint's live IPs. "
        "Exit status 0 with the configuration on stdout; 1 when there is no inbound pattern, it is not "
        "reconciled yet, or the endpoint is gone or has no attached IP.",
    )
    parser.add_argument("workspace", metavar="WORKSPACE", help="the spec's workspace_key")
    parser.add_argument("--format", choices=FORMATS, required=True, help="the on-prem DNS server's dialect")
    parser.add_argument(
        "--replication-scope",
        choices=tuple(_SCOPES),
        default="forest",
        help="windows only: the AD replication scope of the zones; 'none' for a DNS server that is not a "
        "domain controller (default: forest)",
    )
    add_common_arguments(parser)
    parser.set_defaults(handler=run)


@dataclass
class Forwarders:
    format: str
    workspace: str
    resolver_endpoint_id: str
    domains: list[str]
    ips: list[str]
    config: str
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "workspace": self.workspace,
            "resolver_endpoint_id": self.resolver_endpoint_id,
            "domains": self.domains,
            "ips": self.ips,
            "config": self.config,
            "notes": self.notes,
        }


def _inbound(
    store: StoreClient, key: str, stack_name: str, table_name: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The spec's dns.inbound and the observed inbound endpoint record; a CliError saying what is missing."""
    try:
        desired, observed = store.get_desired(key), store.get_observed(key)
    except DbxPrivateLinkError as exc:
        raise CliError(f"cannot read the store ({table_name}): {exc}", name=type(exc).__name__) from None
    if desired is None:
        raise CliError(
            f"no workspace {key!r} in stack {stack_name}: apply its spec first (dbx-privatelink apply SPEC)",
            name="WorkspaceNotFoundError",
        )
    wanted = (desired.spec.get("dns") or {}).get("inbound")
    if not wanted:
        raise CliError(
            f"workspace {key!r} has no inbound pattern: add dns.inbound (vpc_id, subnet_ids, allowed_cidrs, "
            "domains) to its spec and apply it; on-prem forwarders point at the inbound endpoint it creates",
            name="NoInboundPatternError",
        )
    recorded = (((observed or {}).get("resources") or {}).get("dns") or {}).get("inbound") or {}
    if not recorded.get("resolver_endpoint_id"):
        raise CliError(
            f"workspace {key!r} is not reconciled yet: no inbound endpoint is recorded. Wait for the running "
            f"reconcile or start one (dbx-privatelink apply SPEC), check it with `dbx-privatelink status {key}`, "
            "then run this again",
            name="NotReconciledError",
        )
    if recorded.get("vpc_id") and recorded["vpc_id"] != wanted.get("vpc_id"):
        raise CliError(
            f"workspace {key!r} is not reconciled yet: the recorded inbound endpoint "
            f"{recorded['resolver_endpoint_id']} is in {recorded['vpc_id']}, the spec wants it in "
            f"{wanted.get('vpc_id')}. Wait for the reconcile to finish (dbx-privatelink status {key})",
            name="NotReconciledError",
        )
    return wanted, recorded


def _resolver_error(exc: Exception, operation: str, endpoint_id: str, key: str) -> CliError:
    if isinstance(exc, ClientError) and error_code(exc) == "ResourceNotFoundException":
        return _gone(endpoint_id, key, "no longer exists")
    mapped = map_aws_error(exc, f"Route 53 Resolver {operation} {endpoint_id}")
    return CliError(str(mapped), name=type(mapped).__name__)


def _gone(endpoint_id: str, key: str, what: str) -> CliError:
    return CliError(
        f"the inbound endpoint {endpoint_id} recorded for workspace {key!r} {what}: reconcile the workspace "
        "again to recreate it (dbx-privatelink apply SPEC), then run this again for its new IPs",
        name="EndpointGoneError",
    )


def live_ips(resolver: Any, endpoint_id: str, key: str) -> tuple[list[str], list[str]]:
    """The endpoint's ATTACHED IPv4 addresses (sorted) and a note for each address left out."""
    try:
        endpoint = resolver.get_resolver_endpoint(ResolverEndpointId=endpoint_id)["ResolverEndpoint"]
    except (ClientError, BotoCoreError) as exc:
        raise _resolver_error(exc, "GetResolverEndpoint", endpoint_id, key) from None
    if endpoint.get("Direction") != "INBOUND":
        raise CliError(
            f"{endpoint_id} is an {endpoint.get('Direction')} endpoint, not an inbound one: the observed state of "
            f"{key!r} is wrong; reconcile the workspace again (dbx-privatelink apply SPEC)",
            name="EndpointGoneError",
        )
    if endpoint.get("Status") == "DELETING":
        raise _gone(endpoint_id, key, "is being deleted")
    addresses: list[dict[str, Any]] = []
    try:
        for page in resolver.get_paginator("list_resolver_endpoint_ip_addresses").paginate(
            ResolverEndpointId=endpoint_id
        ):
            addresses += page.get("IpAddresses", [])
    except (ClientError, BotoCoreError) as exc:
        raise _resolver_error(exc, "ListResolverEndpointIpAddresses", endpoint_id, key) from None
    ips, notes = [], []
    for address in addresses:
        ip, status = address.get("Ip"), address.get("Status", "")
        if ip and status == LIVE_IP_STATUS:
            ips.append(ip)
        else:
            notes.append(
                f"left out {ip or address.get('Ipv6') or address.get('IpId')} in {address.get('SubnetId')}: "
                f"{status or 'no status'}" + ("" if ip else " (no IPv4 address)")
            )
    if not ips:
        raise CliError(
            f"the inbound endpoint {endpoint_id} has no {LIVE_IP_STATUS} IPv4 address yet (endpoint "
            f"{endpoint.get('Status')}; {'; '.join(notes) or 'no addresses'}): wait until it is OPERATIONAL "
            f"(dbx-privatelink status {key}) and run this again",
            name="EndpointNotReadyError",
        )
    return sorted(ips, key=ipaddress.IPv4Address), notes


def collect(runtime: Runtime, args: argparse.Namespace) -> Forwarders:
    """The configuration and what it was made from."""
    key = args.workspace
    stack = stack_for(args, runtime)
    store = StoreClient(runtime.resource("dynamodb").Table(stack.table_name))
    wanted, recorded = _inbound(store, key, stack.name, stack.table_name)
    endpoint_id = str(recorded["resolver_endpoint_id"])
    ips, notes = live_ips(runtime.client("route53resolver"), endpoint_id, key)
    domains = list(wanted.get("domains") or [])
    if recorded.get("domains") and sorted(recorded["domains"]) != sorted(domains):
        notes.append(
            f"the spec's domains ({', '.join(domains)}) differ from the last reconciled ones "
            f"({', '.join(recorded['domains'])}): a newer spec is not applied yet"
        )
    try:
        config = render(
            args.format,
            domains,
            ips,
            comment=header(key, endpoint_id, runtime.now()),
            replication_scope=_SCOPES[args.replication_scope],
        )
    except ForwarderInputError as exc:
        raise CliError(
            f"workspace {key!r}: cannot render {args.format} forwarders: {exc}", name="ForwarderInputError"
        ) from None
    return Forwarders(args.format, key, endpoint_id, domains, ips, config, notes)


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    result = collect(runtime, args)
    if args.output == "json":
        emit_json(runtime.out, result.to_json())
    else:
        runtime.out.write(result.config)
        runtime.out.flush()
        for note in result.notes:
            runtime.err.write(f"note: {note}\n")
        runtime.err.flush()
    return EXIT_OK
