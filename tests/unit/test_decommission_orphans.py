"""Orphans: which Databricks objects the application made that nothing uses any more, found with fakes of
the Account API and EC2 (what the scan and a decommission remove, and what they leave)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import boto3
from moto import mock_aws

from dbx_privatelink.aws.ec2 import EndpointInfo
from dbx_privatelink.databricks.models import Network, PrivateAccessSettings, VpcEndpoint, Workspace
from dbx_privatelink.decommission.orphans import (
    MAX_ORPHANS_PER_SWEEP,
    find_orphans,
    remove_orphans,
    scan_orphans,
)
from dbx_privatelink.drift.orphan_models import Orphan, OrphanReport, ScanOrphansInput
from dbx_privatelink.drift_store import DriftStore
from dbx_privatelink.errors import DatabricksAuthError, DatabricksRequestError
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.wiring import Deps, Settings
from tests.tables import app_table

REGION = "us-east-1"


@dataclass
class FakeAccount:
    networks: list[Network] = field(default_factory=list)
    workspaces: list[Workspace] = field(default_factory=list)
    settings: list[PrivateAccessSettings] = field(default_factory=list)
    registrations: list[VpcEndpoint] = field(default_factory=list)
    in_use: set[str] = field(default_factory=set)
    deleted: list[str] = field(default_factory=list)

    def list_networks(self) -> list[Network]:
        return self.networks

    def list_workspaces(self) -> list[Workspace]:
        return self.workspaces

    def list_private_access_settings(self) -> list[PrivateAccessSettings]:
        return self.settings

    def list_vpc_endpoints(self) -> list[VpcEndpoint]:
        return self.registrations

    def _delete(self, object_id: str) -> None:
        if object_id in self.in_use:
            raise DatabricksRequestError("in use", error_code="INVALID_STATE", status=400)
        self.deleted.append(object_id)

    delete_network = _delete
    delete_vpc_endpoint = _delete


@dataclass
class FakeEc2:
    endpoints: dict[str, str]  # id -> state

    def get_endpoints(self, ids: list[str]) -> dict[str, EndpointInfo]:
        return {
            i: EndpointInfo(
                vpc_endpoint_id=i,
                vpc_id="vpc-1",
                service_name="svc",
                endpoint_type="Interface",
                state=self.endpoints[i],
                private_dns_enabled=False,
            )
            for i in ids
            if i in self.endpoints
        }


def _network(
    network_id: str, name: str, workspace_id: int | None = None, rest: list[str] | None = None
) -> Network:
    return Network.model_validate(
        {
            "network_id": network_id,
            "network_name": name,
            "workspace_id": workspace_id,
            "vpc_endpoints": {"rest_api": rest or [], "dataplane_relay": []},
        }
    )


def _registration(reg_id: str, aws_id: str, name: str | None = None) -> VpcEndpoint:
    return VpcEndpoint.model_validate(
        {
            "vpc_endpoint_id": reg_id,
            "vpc_endpoint_name": name or f"dbx-privatelink-workspace-{aws_id}",
            "aws_vpc_endpoint_id": aws_id,
            "region": REGION,
        }
    )


def test_unused_networks_made_for_the_stacks_workspaces_are_orphans() -> None:
    account = FakeAccount(
        networks=[
            _network("n1", "acme-network-0a1b2c3d"),  # nothing uses it: orphan
            _network("n2", "acme-network-4e5f6a7b", workspace_id=7),  # attached
            _network("n3", "busy-network-0a1b2c3d"),  # its workspace's reconcile runs now
            _network("n4", "stranger-network-0a1b2c3d"),  # not a workspace of this stack
            _network("n5", "acme-hand-made"),  # not named by the application
            _network("n6", "acme-network-8c9d0e1f"),  # a workspace is moving onto it
        ],
        workspaces=[Workspace.model_validate({"workspace_id": 9, "workspace_name": "w", "network_id": "n6"})],
    )
    found = find_orphans(account, FakeEc2({}), REGION, {"acme", "busy"}, lambda key: key == "busy")  # type: ignore[arg-type]
    assert [(o.kind, o.id, o.action) for o in found] == [("network", "n1", "found")]
    assert "made for acme" in found[0].reason


def test_registrations_of_endpoints_that_no_longer_exist_are_orphans() -> None:
    account = FakeAccount(
        networks=[_network("n1", "acme-network-0a1b2c3d", workspace_id=7, rest=["r3"])],
        registrations=[
            _registration("r1", "vpce-0000000000000001"),  # its endpoint is deleted
            _registration("r2", "vpce-0000000000000002"),  # its endpoint is there
            _registration(
                "r3", "vpce-0000000000000004"
            ),  # endpoint unknown to EC2, but a network still uses it
            _registration("r4", "vpce-0000000000000003", name="registered-by-hand"),  # not the application's
        ],
    )
    ec2 = FakeEc2(
        {
            "vpce-0000000000000001": "deleted",
            "vpce-0000000000000002": "available",
            "vpce-0000000000000003": "deleted",
        }
    )
    found = find_orphans(account, ec2, REGION, {"acme"}, lambda key: False)  # type: ignore[arg-type]
    assert [(o.id, o.action) for o in found] == [("r1", "found"), ("r3", "in use")]
    assert "vpce-0000000000000001 is deleted" in found[0].reason and "does not exist" in found[1].reason


def test_a_network_leaving_frees_the_registrations_it_used_in_the_same_sweep() -> None:
    account = FakeAccount(
        networks=[_network("n1", "acme-network-0a1b2c3d", rest=["r1"])],
        registrations=[_registration("r1", "vpce-0000000000000001")],
    )
    found = find_orphans(account, FakeEc2({}), REGION, {"acme"}, lambda key: False)  # type: ignore[arg-type]
    assert [(o.kind, o.id, o.action) for o in found] == [
        ("network", "n1", "found"),
        ("registration", "r1", "found"),
    ]
    done = remove_orphans(account, found)  # type: ignore[arg-type]
    assert account.deleted == ["n1", "r1"] and {o.action for o in done} == {"deleted"}


def test_an_orphan_databricks_refuses_is_reported_in_use_and_the_others_go() -> None:
    account = FakeAccount(in_use={"n1"})
    orphans = [
        Orphan(kind="network", id="n1", name="a-network-0a1b2c3d", reason="r"),
        Orphan(kind="network", id="n2", name="a-network-4e5f6a7b", reason="r"),
        Orphan(kind="registration", id="r9", name="dbx-privatelink-x", reason="r", action="in use"),
    ]
    done = remove_orphans(account, orphans)  # type: ignore[arg-type]
    assert [(o.id, o.action) for o in done] == [("n1", "in use"), ("n2", "deleted"), ("r9", "in use")]
    assert account.deleted == ["n2"]


def test_a_sweep_at_its_cap_stays_small_in_the_executions_state() -> None:
    orphan = Orphan(kind="registration", id="x" * 36, name="n" * 100, reason="r" * 700, action="in use")
    report = OrphanReport(orphans=[orphan] * MAX_ORPHANS_PER_SWEEP, deferred=10_000)
    assert len(json.dumps(report.model_dump(mode="json")).encode()) < 32 * 1024


class RefusingAccount(FakeAccount):
    """An account whose service principal Databricks refuses (a spec for an account it does not belong to)."""

    def list_networks(self) -> list[Network]:
        raise DatabricksAuthError("OAuth token request failed with 401 invalid_client")


def test_an_account_that_refuses_the_scan_is_reported_and_the_others_are_swept() -> None:
    # Given two workspaces in two Databricks accounts, the first of which refuses the service principal,
    # and an orphaned network in the second
    healthy, refusing = "0f5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", "11111111-2222-4333-8444-555555555555"
    accounts = {
        refusing: RefusingAccount(),
        healthy: FakeAccount(networks=[_network("net-1", "ws-b-network-0123abcd")]),
    }
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        store = DriftStore(session.resource("dynamodb").Table(app_table(session)))
        for key, account in (("ws-a", refusing), ("ws-b", healthy)):
            store.put_desired(parse_spec(_spec(key, account)))
        deps = Deps(settings=Settings(region=REGION, owner_tag="dbx-privatelink", table_name="t"))
        deps.__dict__.update(
            drift_store=store, store=store, databricks=accounts.__getitem__, ec2=lambda _region: FakeEc2({})
        )
        # When the scan sweeps orphans
        report = scan_orphans(ScanOrphansInput(scan_id="tick-1"), deps)
    # Then the second account's orphan is removed and the first is named with its error, not the sweep's end
    assert [(o.id, o.action) for o in report.orphans] == [("net-1", "deleted")]
    assert accounts[healthy].deleted == ["net-1"]
    assert (
        len(report.failed) == 1 and refusing in report.failed[0] and "DatabricksAuthError" in report.failed[0]
    )


def _spec(key: str, account: str) -> dict[str, object]:
    return {
        "workspace_key": key,
        "region": REGION,
        "databricks": {
            "account_id": account,
            "credentials_id": "cred-1",
            "storage_configuration_id": "storage-1",
            "workspace": {"name": key},
        },
        "network": {
            "vpc_id": "vpc-0a1b2c3d4e5f60718",
            "workspace_subnet_ids": ["subnet-0a1b2c3d4e5f60711", "subnet-0a1b2c3d4e5f60712"],
            "workspace_security_group_ids": ["sg-0a1b2c3d4e5f60711"],
            "endpoint_subnet_ids": ["subnet-0a1b2c3d4e5f60713"],
            "endpoint_security_group_id": "sg-0a1b2c3d4e5f60712",
        },
    }
