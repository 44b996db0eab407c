"""The Databricks Account API client against a scripted fake transport (no network, no mocks)."""

from __future__ import annotations

import base64
import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import MaxRetryError, NewConnectionError

from dbx_privatelink.databricks import DatabricksAccountClient
from dbx_privatelink.databricks.models import Network, PrivateAccessSettings, VpcEndpoint, Workspace
from dbx_privatelink.errors import (
    DatabricksAlreadyExistsError,
    DatabricksAuthError,
    DatabricksConflictError,
    DatabricksNotFoundError,
    DatabricksRequestError,
    DatabricksThrottledError,
    DatabricksUnavailableError,
    ResourceConflictError,
)

HOST = "http://127.0.0.1:8765"
ACCOUNT = "0d4f7c1e-5a3b-4c2d-9e8f-112233445566"
CLIENT_ID = "7b1e2d3c-sp-client"
SECRET = "dose-S3cr3t-value-never-shown"
API = f"/api/2.0/accounts/{ACCOUNT}"
TOKEN_PATH = f"/oidc/accounts/{ACCOUNT}/v1/token"

# Responses as the seed walkthrough (002) shows them, with placeholders replaced by real-looking ids.
SEED_WORKSPACE_ENDPOINT = {
    "vpc_endpoint_id": "17f25981-069f-455f-a116-c2de067ba476",
    "account_id": ACCOUNT,
    "vpc_endpoint_name": "workspace-rest-api",
    "aws_vpc_endpoint_id": "vpce-0c4c07c32f30868b3",
    "aws_endpoint_service_id": "vpce-svc-02691fd610d24fd64",
    "use_case": "WORKSPACE_ACCESS",
    "region": "ap-northeast-1",
    "aws_account_id": "814153277231",
    "state": "pending",
}
SEED_RELAY_ENDPOINT = {
    "vpc_endpoint_id": "2a25fd2a-3dde-4a8f-9dc7-187b1239aac2",
    "account_id": ACCOUNT,
    "vpc_endpoint_name": "scc-relay",
    "aws_vpc_endpoint_id": "vpce-0499045ba03fa9c95",
    "aws_endpoint_service_id": "vpce-svc-02aa633bda3edbec0",
    "use_case": "DATAPLANE_RELAY_ACCESS",
    "region": "ap-northeast-1",
    "aws_account_id": "814153277231",
    "state": "pending",
}
SEED_PAS = {
    "private_access_settings_id": "1d0c1cd7-2b24-499b-b71c-e7f3936549a8",
    "account_id": ACCOUNT,
    "private_access_settings_name": "private_access_settings2 for ap-northeast-1",
    "region": "ap-northeast-1",
    "public_access_enabled": True,
    "private_access_level": "ANY",
}
SEED_NETWORK = {
    "network_id": "5f58cf31-cb33-4d65-ae43-41856cbe8e72",
    "account_id": ACCOUNT,
    "vpc_id": "vpc-0a1b2c3d4e5f60718",
    "subnet_ids": ["subnet-0aa1bb2cc3dd4ee5f", "subnet-0ff1ee2dd3cc4bb5a"],
    "security_group_ids": ["sg-079cbd8733ab82c30"],
    "vpc_status": "UNATTACHED",
    "network_name": "databricks-privatelink",
    "creation_time": 1635769375362,
    "vpc_endpoints": {
        "rest_api": ["17f25981-069f-455f-a116-c2de067ba476"],
        "dataplane_relay": ["2a25fd2a-3dde-4a8f-9dc7-187b1239aac2"],
    },
}
SEED_WORKSPACE = {
    "workspace_id": 3180937440650220,
    "workspace_name": "privatelink-test",
    "aws_region": "ap-northeast-1",
    "creation_time": 1635769961845,
    "deployment_name": "tydatabricks-privatelink-test",
    "workspace_status": "PROVISIONING",
    "account_id": ACCOUNT,
    "credentials_id": "c0ffee00-1111-2222-3333-444455556666",
    "storage_configuration_id": "5701a6e0-1111-2222-3333-444455556666",
    "workspace_status_message": "Workspace resources are being set up.",
    "network_id": "5f58cf31-cb33-4d65-ae43-41856cbe8e72",
    "pricing_tier": "ENTERPRISE",
    "private_access_settings_id": "1d0c1cd7-2b24-499b-b71c-e7f3936549a8",
}


# --- the fake ------------------------------------------------------------------------------------------


