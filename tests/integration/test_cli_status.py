"""`status` from the store's contents (a table shaped as template.yaml's) and live EC2 reads, on moto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from integration.test_cli_stack import REGION, aws, deploy_stack, run_cli  # noqa: F401 (aws is a fixture)

from dbx_privatelink.spec import parse_spec
from dbx_privatelink.store import RunRecord, StoreClient

KEY = "acme-analytics"


def _store(session: Any) -> tuple[StoreClient, Any]:
    outputs = deploy_stack(session)
    return StoreClient(session.resource("dynamodb", region_name=REGION).Table(outputs["TableName"])), outputs


def _spec() -> dict[str, Any]:
    return yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "us-east-1.yaml").read_text())


def _endpoint(session: Any, *, private_dns: bool) -> str:
    ec2 = session.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    return str(
        ec2.create_vpc_endpoint(
            VpcId=vpc,
            ServiceName="com.amazonaws.us-east-1.sts",
            VpcEndpointType="Interface",
            SubnetIds=[subnet],
            PrivateDnsEnabled=private_dns,
        )["VpcEndpoint"]["VpcEndpointId"]
    )


def _record_success(store: StoreClient, endpoints: dict[str, str]) -> None:
    store.put_desired(parse_spec(_spec()))
    summary = {
        "endpoints": {
            role: {"id": eid, "state": "available", "action": "created"} for role, eid in endpoints.items()
        },
        "registrations": {},
    }
    store.update_observed(
        KEY,
        {
            "generation": 1,
            "health": "HEALTHY",
            "last_error": None,
            "last_run": {
                "execution": f"{KEY}-g1-20261121T200102Z",
                "outcome": "SUCCEEDED",
                "ended_at": "2026-11-21T20:03:00+00:00",
            },
            "resources": summary,
        },
    )
    store.add_run(
        KEY,
        RunRecord(
            execution_name=f"{KEY}-g1-20261121T200102Z",
            outcome="SUCCEEDED",
            generation=1,
            ended_at="2026-11-21T20:03:00+00:00",
        ),
    )


def test_healthy_when_the_last_run_succeeded_and_live_reads_agree(aws: Any) -> None:  # noqa: F811
    # Given a recorded successful run whose endpoint is live and available
    store, _ = _store(aws)
    _record_success(store, {"sts": _endpoint(aws, private_dns=True)})
    # When status is asked for
    code, out, _err = run_cli(["status", KEY, "--output", "json"], aws)
    # Then it is HEALTHY, with the run, the generation and the live endpoint state
    assert code == 0
    status = json.loads(out)
    assert status["health"] == "HEALTHY"
    assert status["reasons"] == []
    assert status["generation"] == {"desired": 1, "applied": 1}
    assert status["last_run"]["outcome"] == "SUCCEEDED"
    assert status["runs"][0]["execution_name"] == f"{KEY}-g1-20261121T200102Z"
    (endpoint,) = status["resources"]
    assert endpoint["live_state"] == "available, private DNS on"
    assert "Databricks not checked live" in status["notes"][0]


def test_degraded_when_a_recorded_endpoint_is_gone(aws: Any) -> None:  # noqa: F811
    store, _ = _store(aws)
    _record_success(store, {"sts": _endpoint(aws, private_dns=True), "relay": "vpce-0d8e7f6a5b4c3d202"})
    code, out, _err = run_cli(["status", KEY], aws)
    assert code == 1
    assert "Health: DEGRADED" in out
    assert "relay endpoint vpce-0d8e7f6a5b4c3d202 does not exist" in out
    assert "Recent runs" in out


def test_failed_shows_the_last_error(aws: Any) -> None:  # noqa: F811
    # Given a later run that failed
    store, _ = _store(aws)
    _record_success(store, {"sts": _endpoint(aws, private_dns=True)})
    cause = "Preflight found 1 problem(s); nothing was changed:\n- network.vpc_id: VPC vpc-0a1b2c3d4e5f60718 has enableDnsHostnames off"
    store.update_observed(
        KEY,
        {
            "health": "FAILED",
            "last_error": {
                "error": "PreflightFailedError",
                "cause": cause,
                "at": "2026-11-21T21:00:00+00:00",
            },
            "last_run": {
                "execution": f"{KEY}-g2-x",
                "outcome": "FAILED",
                "ended_at": "2026-11-21T21:00:00+00:00",
            },
        },
    )
    store.add_run(
        KEY,
        RunRecord(
            execution_name=f"{KEY}-g2-x",
            outcome="FAILED",
            generation=2,
            error="PreflightFailedError",
            cause=cause,
            ended_at="2026-11-21T21:00:00+00:00",
        ),
    )
    # When status is shown
    code, out, _err = run_cli(["status", KEY], aws)
    # Then FAILED, with the error name and the whole cause, newest run first
    assert code == 1
    assert "Health: FAILED" in out
    assert "Last error: PreflightFailedError" in out
    assert "- network.vpc_id: VPC vpc-0a1b2c3d4e5f60718 has enableDnsHostnames off" in out
    runs = out.split("Recent runs")[1].splitlines()
    assert "FAILED" in runs[2] and "SUCCEEDED" in runs[3]


def test_an_unknown_workspace_is_an_error(aws: Any) -> None:  # noqa: F811
    _store(aws)
    code, out, err = run_cli(["status", "nobody", "--output", "json"], aws)
    assert code == 1
    assert json.loads(out)["error"] == "WorkspaceNotFoundError"
    assert "apply its spec first" in err


def test_private_dns_off_on_a_databricks_endpoint_is_degraded(aws: Any) -> None:  # noqa: F811
    store, _ = _store(aws)
    _record_success(store, {"workspace": _endpoint(aws, private_dns=False)})
    code, out, _err = run_cli(["status", KEY], aws)
    assert code == 1
    assert "has private DNS off" in out
