"""`dbx-privatelink dns explain` against the emulated AWS, reached the way operators reach the local stack:
through AWS_ENDPOINT_URL."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from integration import test_local_dns as shared
from integration.test_local_dns import REGION, WORKSPACE_NAME, World

from dbx_privatelink_cli.main import main
from dbx_privatelink_local.aws import LocalAws

# The emulated AWS and the seed's custom DNS, shared with the LocalDns tests.
aws, session, world = shared.aws, shared.session, shared.world


@pytest.fixture
def cli(aws: LocalAws, session: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint_url)
    monkeypatch.delenv("AWS_PROFILE", raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), session=session, env={"AWS_REGION": REGION}, out=out, err=err)
        return code, out.getvalue(), err.getvalue()

    return run


def test_explain_shows_the_endpoint_zone_winning_over_the_dot_rule(cli: Any, world: World) -> None:
    code, out, err = cli("dns", "explain", "--vpc", world.data_vpc, WORKSPACE_NAME)

    assert code == 0, err
    assert f"{WORKSPACE_NAME} asked in {world.data_vpc} (its Route 53 Resolver: 10.0.0.2)" in out
    assert "-> private DNS of endpoint vpce-" in out
    assert 'why: more specific than "." (FORWARD rule ' in out
    assert f"Answer: {world.workspace_ip}" in out


def test_explain_shows_forwarding_to_the_corporate_servers(cli: Any, world: World) -> None:
    code, out, _ = cli("dns", "explain", "--vpc", world.data_vpc, "git.corp.example.internal")

    assert code == 0
    assert f"forwarded to 10.10.0.53:53 via {world.outbound_id}" in out
    assert f"targets: 10.10.0.53:53, 10.10.0.54:53 via {world.outbound_id}" in out
    assert "Answer: forwarded: the answer is whatever the target server says" in out


def test_explain_json_and_the_effect_of_a_disassociation(
    cli: Any, session: Any, aws: LocalAws, world: World
) -> None:
    code, out, _ = cli(
        "dns", "explain", "--vpc", world.data_vpc, f"sts.{REGION}.amazonaws.com", "--output", "json"
    )
    document = json.loads(out)
    assert code == 0
    assert (document["ok"], document["outcome"], document["addresses"]) == (True, "ANSWER", [world.sts_ip])
    assert document["steps"][0]["decided_by"].startswith("private DNS of endpoint vpce-")
    assert "more specific than amazonaws.com" in document["steps"][0]["why"]

    session.client("route53resolver", endpoint_url=aws.endpoint_url).disassociate_resolver_rule(
        ResolverRuleId=world.dot_rule, VPCId=world.data_vpc
    )
    code, out, _ = cli(
        "dns", "explain", "--vpc", world.data_vpc, "git.corp.example.internal", "--output", "json"
    )
    document = json.loads(out)
    assert document["outcome"] == "PUBLIC"
    assert all(step["action"] != "forward" for step in document["steps"])


def test_explain_fails_for_names_that_cannot_resolve_and_unknown_vpcs(cli: Any, world: World) -> None:
    code, out, _ = cli("dns", "explain", "--vpc", world.data_vpc, "other." + WORKSPACE_NAME)
    assert code == 1
    assert "Answer: NXDOMAIN" in out

    code, out, err = cli("dns", "explain", "--vpc", "vpc-0123456789abcdef0", "x.example", "--output", "json")
    assert code == 2
    assert "is not a VPC of us-east-1" in err
    assert json.loads(out)["ok"] is False

    code, _, err = cli("dns", "explain", "x.example")
    assert code == 2
    assert "--vpc" in err
