"""A thin Databricks Account API client: `requests`, OAuth M2M, bounded retries, typed errors.

Not the Databricks SDK: importing it costs about a second per Lambda cold start. One code path serves the
real API and the local emulator; only `host` differs (`http://127.0.0.1:PORT` works).

Retry policy (decided here, relied on by the state machine):
- 429 / REQUEST_LIMIT_EXCEEDED and 503 / TEMPORARILY_UNAVAILABLE mean the server refused the request, so
  every method, POST included, is retried; an integer Retry-After is honoured exactly.
- 500, 502, 504, read timeouts and dropped connections leave the outcome unknown. GET, PUT, PATCH and
  DELETE are retried. POST is not, unless the caller passes `idempotent=True`: the account API takes no
  idempotency token, a create can commit and still fail on the way back, so the client raises
  DatabricksUnavailableError and the state machine re-runs the step, which finds what exists first.
- A connection that was never established (refused, DNS, connect timeout) sent nothing: always retried.
- Backoff is exponential with equal jitter, at most MAX_ATTEMPTS attempts, and never past the Lambda's
  remaining time minus SAFETY_MARGIN_S. Out of attempts or time, the client raises
  DatabricksThrottledError (429) or DatabricksUnavailableError (5xx, connection) for the state machine's
  own backoff.
- A 401 on an API call drops the cached token, fetches a new one and repeats the call once.
"""

import ipaddress
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any, Final, NamedTuple
from urllib.parse import quote, urlsplit

import requests
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from urllib3.exceptions import NewConnectionError

from dbx_privatelink.databricks.models import (
    AwsCredentials,
    CreateCredentialsRequest,
    CreateNetworkRequest,
    CreateStorageConfigurationRequest,
    CreateWorkspaceRequest,
    Credentials,
    Network,
    NetworkVpcEndpoints,
    PricingTier,
    PrivateAccessLevel,
    PrivateAccessSettings,
    PrivateAccessSettingsRequest,
    RegisterVpcEndpointRequest,
    RootBucketInfo,
    StorageConfiguration,
    StsRole,
    UpdateWorkspaceRequest,
    VpcEndpoint,
    Workspace,
)
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

logger = logging.getLogger(__name__)

# Sent with every request, so the account's audit log tells this application's calls apart; a step adds
# " step/<name>" (wiring) to say which one made it.
USER_AGENT: Final = "dbx-privatelink/0.1.0"
_TOKEN_TEMPLATE: Final = "/oidc/accounts/{account_id}/v1/token"
_TOKEN_OP: Final = f"POST {_TOKEN_TEMPLATE}"
_MAX_MESSAGE_CHARS: Final = 500
_REDACTED: Final = "[redacted]"

_AUTH_CODES: Final = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
_NOT_FOUND_CODES: Final = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
_ALREADY_EXISTS_CODES: Final = frozenset({"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"})


class _Transient(Enum):
    THROTTLED = "throttled"
    REFUSED = "refused"  # 503: nothing was done, safe to repeat any method
    UNKNOWN_OUTCOME = "unknown outcome"  # 500/502/504, dropped connection: the request may have committed


class _Token(NamedTuple):
    value: str
    refresh_at: float


class _TokenResponse(BaseModel):
    model_config = ConfigDict(defer_build=True)

    access_token: str
    token_type: str = "Bearer"
    expires_in: int = 3600


class _ErrorBody(NamedTuple):
    code: str | None
    message: str