@dataclass
class Sent:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    timeout: Any

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeDatabricks(HTTPAdapter):
    """Serves scripted replies per (method, path), answers token requests, and records every request."""

    def __init__(self, token_lifetime_s: int = 3600) -> None:
        super().__init__()
        self.sent: list[Sent] = []
        self.scripts: dict[tuple[str, str], list[Reply | Exception]] = defaultdict(list)
        self.token_lifetime_s = token_lifetime_s
        self.tokens_issued = 0

    def script(self, method: str, path: str, *replies: Reply | Exception) -> None:
        self.scripts[(method, path)].extend(replies)

    def api_requests(self) -> list[Sent]:
        return [s for s in self.sent if s.path != TOKEN_PATH]

    def token_requests(self) -> list[Sent]:
        return [s for s in self.sent if s.path == TOKEN_PATH]

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = urlsplit(request.url or "")
        body = request.body or b""
        self.sent.append(
            Sent(
                method=request.method or "",
                path=url.path,
                query=parse_qs(url.query),
                headers=dict(request.headers),
                body=body.encode() if isinstance(body, str) else body,
                timeout=kwargs.get("timeout"),
            )
        )
        queue = self.scripts[(request.method or "", url.path)]
        if queue:
            reply = queue.pop(0)
        elif url.path == TOKEN_PATH:
            self.tokens_issued += 1
            reply = Reply(
                200,
                {
                    "access_token": f"tok-{self.tokens_issued}",
                    "token_type": "Bearer",
                    "expires_in": self.token_lifetime_s,
                    "scope": "all-apis",
                },
            )
        else:
            raise AssertionError(f"unscripted request {request.method} {url.path}")
        if isinstance(reply, Exception):
            raise reply
        return self._response(request, reply)

    @staticmethod
    def _response(request: requests.PreparedRequest, reply: Reply) -> requests.Response:
        response = requests.Response()
        response.status_code = reply.status
        response.request = request
        response.url = request.url or ""
        headers = dict(reply.headers)
        if reply.body is None:
            response._content = b""
        elif isinstance(reply.body, str | bytes):
            response._content = reply.body.encode() if isinstance(reply.body, str) else reply.body
        else:
            response._content = json.dumps(reply.body).encode()
            headers.setdefault("Content-Type", "application/json")
        response.headers = CaseInsensitiveDict(headers)
        response.encoding = "utf-8"
        return response


class FakeTime:
    """A clock that only moves when the client sleeps or a test says so."""

    def __init__(self, deadline_s: float | None = None) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []
        self.deadline = None if deadline_s is None else self.now + deadline_s

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def remaining(self) -> float:
        assert self.deadline is not None
        return self.deadline - self.now


def make_client(fake: FakeDatabricks, time: FakeTime) -> DatabricksAccountClient:
    session = requests.Session()
    session.mount(HOST, fake)
    return DatabricksAccountClient(
        HOST,
        ACCOUNT,
        CLIENT_ID,
        SECRET,
        session=session,
        remaining_time_s=time.remaining if time.deadline is not None else None,
        clock=time.clock,
        sleep=time.sleep,
    )


def api_error(status: int, code: str | None, message: str = "", **headers: str) -> Reply:
    body = {"error_code": code, "message": message} if code else None
    return Reply(status, body, headers)


def refused_connection() -> requests.ConnectionError:
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


@pytest.fixture
def fake() -> FakeDatabricks:
    return FakeDatabricks()


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def client(fake: FakeDatabricks, time: FakeTime) -> DatabricksAccountClient:
    return make_client(fake, time)


# --- OAuth M2M -----------------------------------------------------------------------------------------


def test_token_is_fetched_with_basic_auth_and_a_client_credentials_form(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    # Given an account with no registrations
    fake.script("GET", f"{API}/vpc-endpoints", Reply(200, []))
    # When the client lists them
    assert client.list_vpc_endpoints() == []
    # Then it first asked the account's OIDC token endpoint, as the service principal, for all-apis
    token_request, api_request = fake.sent
    assert (token_request.method, token_request.path) == ("POST", TOKEN_PATH)
    expected_basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    assert token_request.headers["Authorization"] == f"Basic {expected_basic}"
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_request.body.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": ["all-apis"],
    }
    # And the API call carried the token it got
    assert api_request.headers["Authorization"] == "Bearer tok-1"


def test_every_request_names_the_application_and_the_step_in_its_user_agent(
    fake: FakeDatabricks, time: FakeTime
) -> None:
    # Given a client a step named, the way the wiring makes one
    from dbx_privatelink.wiring import Deps, Settings

    session = requests.Session()
    session.mount(HOST, fake)
    deps = Deps(
        settings=Settings(region="us-east-1", owner_tag="t", table_name="t"), step_name="scan_orphans"
    )
    client = DatabricksAccountClient(
        HOST,
        ACCOUNT,
        CLIENT_ID,
        SECRET,
        session=session,
        clock=time.clock,
        sleep=time.sleep,
        user_agent=deps.databricks_user_agent(),
    )
    fake.script("GET", f"{API}/vpc-endpoints", Reply(200, []))
    # When it lists the registrations
    client.list_vpc_endpoints()
    # Then the token request and the API call both say who sent them, for the account's audit log
    assert [r.headers["User-Agent"] for r in fake.sent] == ["dbx-privatelink/0.1.0 step/scan_orphans"] * 2


