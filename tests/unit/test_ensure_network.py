"""EnsureNetwork's choice of workspace set (blue/green network), against the Databricks emulator served
in process: the real Account API client, the emulator's rules (a subnet or group serves one network only),
a manual clock. No sockets, no sleeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from werkzeug.test import Client

from dbx_privatelink.catalog import default_catalog, port_ranges
from dbx_privatelink.databricks import DatabricksAccountClient
from dbx_privatelink.errors import SpecInvalidError
from dbx_privatelink.models.databricks import NetworkResult
from dbx_privatelink.models.databricks_steps import EnsureNetworkInput
from dbx_privatelink.models.endpoints import Registration
from dbx_privatelink.models.spec_names import RetireNetworkInput
from dbx_privatelink.reconcile.databricks_objects import desired_network, ensure_network, retire_network
from dbx_privatelink.spec import WorkspaceSpec, parse_spec
from dbx_privatelink.wiring import Deps, Settings
from dbx_privatelink_local.aws_view import SgRule
from dbx_privatelink_local.databricks import DatabricksEmulator, EmulatorConfig, ManualClock
from dbx_privatelink_local.databricks.memory_aws import InMemoryAwsView

REGION = "us-east-1"
ACCOUNT = "0d5a0ac4-7a1e-4c0e-9f7e-000000000002"
HOST = "https://databricks.test"
KEY = "blue-green"
CONFIG = EmulatorConfig(
    endpoint_accept_delay_s=1, workspace_provision_delay_s=10, workspace_update_delay_s=10
)
MUTATING = ("POST", "PUT", "PATCH", "DELETE")


class InProcessTransport(HTTPAdapter):
    """Hands each request to the emulator's WSGI app in this process (what the loopback server serves)."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self._client = Client(app)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        body = request.body or b""
        reply = self._client.open(
            request.path_url,
            method=request.method or "GET",
            headers=dict(request.headers),
            data=body.encode() if isinstance(body, str) else body,
        )
        response = requests.Response()
        response.status_code = reply.status_code
        response.headers = CaseInsensitiveDict(dict(reply.headers))
        response._content = reply.get_data()
        response.request = request
        response.url = request.url or ""
        response.encoding = "utf-8"
        return response


@dataclass
class FakeStore:
    """The one store read EnsureNetwork makes: the observed state of the workspace."""

    observed: dict[str, Any] = field(default_factory=dict)

    def get_observed(self, workspace_key: str) -> dict[str, Any] | None:
        return self.observed


@dataclass
class World:
    aws: InMemoryAwsView
    clock: ManualClock
    emulator: DatabricksEmulator
    deps: Deps
    store: FakeStore
    vpc_id: str
    primary: tuple[list[str], str]
    standby: tuple[list[str], str]
    endpoint_subnet: str
    endpoint_group: str
    rest_service: str
    relay_service: str

    def spec(self, *, standby: bool = True) -> WorkspaceSpec:
        network: dict[str, Any] = {
            "vpc_id": self.vpc_id,
            "workspace_subnet_ids": self.primary[0],
            "workspace_security_group_ids": [self.primary[1]],
            "endpoint_subnet_ids": [self.endpoint_subnet],
            "endpoint_security_group_id": self.endpoint_group,
        }
        if standby:
            network["standby"] = {
                "workspace_subnet_ids": self.standby[0],
                "workspace_security_group_ids": [self.standby[1]],
            }
        return parse_spec(
            {
                "workspace_key": KEY,
                "region": REGION,
                "databricks": {
                    "account_id": ACCOUNT,
                    "credentials_id": "cred-1",
                    "storage_configuration_id": "storage-1",
                    "workspace": {"name": KEY},
                },
                "network": network,
            }
        )

    def registrations(self) -> list[Registration]:
        """A workspace and a relay endpoint created and registered now (a recreated endpoint: new ids)."""
        regs = []
        for role, service in (("workspace", self.rest_service), ("relay", self.relay_service)):
            endpoint = self.aws.add_vpc_endpoint(REGION, self.vpc_id, service)
            registered = self.emulator.backend.create_vpc_endpoint(
                {
                    "vpc_endpoint_name": f"{KEY}-{role}",
                    "aws_vpc_endpoint_id": endpoint.vpc_endpoint_id,
                    "region": REGION,
                }
            )
            regs.append(
                Registration(
                    role=role,
                    aws_vpc_endpoint_id=endpoint.vpc_endpoint_id,
                    vpc_endpoint_id=registered["vpc_endpoint_id"],
                    state="available",
                )
            )
        self.clock.advance(CONFIG.endpoint_accept_delay_s)
        return regs

    def ensure(self, spec: WorkspaceSpec, regs: list[Registration]) -> NetworkResult:
        return ensure_network(EnsureNetworkInput(spec=spec, registrations=regs), self.deps)

    def network(self, network_id: str) -> dict[str, Any]:
        return self.emulator.backend.get_network(network_id)

    def network_ids(self) -> set[str]:
        return {n["network_id"] for n in self.emulator.backend.list_networks()}

    def move_workspace(self, workspace_id: int, result: NetworkResult, spec: WorkspaceSpec) -> None:
        """What EnsureWorkspace, CheckWorkspaceRunning and RetireNetwork do with the step's result."""
        self.emulator.backend.update_workspace(workspace_id, {"network_id": result.network_id})
        self.clock.advance(CONFIG.workspace_update_delay_s)
        assert self.emulator.backend.get_workspace(workspace_id)["workspace_status"] == "RUNNING"
        retire_network(RetireNetworkInput(spec=spec.model_dump(mode="json"), network=result), self.deps)
        self.store.observed["network_id"] = result.network_id

    def mutations(self) -> int:
        """Mutating Account API calls the client made so far."""
        calls = self.emulator.calls_by_operation()
        return sum(n for op, n in calls.items() if op.startswith(MUTATING) and "/oidc/" not in op)