class DatabricksAccountClient:
    """Databricks Account API (AWS provisioning) over OAuth M2M, for the real service and the emulator."""

    MAX_ATTEMPTS: int = 5
    SAFETY_MARGIN_S: float = 5.0
    MIN_ATTEMPT_S: float = 1.0
    BASE_DELAY_S: float = 0.5
    MAX_DELAY_S: float = 20.0
    TOKEN_REFRESH_MARGIN_S: float = 300.0

    def __init__(
        self,
        host: str,
        account_id: str,
        client_id: str,
        client_secret: str,
        *,
        session: requests.Session | None = None,
        remaining_time_s: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        timeout_s: float = 30,
        user_agent: str = USER_AGENT,
    ) -> None:
        if not account_id or not client_id or not client_secret:
            raise ValueError("account_id, client_id and client_secret must all be non-empty")
        self._host = _normalise_host(host)
        self._account_id = account_id
        self._client_id = client_id
        self._client_secret = client_secret
        self._session = session if session is not None else requests.Session()
        self._remaining_time_s = remaining_time_s
        self._clock = clock
        self._sleep = sleep
        self._timeout_s = timeout_s
        self._user_agent = user_agent
        self._token: _Token | None = None
        self._rng = random.Random()
        self.calls: Counter[str] = Counter()
        """HTTP requests sent, retries and token requests included, keyed like "POST /vpc-endpoints"."""

    @property
    def account_id(self) -> str:
        """The Databricks account this client talks to."""
        return self._account_id

    # --- credentials -----------------------------------------------------------------------------------

    def list_credentials(self) -> list[Credentials]:
        """Every credential configuration of the account."""
        return self._list(Credentials, "/credentials")

    def get_credentials(self, credentials_id: str) -> Credentials:
        """One credential configuration; DatabricksNotFoundError when it does not exist."""
        return self._get(Credentials, "/credentials/{credentials_id}", credentials_id=credentials_id)

    def create_credentials(self, name: str, role_arn: str, *, idempotent: bool = False) -> Credentials:
        """Create a credential configuration for a cross-account IAM role."""
        body = _request_body(
            "POST /credentials",
            CreateCredentialsRequest,
            credentials_name=name,
            aws_credentials=AwsCredentials(sts_role=StsRole(role_arn=role_arn)),
        )
        return self._create(Credentials, "/credentials", body, idempotent)

    def delete_credentials(self, credentials_id: str) -> None:
        """Delete a credential configuration (refused while a workspace uses it)."""
        self._call("DELETE", "/credentials/{credentials_id}", {"credentials_id": credentials_id})

    # --- storage configurations ------------------------------------------------------------------------

    def list_storage_configurations(self) -> list[StorageConfiguration]:
        """Every storage configuration of the account."""
        return self._list(StorageConfiguration, "/storage-configurations")

    def get_storage_configuration(self, storage_configuration_id: str) -> StorageConfiguration:
        """One storage configuration; DatabricksNotFoundError when it does not exist."""
        return self._get(
            StorageConfiguration,
            "/storage-configurations/{storage_configuration_id}",
            storage_configuration_id=storage_configuration_id,
        )

    def create_storage_configuration(
        self, name: str, bucket_name: str, *, idempotent: bool = False
    ) -> StorageConfiguration:
        """Create a storage configuration for a root S3 bucket."""
        body = _request_body(
            "POST /storage-configurations",
            CreateStorageConfigurationRequest,
            storage_configuration_name=name,
            root_bucket_info=RootBucketInfo(bucket_name=bucket_name),
        )
        return self._create(StorageConfiguration, "/storage-configurations", body, idempotent)

    def delete_storage_configuration(self, storage_configuration_id: str) -> None:
        """Delete a storage configuration (refused while a workspace uses it)."""
        self._call(
            "DELETE",
            "/storage-configurations/{storage_configuration_id}",
            {"storage_configuration_id": storage_configuration_id},
        )

    # --- VPC endpoint registrations --------------------------------------------------------------------

    def list_vpc_endpoints(self) -> list[VpcEndpoint]:
        """Every VPC endpoint registration of the account."""
        return self._list(VpcEndpoint, "/vpc-endpoints")

    def get_vpc_endpoint(self, vpc_endpoint_id: str) -> VpcEndpoint:
        """One registration by its Databricks id; DatabricksNotFoundError when it does not exist."""
        return self._get(VpcEndpoint, "/vpc-endpoints/{vpc_endpoint_id}", vpc_endpoint_id=vpc_endpoint_id)

    def find_vpc_endpoint_by_aws_id(self, aws_id: str, region: str) -> VpcEndpoint | None:
        """The registration of an AWS endpoint id in a region, or None; two of them is a conflict."""
        found = [
            e for e in self.list_vpc_endpoints() if e.aws_vpc_endpoint_id == aws_id and e.region == region
        ]
        if len(found) > 1:
            ids = ", ".join(e.vpc_endpoint_id for e in found)
            raise ResourceConflictError(
                f"AWS endpoint {aws_id} is registered {len(found)} times in Databricks ({ids}): "
                "delete the registrations that no network or private access settings object uses"
            )
        return found[0] if found else None

    def register_vpc_endpoint(
        self, name: str, aws_vpc_endpoint_id: str, region: str, *, idempotent: bool = False
    ) -> VpcEndpoint:
        """Register an AWS VPC endpoint; DatabricksAlreadyExistsError when that AWS id is registered."""
        body = _request_body(
            "POST /vpc-endpoints",
            RegisterVpcEndpointRequest,
            vpc_endpoint_name=name,
            aws_vpc_endpoint_id=aws_vpc_endpoint_id,
            region=region,
        )
        return self._create(VpcEndpoint, "/vpc-endpoints", body, idempotent)

    def delete_vpc_endpoint(self, vpc_endpoint_id: str) -> None:
        """Delete a registration (refused while a network or private access settings object uses it)."""
        self._call("DELETE", "/vpc-endpoints/{vpc_endpoint_id}", {"vpc_endpoint_id": vpc_endpoint_id})

    # --- private access settings -----------------------------------------------------------------------

    def list_private_access_settings(self) -> list[PrivateAccessSettings]:
        """Every private access settings object of the account."""
        return self._list(PrivateAccessSettings, "/private-access-settings")

    def get_private_access_settings(self, private_access_settings_id: str) -> PrivateAccessSettings:
        """One private access settings object; DatabricksNotFoundError when it does not exist."""
        return self._get(
            PrivateAccessSettings,
            "/private-access-settings/{private_access_settings_id}",
            private_access_settings_id=private_access_settings_id,
        )

    def create_private_access_settings(
        self,
        name: str,
        region: str,
        *,
        public_access_enabled: bool = False,
        private_access_level: PrivateAccessLevel = "ACCOUNT",
        allowed_vpc_endpoint_ids: Iterable[str] = (),
        idempotent: bool = False,
    ) -> PrivateAccessSettings:
        """Create a private access settings object."""
        body = _request_body(
            "POST /private-access-settings",
            PrivateAccessSettingsRequest,
            private_access_settings_name=name,
            region=region,
            public_access_enabled=public_access_enabled,
            private_access_level=private_access_level,
            allowed_vpc_endpoint_ids=list(allowed_vpc_endpoint_ids),
        )
        return self._create(PrivateAccessSettings, "/private-access-settings", body, idempotent)

    def replace_private_access_settings(
        self,
        private_access_settings_id: str,
        name: str,
        region: str,
        *,
        public_access_enabled: bool = False,
        private_access_level: PrivateAccessLevel = "ACCOUNT",
        allowed_vpc_endpoint_ids: Iterable[str] = (),
    ) -> PrivateAccessSettings:
        """Overwrite a private access settings object as a whole (PUT): every field is sent."""
        template = "/private-access-settings/{private_access_settings_id}"
        body = _request_body(
            f"PUT {template}",
            PrivateAccessSettingsRequest,
            private_access_settings_name=name,
            region=region,
            public_access_enabled=public_access_enabled,
            private_access_level=private_access_level,
            allowed_vpc_endpoint_ids=list(allowed_vpc_endpoint_ids),
        )
        data = self._call(
            "PUT", template, {"private_access_settings_id": private_access_settings_id}, body=body
        )
        # Older deployments answer PUT with an empty object: read the result back instead of guessing it.
        if isinstance(data, dict) and "private_access_settings_id" in data and "region" in data:
            return _parse(f"PUT {template}", PrivateAccessSettings, data)
        return self.get_private_access_settings(private_access_settings_id)

    def delete_private_access_settings(self, private_access_settings_id: str) -> None:
        """Delete a private access settings object (refused while a workspace uses it)."""
        self._call(
            "DELETE",
            "/private-access-settings/{private_access_settings_id}",
            {"private_access_settings_id": private_access_settings_id},
        )

    # --- networks ----------------------------------------------------------------------------------------

    def list_networks(self) -> list[Network]:
        """Every network configuration of the account."""
        return self._list(Network, "/networks")

    def get_network(self, network_id: str) -> Network:
        """One network configuration; DatabricksNotFoundError when it does not exist."""
        return self._get(Network, "/networks/{network_id}", network_id=network_id)

    def create_network(
        self,
        name: str,
        vpc_id: str,
        subnet_ids: Iterable[str],
        security_group_ids: Iterable[str],
        *,
        rest_api_endpoint_ids: Iterable[str] = (),
        dataplane_relay_endpoint_ids: Iterable[str] = (),
        idempotent: bool = False,
    ) -> Network:
        """Create a network configuration; endpoint ids are Databricks registration ids, not AWS ids."""
        body = _request_body(
            "POST /networks",
            CreateNetworkRequest,
            network_name=name,
            vpc_id=vpc_id,
            subnet_ids=list(subnet_ids),
            security_group_ids=list(security_group_ids),
            vpc_endpoints=NetworkVpcEndpoints(
                rest_api=list(rest_api_endpoint_ids), dataplane_relay=list(dataplane_relay_endpoint_ids)
            ),
        )
        return self._create(Network, "/networks", body, idempotent)

    def delete_network(self, network_id: str) -> None:
        """Delete a network configuration (INVALID_STATE while a workspace uses it)."""
        self._call("DELETE", "/networks/{network_id}", {"network_id": network_id})

    # --- workspaces --------------------------------------------------------------------------------------

    def list_workspaces(self) -> list[Workspace]:
        """Every workspace of the account."""
        return self._list(Workspace, "/workspaces")

    def get_workspace(self, workspace_id: int) -> Workspace:
        """One workspace; DatabricksNotFoundError when it does not exist (or its deletion finished)."""
        return self._get(Workspace, "/workspaces/{workspace_id}", workspace_id=workspace_id)

    def create_workspace(
        self,
        workspace_name: str,
        aws_region: str,
        credentials_id: str,
        storage_configuration_id: str,
        *,
        network_id: str | None = None,
        private_access_settings_id: str | None = None,
        deployment_name: str | None = None,
        pricing_tier: PricingTier | None = None,
        custom_tags: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ) -> Workspace:
        """Start creating a workspace; it answers PROVISIONING, poll get_workspace until RUNNING."""
        body = _request_body(
            "POST /workspaces",
            CreateWorkspaceRequest,
            workspace_name=workspace_name,
            aws_region=aws_region,
            credentials_id=credentials_id,
            storage_configuration_id=storage_configuration_id,
            network_id=network_id,
            private_access_settings_id=private_access_settings_id,
            deployment_name=deployment_name,
            pricing_tier=pricing_tier,
            custom_tags=dict(custom_tags) if custom_tags is not None else None,
        )
        return self._create(Workspace, "/workspaces", body, idempotent)

    def update_workspace(self, workspace_id: int, fields: Mapping[str, Any]) -> Workspace:
        """PATCH some fields (network_id, private_access_settings_id ...) and return the workspace."""
        template = "/workspaces/{workspace_id}"
        op = f"PATCH {template}"
        if not fields:
            raise DatabricksRequestError(f"{op}: no field to update", error_code="INVALID_PARAMETER_VALUE")
        body = _request_body(op, UpdateWorkspaceRequest, **fields)
        if not body:
            raise DatabricksRequestError(
                f"{op}: every field to update is None", error_code="INVALID_PARAMETER_VALUE"
            )
        # The documented shape: the changed fields as a partial workspace object, named in update_mask.
        # Deployments that predate update_mask read the same flat fields and ignore the query parameter.
        data = self._call(
            "PATCH",
            template,
            {"workspace_id": workspace_id},
            body=body,
            query={"update_mask": ",".join(body)},
        )
        if isinstance(data, dict) and "workspace_id" in data and "workspace_name" in data:
            return _parse(op, Workspace, data)
        return self.get_workspace(workspace_id)

    def delete_workspace(self, workspace_id: int) -> None:
        """Start deleting a workspace; it is gone once get_workspace raises DatabricksNotFoundError."""
        self._call("DELETE", "/workspaces/{workspace_id}", {"workspace_id": workspace_id})

    # --- typed helpers -----------------------------------------------------------------------------------

    def _list[M: BaseModel](self, model: type[M], template: str) -> list[M]:
        data = self._call("GET", template, {})
        if data is None or data == {}:
            return []
        try:
            return TypeAdapter(list[model]).validate_python(data)  # type: ignore[valid-type]
        except ValidationError as exc:
            raise _shape_error(f"GET {template}", f"list of {model.__name__}", exc) from exc

    def _get[M: BaseModel](self, model: type[M], template: str, **path_params: str | int) -> M:
        return _parse(f"GET {template}", model, self._call("GET", template, path_params))

    def _create[M: BaseModel](
        self, model: type[M], template: str, body: dict[str, Any], idempotent: bool
    ) -> M:
        data = self._call("POST", template, {}, body=body, idempotent=idempotent)
        return _parse(f"POST {template}", model, data)

    # --- HTTP --------------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        template: str,
        path_params: Mapping[str, str | int],
        *,
        body: dict[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """One Account API operation, retried per the module's policy: its JSON, or a typed error."""
        op = f"{method} {template}"
        path = template.format(**{k: quote(str(v), safe="") for k, v in path_params.items()})
        url = f"{self._host}/api/2.0/accounts/{quote(self._account_id, safe='')}{path}"
        safe = idempotent if idempotent is not None else method != "POST"

        def send() -> requests.Response:
            headers = {"Authorization": f"Bearer {self._access_token()}", "Accept": "application/json"}
            return self._send(op, method, url, headers=headers, json_body=body, query=query)

        response = self._with_retries(op, safe, send)
        if response.status_code == 401:
            # Tokens can be revoked or rotated before their expiry: one fresh token, one more try.
            self._token = None
            response = self._with_retries(op, safe, send)
        if response.status_code >= 300:
            raise self._api_error(op, response)
        return self._json(op, response)

    def _access_token(self) -> str:
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        self._token = self._fetch_token()
        return self._token.value

    def _fetch_token(self) -> _Token:
        url = self._host + _TOKEN_TEMPLATE.format(account_id=quote(self._account_id, safe=""))
        started = self._clock()

        def send() -> requests.Response:
            return self._send(
                _TOKEN_OP,
                "POST",
                url,
                headers={"Accept": "application/json"},
                form={"grant_type": "client_credentials", "scope": "all-apis"},
                basic_auth=(self._client_id, self._client_secret),
            )

        # Asking for another token changes nothing server-side: safe to retry like a GET.
        response = self._with_retries(_TOKEN_OP, True, send)
        if response.status_code >= 300:
            err = _error_body(response)
            detail = f"{response.status_code} {err.code}" if err.code else str(response.status_code)
            raise DatabricksAuthError(
                f"OAuth token request ({_TOKEN_OP}) failed with {detail}: {self._redact(err.message)}. "
                f"Check the client_id and client_secret stored in the secret (client_id {self._client_id}), "
                f"and that this service principal exists in account {self._account_id} "
                "with the account admin role."
            )
        try:
            parsed = _TokenResponse.model_validate(self._json(_TOKEN_OP, response))
        except ValidationError as exc:
            raise DatabricksAuthError(
                f"OAuth token request ({_TOKEN_OP}) answered without a usable access_token "
                f"({exc.error_count()} problem(s)): is the host an account console URL?"
            ) from None
        if parsed.token_type.lower() != "bearer" or not parsed.access_token:
            raise DatabricksAuthError(f"OAuth token request ({_TOKEN_OP}) returned no bearer token")
        margin = min(self.TOKEN_REFRESH_MARGIN_S, parsed.expires_in * 0.1)
        return _Token(value=parsed.access_token, refresh_at=started + parsed.expires_in - margin)

    def _with_retries(self, op: str, safe: bool, send: Callable[[], requests.Response]) -> requests.Response:
        """Send until an answer that is not transient, or raise when out of attempts or time."""
        failures = 0
        while True:
            retry_after: float | None = None
            try:
                response = send()
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                kind = _Transient.REFUSED if _never_sent(exc) else _Transient.UNKNOWN_OUTCOME
                detail = f"the connection failed ({type(exc).__name__})"
                cause: BaseException | None = exc
            else:
                transient = _transient_kind(response)
                if transient is None:
                    return response
                kind = transient
                err = _error_body(response)
                detail = f"Databricks answered {response.status_code}" + (f" {err.code}" if err.code else "")
                retry_after = _retry_after_s(response) if kind is _Transient.THROTTLED else None
                cause = None
            failures += 1
            if kind is _Transient.UNKNOWN_OUTCOME and not safe:
                raise DatabricksUnavailableError(
                    f"{op}: {detail} after the request may have reached Databricks; not repeated because "
                    "a create cannot be retried blindly: the step runs again and finds what exists first"
                ) from cause
            delay = retry_after if retry_after is not None else self._backoff_s(failures)
            left = self._budget_s()
            out_of_time = left is not None and left - delay < self.MIN_ATTEMPT_S
            if failures >= self.MAX_ATTEMPTS or out_of_time:
                why = (
                    f"stopped with {left + self.SAFETY_MARGIN_S:.1f} s of invocation time left"
                    if out_of_time and left is not None
                    else "stopped at the attempt limit"
                )
                message = (
                    f"{op}: {detail} on {failures} attempt(s), {why}; "
                    "the state machine backs off and runs the step again"
                )
                if kind is _Transient.THROTTLED:
                    raise DatabricksThrottledError(message) from cause
                raise DatabricksUnavailableError(message) from cause
            logger.info("databricks %s: %s, retry %d in %.2f s", op, detail, failures, delay)
            self._sleep(delay)

    def _send(
        self,
        op: str,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        json_body: dict[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        form: dict[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
    ) -> requests.Response:
        self.calls[op] += 1
        started = self._clock()
        try:
            response = self._session.request(
                method,
                url,
                headers={"User-Agent": self._user_agent, **headers},
                json=json_body,
                data=form,
                params=query,
                auth=basic_auth,
                timeout=self._request_timeout_s(),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            logger.debug("databricks %s -> %s after %.0f ms", op, type(exc).__name__, self._ms_since(started))
            raise
        logger.debug("databricks %s -> %d in %.0f ms", op, response.status_code, self._ms_since(started))
        return response

    # --- policy ------------------------------------------------------------------------------------------

    def _budget_s(self) -> float | None:
        """Seconds this invocation may still spend on Databricks, or None when nobody set a deadline."""
        if self._remaining_time_s is None:
            return None
        return self._remaining_time_s() - self.SAFETY_MARGIN_S

    def _request_timeout_s(self) -> float:
        left = self._budget_s()
        if left is None:
            return self._timeout_s
        return max(self.MIN_ATTEMPT_S, min(self._timeout_s, left))

    def _backoff_s(self, failures: int) -> float:
        ceiling = min(self.MAX_DELAY_S, self.BASE_DELAY_S * 2.0 ** (failures - 1))
        # Equal jitter: the wait still grows with each failure, but parallel executions spread out.
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _ms_since(self, started: float) -> float:
        return (self._clock() - started) * 1000

    # --- errors ------------------------------------------------------------------------------------------

    def _api_error(self, op: str, response: requests.Response) -> Exception:
        status = response.status_code
        err = _error_body(response)
        text = self._redact(err.message)
        label = f"{status} {err.code}" if err.code else str(status)
        message = f"{op} failed with {label}: {text}" if text else f"{op} failed with {label}"
        code = err.code
        if code in _AUTH_CODES or (code is None and status in (401, 403)):
            return DatabricksAuthError(
                f"{message}. The service principal needs the account admin role in account "
                f"{self._account_id}; check the client_id and client_secret stored in the secret."
            )
        if code in _NOT_FOUND_CODES or (code is None and status == 404):
            return DatabricksNotFoundError(message, error_code=code, status=status)
        if code in _ALREADY_EXISTS_CODES:
            return DatabricksAlreadyExistsError(message, error_code=code, status=status)
        if status == 409 and code is None:
            # Seen on deletes of an object still in use: the body is empty, only the status speaks.
            return DatabricksConflictError(
                f"{message}: the object is probably still used by another (a network, private access "
                "settings or workspace)",
                error_code=None,
                status=status,
            )
        if status == 409:
            return DatabricksConflictError(message, error_code=code, status=status)
        return DatabricksRequestError(message, error_code=code, status=status)

    def _json(self, op: str, response: requests.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            content_type = response.headers.get("Content-Type", "unknown")
            raise DatabricksUnavailableError(
                f"{op} answered {response.status_code} with a body that is not JSON ({content_type}): "
                "a proxy or load balancer may stand in the way"
            ) from None

    def _redact(self, text: str) -> str:
        secrets = [self._client_secret]
        if self._token is not None:
            secrets.append(self._token.value)
        for secret in secrets:
            text = text.replace(secret, _REDACTED)
        return text[:_MAX_MESSAGE_CHARS]


# --- module helpers ------------------------------------------------------------------------------------


def _loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _normalise_host(host: str) -> str:
    """The Account API's base URL: https, or http to a loopback address only (the local emulator). The
    OAuth token request carries the client secret and every call the bearer token: over http to any other
    host they would cross the network in cleartext, so such a host is refused before any request."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = f"https://{host}"
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("host must be an https URL such as https://accounts.cloud.databricks.com")
    if parts.scheme == "http" and not _loopback(parts.hostname or ""):
        raise ValueError(
            f"host {host} is http: the client secret and tokens would cross the network in cleartext; use "
            "https (http is accepted for a loopback address only, such as the local emulator)"
        )
    return host


def _request_body(op: str, model: type[BaseModel], **fields: Any) -> dict[str, Any]:
    """Validate a request before it leaves: a bad value fails here, without a call, like the API would."""
    try:
        return model.model_validate(fields).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}"
            for e in exc.errors(include_input=False)
        )
        raise DatabricksRequestError(
            f"{op} not sent, the request is invalid: {problems}", error_code="INVALID_PARAMETER_VALUE"
        ) from None


def _parse[M: BaseModel](op: str, model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _shape_error(op, model.__name__, exc) from exc


def _shape_error(op: str, expected: str, exc: ValidationError) -> DatabricksRequestError:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}"
        for e in exc.errors(include_input=False)[:5]
    )
    return DatabricksRequestError(f"{op} answered with something that is not a {expected}: {problems}")


def _error_body(response: requests.Response) -> _ErrorBody:
    """error_code and message of an API error, or error and error_description of an OAuth error."""
    try:
        data = response.json() if response.content else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return _ErrorBody(code=None, message="")
    code = data.get("error_code") or data.get("error")
    message = data.get("message") or data.get("error_description") or ""
    return _ErrorBody(code=str(code) if code else None, message=str(message))


def _transient_kind(response: requests.Response) -> _Transient | None:
    status = response.status_code
    if status < 400:
        return None
    code = _error_body(response).code
    if status == 429 or code == "REQUEST_LIMIT_EXCEEDED":
        return _Transient.THROTTLED
    if status == 503 or code == "TEMPORARILY_UNAVAILABLE":
        return _Transient.REFUSED
    if status >= 500:
        return _Transient.UNKNOWN_OUTCOME
    return None


def _retry_after_s(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def _never_sent(exc: BaseException) -> bool:
    """True when the connection was never established, so the server cannot have seen the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return True
        if isinstance(current, BaseException):
            pending.extend([*current.args, current.__cause__, current.__context__])
        pending.append(getattr(current, "reason", None))
    return False