def test_the_user_agent_carries_the_projects_version() -> None:
    import tomllib
    from pathlib import Path

    from dbx_privatelink.databricks.client import USER_AGENT

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert f"dbx-privatelink/{project['version']}" == USER_AGENT


def test_token_is_reused_and_refreshed_five_minutes_before_expiry(
    fake: FakeDatabricks, time: FakeTime, client: DatabricksAccountClient
) -> None:
    # Given a token that lives an hour
    for _ in range(3):
        fake.script("GET", f"{API}/networks", Reply(200, []))
    # When calls are made just before and just after the refresh point
    client.list_networks()
    time.now += 3600 - 301
    client.list_networks()
    time.now += 2
    client.list_networks()
    # Then the first token served two calls and the third call used a new one
    assert fake.tokens_issued == 2
    assert [r.headers["Authorization"] for r in fake.api_requests()] == [
        "Bearer tok-1",
        "Bearer tok-1",
        "Bearer tok-2",
    ]


def test_short_lived_tokens_refresh_with_a_ten_percent_margin(time: FakeTime) -> None:
    # Given an emulator that hands out one-minute tokens
    fake = FakeDatabricks(token_lifetime_s=60)
    client = make_client(fake, time)
    fake.script("GET", f"{API}/networks", Reply(200, []), Reply(200, []), Reply(200, []))
    # When calls are made 53 s and 55 s later
    client.list_networks()
    time.now += 53
    client.list_networks()
    time.now += 2
    client.list_networks()
    # Then the token was refreshed once it was within 6 s of expiry
    assert fake.tokens_issued == 2


