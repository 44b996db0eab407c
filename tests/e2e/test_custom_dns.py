"""Custom DNS end to end on the local stack: the real template, ASL and Lambda code, Route 53 Resolver in moto."""

from __future__ import annotations

import io
import ipaddress
import json
from typing import Any

import pytest

from dbx_privatelink.aws.dns_state import DnsStateClient
from dbx_privatelink.catalog import default_catalog
from dbx_privatelink.dns.resolution import explain
from dbx_privatelink_cli.main import main as cli
from dbx_privatelink_local.seed import DataPlane
from dbx_privatelink_local.stack import LocalStack

from .conftest import Reconciler, free_subnets, spec_for

pytestmark = pytest.mark.e2e

RESOLVER_WRITES = {
    "CreateResolverEndpoint",
    "CreateResolverRule",
    "UpdateResolverRule",
    "AssociateResolverRule",
    "TagResource",
    "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "RevokeSecurityGroupIngress",
}


def _custom_dns(stack: LocalStack, plane: DataPlane) -> dict[str, Any]:
    env = stack.environment
    assert env is not None
    return {
        "custom_dns": {
            "dns_vpc_id": env.dns_vpc_id,
            "resolver_subnet_ids": env.dns_subnet_ids,
            "allowed_cidrs": [plane.cidr],
            "corporate_dns_ips": env.corporate_dns_ips,
        }
    }


