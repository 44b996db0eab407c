"""The official databricks-sdk (a client nobody here wrote) against the emulator over real HTTP on
loopback: if the SDK cannot tell the emulator from accounts.cloud.databricks.com, neither can ours."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import requests
from databricks.sdk import AccountClient
from databricks.sdk.errors import (
    BadRequest,
    InvalidParameterValue,
    InvalidState,
    NotFound,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    Unauthenticated,
)
from databricks.sdk.service import provisioning as p

from dbx_privatelink_local.databricks import DatabricksEmulator, EmulatorConfig, EmulatorServer, ManualClock
from dbx_privatelink_local.databricks.clock import TimeScaleScheduler
from dbx_privatelink_local.databricks.memory_aws import InMemoryAwsView, WorkspaceVpc
from dbx_privatelink_local.timescale import TimeScale

ACCOUNT = "7f3c1d2e-0000-4000-8000-00000000abcd"
CLIENT_ID, CLIENT_SECRET = "sp-emulator", "s3cret"
REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/databricks-cross-account"
CONFIG = EmulatorConfig(
    token_lifetime_s=600,
    endpoint_accept_delay_s=20,
    workspace_provision_delay_s=60,
    workspace_update_delay_s=30,
    workspace_delete_delay_s=30,
)
TIMEOUT = 10


@dataclass
class Stack:
    aws: InMemoryAwsView
    clock: ManualClock
    emulator: DatabricksEmulator
    url: str
    sleeps: list[float]

    def account(self, **kw: Any) -> AccountClient:
        args = {
            "host": self.url,
            "account_id": ACCOUNT,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
        args.update(kw)
        return AccountClient(**args)

    def api(self, path: str = "") -> str:
        return f"{self.url}/api/2.0/accounts/{ACCOUNT}{path}"

    def token(self) -> str:
        resp = requests.post(
            f"{self.url}/oidc/accounts/{ACCOUNT}/v1/token",
            data={"grant_type": "client_credentials", "scope": "all-apis"},
            auth=(CLIENT_ID, CLIENT_SECRET),
            timeout=TIMEOUT,
        )
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}


@pytest.fixture
def stack() -> Iterator[Stack]:
    aws = InMemoryAwsView()
    clock = ManualClock()
    sleeps: list[float] = []
    emulator = DatabricksEmulator(
        aws, ACCOUNT, {CLIENT_ID: CLIENT_SECRET}, config=CONFIG, clock=clock, sleep=sleeps.append
    )
    server = EmulatorServer(emulator)
    url = server.start()
    try:
        yield Stack(aws, clock, emulator, url, sleeps)
    finally:
        server.stop()


def _base(a: AccountClient) -> tuple[str, str]:
    cred = a.credentials.create(
        credentials_name="cred",
        aws_credentials=p.CreateCredentialAwsCredentials(sts_role=p.CreateCredentialStsRole(role_arn=ROLE)),
    )
    storage = a.storage.create(
        storage_configuration_name="root", root_bucket_info=p.RootBucketInfo(bucket_name="dbx-root-bucket")
    )
    assert cred.credentials_id and storage.storage_configuration_id
    return cred.credentials_id, storage.storage_configuration_id


def _privatelink_network(s: Stack, a: AccountClient, vpc: WorkspaceVpc, name: str = "net") -> p.Network:
    rest = a.vpc_endpoints.create(
        vpc_endpoint_name="rest", aws_vpc_endpoint_id=vpc.rest_endpoint_id, region=REGION
    )
    relay = a.vpc_endpoints.create(
        vpc_endpoint_name="relay", aws_vpc_endpoint_id=vpc.relay_endpoint_id, region=REGION
    )
    assert rest.vpc_endpoint_id and relay.vpc_endpoint_id
    return a.networks.create(
        network_name=name,
        vpc_id=vpc.vpc_id,
        subnet_ids=list(vpc.subnet_ids),
        security_group_ids=[vpc.security_group_id],
        vpc_endpoints=p.NetworkVpcEndpoints(
            rest_api=[rest.vpc_endpoint_id], dataplane_relay=[relay.vpc_endpoint_id]
        ),
    )


# --- OAuth ------------------------------------------------------------------------------------


def test_token_endpoint_speaks_oauth_client_credentials(stack: Stack) -> None:
    for path in (f"/oidc/accounts/{ACCOUNT}/v1/token", "/oidc/v1/token"):
        resp = requests.post(
            stack.url + path,
            data={"grant_type": "client_credentials", "scope": "all-apis"},
            auth=(CLIENT_ID, CLIENT_SECRET),
            timeout=TIMEOUT,
        )
        assert resp.status_code == 200
        body = resp.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == CONFIG.token_lifetime_s
        assert body["scope"] == "all-apis"
        assert body["access_token"]


def test_bad_client_gets_invalid_client_with_a_content_type(stack: Stack) -> None:
    resp = requests.post(
        f"{stack.url}/oidc/accounts/{ACCOUNT}/v1/token",
        data={"grant_type": "client_credentials", "scope": "all-apis"},
        headers={"Authorization": "Basic " + base64.b64encode(f"{CLIENT_ID}:wrong".encode()).decode()},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 401
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["error"] == "invalid_client"
    assert resp.json()["error_description"]


def test_discovery_documents_point_at_the_token_endpoints(stack: Stack) -> None:
    meta = requests.get(f"{stack.url}/.well-known/databricks-config", timeout=TIMEOUT).json()
    assert meta == {
        "oidc_endpoint": f"{stack.url}/oidc/accounts/{ACCOUNT}",
        "account_id": ACCOUNT,
        "cloud": "aws",
    }
    new = requests.get(
        f"{stack.url}/oidc/accounts/{ACCOUNT}/.well-known/oauth-authorization-server", timeout=TIMEOUT
    ).json()
    assert new["token_endpoint"] == f"{stack.url}/oidc/accounts/{ACCOUNT}/v1/token"
    assert new["authorization_endpoint"]
    old = requests.get(f"{stack.url}/oidc/.well-known/oauth-authorization-server", timeout=TIMEOUT).json()
    assert old["token_endpoint"] == f"{stack.url}/oidc/v1/token"


def test_sdk_with_a_wrong_secret_fails_to_authenticate(stack: Stack) -> None:
    with pytest.raises(Exception, match="invalid_client"):
        list(stack.account(client_secret="wrong").credentials.list())


def test_expired_missing_and_bad_tokens_are_unauthenticated(stack: Stack) -> None:
    token = stack.token()
    ok = requests.get(
        stack.api("/credentials"), headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
    )
    assert ok.status_code == 200 and ok.json() == []

    stack.clock.advance(CONFIG.token_lifetime_s)
    for headers in ({"Authorization": f"Bearer {token}"}, {}, {"Authorization": "Bearer forged"}):
        resp = requests.get(stack.api("/credentials"), headers=headers, timeout=TIMEOUT)
        assert resp.status_code == 401
        assert resp.json()["error_code"] == "UNAUTHENTICATED"


def test_sdk_maps_auth_errors(stack: Stack) -> None:
    with pytest.raises(Unauthenticated):
        list(AccountClient(host=stack.url, account_id=ACCOUNT, token="not-a-token").credentials.list())
    a = stack.account()
    with pytest.raises(PermissionDenied):
        a.api_client.do("GET", "/api/2.0/accounts/someone-elses-account/credentials")


# --- every object through the SDK -------------------------------------------------------------


def test_sdk_credentials_and_storage_lifecycle(stack: Stack) -> None:
    a = stack.account()
    cred_id, storage_id = _base(a)
    assert a.credentials.get(cred_id).aws_credentials.sts_role.role_arn == ROLE  # type: ignore[union-attr]
    assert [c.credentials_id for c in a.credentials.list()] == [cred_id]
    assert a.storage.get(storage_id).root_bucket_info.bucket_name == "dbx-root-bucket"  # type: ignore[union-attr]
    assert [s.storage_configuration_id for s in a.storage.list()] == [storage_id]
    assert a.credentials.delete(cred_id).credentials_id == cred_id
    assert a.storage.delete(storage_id).storage_configuration_id == storage_id
    with pytest.raises(ResourceDoesNotExist):
        a.credentials.get(cred_id)
    with pytest.raises(NotFound):
        a.storage.delete(storage_id)


def test_sdk_vpc_endpoint_lifecycle_and_acceptance(stack: Stack) -> None:
    a = stack.account()
    vpc = stack.aws.add_workspace_vpc(REGION)
    reg = a.vpc_endpoints.create(
        vpc_endpoint_name="rest", aws_vpc_endpoint_id=vpc.rest_endpoint_id, region=REGION
    )
    assert reg.use_case == p.EndpointUseCase.WORKSPACE_ACCESS
    assert reg.state == "pendingAcceptance"
    assert reg.aws_account_id == stack.aws.owner_account_id
    assert reg.aws_endpoint_service_id and reg.aws_endpoint_service_id.startswith("vpce-svc-")

    stack.clock.advance(CONFIG.endpoint_accept_delay_s)
    assert reg.vpc_endpoint_id
    assert a.vpc_endpoints.get(reg.vpc_endpoint_id).state == "available"
    assert [r.vpc_endpoint_id for r in a.vpc_endpoints.list()] == [reg.vpc_endpoint_id]

    with pytest.raises(ResourceAlreadyExists):
        a.vpc_endpoints.create(
            vpc_endpoint_name="again", aws_vpc_endpoint_id=vpc.rest_endpoint_id, region=REGION
        )
    with pytest.raises(InvalidParameterValue):
        a.vpc_endpoints.create(
            vpc_endpoint_name="x", aws_vpc_endpoint_id="vpce-0000000000000dead", region=REGION
        )
    assert a.vpc_endpoints.delete(reg.vpc_endpoint_id).vpc_endpoint_id == reg.vpc_endpoint_id
    with pytest.raises(NotFound):
        a.vpc_endpoints.get(reg.vpc_endpoint_id)


def test_sdk_private_access_settings_create_replace_delete(stack: Stack) -> None:
    a = stack.account()
    vpc = stack.aws.add_workspace_vpc(REGION)
    reg = a.vpc_endpoints.create(
        vpc_endpoint_name="rest", aws_vpc_endpoint_id=vpc.rest_endpoint_id, region=REGION
    )
    pas = a.private_access.create(
        private_access_settings_name="pas", region=REGION, public_access_enabled=True
    )
    assert pas.private_access_level == p.PrivateAccessLevel.ACCOUNT
    assert pas.private_access_settings_id

    replaced = a.private_access.replace(
        pas.private_access_settings_id,
        p.PrivateAccessSettings(
            private_access_settings_name="pas-endpoint",
            region=REGION,
            private_access_level=p.PrivateAccessLevel.ENDPOINT,
            allowed_vpc_endpoint_ids=[reg.vpc_endpoint_id],  # type: ignore[list-item]
        ),
    )
    assert replaced.private_access_level == p.PrivateAccessLevel.ENDPOINT
    assert replaced.public_access_enabled is False
    got = a.private_access.get(pas.private_access_settings_id)
    assert got.allowed_vpc_endpoint_ids == [reg.vpc_endpoint_id]
    assert [x.private_access_settings_id for x in a.private_access.list()] == [pas.private_access_settings_id]

    with pytest.raises(InvalidParameterValue):
        a.private_access.create(
            private_access_settings_name="bad",
            region=REGION,
            private_access_level=p.PrivateAccessLevel.ENDPOINT,
            allowed_vpc_endpoint_ids=[vpc.rest_endpoint_id],
        )
    with pytest.raises(InvalidState):
        a.vpc_endpoints.delete(reg.vpc_endpoint_id)  # type: ignore[arg-type]
    a.private_access.delete(pas.private_access_settings_id)
    with pytest.raises(NotFound):
        a.private_access.get(pas.private_access_settings_id)


def test_sdk_networks_and_their_rules(stack: Stack) -> None:
    a = stack.account()
    vpc = stack.aws.add_workspace_vpc(REGION)
    net = _privatelink_network(stack, a, vpc)
    assert net.vpc_status == p.VpcStatus.UNATTACHED
    assert net.network_id
    assert a.networks.get(net.network_id).vpc_endpoints.rest_api  # type: ignore[union-attr]
    assert [n.network_id for n in a.networks.list()] == [net.network_id]

    with pytest.raises(InvalidParameterValue, match="already used by network"):
        a.networks.create(
            network_name="dup",
            vpc_id=vpc.vpc_id,
            subnet_ids=list(vpc.subnet_ids),
            security_group_ids=["sg-0123456789abcdef0"],
        )
    with pytest.raises(InvalidParameterValue):
        a.networks.create(
            network_name="one",
            vpc_id=vpc.vpc_id,
            subnet_ids=["subnet-0123456789abcdef0"],
            security_group_ids=["sg-1"],
        )
    with pytest.raises(BadRequest) as exc:
        a.api_client.do(
            "POST",
            f"/api/2.0/accounts/{ACCOUNT}/networks",
            body={
                "network_name": "n",
                "vpc_id": vpc.vpc_id,
                "subnet_ids": "subnet-0123",
                "security_group_ids": [],
            },
        )
    assert exc.value.error_code == "MALFORMED_REQUEST"
    assert a.networks.delete(net.network_id).network_id == net.network_id


def test_sdk_workspace_lifecycle_update_and_in_use_deletes(stack: Stack) -> None:
    a = stack.account()
    cred_id, storage_id = _base(a)
    vpc = stack.aws.add_workspace_vpc(REGION)
    net = _privatelink_network(stack, a, vpc)
    stack.clock.advance(CONFIG.endpoint_accept_delay_s)

    waiter = a.workspaces.create(
        workspace_name="ws",
        aws_region=REGION,
        credentials_id=cred_id,
        storage_configuration_id=storage_id,
        network_id=net.network_id,
    )
    ws_id = waiter.workspace_id
    assert isinstance(ws_id, int)
    assert a.workspaces.get(ws_id).workspace_status == p.WorkspaceStatus.PROVISIONING
    stack.clock.advance(CONFIG.workspace_provision_delay_s)
    assert a.workspaces.get(ws_id).workspace_status == p.WorkspaceStatus.RUNNING
    assert [w.workspace_id for w in a.workspaces.list()] == [ws_id]
    assert a.networks.get(net.network_id).vpc_status == p.VpcStatus.VALID  # type: ignore[arg-type]

    with pytest.raises(InvalidState, match=f"Network is being used by active workspace {ws_id}"):
        a.networks.delete(net.network_id)  # type: ignore[arg-type]
    with pytest.raises(InvalidState):
        a.credentials.delete(cred_id)
    with pytest.raises(InvalidState):
        a.storage.delete(storage_id)

    # SDK 0.156 sends the whole Workspace in the body and the mask in the query string
    pas = a.private_access.create(private_access_settings_name="pas", region=REGION)
    current = a.workspaces.get(ws_id)
    current.private_access_settings_id = pas.private_access_settings_id
    updated = a.workspaces.update(ws_id, current, update_mask="private_access_settings_id")
    assert updated.workspace_id == ws_id
    assert a.workspaces.get(ws_id).workspace_status == p.WorkspaceStatus.PROVISIONING
    with pytest.raises(InvalidState):
        a.workspaces.update(ws_id, p.Workspace(custom_tags={"a": "b"}), update_mask="custom_tags")
    stack.clock.advance(CONFIG.workspace_update_delay_s)
    got = a.workspaces.get(ws_id)
    assert got.workspace_status == p.WorkspaceStatus.RUNNING
    assert got.private_access_settings_id == pas.private_access_settings_id
    with pytest.raises(InvalidParameterValue):
        a.workspaces.update(ws_id, p.Workspace(aws_region="eu-west-1"), update_mask="aws_region")

    deleted = a.workspaces.delete(ws_id)
    assert deleted.workspace_id == ws_id
    assert a.workspaces.get(ws_id).workspace_id == ws_id
    stack.clock.advance(CONFIG.workspace_delete_delay_s)
    with pytest.raises(NotFound):
        a.workspaces.get(ws_id)
    a.networks.delete(net.network_id)  # type: ignore[arg-type]
    a.credentials.delete(cred_id)


def test_sdk_waiter_sees_running_with_scaled_real_timers() -> None:
    # Given an emulator on real timers compressed by a private time factor
    aws = InMemoryAwsView()
    emulator = DatabricksEmulator(
        aws,
        ACCOUNT,
        {CLIENT_ID: CLIENT_SECRET},
        config=EmulatorConfig(workspace_provision_delay_s=10),
        scheduler=TimeScaleScheduler(TimeScale(0.01)),
    )
    with EmulatorServer(emulator) as server:
        a = AccountClient(
            host=server.url, account_id=ACCOUNT, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        )
        cred_id, storage_id = _base(a)
        # When the SDK creates a workspace and waits (its own poll loop, bounded by the timeout)
        ws = a.workspaces.create_and_wait(
            workspace_name="ws",
            aws_region=REGION,
            credentials_id=cred_id,
            storage_configuration_id=storage_id,
            timeout=timedelta(seconds=30),
        )
    # Then it returns the RUNNING workspace
    assert ws.workspace_status == p.WorkspaceStatus.RUNNING


# --- PATCH shapes over plain HTTP -------------------------------------------------------------


def _running_workspace(s: Stack) -> tuple[int, dict[str, str]]:
    headers = s.headers()
    cred = s.emulator.seed_credentials("c", ROLE)
    storage = s.emulator.seed_storage_configuration("s", "dbx-root-bucket")
    resp = requests.post(
        s.api("/workspaces"),
        json={
            "workspace_name": "ws",
            "aws_region": REGION,
            "credentials_id": cred["credentials_id"],
            "storage_configuration_id": storage["storage_configuration_id"],
        },
        headers=headers,
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200, resp.text
    s.clock.advance(CONFIG.workspace_provision_delay_s)
    return int(resp.json()["workspace_id"]), headers


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("?update_mask=custom_tags", "whole"),
        ("", {"custom_tags": {"team": "data"}, "update_mask": "custom_tags"}),
        ("", {"custom_tags": {"team": "data"}}),
    ],
    ids=["whole-object-mask-in-query", "flat-mask-in-body", "flat-alone"],
)
def test_all_three_patch_shapes_are_accepted(stack: Stack, query: str, body: Any) -> None:
    ws_id, headers = _running_workspace(stack)
    url = stack.api(f"/workspaces/{ws_id}")
    if body == "whole":
        body = {**requests.get(url, headers=headers, timeout=TIMEOUT).json(), "custom_tags": {"team": "data"}}
    resp = requests.patch(url + query, json=body, headers=headers, timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    assert resp.json()["workspace_id"] == ws_id
    assert resp.json()["workspace_status"] == "PROVISIONING"
    stack.clock.advance(CONFIG.workspace_update_delay_s)
    got = requests.get(url, headers=headers, timeout=TIMEOUT).json()
    assert got["custom_tags"] == {"team": "data"}
    assert got["workspace_status"] == "RUNNING"


def test_error_bodies_carry_code_and_message(stack: Stack) -> None:
    headers = stack.headers()
    resp = requests.post(stack.api("/workspaces"), data="{not json", headers=headers, timeout=TIMEOUT)
    assert resp.status_code == 400
    assert resp.json()["error_code"] == "MALFORMED_REQUEST"
    resp = requests.get(stack.api("/workspaces/123"), headers=headers, timeout=TIMEOUT)
    assert resp.status_code == 404
    assert set(resp.json()) == {"error_code", "message", "details"}


# --- network validation -> FAILED / BROKEN ----------------------------------------------------


def test_workspace_on_a_broken_network_fails_with_messages(stack: Stack) -> None:
    a = stack.account()
    cred_id, storage_id = _base(a)
    vpc = stack.aws.add_workspace_vpc(REGION)
    stack.aws.set_vpc_dns(REGION, vpc.vpc_id, dns_support=False, dns_hostnames=True)
    net = _privatelink_network(stack, a, vpc)
    # The endpoints are never accepted before provisioning ends
    stack.aws.reject_vpc_endpoint(REGION, vpc.relay_endpoint_id)
    stack.clock.advance(CONFIG.endpoint_accept_delay_s)

    ws_id = a.workspaces.create(
        workspace_name="ws",
        aws_region=REGION,
        credentials_id=cred_id,
        storage_configuration_id=storage_id,
        network_id=net.network_id,
    ).workspace_id
    stack.clock.advance(CONFIG.workspace_provision_delay_s)

    ws = a.workspaces.get(ws_id)  # type: ignore[arg-type]
    assert ws.workspace_status == p.WorkspaceStatus.FAILED
    assert "enableDnsSupport" in (ws.workspace_status_message or "")
    got = a.networks.get(net.network_id)  # type: ignore[arg-type]
    assert got.vpc_status == p.VpcStatus.BROKEN
    assert got.workspace_id == ws_id
    messages = [(m.error_type, m.error_message or "") for m in got.error_messages or []]
    assert (p.ErrorType.VPC, f"VPC {vpc.vpc_id} does not have DNS support (enableDnsSupport)") in messages
    assert any(t == p.ErrorType.VPC and "rejected" in m for t, m in messages)


# --- faults -----------------------------------------------------------------------------------


def test_sdk_retries_a_throttled_call(stack: Stack) -> None:
    a = stack.account()
    stack.emulator.add_fault("throttle", method="GET", path="*/credentials", count=1, retry_after_s=0)
    assert list(a.credentials.list()) == []
    calls = stack.emulator.calls
    template = "/api/2.0/accounts/{account_id}/credentials"
    assert calls.count("GET", template, 429) == 1
    assert calls.count("GET", template, 200) == 1


def test_throttle_carries_an_integer_retry_after(stack: Stack) -> None:
    headers = stack.headers()
    stack.emulator.add_fault("throttle", path="*/networks", retry_after_s=7)
    resp = requests.get(stack.api("/networks"), headers=headers, timeout=TIMEOUT)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "7"
    assert resp.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert requests.get(stack.api("/networks"), headers=headers, timeout=TIMEOUT).status_code == 200


def test_commit_then_drop_creates_exactly_one_object(stack: Stack) -> None:
    headers = stack.headers()
    stack.emulator.add_fault("commit_then_drop", method="POST", path="*/credentials")
    body = {"credentials_name": "c", "aws_credentials": {"sts_role": {"role_arn": ROLE}}}
    with pytest.raises(requests.ConnectionError):
        requests.post(stack.api("/credentials"), json=body, headers=headers, timeout=TIMEOUT)
    assert len(stack.emulator.state()["credentials"]) == 1
    assert stack.emulator.calls.count("POST", "/api/2.0/accounts/{account_id}/credentials", 0) == 1


def test_sdk_resends_a_dropped_registration_and_meets_its_own_write(stack: Stack) -> None:
    # Given the first registration is written but its response is lost
    a = stack.account()
    vpc = stack.aws.add_workspace_vpc(REGION)
    stack.emulator.add_fault("commit_then_drop", method="POST", path="*/vpc-endpoints")
    # When the SDK retries the POST on the dropped connection
    with pytest.raises(ResourceAlreadyExists):
        a.vpc_endpoints.create(
            vpc_endpoint_name="rest", aws_vpc_endpoint_id=vpc.rest_endpoint_id, region=REGION
        )
    # Then exactly one registration exists: the reason callers must find-first
    assert len(stack.emulator.state()["vpc_endpoints"]) == 1


def test_commit_then_503_makes_the_sdk_create_twice(stack: Stack) -> None:
    a = stack.account()
    stack.emulator.add_fault(
        "commit_then_error", method="POST", path="*/credentials", status=503, retry_after_s=0
    )
    a.credentials.create(
        credentials_name="c",
        aws_credentials=p.CreateCredentialAwsCredentials(sts_role=p.CreateCredentialStsRole(role_arn=ROLE)),
    )
    assert len(stack.emulator.state()["credentials"]) == 2


def test_latency_and_unavailable_faults(stack: Stack) -> None:
    headers = stack.headers()
    stack.emulator.add_fault("latency", path="*/workspaces", latency_s=2.5)
    assert requests.get(stack.api("/workspaces"), headers=headers, timeout=TIMEOUT).status_code == 200
    assert stack.sleeps == [2.5]
    stack.emulator.add_fault("unavailable", path="*/workspaces")
    resp = requests.get(stack.api("/workspaces"), headers=headers, timeout=TIMEOUT)
    assert resp.status_code == 503 and resp.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert resp.headers["Retry-After"].isdigit()


# --- admin routes -----------------------------------------------------------------------------


def test_admin_routes_manage_faults_state_calls_and_reset(stack: Stack) -> None:
    headers = stack.headers()
    admin = f"{stack.url}/_emulator"
    fault = requests.post(
        f"{admin}/faults",
        json={"kind": "throttle", "method": "GET", "path": r"/credentials$", "regex": True, "count": 2},
        timeout=TIMEOUT,
    ).json()
    assert fault["remaining"] == 2
    assert requests.post(f"{admin}/faults", json={"kind": "nope"}, timeout=TIMEOUT).status_code == 400
    assert requests.get(stack.api("/credentials"), headers=headers, timeout=TIMEOUT).status_code == 429
    assert requests.delete(f"{admin}/faults/{fault['fault_id']}", timeout=TIMEOUT).status_code == 200
    assert requests.get(stack.api("/credentials"), headers=headers, timeout=TIMEOUT).status_code == 200

    seeded = requests.post(
        f"{admin}/seed/credentials",
        json={
            "credentials_id": "seeded",
            "credentials_name": "c",
            "aws_credentials": {"sts_role": {"role_arn": ROLE}},
        },
        timeout=TIMEOUT,
    )
    assert seeded.status_code == 200
    state = requests.get(f"{admin}/state", timeout=TIMEOUT).json()
    assert [c["credentials_id"] for c in state["credentials"]] == ["seeded"]

    calls = requests.get(f"{admin}/calls", timeout=TIMEOUT).json()
    assert calls["by_operation"]["GET /api/2.0/accounts/{account_id}/credentials"] == 2
    assert not any(op.startswith("GET /_emulator") for op in calls["by_operation"])

    assert requests.post(f"{admin}/reset", timeout=TIMEOUT).status_code == 200
    assert requests.get(f"{admin}/state", timeout=TIMEOUT).json()["credentials"] == []
    # Tokens survive a reset so cached clients keep working
    assert requests.get(stack.api("/credentials"), headers=headers, timeout=TIMEOUT).status_code == 200