def test_a_401_refreshes_the_token_once_and_repeats_the_call(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    # Given a token revoked server-side before its expiry
    fake.script(
        "GET",
        f"{API}/vpc-endpoints",
        api_error(401, "UNAUTHENTICATED", "Token is expired"),
        Reply(200, [SEED_WORKSPACE_ENDPOINT]),
    )
    # When the client lists the registrations
    endpoints = client.list_vpc_endpoints()
    # Then it fetched a second token and the repeated call succeeded with it
    assert [e.vpc_endpoint_id for e in endpoints] == ["17f25981-069f-455f-a116-c2de067ba476"]
    assert fake.tokens_issued == 2
    assert fake.api_requests()[-1].headers["Authorization"] == "Bearer tok-2"


def test_a_second_401_is_an_auth_error_not_a_loop(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    fake.script(
        "GET", f"{API}/networks", api_error(401, "UNAUTHENTICATED"), api_error(401, "UNAUTHENTICATED")
    )
    with pytest.raises(DatabricksAuthError, match=r"GET /networks failed with 401 UNAUTHENTICATED"):
        client.list_networks()
    assert len(fake.api_requests()) == 2


@pytest.mark.parametrize(
    "reply",
    [
        Reply(401, {"error": "invalid_client", "error_description": "Client authentication failed"}),
        Reply(400, {"error": "invalid_client", "error_description": "Client authentication failed"}),
    ],
)
def test_a_refused_token_request_says_what_to_check_without_the_secret(
    fake: FakeDatabricks, client: DatabricksAccountClient, reply: Reply
) -> None:
    # Given a service principal whose secret was rotated
    fake.script("POST", TOKEN_PATH, reply)
    # When the client makes any call
    with pytest.raises(DatabricksAuthError) as caught:
        client.list_workspaces()
    # Then the error names what to check and never the secret, and no API call was attempted
    message = str(caught.value)
    assert "invalid_client" in message
    assert "client_id" in message and "client_secret" in message and "account admin" in message
    assert SECRET not in message
    assert fake.api_requests() == []


# --- retries -------------------------------------------------------------------------------------------


def test_429_waits_exactly_what_retry_after_asks(
    fake: FakeDatabricks, time: FakeTime, client: DatabricksAccountClient
) -> None:
    fake.script(
        "GET",
        f"{API}/workspaces",
        api_error(429, "REQUEST_LIMIT_EXCEEDED", "slow down", **{"Retry-After": "7"}),
        Reply(200, [SEED_WORKSPACE]),
    )
    workspaces = client.list_workspaces()
    assert [w.workspace_id for w in workspaces] == [3180937440650220]
    assert time.slept == [7.0]


def test_503_then_success_backs_off_with_jitter(
    fake: FakeDatabricks, time: FakeTime, client: DatabricksAccountClient
) -> None:
    fake.script(
        "GET",
        f"{API}/networks/{SEED_NETWORK['network_id']}",
        api_error(503, "TEMPORARILY_UNAVAILABLE"),
        api_error(502, None),
        Reply(200, SEED_NETWORK),
    )
    network = client.get_network(str(SEED_NETWORK["network_id"]))
    assert network.vpc_status == "UNATTACHED"
    base = DatabricksAccountClient.BASE_DELAY_S
    first, second = time.slept
    assert base / 2 <= first <= base
    assert base <= second <= 2 * base


def test_throttling_stops_before_the_lambda_runs_out_of_time(fake: FakeDatabricks) -> None:
    # Given 20 s left in the invocation and an API that keeps asking for 6 s pauses
    time = FakeTime(deadline_s=20)
    client = make_client(fake, time)
    fake.script(
        "GET", f"{API}/vpc-endpoints", *[api_error(429, "REQUEST_LIMIT_EXCEEDED", **{"Retry-After": "6"})] * 5
    )
    # When the client lists registrations
    with pytest.raises(DatabricksThrottledError, match=r"GET /vpc-endpoints: Databricks answered 429"):
        client.list_vpc_endpoints()
    # Then it waited only while a further attempt still fitted before the safety margin
    assert time.slept == [6.0, 6.0]
    assert len(fake.api_requests()) == 3
    assert time.remaining() >= DatabricksAccountClient.SAFETY_MARGIN_S


def test_unavailable_after_the_attempt_limit_when_no_deadline_is_set(
    fake: FakeDatabricks, time: FakeTime, client: DatabricksAccountClient
) -> None:
    fake.script("GET", f"{API}/credentials", *[api_error(503, "TEMPORARILY_UNAVAILABLE")] * 10)
    with pytest.raises(DatabricksUnavailableError, match="attempt limit"):
        client.list_credentials()
    assert len(fake.api_requests()) == DatabricksAccountClient.MAX_ATTEMPTS
    assert len(time.slept) == DatabricksAccountClient.MAX_ATTEMPTS - 1


def test_connection_errors_on_reads_are_retried_until_the_deadline(fake: FakeDatabricks) -> None:
    time = FakeTime(deadline_s=8)
    client = make_client(fake, time)
    fake.script("GET", f"{API}/workspaces/42", *[requests.ReadTimeout("read timed out")] * 10)
    with pytest.raises(DatabricksUnavailableError, match=r"GET /workspaces/\{workspace_id\}.*ReadTimeout"):
        client.get_workspace(42)
    assert 1 < len(fake.api_requests()) < DatabricksAccountClient.MAX_ATTEMPTS
    assert time.remaining() >= DatabricksAccountClient.SAFETY_MARGIN_S


def test_each_request_timeout_fits_in_the_remaining_time(fake: FakeDatabricks) -> None:
    time = FakeTime(deadline_s=12)
    client = make_client(fake, time)
    fake.script("GET", f"{API}/networks", Reply(200, []))
    client.list_networks()
    assert [s.timeout for s in fake.sent] == [7.0, 7.0]


@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectionError("('Connection aborted.', RemoteDisconnected('closed'))"),
        requests.ReadTimeout("read timed out"),
        api_error(502, None),
        api_error(500, "INTERNAL_ERROR"),
    ],
    ids=["dropped", "read-timeout", "502", "500"],
)
def test_a_create_whose_outcome_is_unknown_is_not_sent_again(
    fake: FakeDatabricks, time: FakeTime, client: DatabricksAccountClient, failure: Reply | Exception
) -> None:
    # Given a registration that may have committed before the answer was lost
    fake.script("POST", f"{API}/vpc-endpoints", failure, Reply(200, SEED_WORKSPACE_ENDPOINT))
    # When the client registers the endpoint
    with pytest.raises(DatabricksUnavailableError, match="finds what exists first"):
        client.register_vpc_endpoint("workspace-rest-api", "vpce-0c4c07c32f30868b3", "ap-northeast-1")
    # Then it sent the POST once and left the retry to the state machine's find-first step
    assert len(fake.api_requests()) == 1
    assert time.slept == []


@pytest.mark.parametrize(
    "failure",
    [
        refused_connection(),
        api_error(503, "TEMPORARILY_UNAVAILABLE"),
        api_error(429, "REQUEST_LIMIT_EXCEEDED"),
    ],
    ids=["connection-refused", "503", "429"],
)
def test_a_create_the_server_never_processed_is_retried(
    fake: FakeDatabricks, client: DatabricksAccountClient, failure: Reply | Exception
) -> None:
    fake.script("POST", f"{API}/vpc-endpoints", failure, Reply(200, SEED_WORKSPACE_ENDPOINT))
    endpoint = client.register_vpc_endpoint("workspace-rest-api", "vpce-0c4c07c32f30868b3", "ap-northeast-1")
    assert endpoint.use_case == "WORKSPACE_ACCESS"
    assert len(fake.api_requests()) == 2


