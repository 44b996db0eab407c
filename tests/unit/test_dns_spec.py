"""The dns section is refused before any call when it would break resolution or exceed a quota."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbx_privatelink.errors import SpecInvalidError
from dbx_privatelink.spec import input_problems, parse_spec

ROOT = Path(__file__).resolve().parents[2]


def _spec() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "examples" / "ap-northeast-1.yaml").read_text())
    doc["dns"] = {
        "custom_dns": {
            "dns_vpc_id": "vpc-0d0d0d0d0d0d0d0d0",
            "resolver_subnet_ids": ["subnet-0d0d0d0d0d0d0d0d1", "subnet-0d0d0d0d0d0d0d0d2"],
            "allowed_cidrs": ["10.0.0.0/22"],
            "corporate_dns_ips": ["10.10.0.53", "10.10.0.54"],
        },
        "inbound": {
            "vpc_id": doc["network"]["vpc_id"],
            "subnet_ids": doc["network"]["workspace_subnet_ids"],
            "allowed_cidrs": ["10.20.0.0/24"],
            "domains": ["tokyo.privatelink.cloud.databricks.com"],
            "peered_vpcs": [
                {
                    "vpc_id": "vpc-0e0e0e0e0e0e0e0e0",
                    "subnet_ids": ["subnet-0e0e0e0e0e0e0e0e1", "subnet-0e0e0e0e0e0e0e0e2"],
                }
            ],
        },
    }
    return doc


def test_a_complete_dns_section_is_valid() -> None:
    spec = parse_spec(_spec())
    assert spec.dns and spec.dns.custom_dns and spec.dns.custom_dns.aws_domains == ["amazonaws.com"]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("custom_dns", "corporate_dns_ips"), ["127.0.0.1"], "loopback"),
        (("custom_dns", "corporate_dns_ips"), ["169.254.169.253"], "link-local"),
        (("custom_dns", "corporate_dns_ips"), ["0.0.0.0"], "unspecified"),
        (("custom_dns", "corporate_dns_ips"), ["8.8.8.8"], "allow_public_targets"),
        (("custom_dns", "corporate_dns_ips"), [f"10.10.0.{i}" for i in range(1, 8)], "at most 6"),
        (("custom_dns", "resolver_subnet_ids"), ["subnet-0d0d0d0d0d0d0d0d1"], "at least 2"),
        (
            ("custom_dns", "resolver_subnet_ids"),
            [f"subnet-0d0d0d0d0d0d0d0d{i}" for i in range(1, 8)],
            "at most 6",
        ),
        (("custom_dns", "aws_domains"), [], "amazonaws.com"),
        (("custom_dns", "aws_domains"), ["bad_domain.com"], "RFC 1123"),
        (("inbound", "domains"), ["-x.example.com"], "RFC 1123"),
        (("inbound", "domains"), ["."], "never"),
        (("custom_dns", "aws_names"), "none", "system-rule"),
    ],
)
def test_unsafe_dns_settings_are_refused(path: tuple[str, str], value: Any, message: str) -> None:
    doc = copy.deepcopy(_spec())
    doc["dns"][path[0]][path[1]] = value
    with pytest.raises(SpecInvalidError, match=message):
        parse_spec(doc)


def test_public_targets_only_when_allowed_explicitly() -> None:
    doc = _spec()
    doc["dns"]["custom_dns"]["corporate_dns_ips"] = ["8.8.8.8"]
    doc["dns"]["allow_public_targets"] = True
    assert parse_spec(doc).dns is not None


def test_inbound_rule_cannot_target_its_own_vpc() -> None:
    doc = _spec()
    doc["dns"]["inbound"]["peered_vpcs"].append(
        {"vpc_id": doc["dns"]["inbound"]["vpc_id"], "subnet_ids": doc["network"]["workspace_subnet_ids"]}
    )
    with pytest.raises(SpecInvalidError, match="RSLVR-00804"):
        parse_spec(doc)


def test_resolver_endpoint_quota_is_named() -> None:
    doc = _spec()
    doc["dns"]["inbound"]["peered_vpcs"] += [
        {
            "vpc_id": f"vpc-0e0e0e0e0e0e0e0f{i}",
            "subnet_ids": ["subnet-0e0e0e0e0e0e0e0e1", "subnet-0e0e0e0e0e0e0e0e2"],
        }
        for i in range(3)
    ]
    with pytest.raises(SpecInvalidError, match="endpoints per AWS Region"):
        parse_spec(doc)


def test_dot_rule_must_not_loop_through_the_dns_vpc() -> None:
    doc = _spec()
    doc["dns"]["custom_dns"]["associate_vpc_ids"] = [doc["dns"]["custom_dns"]["dns_vpc_id"]]
    with pytest.raises(SpecInvalidError, match="loop"):
        parse_spec(doc)


def test_custom_dns_needs_no_allowed_cidrs() -> None:
    # The outbound endpoint takes no DNS in: its group lets DNS out to the corporate servers, so the
    # networks behind it are not the group's business (and a fleet behind one DNS VPC never fills it).
    doc = _spec()
    del doc["dns"]["custom_dns"]["allowed_cidrs"]
    assert parse_spec(doc).dns is not None


@pytest.mark.parametrize(
    ("zones", "message"),
    [
        (
            [{"hosted_zone_id": "data.example.internal", "vpc_ids": ["vpc-0d0d0d0d0d0d0d0d0"]}],
            "dns.private_zones.0.hosted_zone_id: String should match pattern '^Z[A-Z0-9]{1,32}$' (fix: use a "
            "Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ (the id, not the zone's name))",
        ),
        ([{"hosted_zone_id": "Z0123456789ABCDEFGHIJ", "vpc_ids": []}], "dns.private_zones.0.vpc_ids"),
        (
            [{"hosted_zone_id": "Z0123456789ABCDEFGHIJ", "vpc_ids": ["vpc-0d0d0d0d0d0d0d0d0"] * 2}],
            "list each VPC once",
        ),
        (
            [{"hosted_zone_id": "Z0123456789ABCDEFGHIJ", "vpc_ids": ["vpc-0d0d0d0d0d0d0d0d0"]}] * 2,
            "Z0123456789ABCDEFGHIJ listed more than once",
        ),
    ],
)
def test_private_zones_name_the_field_and_the_fix(zones: list[dict[str, Any]], message: str) -> None:
    doc = _spec()
    doc["dns"]["private_zones"] = zones
    with pytest.raises(SpecInvalidError) as refused:
        parse_spec(doc)
    assert message in str(refused.value)


def test_private_zones_alone_make_a_dns_section() -> None:
    doc = _spec()
    doc["dns"] = {
        "private_zones": [{"hosted_zone_id": "Z0123456789ABCDEFGHIJ", "vpc_ids": [doc["network"]["vpc_id"]]}]
    }
    spec = parse_spec(doc)
    assert (
        spec.dns
        and spec.dns.custom_dns is None
        and spec.dns.private_zones[0].vpc_ids == [doc["network"]["vpc_id"]]
    )


@pytest.mark.parametrize(
    ("section", "cidrs", "named"),
    [
        ("custom_dns", ["0.0.0.0/0"], "0.0.0.0/0 is"),
        ("custom_dns", ["10.0.0.0/22", "10.0.0.0/8"], "10.0.0.0/8 is"),
        ("inbound", ["0.0.0.0/0", "172.16.0.0/12"], "0.0.0.0/0, 172.16.0.0/12 are"),
    ],
)
def test_allowed_cidrs_wider_than_a_slash_16_are_refused_on_input(
    section: str, cidrs: list[str], named: str
) -> None:
    # Given allowed_cidrs with the whole internet, or a network wider than /16, and no opt-in
    doc = _spec()
    doc["dns"][section]["allowed_cidrs"] = cidrs
    # When a new spec is checked (a stored one is still read: status, drift and destroy go on working)
    spec = parse_spec(doc)
    problems = input_problems(spec)
    # Then the field, the networks and both fixes are named
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"dns.{section}.allowed_cidrs: {named} wider than /16; "), problems
    assert "/16 or narrower" in problems[0] and "dns.allow_wide_cidrs: true" in problems[0]


def test_a_slash_16_is_narrow_enough_and_wider_ones_need_the_opt_in() -> None:
    # Given a /16 in both lists
    doc = _spec()
    doc["dns"]["custom_dns"]["allowed_cidrs"] = ["10.0.0.0/16"]
    doc["dns"]["inbound"]["allowed_cidrs"] = ["192.168.0.0/16"]
    # Then the spec is refused for nothing
    assert input_problems(parse_spec(doc)) == []
    # Given 0.0.0.0/0 allowed on purpose
    doc["dns"]["inbound"]["allowed_cidrs"] = ["0.0.0.0/0"]
    doc["dns"]["allow_wide_cidrs"] = True
    # Then it is accepted as written
    spec = parse_spec(doc)
    assert input_problems(spec) == []
    assert spec.dns and spec.dns.inbound and [str(n) for n in spec.dns.inbound.allowed_cidrs] == ["0.0.0.0/0"]
