"""The DNS state adapter: reads what Route 53 Resolver decides with, for one region, into `DnsState`.

Read-only. Sources: EC2 (VPC CIDRs; interface endpoints with their DnsEntries, network interface IPs and
the service's private DNS names), Route 53 (private hosted zones associated with each VPC, their records),
Route 53 Resolver (rules, rule associations, endpoints and their IPs).

An endpoint's private DNS names are the DnsEntries that are not endpoint-specific names, together with the
service's PrivateDnsNames (DescribeVpcEndpointServices): AWS lists the private name in DnsEntries once
private DNS is on, and the service names it before that; taking both keeps the answer right either way.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from dbx_privatelink.aws.errors import error_code, map_aws_error
from dbx_privatelink.dns.names import normalize
from dbx_privatelink.dns.resolution import (
    DnsRecord,
    DnsState,
    EndpointDns,
    PrivateZone,
    ResolverEndpoint,
    ResolverRule,
    RuleAssociation,
    TargetAddress,
    Vpc,
)


@contextmanager
def _mapped(operation: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        raise map_aws_error(exc, operation) from exc


def _pages(client: Any, operation: str, key: str, **params: Any) -> list[Any]:
    items: list[Any] = []
    for page in client.get_paginator(operation).paginate(**params):
        items.extend(page.get(key, []))
    return items


def _endpoint_specific(name: str, endpoint_id: str) -> bool:
    """True for the names AWS gives one endpoint (vpce-...-xxxx.<service>.vpce.amazonaws.com, and zonal
    variants): they start with the endpoint id."""
    return normalize(name).startswith(endpoint_id + "-") or normalize(name).startswith(endpoint_id + ".")


class DnsStateClient:
    """Reads the resolver-relevant state of one region; every botocore error leaves as a domain error."""

    def __init__(self, ec2: Any, route53: Any, route53resolver: Any, region: str) -> None:
        self._ec2 = ec2
        self._route53 = route53
        self._resolver = route53resolver
        self.region = region

    @classmethod
    def from_session(cls, session: Any, region: str, **client_kwargs: Any) -> DnsStateClient:
        """Clients from a boto3 session (boto3 honours AWS_ENDPOINT_URL, or pass endpoint_url)."""
        return cls(
            session.client("ec2", region_name=region, **client_kwargs),
            session.client("route53", region_name=region, **client_kwargs),
            session.client("route53resolver", region_name=region, **client_kwargs),
            region,
        )

    def read(self, vpc_ids: Sequence[str] | None = None) -> DnsState:
        """The region's state, read now; with `vpc_ids`, only what resolution from those VPCs can reach:
        their zones, endpoints and rule associations and those of the VPCs holding inbound Resolver endpoints
        (a query forwarded to an inbound endpoint resolves there). A fleet's region holds many VPCs: reading
        every VPC's zones to answer for one would cost a call per VPC."""
        vpcs = self.vpcs()
        resolver_endpoints = self.resolver_endpoints()
        if vpc_ids is None:
            scope = [v.vpc_id for v in vpcs]
        else:
            inbound = {e.vpc_id for e in resolver_endpoints if e.direction == "INBOUND"}
            scope = sorted({*vpc_ids, *inbound})
        return DnsState(
            region=self.region,
            vpcs=tuple(vpcs),
            zones=tuple(self.private_zones(scope)),
            endpoints=tuple(self.endpoints(None if vpc_ids is None else scope)),
            rules=tuple(self.rules()),
            associations=tuple(a for a in self.associations() if vpc_ids is None or a.vpc_id in scope),
            resolver_endpoints=tuple(resolver_endpoints),
        )

    # --- EC2 ---

    def vpcs(self) -> list[Vpc]:
        with _mapped("DescribeVpcs"):
            raw = _pages(self._ec2, "describe_vpcs", "Vpcs")
        found = []
        for vpc in raw:
            cidrs = [vpc["CidrBlock"]]
            for assoc in vpc.get("CidrBlockAssociationSet", []):
                state = assoc.get("CidrBlockState", {}).get("State", "associated")
                if assoc.get("CidrBlock") and assoc["CidrBlock"] not in cidrs and state == "associated":
                    cidrs.append(assoc["CidrBlock"])
            found.append(Vpc(vpc_id=vpc["VpcId"], cidr_blocks=tuple(cidrs)))
        return sorted(found, key=lambda v: v.vpc_id)

    def endpoints(self, vpc_ids: Sequence[str] | None = None) -> list[EndpointDns]:
        """Interface endpoints (of `vpc_ids`, or all) with their DNS names and network interface IPs."""
        if vpc_ids is not None and not vpc_ids:
            return []
        filters = [{"Name": "vpc-id", "Values": list(vpc_ids)}] if vpc_ids is not None else []
        with _mapped("DescribeVpcEndpoints"):
            raw = [
                e
                for e in _pages(self._ec2, "describe_vpc_endpoints", "VpcEndpoints", Filters=filters)
                if e.get("VpcEndpointType", "Interface") == "Interface"
                and (vpc_ids is None or e.get("VpcId") in vpc_ids)
            ]
        eni_ips = self._eni_ips([i for e in raw for i in e.get("NetworkInterfaceIds", [])])
        service_names = self._service_private_names(
            sorted({e["ServiceName"] for e in raw if e.get("PrivateDnsEnabled")})
        )
        found = []
        for e in raw:
            endpoint_id = e["VpcEndpointId"]
            entries = [normalize(d["DnsName"]) for d in e.get("DnsEntries", []) if d.get("DnsName")]
            private = [n for n in entries if not _endpoint_specific(n, endpoint_id)]
            if e.get("PrivateDnsEnabled"):
                private += service_names.get(e["ServiceName"], [])
            found.append(
                EndpointDns(
                    endpoint_id=endpoint_id,
                    vpc_id=e["VpcId"],
                    service_name=e["ServiceName"],
                    state=str(e.get("State", "")),
                    private_dns_enabled=bool(e.get("PrivateDnsEnabled", False)),
                    private_dns_names=tuple(sorted(set(private))),
                    dns_names=tuple(n for n in entries if _endpoint_specific(n, endpoint_id)),
                    ips=tuple(ip for i in e.get("NetworkInterfaceIds", []) for ip in eni_ips.get(i, [])),
                )
            )
        return found

    def _eni_ips(self, eni_ids: list[str]) -> dict[str, list[str]]:
        if not eni_ids:
            return {}
        with _mapped("DescribeNetworkInterfaces"):
            # A filter, not NetworkInterfaceIds: an interface deleted meanwhile must not fail the read.
            raw = _pages(
                self._ec2,
                "describe_network_interfaces",
                "NetworkInterfaces",
                Filters=[{"Name": "network-interface-id", "Values": eni_ids}],
            )
        ips: dict[str, list[str]] = {}
        for eni in raw:
            addresses = [a["PrivateIpAddress"] for a in eni.get("PrivateIpAddresses", []) if a.get("Primary")]
            ips[eni["NetworkInterfaceId"]] = addresses or [eni["PrivateIpAddress"]]
        return ips

    def _service_private_names(self, service_names: list[str]) -> dict[str, list[str]]:
        """Each service's private DNS names; services EC2 does not know (here) are simply absent."""
        if not service_names:
            return {}
        try:
            details = self._ec2.describe_vpc_endpoint_services(ServiceNames=service_names)["ServiceDetails"]
        except ClientError as exc:
            if error_code(exc) != "InvalidServiceName":
                raise map_aws_error(exc, "DescribeVpcEndpointServices") from exc
            if len(service_names) == 1:
                return {}
            # One unknown name fails the whole call: ask for each name alone.
            found: dict[str, list[str]] = {}
            for name in service_names:
                found.update(self._service_private_names([name]))
            return found
        except (BotoCoreError, ResponseParserError) as exc:
            raise map_aws_error(exc, "DescribeVpcEndpointServices") from exc
        names: dict[str, list[str]] = {}
        for d in details:
            listed = [p["PrivateDnsName"] for p in d.get("PrivateDnsNames", []) if p.get("PrivateDnsName")]
            if d.get("PrivateDnsName"):
                listed.append(d["PrivateDnsName"])
            if d["ServiceName"] in service_names and listed:
                names[d["ServiceName"]] = sorted({normalize(n) for n in listed})
        return names

    # --- Route 53 ---

    def private_zones(self, vpc_ids: list[str]) -> list[PrivateZone]:
        """Private hosted zones associated with any of `vpc_ids` (in this region), with their records."""
        zone_vpcs: dict[str, set[str]] = {}
        zone_names: dict[str, str] = {}
        for vpc_id in vpc_ids:
            for summary in self._zones_of(vpc_id):
                zone_id = summary["HostedZoneId"].rsplit("/", 1)[-1]
                zone_vpcs.setdefault(zone_id, set()).add(vpc_id)
                zone_names[zone_id] = summary["Name"]
        return [
            PrivateZone(
                zone_id=zone_id,
                name=zone_names[zone_id],
                vpc_ids=frozenset(vpcs),
                records=tuple(self.records(zone_id)),
            )
            for zone_id, vpcs in sorted(zone_vpcs.items())
        ]

    def _zones_of(self, vpc_id: str) -> list[dict[str, Any]]:
        summaries: list[dict[str, Any]] = []
        params: dict[str, Any] = {"VPCId": vpc_id, "VPCRegion": self.region}
        with _mapped("ListHostedZonesByVPC"):
            while True:
                page = self._route53.list_hosted_zones_by_vpc(**params)
                summaries.extend(page.get("HostedZoneSummaries", []))
                token = page.get("NextToken")
                if not token:
                    return summaries
                params["NextToken"] = token

    def records(self, zone_id: str) -> list[DnsRecord]:
        with _mapped("ListResourceRecordSets"):
            raw = _pages(
                self._route53, "list_resource_record_sets", "ResourceRecordSets", HostedZoneId=zone_id
            )
        return [
            DnsRecord(
                name=r["Name"],
                record_type=r["Type"],
                values=tuple(v["Value"] for v in r.get("ResourceRecords", [])),
                alias_target=(r.get("AliasTarget") or {}).get("DNSName"),
            )
            for r in raw
        ]

    # --- Route 53 Resolver ---

    def rules(self) -> list[ResolverRule]:
        with _mapped("ListResolverRules"):
            raw = _pages(self._resolver, "list_resolver_rules", "ResolverRules")
        return [
            ResolverRule(
                rule_id=r["Id"],
                domain=r.get("DomainName", "."),
                rule_type=r["RuleType"],
                name=r.get("Name", ""),
                targets=tuple(
                    TargetAddress(ip=t["Ip"], port=int(t.get("Port", 53)))
                    for t in r.get("TargetIps", [])
                    if "Ip" in t
                ),
                resolver_endpoint_id=r.get("ResolverEndpointId"),
                status=r.get("Status", "COMPLETE"),
            )
            for r in raw
        ]

    def associations(self) -> list[RuleAssociation]:
        with _mapped("ListResolverRuleAssociations"):
            raw = _pages(self._resolver, "list_resolver_rule_associations", "ResolverRuleAssociations")
        return [
            RuleAssociation(
                rule_id=a["ResolverRuleId"],
                vpc_id=a["VPCId"],
                status=a.get("Status", "COMPLETE"),
                association_id=a.get("Id", ""),
            )
            for a in raw
        ]

    def resolver_endpoints(self) -> list[ResolverEndpoint]:
        with _mapped("ListResolverEndpoints"):
            raw = _pages(self._resolver, "list_resolver_endpoints", "ResolverEndpoints")
        found = []
        for e in raw:
            ips: list[dict[str, Any]] = []
            # Resolution needs an inbound endpoint's IPs (a rule's targets may be them); an outbound
            # endpoint's only send: a fleet's region holds many, and they would cost a call each.
            if e["Direction"] == "INBOUND":
                with _mapped("ListResolverEndpointIpAddresses"):
                    ips = _pages(
                        self._resolver,
                        "list_resolver_endpoint_ip_addresses",
                        "IpAddresses",
                        ResolverEndpointId=e["Id"],
                    )
            found.append(
                ResolverEndpoint(
                    endpoint_id=e["Id"],
                    direction=e["Direction"],
                    vpc_id=e["HostVPCId"],
                    ips=tuple(i["Ip"] for i in ips if i.get("Ip") and _is_ipv4(i["Ip"])),
                    status=e.get("Status", ""),
                    name=e.get("Name", ""),
                    protocols=tuple(e.get("Protocols") or ("Do53",)),
                )
            )
        return found


def _is_ipv4(value: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
    except ValueError:
        return False