def test_a_create_the_caller_declares_idempotent_is_retried_after_a_502(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    fake.script("POST", f"{API}/vpc-endpoints", api_error(502, None), Reply(200, SEED_RELAY_ENDPOINT))
    endpoint = client.register_vpc_endpoint(
        "scc-relay", "vpce-0499045ba03fa9c95", "ap-northeast-1", idempotent=True
    )
    assert endpoint.use_case == "DATAPLANE_RELAY_ACCESS"
    assert len(fake.api_requests()) == 2


def test_calls_are_counted_per_operation_retries_included(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    fake.script("GET", f"{API}/vpc-endpoints", api_error(503, None), Reply(200, []))
    fake.script("POST", f"{API}/vpc-endpoints", Reply(200, SEED_WORKSPACE_ENDPOINT))
    client.list_vpc_endpoints()
    client.register_vpc_endpoint("workspace-rest-api", "vpce-0c4c07c32f30868b3", "ap-northeast-1")
    assert client.calls == {
        "POST /oidc/accounts/{account_id}/v1/token": 1,
        "GET /vpc-endpoints": 2,
        "POST /vpc-endpoints": 1,
    }


# --- error mapping -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (404, "RESOURCE_DOES_NOT_EXIST", DatabricksNotFoundError),
        (400, "RESOURCE_DOES_NOT_EXIST", DatabricksNotFoundError),
        (404, None, DatabricksNotFoundError),
        (409, "RESOURCE_ALREADY_EXISTS", DatabricksAlreadyExistsError),
        (400, "RESOURCE_ALREADY_EXISTS", DatabricksAlreadyExistsError),
        (400, "INVALID_STATE", DatabricksRequestError),
        (400, "INVALID_PARAMETER_VALUE", DatabricksRequestError),
        (400, "MALFORMED_REQUEST", DatabricksRequestError),
    ],
)
def test_request_errors_are_typed_by_error_code_first(
    fake: FakeDatabricks, client: DatabricksAccountClient, status: int, code: str | None, expected: type
) -> None:
    fake.script("DELETE", f"{API}/networks/net-1", api_error(status, code, "the server's explanation"))
    with pytest.raises(DatabricksRequestError) as caught:
        client.delete_network("net-1")
    assert type(caught.value) is expected
    assert caught.value.error_code == code
    assert caught.value.status == status
    assert str(caught.value).startswith("DELETE /networks/{network_id} failed with")
    if code:
        assert "the server's explanation" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "code"), [(403, "PERMISSION_DENIED"), (403, None), (400, "PERMISSION_DENIED")]
)
def test_permission_errors_point_at_the_account_admin_role(
    fake: FakeDatabricks, client: DatabricksAccountClient, status: int, code: str | None
) -> None:
    fake.script("GET", f"{API}/workspaces", api_error(status, code, "not an account admin"))
    with pytest.raises(DatabricksAuthError, match="account admin role"):
        client.list_workspaces()
    assert len(fake.api_requests()) == 1


