"""The emulator's backend rules, driven in-process with a manual clock: no HTTP, no sleeps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from dbx_privatelink.catalog import default_catalog
from dbx_privatelink_local.aws_view import SgRule
from dbx_privatelink_local.databricks import ApiError, DatabricksEmulator, EmulatorConfig, ManualClock
from dbx_privatelink_local.databricks.backend import AccountBackend
from dbx_privatelink_local.databricks.memory_aws import InMemoryAwsView, WorkspaceVpc

REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
ACCOUNT = "0d5a0ac4-7a1e-4c0e-9f7e-000000000001"
CONFIG = EmulatorConfig(
    endpoint_accept_delay_s=20,
    workspace_provision_delay_s=60,
    workspace_update_delay_s=30,
    workspace_delete_delay_s=30,
)


@dataclass
class World:
    aws: InMemoryAwsView
    clock: ManualClock
    emulator: DatabricksEmulator

    @property
    def backend(self) -> AccountBackend:
        return self.emulator.backend


@pytest.fixture
def world() -> World:
    aws = InMemoryAwsView()
    clock = ManualClock()
    emulator = DatabricksEmulator(aws, ACCOUNT, {"sp": "secret"}, config=CONFIG, clock=clock)
    return World(aws, clock, emulator)


def _code(exc: pytest.ExceptionInfo[ApiError]) -> str:
    return exc.value.error_code


def _register(w: World, aws_id: str, region: str = REGION, name: str = "ep") -> dict[str, Any]:
    return w.backend.create_vpc_endpoint(
        {"vpc_endpoint_name": name, "aws_vpc_endpoint_id": aws_id, "region": region}
    )


def _base_objects(w: World) -> tuple[str, str]:
    cred = w.emulator.seed_credentials("cred", "arn:aws:iam::123456789012:role/dbx")
    storage = w.emulator.seed_storage_configuration("root", "dbx-root-bucket")
    return cred["credentials_id"], storage["storage_configuration_id"]


def _privatelink_network(w: World, vpc: WorkspaceVpc, name: str = "net") -> dict[str, Any]:
    rest = _register(w, vpc.rest_endpoint_id, name="rest")
    relay = _register(w, vpc.relay_endpoint_id, name="relay")
    return w.backend.create_network(
        {
            "network_name": name,
            "vpc_id": vpc.vpc_id,
            "subnet_ids": list(vpc.subnet_ids),
            "security_group_ids": [vpc.security_group_id],
            "vpc_endpoints": {
                "rest_api": [rest["vpc_endpoint_id"]],
                "dataplane_relay": [relay["vpc_endpoint_id"]],
            },
        }
    )


def _workspace(w: World, **extra: Any) -> dict[str, Any]:
    cred_id, storage_id = _base_objects(w)
    body = {
        "workspace_name": "ws",
        "aws_region": REGION,
        "credentials_id": cred_id,
        "storage_configuration_id": storage_id,
        **extra,
    }
    return w.backend.create_workspace(body)


def _running_workspace_on_network(w: World) -> tuple[dict[str, Any], dict[str, Any], WorkspaceVpc]:
    vpc = w.aws.add_workspace_vpc(REGION)
    net = _privatelink_network(w, vpc)
    w.clock.advance(CONFIG.endpoint_accept_delay_s)
    ws = _workspace(w, network_id=net["network_id"])
    w.clock.advance(CONFIG.workspace_provision_delay_s)
    assert w.backend.get_workspace(ws["workspace_id"])["workspace_status"] == "RUNNING"
    return ws, net, vpc


# --- VPC endpoint registrations ---------------------------------------------------------------


def test_registration_takes_service_and_account_from_aws_and_accepts_after_the_delay(world: World) -> None:
    # Given an AWS endpoint to the region's workspace service, pending acceptance
    vpc = world.aws.add_workspace_vpc(REGION)

    # When it is registered
    reg = _register(world, vpc.rest_endpoint_id)

    # Then the registration mirrors AWS and names the use case
    services = default_catalog().regions[REGION]
    assert reg["use_case"] == "WORKSPACE_ACCESS"
    assert reg["aws_endpoint_service_id"] == services.workspace_service.rsplit(".", 1)[1]
    assert reg["aws_account_id"] == world.aws.owner_account_id
    assert reg["state"] == "pendingAcceptance"
    world.clock.advance(CONFIG.endpoint_accept_delay_s - 1)
    assert world.backend.get_vpc_endpoint(reg["vpc_endpoint_id"])["state"] == "pendingAcceptance"
    # And the endpoint service accepts it once the delay has passed
    world.clock.advance(1)
    assert world.backend.get_vpc_endpoint(reg["vpc_endpoint_id"])["state"] == "available"
    assert world.aws.accepted == [(REGION, vpc.rest_endpoint_id)]


def test_relay_endpoint_gets_the_relay_use_case(world: World) -> None:
    vpc = world.aws.add_workspace_vpc(REGION)
    assert _register(world, vpc.relay_endpoint_id)["use_case"] == "DATAPLANE_RELAY_ACCESS"


def test_registration_state_follows_aws_on_every_read(world: World) -> None:
    vpc = world.aws.add_workspace_vpc(REGION)
    reg = _register(world, vpc.rest_endpoint_id)
    world.aws.reject_vpc_endpoint(REGION, vpc.rest_endpoint_id)
    assert world.backend.list_vpc_endpoints()[0]["state"] == "rejected"
    world.aws.delete_vpc_endpoint(REGION, vpc.rest_endpoint_id)
    assert world.backend.get_vpc_endpoint(reg["vpc_endpoint_id"])["state"] == "deleted"


def test_registering_the_same_aws_endpoint_twice_is_refused(world: World) -> None:
    vpc = world.aws.add_workspace_vpc(REGION)
    _register(world, vpc.rest_endpoint_id)
    with pytest.raises(ApiError) as exc:
        _register(world, vpc.rest_endpoint_id, name="again")
    assert _code(exc) == "RESOURCE_ALREADY_EXISTS"
    assert exc.value.status == 409
    assert len(world.backend.list_vpc_endpoints()) == 1


def test_unknown_aws_endpoint_or_wrong_region_is_refused(world: World) -> None:
    vpc = world.aws.add_workspace_vpc(REGION)
    with pytest.raises(ApiError) as exc:
        _register(world, "vpce-0000000000000dead")
    assert _code(exc) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(ApiError) as exc:
        _register(world, vpc.rest_endpoint_id, region=OTHER_REGION)
    assert _code(exc) == "INVALID_PARAMETER_VALUE"
    assert "does not exist in region eu-west-1" in exc.value.message


def test_endpoint_to_a_non_databricks_service_is_refused_naming_it(world: World) -> None:
    vpc = world.aws.add_vpc(REGION)
    s3 = world.aws.add_vpc_endpoint(REGION, vpc.vpc_id, "com.amazonaws.us-east-1.s3", state="available")
    with pytest.raises(ApiError) as exc:
        _register(world, s3.vpc_endpoint_id)
    assert _code(exc) == "INVALID_PARAMETER_VALUE"
    assert "com.amazonaws.us-east-1.s3" in exc.value.message


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"aws_vpc_endpoint_id": "vpce-0123456789abcdef0", "region": REGION}, "INVALID_PARAMETER_VALUE"),
        ({"vpc_endpoint_name": "x", "region": REGION}, "INVALID_PARAMETER_VALUE"),
        (
            {"vpc_endpoint_name": "x", "aws_vpc_endpoint_id": "vpce-0123456789abcdef0"},
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {"vpc_endpoint_name": "x", "aws_vpc_endpoint_id": "not-an-id", "region": REGION},
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {"vpc_endpoint_name": 7, "aws_vpc_endpoint_id": "vpce-0123456789abcdef0", "region": REGION},
            "MALFORMED_REQUEST",
        ),
        (
            {"vpc_endpoint_name": "x", "aws_vpc_endpoint_id": "vpce-0123456789abcdef0", "region": "mars-1"},
            "INVALID_PARAMETER_VALUE",
        ),
    ],
)
def test_registration_fields_are_checked(world: World, body: dict[str, Any], code: str) -> None:
    with pytest.raises(ApiError) as exc:
        world.backend.create_vpc_endpoint(body)
    assert _code(exc) == code


# --- private access settings ------------------------------------------------------------------


def test_private_access_settings_defaults_and_any_level_refused(world: World) -> None:
    pas = world.backend.create_private_access_settings(
        {"private_access_settings_name": "p", "region": REGION}
    )
    assert pas["private_access_level"] == "ACCOUNT"
    assert pas["public_access_enabled"] is False
    with pytest.raises(ApiError) as exc:
        world.backend.create_private_access_settings(
            {"private_access_settings_name": "p", "region": REGION, "private_access_level": "ANY"}
        )
    assert _code(exc) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(ApiError) as exc:
        world.backend.create_private_access_settings(
            {"private_access_settings_name": "p", "region": REGION, "private_access_level": "SOMETIMES"}
        )
    assert _code(exc) == "MALFORMED_REQUEST"


def test_endpoint_level_allow_list_takes_registered_ids_of_the_same_region(world: World) -> None:
    vpc = world.aws.add_workspace_vpc(REGION)
    reg = _register(world, vpc.rest_endpoint_id)
    body = {"private_access_settings_name": "p", "region": REGION, "private_access_level": "ENDPOINT"}

    pas = world.backend.create_private_access_settings(
        {**body, "allowed_vpc_endpoint_ids": [reg["vpc_endpoint_id"]]}
    )
    assert pas["allowed_vpc_endpoint_ids"] == [reg["vpc_endpoint_id"]]

    # The AWS id is not a Databricks id
    with pytest.raises(ApiError) as exc:
        world.backend.create_private_access_settings(
            {**body, "allowed_vpc_endpoint_ids": [vpc.rest_endpoint_id]}
        )
    assert _code(exc) == "INVALID_PARAMETER_VALUE"
    # Region-bound
    with pytest.raises(ApiError) as exc:
        world.backend.create_private_access_settings(
            {**body, "region": OTHER_REGION, "allowed_vpc_endpoint_ids": [reg["vpc_endpoint_id"]]}
        )
    assert "not in eu-west-1" in exc.value.message


def test_put_replaces_the_whole_object(world: World) -> None:
    pas = world.backend.create_private_access_settings(
        {"private_access_settings_name": "p", "region": REGION, "public_access_enabled": True}
    )
    replaced = world.backend.replace_private_access_settings(
        pas["private_access_settings_id"], {"private_access_settings_name": "q", "region": REGION}
    )
    # public_access_enabled was left out, so it falls back to its default
    assert replaced["public_access_enabled"] is False
    assert replaced["private_access_settings_name"] == "q"
    assert replaced["private_access_settings_id"] == pas["private_access_settings_id"]
    with pytest.raises(ApiError) as exc:
        world.backend.replace_private_access_settings(
            "nope", {"private_access_settings_name": "q", "region": REGION}
        )
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"


# --- networks ---------------------------------------------------------------------------------


def _network_body(vpc: WorkspaceVpc, **overrides: Any) -> dict[str, Any]:
    body = {
        "network_name": "n",
        "vpc_id": vpc.vpc_id,
        "subnet_ids": list(vpc.subnet_ids),
        "security_group_ids": [vpc.security_group_id],
    }
    body.update(overrides)
    return body


def test_network_needs_two_subnets_and_one_to_five_groups(world: World) -> None:
    vpc = world.aws.add_workspace_vpc(REGION)
    for overrides in (
        {"subnet_ids": [vpc.subnet_ids[0]]},
        {"security_group_ids": []},
        {"security_group_ids": [f"sg-00000000000000{i:03d}" for i in range(6)]},
        {"subnet_ids": "subnet-0123456789abcdef0"},
    ):
        with pytest.raises(ApiError) as exc:
            world.backend.create_network(_network_body(vpc, **overrides))
        assert exc.value.status == 400
    assert world.backend.list_networks() == []


def test_subnets_and_security_groups_cannot_be_reused_across_networks_but_the_vpc_can(world: World) -> None:
    vpc = world.aws.add_workspace_vpc(REGION)
    first = world.backend.create_network(_network_body(vpc))
    with pytest.raises(ApiError) as exc:
        world.backend.create_network(_network_body(vpc, security_group_ids=["sg-0123456789abcdef0"]))
    assert _code(exc) == "INVALID_PARAMETER_VALUE"
    assert first["network_id"] in exc.value.message
    with pytest.raises(ApiError) as exc:
        world.backend.create_network(
            _network_body(vpc, subnet_ids=["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"])
        )
    assert "Security group" in exc.value.message
    other = world.backend.create_network(
        _network_body(
            vpc,
            subnet_ids=["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
            security_group_ids=["sg-0123456789abcdef0"],
        )
    )
    assert other["vpc_id"] == first["vpc_id"]
    assert other["vpc_status"] == "UNATTACHED"


def test_network_endpoints_must_be_registered_ids(world: World) -> None:
    vpc = world.aws.add_workspace_vpc(REGION)
    with pytest.raises(ApiError) as exc:
        world.backend.create_network(
            _network_body(vpc, vpc_endpoints={"rest_api": [vpc.rest_endpoint_id], "dataplane_relay": []})
        )
    assert _code(exc) == "INVALID_PARAMETER_VALUE"


# --- workspaces: provisioning and validation --------------------------------------------------


def test_workspace_provisions_then_runs_and_the_network_becomes_valid(world: World) -> None:
    vpc = world.aws.add_workspace_vpc(REGION)
    net = _privatelink_network(world, vpc)
    world.clock.advance(CONFIG.endpoint_accept_delay_s)

    ws = _workspace(world, network_id=net["network_id"])
    assert ws["workspace_status"] == "PROVISIONING"
    assert ws["workspace_status_message"]
    assert isinstance(ws["workspace_id"], int)

    world.clock.advance(CONFIG.workspace_provision_delay_s)
    ws = world.backend.get_workspace(ws["workspace_id"])
    net = world.backend.get_network(net["network_id"])
    assert ws["workspace_status"] == "RUNNING"
    assert net["vpc_status"] == "VALID"
    assert net["workspace_id"] == ws["workspace_id"]
    assert net["error_messages"] == []


def test_endpoints_not_yet_available_fail_the_workspace(world: World) -> None:
    # Given a network whose endpoints are still pendingAcceptance when provisioning ends
    vpc = world.aws.add_workspace_vpc(REGION)
    net = _privatelink_network(world, vpc)
    ws = _workspace(world, network_id=net["network_id"])
    # Cancel acceptance by rejecting on the AWS side first
    world.aws.reject_vpc_endpoint(REGION, vpc.rest_endpoint_id)
    world.clock.advance(CONFIG.workspace_provision_delay_s)

    ws = world.backend.get_workspace(ws["workspace_id"])
    net = world.backend.get_network(net["network_id"])
    assert ws["workspace_status"] == "FAILED"
    assert net["vpc_status"] == "BROKEN"
    assert any(
        vpc.rest_endpoint_id in m["error_message"] and "rejected" in m["error_message"]
        for m in net["error_messages"]
    )


def test_a_broken_network_fails_the_workspace_and_names_each_problem(world: World) -> None:
    # Given a VPC without DNS hostnames, one /28 subnet, both subnets in one AZ and a group missing port 8443
    aws = world.aws
    vpc = aws.add_vpc(REGION, dns_hostnames=False)
    s1 = aws.add_subnet(REGION, vpc.vpc_id, "10.0.0.0/28", "us-east-1a")
    s2 = aws.add_subnet(REGION, vpc.vpc_id, "10.0.1.0/24", "us-east-1a")
    egress = tuple(SgRule("tcp", p, p, cidr_blocks=("0.0.0.0/0",)) for p in (443, 2443, 5432, 6666))
    sg = aws.add_security_group(REGION, vpc.vpc_id, egress=egress, self_referencing=True)
    net = world.backend.create_network(
        {
            "network_name": "broken",
            "vpc_id": vpc.vpc_id,
            "subnet_ids": [s1.subnet_id, s2.subnet_id],
            "security_group_ids": [sg.group_id],
        }
    )

    # When a workspace is created on it
    ws = _workspace(world, network_id=net["network_id"])
    world.clock.advance(CONFIG.workspace_provision_delay_s)

    # Then the workspace is FAILED, and the network BROKEN with one message per problem
    ws = world.backend.get_workspace(ws["workspace_id"])
    net = world.backend.get_network(net["network_id"])
    assert ws["workspace_status"] == "FAILED"
    assert "enableDnsHostnames" in ws["workspace_status_message"]
    assert net["vpc_status"] == "BROKEN"
    messages = {(m["error_type"], m["error_message"]) for m in net["error_messages"]}
    types = [t for t, _ in messages]
    assert types.count("vpc") == 1
    assert any(t == "subnet" and "/28" in m for t, m in messages)
    assert any(t == "subnet" and "availability zones" in m for t, m in messages)
    assert any(t == "securityGroup" and "8443" in m and "8445-8451" in m for t, m in messages)


def test_security_group_without_self_reference_is_reported(world: World) -> None:
    vpc = world.aws.add_workspace_vpc(REGION)
    group = world.aws.security_groups[(REGION, vpc.security_group_id)]
    world.aws.put_security_group(
        REGION, type(group)(group.group_id, group.vpc_id, ingress=(), egress=group.egress)
    )
    net = world.backend.create_network(_network_body(vpc))
    ws = _workspace(world, network_id=net["network_id"])
    world.clock.advance(CONFIG.workspace_provision_delay_s)
    assert world.backend.get_workspace(ws["workspace_id"])["workspace_status"] == "FAILED"
    errors = world.backend.get_network(net["network_id"])["error_messages"]
    assert {e["error_message"] for e in errors} == {
        f"Security groups {vpc.security_group_id} do not allow all TCP ingress from and to the same security group",
        f"Security groups {vpc.security_group_id} do not allow all UDP ingress from and to the same security group",
    }


def test_workspace_references_must_exist_and_match_the_region(world: World) -> None:
    cred_id, storage_id = _base_objects(world)
    base = {
        "workspace_name": "w",
        "aws_region": REGION,
        "credentials_id": cred_id,
        "storage_configuration_id": storage_id,
    }
    pas = world.backend.create_private_access_settings(
        {"private_access_settings_name": "p", "region": OTHER_REGION}
    )
    for extra, fragment in (
        ({"credentials_id": "missing"}, "Credential configuration missing"),
        ({"storage_configuration_id": "missing"}, "Storage configuration missing"),
        ({"network_id": "missing"}, "Network missing"),
        ({"private_access_settings_id": pas["private_access_settings_id"]}, "eu-west-1"),
        ({"aws_region": "mars-1"}, "mars-1"),
    ):
        with pytest.raises(ApiError) as exc:
            world.backend.create_workspace({**base, **extra})
        assert _code(exc) == "INVALID_PARAMETER_VALUE"
        assert fragment in exc.value.message
    with pytest.raises(ApiError) as exc:
        world.backend.create_workspace({k: v for k, v in base.items() if k != "workspace_name"})
    assert exc.value.message == "Missing required field: workspace_name"


# --- in-use deletes ---------------------------------------------------------------------------


def test_objects_in_use_cannot_be_deleted(world: World) -> None:
    ws, net, _ = _running_workspace_on_network(world)
    pas = world.backend.create_private_access_settings(
        {"private_access_settings_name": "p", "region": REGION}
    )
    world.backend.update_workspace(
        ws["workspace_id"], {"private_access_settings_id": pas["private_access_settings_id"]}
    )
    ws_id = ws["workspace_id"]

    cases = [
        (
            world.backend.delete_network,
            net["network_id"],
            f"Unable to delete, Network is being used by active workspace {ws_id}",
        ),
        (
            world.backend.delete_credentials,
            ws["credentials_id"],
            f"Unable to delete, Credential is being used by active workspace {ws_id}",
        ),
        (
            world.backend.delete_storage_configuration,
            ws["storage_configuration_id"],
            f"Unable to delete, Storage configuration is being used by active workspace {ws_id}",
        ),
        (
            world.backend.delete_private_access_settings,
            pas["private_access_settings_id"],
            f"Unable to delete, Private access settings is being used by active workspace {ws_id}",
        ),
        (
            world.backend.delete_vpc_endpoint,
            net["vpc_endpoints"]["rest_api"][0],
            f"Unable to delete, VPC endpoint is being used by network {net['network_id']}",
        ),
    ]
    for delete, object_id, message in cases:
        with pytest.raises(ApiError) as exc:
            delete(object_id)
        assert _code(exc) == "INVALID_STATE"
        assert exc.value.message == message


def test_endpoint_in_an_allow_list_cannot_be_deleted(world: World) -> None:
    vpc = world.aws.add_workspace_vpc(REGION)
    reg = _register(world, vpc.rest_endpoint_id)
    pas = world.backend.create_private_access_settings(
        {
            "private_access_settings_name": "p",
            "region": REGION,
            "private_access_level": "ENDPOINT",
            "allowed_vpc_endpoint_ids": [reg["vpc_endpoint_id"]],
        }
    )
    with pytest.raises(ApiError) as exc:
        world.backend.delete_vpc_endpoint(reg["vpc_endpoint_id"])
    assert pas["private_access_settings_id"] in exc.value.message
    world.backend.delete_private_access_settings(pas["private_access_settings_id"])
    assert (
        world.backend.delete_vpc_endpoint(reg["vpc_endpoint_id"])["vpc_endpoint_id"] == reg["vpc_endpoint_id"]
    )


def test_workspace_delete_is_asynchronous_and_frees_the_network(world: World) -> None:
    ws, net, _ = _running_workspace_on_network(world)
    deleted = world.backend.delete_workspace(ws["workspace_id"])
    assert deleted["workspace_id"] == ws["workspace_id"]
    # Still there, and still holding its network, until the delete completes
    assert world.backend.get_workspace(ws["workspace_id"])["workspace_id"] == ws["workspace_id"]
    with pytest.raises(ApiError):
        world.backend.delete_network(net["network_id"])

    world.clock.advance(CONFIG.workspace_delete_delay_s)
    with pytest.raises(ApiError) as exc:
        world.backend.get_workspace(ws["workspace_id"])
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"
    assert "workspace_id" not in world.backend.get_network(net["network_id"])
    assert world.backend.delete_network(net["network_id"])["network_id"] == net["network_id"]


# --- PATCH ------------------------------------------------------------------------------------


def test_patch_of_a_running_workspace_goes_through_provisioning(world: World) -> None:
    ws, _, _ = _running_workspace_on_network(world)
    updated = world.backend.update_workspace(ws["workspace_id"], {"custom_tags": {"team": "data"}})
    assert updated["workspace_status"] == "PROVISIONING"
    assert updated["custom_tags"] == {"team": "data"}
    world.clock.advance(CONFIG.workspace_update_delay_s)
    assert world.backend.get_workspace(ws["workspace_id"])["workspace_status"] == "RUNNING"


def test_moving_a_workspace_to_another_network_clears_the_old_one(world: World) -> None:
    ws, old, _ = _running_workspace_on_network(world)
    vpc2 = world.aws.add_workspace_vpc(REGION)
    new = _privatelink_network(world, vpc2, name="net2")
    world.clock.advance(CONFIG.endpoint_accept_delay_s)

    world.backend.update_workspace(ws["workspace_id"], {"network_id": new["network_id"]}, "network_id")
    assert "workspace_id" not in world.backend.get_network(old["network_id"])
    world.clock.advance(CONFIG.workspace_update_delay_s)

    assert world.backend.get_workspace(ws["workspace_id"])["network_id"] == new["network_id"]
    assert world.backend.get_network(new["network_id"])["workspace_id"] == ws["workspace_id"]
    assert world.backend.get_network(new["network_id"])["vpc_status"] == "VALID"
    assert world.backend.delete_network(old["network_id"])["network_id"] == old["network_id"]


def test_three_patch_shapes_mean_the_same_update(world: World) -> None:
    ws, _, _ = _running_workspace_on_network(world)
    ws_id = ws["workspace_id"]
    pas = world.backend.create_private_access_settings(
        {"private_access_settings_name": "p", "region": REGION}
    )
    pas_id = pas["private_access_settings_id"]

    def settle() -> dict[str, Any]:
        world.clock.advance(CONFIG.workspace_update_delay_s)
        return world.backend.get_workspace(ws_id)

    # whole object + mask in the query (SDK 0.156): output-only and unchanged fields are ignored
    whole = {
        **world.backend.get_workspace(ws_id),
        "private_access_settings_id": pas_id,
        "workspace_name": "ignored",
    }
    world.backend.update_workspace(ws_id, whole, "private_access_settings_id")
    current = settle()
    assert current["private_access_settings_id"] == pas_id
    assert current["workspace_name"] == "ws"

    # flat fields + update_mask in the body (Terraform)
    world.backend.update_workspace(ws_id, {"custom_tags": {"a": "1"}, "update_mask": "custom_tags"})
    assert settle()["custom_tags"] == {"a": "1"}

    # flat fields alone (older SDK)
    world.backend.update_workspace(ws_id, {"custom_tags": {"b": "2"}})
    assert settle()["custom_tags"] == {"b": "2"}


def test_running_workspace_refuses_region_and_storage_changes(world: World) -> None:
    ws, _, _ = _running_workspace_on_network(world)
    for body in (
        {"aws_region": OTHER_REGION},
        {"storage_configuration_id": "x"},
        {"workspace_name": "renamed"},
    ):
        with pytest.raises(ApiError) as exc:
            world.backend.update_workspace(ws["workspace_id"], body)
        assert _code(exc) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(ApiError) as exc:
        world.backend.update_workspace(ws["workspace_id"], {"custom_tags": {}}, "nonsense_field")
    assert _code(exc) == "INVALID_PARAMETER_VALUE"


def test_provisioning_workspace_refuses_any_patch(world: World) -> None:
    ws = _workspace(world)
    with pytest.raises(ApiError) as exc:
        world.backend.update_workspace(ws["workspace_id"], {"custom_tags": {"a": "b"}})
    assert _code(exc) == "INVALID_STATE"


def test_failed_workspace_may_change_storage_and_retries_provisioning(world: World) -> None:
    vpc = world.aws.add_workspace_vpc(REGION)
    world.aws.set_vpc_dns(REGION, vpc.vpc_id, dns_support=True, dns_hostnames=False)
    net = world.backend.create_network(_network_body(vpc))
    ws = _workspace(world, network_id=net["network_id"])
    world.clock.advance(CONFIG.workspace_provision_delay_s)
    assert world.backend.get_workspace(ws["workspace_id"])["workspace_status"] == "FAILED"

    # Given the customer fixes the VPC and picks another storage configuration
    world.aws.set_vpc_dns(REGION, vpc.vpc_id, dns_support=True, dns_hostnames=True)
    storage = world.emulator.seed_storage_configuration("root2", "dbx-root-bucket-2")
    updated = world.backend.update_workspace(
        ws["workspace_id"], {"storage_configuration_id": storage["storage_configuration_id"]}
    )
    assert updated["workspace_status"] == "PROVISIONING"
    world.clock.advance(CONFIG.workspace_update_delay_s)
    assert world.backend.get_workspace(ws["workspace_id"])["workspace_status"] == "RUNNING"
    assert world.backend.get_network(net["network_id"])["vpc_status"] == "VALID"


# --- reset and seed ---------------------------------------------------------------------------


def test_reset_forgets_objects_and_cancels_pending_delays(world: World) -> None:
    vpc = world.aws.add_workspace_vpc(REGION)
    _register(world, vpc.rest_endpoint_id)
    world.emulator.reset()
    world.clock.advance(CONFIG.endpoint_accept_delay_s)
    assert world.aws.accepted == []
    state = world.emulator.state()
    assert state["vpc_endpoints"] == [] and state["pending_timers"] == 0


def test_seeded_objects_keep_the_given_ids(world: World) -> None:
    cred = world.emulator.seed_credentials(
        "c", "arn:aws:iam::123456789012:role/r", credentials_id="cred-fixed"
    )
    assert world.backend.get_credentials("cred-fixed") == cred
    assert cred["aws_credentials"]["sts_role"]["external_id"] == ACCOUNT
    with pytest.raises(ApiError):
        world.emulator.seed_storage_configuration("s", "Not_A_Bucket")
