"""Tokens, faults, the manual clock and network validation of the emulator, each on its own."""

from __future__ import annotations

import pytest

from dbx_privatelink.catalog import default_catalog
from dbx_privatelink_local.aws_view import SgRule
from dbx_privatelink_local.databricks import ApiError, Fault, ManualClock
from dbx_privatelink_local.databricks.auth import TokenIssuer, basic_credentials
from dbx_privatelink_local.databricks.errors import OAuthError
from dbx_privatelink_local.databricks.faults import FaultInjector
from dbx_privatelink_local.databricks.memory_aws import InMemoryAwsView
from dbx_privatelink_local.databricks.network_validation import validate_network

REGION = "us-east-1"


def _issuer(clock: ManualClock, lifetime: int = 60) -> TokenIssuer:
    return TokenIssuer("acct", {"sp": "secret"}, lifetime_s=lifetime, clock=clock)


def _issue(issuer: TokenIssuer, secret: str = "secret", **kw: str | None) -> dict[str, object]:
    args: dict[str, str | None] = {
        "grant_type": "client_credentials",
        "scope": "all-apis",
        "account_id": "acct",
    }
    args.update(kw)
    return issuer.issue(client_id="sp", client_secret=secret, **args)  # type: ignore[arg-type]


def test_token_expires_after_its_lifetime() -> None:
    clock = ManualClock()
    issuer = _issuer(clock, lifetime=60)
    token = _issue(issuer)
    assert token["token_type"] == "Bearer" and token["expires_in"] == 60 and token["scope"] == "all-apis"
    header = f"Bearer {token['access_token']}"
    assert issuer.authenticate(header).account_id == "acct"
    clock.advance(60)
    with pytest.raises(ApiError) as exc:
        issuer.authenticate(header)
    assert exc.value.error_code == "UNAUTHENTICATED"


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer nope"])
def test_missing_or_unknown_bearer_is_unauthenticated(header: str | None) -> None:
    with pytest.raises(ApiError) as exc:
        _issuer(ManualClock()).authenticate(header)
    assert exc.value.status == 401


def test_bad_client_and_bad_grant() -> None:
    issuer = _issuer(ManualClock())
    with pytest.raises(OAuthError) as exc:
        _issue(issuer, secret="wrong")
    assert exc.value.error == "invalid_client" and exc.value.status == 401
    with pytest.raises(OAuthError) as exc:
        _issue(issuer, account_id="someone-else")
    assert exc.value.error == "invalid_client"
    with pytest.raises(OAuthError) as exc:
        _issue(issuer, grant_type="password")
    assert exc.value.error == "unsupported_grant_type" and exc.value.status == 400


def test_basic_credentials_parsing() -> None:
    assert basic_credentials("Basic c3A6c2VjcmV0") == ("sp", "secret")
    assert basic_credentials("Basic !!!") is None
    assert basic_credentials("Bearer x") is None


def test_faults_match_method_and_path_and_run_out() -> None:
    faults = FaultInjector()
    faults.add(Fault("throttle", method="POST", path="/api/2.0/accounts/*/vpc-endpoints", count=2))
    faults.add(Fault("unavailable", path=r"/workspaces/\d+$", regex=True))
    assert faults.take("GET", "/api/2.0/accounts/a/vpc-endpoints") is None
    assert faults.take("POST", "/api/2.0/accounts/a/vpc-endpoints") is not None
    assert faults.take("post", "/api/2.0/accounts/a/vpc-endpoints") is not None
    assert faults.take("POST", "/api/2.0/accounts/a/vpc-endpoints") is None
    assert faults.take("GET", "/api/2.0/accounts/a/workspaces") is None
    spent = faults.take("GET", "/api/2.0/accounts/a/workspaces/12")
    assert spent is not None and spent.kind == "unavailable" and spent.remaining == 0


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "explode"},
        {"kind": "throttle", "count": 0},
        {"kind": "throttle", "retry_after_s": 1.5},
        {"path": "*"},
    ],
)
def test_fault_definitions_are_checked(body: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        FaultInjector().add_from_json(body)


def test_manual_clock_runs_due_actions_in_order() -> None:
    clock = ManualClock()
    ran: list[str] = []
    clock.call_later(10, lambda: ran.append("b"))
    clock.call_later(5, lambda: ran.append("a"))
    cancelled = clock.call_later(7, lambda: ran.append("never"))
    cancelled.cancel()
    assert clock.advance(4) == 0
    assert clock.advance(6) == 2
    assert ran == ["a", "b"]
    assert clock.pending == 0


def test_ports_may_be_covered_by_several_rules_together() -> None:
    aws = InMemoryAwsView()
    vpc = aws.add_workspace_vpc(REGION)
    group = aws.security_groups[(REGION, vpc.security_group_id)]
    # 8445-8451 split over two rules, everything else through one all-traffic rule
    egress = (
        SgRule("-1", None, None, cidr_blocks=("10.0.0.0/8",)),
        SgRule("tcp", 8445, 8447),
        SgRule("tcp", 8448, 8451),
    )
    aws.put_security_group(REGION, type(group)(group.group_id, group.vpc_id, group.ingress, egress))

    def problems() -> list[str]:
        found = validate_network(
            region=REGION,
            vpc_id=vpc.vpc_id,
            subnet_ids=list(vpc.subnet_ids),
            security_group_ids=[vpc.security_group_id],
            rest_api=[],
            dataplane_relay=[],
            aws=aws,
            catalog=default_catalog(),
            endpoint=lambda _id: None,
        )
        return [p.error_message for p in found]

    # The all-traffic rule has no group reference, so it does not count as "to itself"
    assert problems() == [
        f"Security groups {vpc.security_group_id} do not allow all TCP egress from and to the same security group",
        f"Security groups {vpc.security_group_id} do not allow all UDP egress from and to the same security group",
    ]
    egress = (*egress, SgRule("-1", None, None, group_ids=(vpc.security_group_id,)))
    aws.put_security_group(REGION, type(group)(group.group_id, group.vpc_id, group.ingress, egress))
    assert problems() == []


def test_missing_aws_objects_are_reported_by_type() -> None:
    aws = InMemoryAwsView()
    found = validate_network(
        region=REGION,
        vpc_id="vpc-0123456789abcdef0",
        subnet_ids=["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
        security_group_ids=["sg-0123456789abcdef0"],
        rest_api=["unknown-registration"],
        dataplane_relay=[],
        aws=aws,
        catalog=default_catalog(),
        endpoint=lambda _id: None,
    )
    assert [p.error_type for p in found] == ["vpc", "subnet", "subnet", "securityGroup", "vpc"]