def test_an_in_use_delete_answered_by_an_empty_409_is_a_conflict(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    fake.script("DELETE", f"{API}/vpc-endpoints/vpce-reg-1", Reply(409))
    with pytest.raises(DatabricksConflictError, match="still used by another") as caught:
        client.delete_vpc_endpoint("vpce-reg-1")
    assert not isinstance(caught.value, DatabricksAlreadyExistsError)
    assert (caught.value.status, caught.value.error_code) == (409, None)


def test_a_network_in_use_keeps_the_invalid_state_message(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    reason = "Unable to delete, Network is being used by active workspace 3180937440650220"
    fake.script("DELETE", f"{API}/networks/net-1", api_error(400, "INVALID_STATE", reason))
    with pytest.raises(DatabricksRequestError) as caught:
        client.delete_network("net-1")
    assert caught.value.error_code == "INVALID_STATE"
    assert reason in str(caught.value)


def test_a_non_json_success_is_unavailable_not_a_crash(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    fake.script(
        "GET", f"{API}/networks", Reply(200, "<html>maintenance</html>", {"Content-Type": "text/html"})
    )
    with pytest.raises(DatabricksUnavailableError, match="not JSON"):
        client.list_networks()


def test_a_response_of_the_wrong_shape_names_the_operation(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    fake.script("GET", f"{API}/workspaces/7", Reply(200, {"workspace_id": "seven"}))
    with pytest.raises(
        DatabricksRequestError, match=r"GET /workspaces/\{workspace_id\} answered .* Workspace"
    ):
        client.get_workspace(7)


def test_a_redirect_is_not_followed_with_the_token(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    # Given a host that redirects API calls to a login page (a workspace URL instead of the account console)
    fake.script("GET", f"{API}/networks", Reply(302, None, {"Location": f"{HOST}/login"}))
    # When the client calls the API
    with pytest.raises(DatabricksRequestError, match=r"GET /networks failed with 302"):
        client.list_networks()
    # Then it did not follow the redirect, so the bearer token went nowhere else
    assert [s.path for s in fake.api_requests()] == [f"{API}/networks"]


def test_an_empty_object_for_a_list_means_no_objects(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    fake.script("GET", f"{API}/private-access-settings", Reply(200, {}))
    assert client.list_private_access_settings() == []


# --- secrets -------------------------------------------------------------------------------------------


def test_secrets_and_tokens_stay_out_of_errors_and_logs(
    fake: FakeDatabricks, client: DatabricksAccountClient, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a server that echoes what it received into its error messages
    caplog.set_level(logging.DEBUG)
    fake.script(
        "GET",
        f"{API}/workspaces",
        api_error(429, "REQUEST_LIMIT_EXCEEDED", **{"Retry-After": "1"}),
        api_error(400, "MALFORMED_REQUEST", "bad token tok-1 from secret " + SECRET),
    )
    # When a call fails after a retry
    with pytest.raises(DatabricksRequestError) as caught:
        client.list_workspaces()
    # Then neither the secret nor the token appears anywhere a human reads
    for text in (str(caught.value), caplog.text):
        assert SECRET not in text
        assert "tok-1" not in text
    assert "[redacted]" in str(caught.value)
    # And the log still tells which operation ran, how it ended and how long it took
    assert "GET /workspaces -> 429" in caplog.text
    assert "GET /workspaces -> 400" in caplog.text
    assert "POST /oidc/accounts/{account_id}/v1/token -> 200" in caplog.text
    assert ACCOUNT not in caplog.text


def test_the_client_repr_does_not_show_the_secret(client: DatabricksAccountClient) -> None:
    assert SECRET not in repr(client)
    assert SECRET not in repr(vars(client).get("calls"))


# --- operations ----------------------------------------------------------------------------------------


def test_register_sends_the_documented_body(fake: FakeDatabricks, client: DatabricksAccountClient) -> None:
    fake.script("POST", f"{API}/vpc-endpoints", Reply(200, SEED_WORKSPACE_ENDPOINT))
    endpoint = client.register_vpc_endpoint("workspace-rest-api", "vpce-0c4c07c32f30868b3", "ap-northeast-1")
    assert fake.api_requests()[0].json() == {
        "vpc_endpoint_name": "workspace-rest-api",
        "aws_vpc_endpoint_id": "vpce-0c4c07c32f30868b3",
        "region": "ap-northeast-1",
    }
    assert endpoint.state == "pending"
    assert endpoint.aws_endpoint_service_id == "vpce-svc-02691fd610d24fd64"


def test_an_invalid_request_is_refused_before_it_is_sent(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    with pytest.raises(DatabricksRequestError, match="aws_vpc_endpoint_id") as caught:
        client.register_vpc_endpoint("ws", "vpc-0c4c07c32f30868b3", "ap-northeast-1")
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(DatabricksRequestError, match="subnet_ids"):
        client.create_network("n", "vpc-0a1b2c3d", ["subnet-0aa1"], ["sg-01"])
    assert fake.sent == []


def test_find_by_aws_id_adopts_the_existing_registration(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    other_region = {**SEED_WORKSPACE_ENDPOINT, "vpc_endpoint_id": "x", "region": "us-east-1"}
    fake.script(
        "GET",
        f"{API}/vpc-endpoints",
        Reply(200, [SEED_RELAY_ENDPOINT, other_region, SEED_WORKSPACE_ENDPOINT]),
    )
    found = client.find_vpc_endpoint_by_aws_id("vpce-0c4c07c32f30868b3", "ap-northeast-1")
    assert found is not None and found.vpc_endpoint_id == "17f25981-069f-455f-a116-c2de067ba476"
    fake.script("GET", f"{API}/vpc-endpoints", Reply(200, [SEED_RELAY_ENDPOINT]))
    assert client.find_vpc_endpoint_by_aws_id("vpce-0c4c07c32f30868b3", "ap-northeast-1") is None


def test_find_by_aws_id_refuses_to_pick_between_two_registrations(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    twin = {**SEED_WORKSPACE_ENDPOINT, "vpc_endpoint_id": "99999999-0000-0000-0000-000000000000"}
    fake.script("GET", f"{API}/vpc-endpoints", Reply(200, [SEED_WORKSPACE_ENDPOINT, twin]))
    with pytest.raises(ResourceConflictError, match="registered 2 times"):
        client.find_vpc_endpoint_by_aws_id("vpce-0c4c07c32f30868b3", "ap-northeast-1")


def test_replace_private_access_settings_puts_the_whole_object(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    pas_id = str(SEED_PAS["private_access_settings_id"])
    replaced = {**SEED_PAS, "public_access_enabled": False, "private_access_level": "ENDPOINT",
                "allowed_vpc_endpoint_ids": ["17f25981-069f-455f-a116-c2de067ba476"]}  # fmt: skip
    fake.script("PUT", f"{API}/private-access-settings/{pas_id}", Reply(200, replaced))
    result = client.replace_private_access_settings(
        pas_id,
        "private_access_settings2 for ap-northeast-1",
        "ap-northeast-1",
        private_access_level="ENDPOINT",
        allowed_vpc_endpoint_ids=["17f25981-069f-455f-a116-c2de067ba476"],
    )
    assert fake.api_requests()[0].json() == {
        "private_access_settings_name": "private_access_settings2 for ap-northeast-1",
        "region": "ap-northeast-1",
        "public_access_enabled": False,
        "private_access_level": "ENDPOINT",
        "allowed_vpc_endpoint_ids": ["17f25981-069f-455f-a116-c2de067ba476"],
    }
    assert result.private_access_level == "ENDPOINT"


def test_update_workspace_patches_flat_fields_named_in_update_mask(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    # Given a deployment that answers PATCH with an empty object
    fake.script("PATCH", f"{API}/workspaces/3180937440650220", Reply(200, {}))
    fake.script("GET", f"{API}/workspaces/3180937440650220", Reply(200, SEED_WORKSPACE))
    # When the workspace is moved onto a network and private access settings
    workspace = client.update_workspace(
        3180937440650220, {"network_id": "net-2", "private_access_settings_id": "pas-2"}
    )
    # Then the body is the changed fields only, the mask names them, and the result is read back
    patch, get = fake.api_requests()
    assert patch.json() == {"network_id": "net-2", "private_access_settings_id": "pas-2"}
    assert patch.query == {"update_mask": ["network_id,private_access_settings_id"]}
    assert get.method == "GET"
    assert workspace.workspace_status == "PROVISIONING"


def test_update_workspace_refuses_fields_patch_cannot_change(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    with pytest.raises(DatabricksRequestError, match="workspace_name"):
        client.update_workspace(1, {"workspace_name": "renamed"})
    with pytest.raises(DatabricksRequestError, match="no field"):
        client.update_workspace(1, {})
    assert fake.sent == []


def test_create_workspace_and_network_bodies(fake: FakeDatabricks, client: DatabricksAccountClient) -> None:
    fake.script("POST", f"{API}/networks", Reply(200, SEED_NETWORK))
    fake.script("POST", f"{API}/workspaces", Reply(200, SEED_WORKSPACE))
    network = client.create_network(
        "databricks-privatelink",
        "vpc-0a1b2c3d4e5f60718",
        ["subnet-0aa1bb2cc3dd4ee5f", "subnet-0ff1ee2dd3cc4bb5a"],
        ["sg-079cbd8733ab82c30"],
        rest_api_endpoint_ids=["17f25981-069f-455f-a116-c2de067ba476"],
        dataplane_relay_endpoint_ids=["2a25fd2a-3dde-4a8f-9dc7-187b1239aac2"],
    )
    workspace = client.create_workspace(
        "privatelink-test",
        "ap-northeast-1",
        "c0ffee00-1111-2222-3333-444455556666",
        "5701a6e0-1111-2222-3333-444455556666",
        network_id=network.network_id,
        private_access_settings_id="1d0c1cd7-2b24-499b-b71c-e7f3936549a8",
    )
    network_body, workspace_body = (r.json() for r in fake.api_requests())
    assert network_body["vpc_endpoints"] == SEED_NETWORK["vpc_endpoints"]
    assert workspace_body == {
        "workspace_name": "privatelink-test",
        "aws_region": "ap-northeast-1",
        "credentials_id": "c0ffee00-1111-2222-3333-444455556666",
        "storage_configuration_id": "5701a6e0-1111-2222-3333-444455556666",
        "network_id": "5f58cf31-cb33-4d65-ae43-41856cbe8e72",
        "private_access_settings_id": "1d0c1cd7-2b24-499b-b71c-e7f3936549a8",
    }
    assert workspace.workspace_id == 3180937440650220


def test_delete_workspace_then_get_is_not_found(
    fake: FakeDatabricks, client: DatabricksAccountClient
) -> None:
    fake.script("DELETE", f"{API}/workspaces/3180937440650220", Reply(200, SEED_WORKSPACE))
    fake.script(
        "GET", f"{API}/workspaces/3180937440650220", api_error(404, "RESOURCE_DOES_NOT_EXIST", "gone")
    )
    client.delete_workspace(3180937440650220)
    with pytest.raises(DatabricksNotFoundError):
        client.get_workspace(3180937440650220)


def test_host_without_scheme_means_https_and_bad_hosts_are_refused() -> None:
    fake = FakeDatabricks()
    session = requests.Session()
    session.mount("https://accounts.cloud.databricks.com", fake)
    fake.script("GET", f"{API}/networks", Reply(200, []))
    client = DatabricksAccountClient(
        "accounts.cloud.databricks.com/", ACCOUNT, CLIENT_ID, SECRET, session=session
    )
    assert client.list_networks() == []
    with pytest.raises(ValueError, match="http"):
        DatabricksAccountClient("ftp://example.com", ACCOUNT, CLIENT_ID, SECRET)


@pytest.mark.parametrize(
    "host", ["http://accounts.cloud.databricks.com", "http://10.0.0.5:8443", "http://[::2]"]
)
def test_an_http_host_that_is_not_loopback_is_refused_before_any_request(host: str) -> None:
    # Given a session that records every request it would send
    fake = FakeDatabricks()
    session = requests.Session()
    session.mount("http://", fake)
    session.mount("https://", fake)
    # When the client is made for a cleartext host, then it is refused, naming https, and nothing was sent
    with pytest.raises(ValueError, match="cleartext; use https"):
        DatabricksAccountClient(host, ACCOUNT, CLIENT_ID, SECRET, session=session).list_networks()
    assert fake.sent == []


@pytest.mark.parametrize("host", ["http://127.0.0.1:8443", "http://localhost:9000", "http://[::1]:80"])
def test_http_to_a_loopback_emulator_is_accepted(host: str) -> None:
    assert DatabricksAccountClient(host, ACCOUNT, CLIENT_ID, SECRET).account_id == ACCOUNT


# --- models --------------------------------------------------------------------------------------------


def test_models_parse_the_seed_responses_and_ignore_unknown_fields() -> None:
    endpoint = VpcEndpoint.model_validate({**SEED_RELAY_ENDPOINT, "gcp_vpc_endpoint_info": None, "new": 1})
    assert (endpoint.use_case, endpoint.state) == ("DATAPLANE_RELAY_ACCESS", "pending")
    pas = PrivateAccessSettings.model_validate(SEED_PAS)
    assert pas.private_access_level == "ANY"
    assert pas.allowed_vpc_endpoint_ids == []
    network = Network.model_validate(SEED_NETWORK)
    assert network.vpc_endpoints.dataplane_relay == ["2a25fd2a-3dde-4a8f-9dc7-187b1239aac2"]
    assert network.workspace_id is None and network.error_messages == []
    workspace = Workspace.model_validate(SEED_WORKSPACE)
    assert (workspace.workspace_status, workspace.pricing_tier) == ("PROVISIONING", "ENTERPRISE")
    assert workspace.custom_tags == {}


def test_a_failed_network_carries_its_error_messages() -> None:
    broken = {
        **SEED_NETWORK,
        "vpc_status": "BROKEN",
        "workspace_id": 3180937440650220,
        "error_messages": [
            {"error_type": "securityGroup", "error_message": "sg-079cbd8733ab82c30 does not allow TCP 443"}
        ],
        "warning_messages": [{"warning_type": "subnet", "warning_message": "subnet is small"}],
    }
    network = Network.model_validate(broken)
    assert network.vpc_status == "BROKEN"
    assert network.error_messages[0].error_type == "securityGroup"
    assert network.warning_messages[0].warning_type == "subnet"


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (VpcEndpoint, {**SEED_WORKSPACE_ENDPOINT, "aws_vpc_endpoint_id": "endpoint-1"}),
        (VpcEndpoint, {**SEED_WORKSPACE_ENDPOINT, "use_case": "SOMETHING_ELSE"}),
        (Workspace, {**SEED_WORKSPACE, "workspace_status": "SLEEPING"}),
        (Workspace, {**SEED_WORKSPACE, "workspace_id": 0}),
        (Network, {**SEED_NETWORK, "vpc_status": "FINE"}),
        (PrivateAccessSettings, {**SEED_PAS, "private_access_level": "EVERYONE"}),
    ],
)
def test_models_reject_values_outside_the_api_contract(model: type, data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        model.model_validate(data)