def _workspace_group(aws: InMemoryAwsView, vpc_id: str) -> str:
    egress = tuple(
        SgRule("tcp", lo, hi, cidr_blocks=("0.0.0.0/0",))
        for lo, hi in port_ranges(default_catalog().workspace_sg_egress_tcp_ports)
    )
    return aws.add_security_group(REGION, vpc_id, egress=egress, self_referencing=True).group_id


@pytest.fixture
def world() -> World:
    aws, clock = InMemoryAwsView(), ManualClock()
    emulator = DatabricksEmulator(aws, ACCOUNT, {"sp": "secret"}, config=CONFIG, clock=clock)
    vpc = aws.add_vpc(REGION, "10.0.0.0/16").vpc_id
    primary = [
        aws.add_subnet(REGION, vpc, f"10.0.{i * 32}.0/19", f"{REGION}{z}").subnet_id
        for i, z in enumerate("ab")
    ]
    standby = [
        aws.add_subnet(REGION, vpc, f"10.0.{64 + i * 32}.0/19", f"{REGION}{z}").subnet_id
        for i, z in enumerate("ab")
    ]
    endpoint_subnet = aws.add_subnet(REGION, vpc, "10.0.128.0/24", f"{REGION}a").subnet_id
    services = default_catalog().region(REGION)
    assert services is not None
    session = requests.Session()
    session.mount(HOST, InProcessTransport(emulator.wsgi_app()))
    client = DatabricksAccountClient(HOST, ACCOUNT, "sp", "secret", session=session, clock=clock.now)
    deps = Deps(settings=Settings(region=REGION, owner_tag="dbx-privatelink"))
    store = FakeStore()
    deps._databricks[ACCOUNT] = client
    deps.__dict__["store"] = store
    return World(
        aws=aws,
        clock=clock,
        emulator=emulator,
        deps=deps,
        store=store,
        vpc_id=vpc,
        primary=(primary, _workspace_group(aws, vpc)),
        standby=(standby, _workspace_group(aws, vpc)),
        endpoint_subnet=endpoint_subnet,
        endpoint_group=aws.add_security_group(REGION, vpc).group_id,
        rest_service=services.workspace_service,
        relay_service=services.relay_service,
    )


def _running_workspace(w: World, network_id: str) -> int:
    cred = w.emulator.seed_credentials("cred", "arn:aws:iam::123456789012:role/dbx", credentials_id="cred-1")
    storage = w.emulator.seed_storage_configuration(
        "root", "root-bucket", storage_configuration_id="storage-1"
    )
    created = w.emulator.backend.create_workspace(
        {
            "workspace_name": KEY,
            "aws_region": REGION,
            "credentials_id": cred["credentials_id"],
            "storage_configuration_id": storage["storage_configuration_id"],
            "network_id": network_id,
        }
    )
    w.clock.advance(CONFIG.workspace_provision_delay_s)
    workspace_id = int(created["workspace_id"])
    assert w.emulator.backend.get_workspace(workspace_id)["workspace_status"] == "RUNNING"
    w.store.observed.update(workspace_id=workspace_id, network_id=network_id)
    return workspace_id


def _sets(w: World, network_id: str) -> tuple[list[str], list[str]]:
    n = w.network(network_id)
    return sorted(n["subnet_ids"]), n["security_group_ids"]