def private_zone(stack: LocalStack, name: str, vpc_ids: list[str], records: dict[str, str]) -> str:
    """A private hosted zone associated with `vpc_ids`, with A records {name: address}; returns its id."""
    route53 = stack.client("route53")
    [first, *others] = [{"VPCRegion": stack.config.region, "VPCId": v} for v in vpc_ids]
    zone_id: str = route53.create_hosted_zone(
        Name=name,
        CallerReference=f"{name}-{first['VPCId']}",
        VPC=first,
        HostedZoneConfig={"Comment": "names only its VPCs resolve", "PrivateZone": True},
    )["HostedZone"]["Id"].rsplit("/", 1)[-1]
    for vpc in others:
        route53.associate_vpc_with_hosted_zone(HostedZoneId=zone_id, VPC=vpc)
    changes = [
        {
            "Action": "UPSERT",
            "ResourceRecordSet": {"Name": n, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": a}]},
        }
        for n, a in records.items()
    ]
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return zone_id


def _workspace_name(region: str) -> str:
    services = default_catalog().region(region)
    assert services is not None
    return services.private_dns_name


def _inbound_subnets(stack: LocalStack, plane: DataPlane) -> list[str]:
    """Two subnets for the inbound endpoint in the data-plane VPC's free first quarter, in two AZs."""
    ec2 = stack.client("ec2")
    azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    halves = free_subnets(plane, 25)
    return [
        ec2.create_subnet(VpcId=plane.vpc_id, CidrBlock=halves[i], AvailabilityZone=azs[i])["Subnet"][
            "SubnetId"
        ]
        for i in range(2)
    ]


def test_custom_dns_resolver_setup_as_the_walkthrough_leaves_it(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    # Given the sample workspace with custom DNS in the seeded DNS VPC
    env = stack.environment
    assert env is not None
    spec = spec_for(stack, data_plane, "dns-ws")
    spec["dns"] = _custom_dns(stack, data_plane)
    # When it is reconciled
    run = reconciler.run(spec)
    # Then the execution succeeded with the seed's Route 53 Resolver setup
    assert run.status == "SUCCEEDED", run.cause
    dns = run.output["summary"]["dns"]
    r53r, ec2 = stack.client("route53resolver"), stack.client("ec2")
    outbound = dns["outbound_endpoint"]
    endpoint = r53r.get_resolver_endpoint(ResolverEndpointId=outbound["resolver_endpoint_id"])[
        "ResolverEndpoint"
    ]
    assert endpoint["Direction"] == "OUTBOUND" and endpoint["HostVPCId"] == env.dns_vpc_id
    addresses = r53r.list_resolver_endpoint_ip_addresses(ResolverEndpointId=endpoint["Id"])["IpAddresses"]
    assert sorted(a["Ip"] for a in addresses) == sorted(outbound["ips"]) and len(outbound["ips"]) == 2
    subnets = ec2.describe_subnets(SubnetIds=[a["SubnetId"] for a in addresses])["Subnets"]
    assert len({s["AvailabilityZone"] for s in subnets}) == 2
    forward = r53r.get_resolver_rule(ResolverRuleId=dns["forward_rule_id"])["ResolverRule"]
    assert forward["RuleType"] == "FORWARD" and forward["DomainName"].rstrip(".") == ""
    assert forward["ResolverEndpointId"] == endpoint["Id"]
    assert sorted(t["Ip"] for t in forward["TargetIps"]) == sorted(env.corporate_dns_ips)
    [aws_rule_id] = dns["aws_rule_ids"]
    aws_rule = r53r.get_resolver_rule(ResolverRuleId=aws_rule_id)["ResolverRule"]
    assert aws_rule["RuleType"] == "SYSTEM" and aws_rule["DomainName"].rstrip(".") == "amazonaws.com"
    associated = r53r.list_resolver_rule_associations(
        Filters=[{"Name": "VPCId", "Values": [data_plane.vpc_id]}]
    )["ResolverRuleAssociations"]
    assert {a["ResolverRuleId"] for a in associated} == {dns["forward_rule_id"], aws_rule_id}
    # and VerifyDns (pointed at the stack's loopback resolvers) found the workspace name on its endpoint
    verification = dns["verification"]
    assert verification["status"] == "verified", verification
    workspace = next(n for n in verification["names"] if n["name"] == _workspace_name(env.region))
    assert (
        workspace["ok"] and set(workspace["answers"]) <= set(workspace["expected"]) and workspace["answers"]
    )

    # When the same spec is applied again, then no Resolver or security-group write is made
    again = reconciler.run(spec)
    assert again.status == "SUCCEEDED", again.cause
    assert not (set(again.aws_mutations) & RESOLVER_WRITES), again.aws_mutations
    assert not again.aws_mutations, again.aws_mutations
    assert again.output["summary"]["dns"]["forward_rule_id"] == dns["forward_rule_id"]
    # (a converged re-apply takes the short path: every resource is reported unchanged, none looked up again)
    assert {a["action"] for a in again.output["summary"]["dns"]["associations"]} == {"unchanged"}


def _status(stack: LocalStack, monkeypatch: pytest.MonkeyPatch, key: str) -> tuple[int, dict[str, Any], str]:
    """`dbx-privatelink status KEY` against the local stack: exit status, its JSON and its text."""
    env = stack.client_environment()
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # boto3 reads AWS_ENDPOINT_URL from the process environment
    outputs = []
    for output in ("json", "text"):
        out, err = io.StringIO(), io.StringIO()
        code = cli(["status", key, "--output", output], env=env, out=out, err=err)
        assert code in (0, 1), err.getvalue()
        outputs.append((code, out.getvalue()))
    (code, as_json), (text_code, text) = outputs
    assert text_code == code
    return code, json.loads(as_json), text


def test_status_checks_the_dns_half_and_names_a_disassociated_dot_rule(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the sample workspace with custom DNS, reconciled, with drift off (nothing repairs behind us)
    spec = spec_for(stack, data_plane, "status-dns-ws")
    spec["dns"] = _custom_dns(stack, data_plane)
    spec["drift"] = {"mode": "off"}
    run = reconciler.run(spec)
    assert run.status == "SUCCEEDED", run.cause
    dns = run.output["summary"]["dns"]
    # When status is asked for
    code, status, text = _status(stack, monkeypatch, "status-dns-ws")
    # Then it is HEALTHY (both sides read live) and lists the Resolver endpoint, rules and associations
    assert (code, status["health"], status["reasons"]) == (0, "HEALTHY", []), status
    kinds = {(r["kind"], r["id"]): r for r in status["resources"]}
    endpoint = kinds[("resolver endpoint", dns["outbound_endpoint"]["resolver_endpoint_id"])]
    assert endpoint["live_state"] == "OPERATIONAL, Do53"
    assert kinds[("resolver rule", dns["forward_rule_id"])]["live_state"].startswith("COMPLETE, to ")
    associations = [r for r in status["resources"] if r["kind"] == "rule association"]
    assert len(associations) == 2 and {r["live_state"] for r in associations} == {"COMPLETE"}
    assert "resolver rule" in text and "rule association" in text

    # When someone disassociates the "." rule from the data-plane VPC (corporate names fall to public DNS)
    stack.client("route53resolver").disassociate_resolver_rule(
        ResolverRuleId=dns["forward_rule_id"], VPCId=data_plane.vpc_id
    )
    code, status, text = _status(stack, monkeypatch, "status-dns-ws")
    # Then status exits 1, DEGRADED, naming the rule and the VPC
    finding = f"resolver rule {dns['forward_rule_id']} (.) is no longer associated with {data_plane.vpc_id}"
    assert (code, status["health"], status["reasons"]) == (1, "DEGRADED", [finding]), status
    assert "Health: DEGRADED" in text and finding in text


def test_inbound_pattern_makes_the_data_plane_names_resolvable_from_the_peered_vpc(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    env = stack.environment
    assert env is not None
    services = default_catalog().region(env.region)
    assert services is not None
    workspace_name = services.private_dns_name
    domain = workspace_name.split(".", 1)[1]
    # Given the sample workspace with the inbound pattern: its VPC's names wanted in the peered VPC
    spec = spec_for(stack, data_plane, "inbound-ws")
    spec["dns"] = {
        "inbound": {
            "vpc_id": data_plane.vpc_id,
            "subnet_ids": _inbound_subnets(stack, data_plane),
            "allowed_cidrs": ["10.20.0.0/24"],
            "domains": [domain],
            "peered_vpcs": [{"vpc_id": env.peered_vpc_id, "subnet_ids": env.peered_subnet_ids}],
        }
    }
    # When it is reconciled
    run = reconciler.run(spec)
    # Then the peered VPC's rule targets the inbound endpoint's IPs, and is associated with that VPC only
    assert run.status == "SUCCEEDED", run.cause
    dns = run.output["summary"]["dns"]
    assert dns["inbound"]["vpc_id"] == data_plane.vpc_id and dns["inbound"]["domains"] == [domain]
    assert len(dns["inbound"]["ips"]) == 2
    [peer] = dns["peered"]
    [rule_id] = peer["rule_ids"]
    r53r = stack.client("route53resolver")
    rule = r53r.get_resolver_rule(ResolverRuleId=rule_id)["ResolverRule"]
    assert sorted(t["Ip"] for t in rule["TargetIps"]) == sorted(dns["inbound"]["ips"])
    assert rule["ResolverEndpointId"] == peer["resolver_endpoint_id"]
    vpcs = {
        a["VPCId"]
        for a in r53r.list_resolver_rule_associations(
            Filters=[{"Name": "ResolverRuleId", "Values": [rule_id]}]
        )["ResolverRuleAssociations"]
    }
    assert vpcs == {env.peered_vpc_id}
    assert "verification" not in dns  # no custom DNS, no dns.verify: nothing to verify
    # and, as Route 53 Resolver decides it, the workspace name resolves from the peered VPC to the
    # workspace endpoint's addresses through the inbound endpoint
    state = DnsStateClient.from_session(
        stack.boto_session(), env.region, endpoint_url=stack.aws.endpoint_url
    ).read()
    path = explain(state, env.peered_vpc_id, workspace_name)
    workspace_endpoint = run.output["summary"]["endpoints"]["workspace"]["id"]
    expected = [e.ips for e in state.endpoints if e.endpoint_id == workspace_endpoint]
    assert path.outcome == "ANSWER", path
    assert expected and sorted(path.addresses) == sorted(expected[0])
    assert any(step.action == "inbound" for step in path.steps), path.steps


def test_verify_dns_resolves_the_names_through_the_data_plane_resolver(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    # The local stack runs a loopback DNS server per VPC resolver and per corporate server, and keeps
    # VerifyDns's DNS_ADDRESS_MAP pointed at them (local/dbx_privatelink_local/dns).
    # Given custom DNS and a corporate name that only the corporate servers know
    spec = spec_for(stack, data_plane, "verified-ws")
    spec["dns"] = {
        **_custom_dns(stack, data_plane),
        "verify": [{"name": "git.corp.example.internal", "expect_ips": ["10.10.0.80"]}],
    }
    # When it is reconciled
    run = reconciler.run(spec)
    # Then the workspace and relay names answer with the endpoints' ENI addresses, the corporate name
    # through the "." rule
    assert run.status == "SUCCEEDED", run.cause
    verification = run.output["summary"]["dns"]["verification"]
    assert verification["status"] == "verified", verification
    assert verification["resolver"] == str(ipaddress.ip_network(data_plane.cidr).network_address + 2)
    names = {n["name"]: n for n in verification["names"]}
    assert names["git.corp.example.internal"]["answers"] == ["10.10.0.80"]
    workspace = names[_workspace_name(spec["region"])]
    assert (
        workspace["ok"] and workspace["answers"] and set(workspace["answers"]) <= set(workspace["expected"])
    )
    assert len(names) == 3

    # When a name is expected at an address it does not have
    spec["dns"]["verify"] = [{"name": "git.corp.example.internal", "expect_ips": ["10.10.0.99"]}]
    failed = reconciler.run(spec)
    # Then the run fails naming the name, its answer, the expectation and the rule that answered
    assert failed.status == "FAILED" and failed.error == "DnsVerificationError", failed.cause
    cause = failed.cause or ""
    assert "git.corp.example.internal resolved to 10.10.0.80; expected 10.10.0.99" in cause
    outbound = run.output["summary"]["dns"]["outbound_endpoint"]["resolver_endpoint_id"]
    assert f"forwarded to 10.10.0.53:53, 10.10.0.54:53 via {outbound}" in cause


def test_verification_explains_a_dot_rule_disassociated_by_hand(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    # Given a verified workspace with custom DNS
    spec = spec_for(stack, data_plane, "unforwarded-ws")
    spec["dns"] = {
        **_custom_dns(stack, data_plane),
        "verify": [{"name": "git.corp.example.internal", "expect_ips": ["10.10.0.80"]}],
    }
    run = reconciler.run(spec)
    assert run.status == "SUCCEEDED", run.cause
    dns = run.output["summary"]["dns"]
    resolver = stack.client("route53resolver")
    # When someone disassociates the "." rule from the data-plane VPC by hand
    resolver.disassociate_resolver_rule(ResolverRuleId=dns["forward_rule_id"], VPCId=data_plane.vpc_id)
    # Then VerifyDns, run on its own as the seed's `dig` would be, fails and says why
    assert stack.deployment is not None
    function = stack.deployment.function_by_logical_id("VerifyDnsFunction").function_name
    answer = stack.client("lambda").invoke(
        FunctionName=function,
        Payload=json.dumps(
            {
                "spec": spec,
                "private_dns_name": _workspace_name(spec["region"]),
                "endpoints": [
                    {
                        "role": role,
                        "vpc_endpoint_id": e["id"],
                        "service_name": "",
                        "vpc_id": data_plane.vpc_id,
                        "state": "available",
                    }
                    for role, e in run.output["summary"]["endpoints"].items()
                    if role in ("workspace", "relay")
                ],
            }
        ),
    )
    error = json.loads(answer["Payload"].read())
    assert answer.get("FunctionError") == "Unhandled", error
    assert error["errorType"] == "DnsVerificationError"
    message = error["errorMessage"]
    assert "git.corp.example.internal" in message and "expected 10.10.0.80" in message, message
    # the explanation: no forwarding rule matches any more, so Route 53 answers from public DNS
    assert "resolved to NXDOMAIN" in message and "answered by public DNS" in message, message


def test_private_zones_alone_are_associated_and_verified(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    """A dns section with private_zones only (no Resolver endpoints): the zone, made for another VPC, is
    associated with the data-plane VPC, the run waits until the change is INSYNC, and its name verifies."""
    env = stack.environment
    assert env is not None
    zone_id = private_zone(
        stack,
        "zones-only.example.internal",
        [env.dns_vpc_id],
        {"app.zones-only.example.internal": "10.0.6.6"},
    )
    spec = spec_for(stack, data_plane, "zones-only-ws")
    spec["dns"] = {
        "private_zones": [{"hosted_zone_id": zone_id, "vpc_ids": [data_plane.vpc_id]}],
        "verify": [{"name": "app.zones-only.example.internal", "expect_ips": ["10.0.6.6"]}],
    }
    run = reconciler.run(spec)
    assert run.status == "SUCCEEDED", run.cause
    dns = run.output["summary"]["dns"]
    [association] = dns["zone_associations"]
    assert (association["vpc_id"], association["action"]) == (data_plane.vpc_id, "created")
    assert "outbound_endpoint" not in dns or dns["outbound_endpoint"] is None
    assert dns["verification"]["status"] == "verified", dns["verification"]
    vpcs = {v["VPCId"] for v in stack.client("route53").get_hosted_zone(Id=zone_id)["VPCs"]}
    assert vpcs == {env.dns_vpc_id, data_plane.vpc_id}
    # And a second apply changes nothing
    again = reconciler.run(spec)
    assert again.status == "SUCCEEDED", again.cause
    assert [a["action"] for a in again.output["summary"]["dns"]["zone_associations"]] == ["unchanged"]