def test_the_first_network_goes_on_the_primary_set(world: World) -> None:
    # Given a spec with a standby set and no network yet; when EnsureNetwork runs
    result = world.ensure(world.spec(), world.registrations())
    # Then the network is created on the primary set
    assert result.action == "created" and result.replaced_network_id is None
    assert _sets(world, result.network_id) == (sorted(world.primary[0]), [world.primary[1]])


def test_a_replacement_flips_between_the_sets_and_a_rerun_changes_nothing(world: World) -> None:
    spec = world.spec()
    first = world.ensure(spec, world.registrations())
    workspace_id = _running_workspace(world, first.network_id)
    # When the endpoints are recreated (new registrations) while the workspace runs on the primary set
    regs = world.registrations()
    second = world.ensure(spec, regs)
    # Then the new network is on the standby set and replaces the one in use
    assert second.action == "replaced" and second.replaced_network_id == first.network_id
    assert _sets(world, second.network_id) == (sorted(world.standby[0]), [world.standby[1]])
    assert second.network_id != first.network_id
    # And the step retried before the workspace moved finds it instead of creating a second one
    before = world.mutations()
    again = world.ensure(spec, regs)
    assert again == NetworkResult(
        network_id=second.network_id, action="found", replaced_network_id=first.network_id
    )
    assert world.mutations() == before
    # When the workspace moved and the old network was retired, then a rerun keeps the standby network
    world.move_workspace(workspace_id, second, spec)
    assert world.network_ids() == {second.network_id}
    before = world.mutations()
    assert world.ensure(spec, regs) == NetworkResult(network_id=second.network_id, action="unchanged")
    assert world.mutations() == before
    # When the endpoints are recreated once more, then the next network goes back on the primary set
    third = world.ensure(spec, world.registrations())
    assert third.action == "replaced" and third.replaced_network_id == second.network_id
    assert _sets(world, third.network_id) == (sorted(world.primary[0]), [world.primary[1]])


def test_the_network_name_is_deterministic_per_set(world: World) -> None:
    spec, regs = world.spec(), world.registrations()
    primary, standby = spec.network.workspace_sets()
    assert desired_network(spec, regs) == desired_network(spec, regs, primary)
    assert desired_network(spec, regs, standby)["name"] == desired_network(spec, regs, standby)["name"]
    assert desired_network(spec, regs, standby)["name"] != desired_network(spec, regs, primary)["name"]
    assert desired_network(spec, regs, standby)["workspace_set"] == "network.standby"


def test_a_leftover_network_on_the_standby_set_is_removed_not_a_blocker(world: World) -> None:
    spec = world.spec()
    first = world.ensure(spec, world.registrations())
    _running_workspace(world, first.network_id)
    # Given an earlier run that built a standby network and stopped before the workspace moved
    leftover = world.ensure(spec, world.registrations())
    assert _sets(world, leftover.network_id)[0] == sorted(world.standby[0])
    # When the endpoints were recreated again before the next run
    latest = world.ensure(spec, world.registrations())
    # Then the unattached leftover is deleted and the new network takes the standby set
    assert latest.action == "replaced" and latest.replaced_network_id == first.network_id
    assert world.network_ids() == {first.network_id, latest.network_id}
    assert _sets(world, latest.network_id)[0] == sorted(world.standby[0])


def test_without_standby_the_replacement_stops_and_names_the_fields(world: World) -> None:
    spec = world.spec(standby=False)
    first = world.ensure(spec, world.registrations())
    _running_workspace(world, first.network_id)
    # When the endpoints are recreated while the workspace uses every subnet and group the spec names
    with pytest.raises(SpecInvalidError) as info:
        world.ensure(spec, world.registrations())
    # Then the error names the fields to change, and network.standby as the way to make it automatic
    message = str(info.value)
    for named in ("network.workspace_subnet_ids", "network.workspace_security_group_ids", "network.standby"):
        assert named in message, message
    assert world.network_ids() == {first.network_id}


def test_a_network_on_either_set_whose_endpoints_match_is_kept(world: World) -> None:
    # Given a workspace on a standby network whose spec later drops and then restores the standby set
    spec, regs = world.spec(), world.registrations()
    first = world.ensure(spec, regs)
    workspace_id = _running_workspace(world, first.network_id)
    regs = world.registrations()
    moved = world.ensure(spec, regs)
    world.move_workspace(workspace_id, moved, spec)
    before = world.mutations()
    # When EnsureNetwork runs with the same registrations, then nothing changes
    assert world.ensure(spec, regs).action == "unchanged"
    assert world.mutations() == before
    # And without the standby set in the spec the workspace moves back onto the primary set (now free)
    back = world.ensure(world.spec(standby=False), regs)
    assert back.action == "replaced" and back.replaced_network_id == moved.network_id
    assert _sets(world, back.network_id)[0] == sorted(world.primary[0])
