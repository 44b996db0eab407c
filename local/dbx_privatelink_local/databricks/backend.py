"""The Account API's state and rules for one account: pure Python, no HTTP.

Methods take the decoded JSON body of a request and return the JSON-ready response object, raising
ApiError with the real error code when a rule is broken. Emulated delays (endpoint acceptance, workspace
provisioning and deletion) run on the injected Scheduler.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

from dbx_privatelink.catalog import Catalog
from dbx_privatelink_local.aws_view import AwsView
from dbx_privatelink_local.databricks.clock import Cancellable, Clock, Scheduler
from dbx_privatelink_local.databricks.config import EmulatorConfig
from dbx_privatelink_local.databricks.errors import (
    ApiError,
    already_exists,
    in_use,
    invalid,
    invalid_state,
    malformed,
    not_found,
)
from dbx_privatelink_local.databricks.models import (
    Credential,
    Network,
    PrivateAccessSettings,
    StorageConfiguration,
    VpcEndpointRegistration,
    Workspace,
)
from dbx_privatelink_local.databricks.network_validation import (
    EndpointFacts,
    NetworkProblem,
    validate_network,
)

log = logging.getLogger(__name__)

Json = dict[str, Any]

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
AWS_VPCE_ID = re.compile(r"^vpce-[0-9a-f]{8,17}$")
VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
SG_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
DEPLOYMENT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
PRICING_TIERS = ("COMMUNITY_EDITION", "DEDICATED", "ENTERPRISE", "PREMIUM", "STANDARD", "UNKNOWN")
ACCESS_LEVELS = ("ACCOUNT", "ENDPOINT")
MAX_SECURITY_GROUPS = 5

# Which workspace fields a PATCH may change, by the workspace's status.
RUNNING_PATCHABLE = frozenset(
    {
        "credentials_id",
        "network_id",
        "private_access_settings_id",
        "managed_services_customer_managed_key_id",
        "storage_customer_managed_key_id",
        "custom_tags",
        "network_connectivity_config_id",
    }
)
FAILED_PATCHABLE = RUNNING_PATCHABLE | {"aws_region", "storage_configuration_id"}
# Output-only fields a whole-object PATCH (SDK >= 0.5x: body = the Workspace, mask in the query) carries.
WORKSPACE_READ_ONLY = frozenset(
    {
        "account_id",
        "workspace_id",
        "workspace_status",
        "workspace_status_message",
        "creation_time",
        "cloud",
        "location",
        "expected_workspace_status",
        "update_mask",
    }
)
WORKSPACE_FIELDS = FAILED_PATCHABLE | {"workspace_name", "deployment_name", "pricing_tier"}


# --- body parsing ---------------------------------------------------------------------------------


def _present(body: Mapping[str, Any], name: str) -> bool:
    return body.get(name) not in (None, "")


def _req_str(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None or value == "":
        raise invalid(f"Missing required field: {name}")
    if not isinstance(value, str):
        raise malformed(f"Could not parse request object: {name} must be a string")
    return value


def _opt_str(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise malformed(f"Could not parse request object: {name} must be a string")
    return value


def _str_list(body: Mapping[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise malformed(f"Could not parse request object: {name} must be an array of strings")
    return list(value)


def _obj(body: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise malformed(f"Could not parse request object: {name} must be an object")
    return value


def _opt_bool(body: Mapping[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise malformed(f"Could not parse request object: {name} must be a boolean")
    return value


def _tags(body: Mapping[str, Any]) -> dict[str, str]:
    value = body.get("custom_tags")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise malformed("Could not parse request object: custom_tags must be a map of strings to strings")
    return dict(value)


def _unique(values: list[str], name: str) -> None:
    if len(set(values)) != len(values):
        raise invalid(f"{name} contains duplicates")


class AccountBackend:
    """One Databricks account: credentials, storage, endpoint registrations, private access settings,
    networks and workspaces, with the rules that keep them consistent."""

    def __init__(
        self,
        aws: AwsView,
        account_id: str,
        *,
        catalog: Catalog,
        config: EmulatorConfig,
        clock: Clock,
        scheduler: Scheduler,
    ) -> None:
        self.aws = aws
        self.account_id = account_id
        self.catalog = catalog
        self.config = config
        self._clock = clock
        self._scheduler = scheduler
        self._lock = threading.RLock()
        self._generation = 0
        self._timers: dict[int, Cancellable] = {}
        self._timer_ids = itertools.count()
        # AWS accounts Databricks enabled for PrivateLink (the walkthrough's "PrivateLink の有効化" step);
        # None: every account. An endpoint from an account not enabled is rejected by the endpoint service.
        self.privatelink_enabled_accounts: set[str] | None = None
        # How an in-use delete is refused: INVALID_STATE with its message (the documented answer), or
        # "bare-409" (HTTP 409 with an empty body, as Databricks sometimes answers).
        self.in_use_refusal: Literal["INVALID_STATE", "bare-409"] = "INVALID_STATE"
        self._clear()

    def _clear(self) -> None:
        self.credentials: dict[str, Credential] = {}
        self.storage: dict[str, StorageConfiguration] = {}
        self.endpoints: dict[str, VpcEndpointRegistration] = {}
        self.private_access: dict[str, PrivateAccessSettings] = {}
        self.networks: dict[str, Network] = {}
        self.workspaces: dict[int, Workspace] = {}
        self._workspace_ids = itertools.count(1_000_000_000_000_001)

    def reset(self) -> None:
        """Forget every object and cancel every pending emulated delay."""
        with self._lock:
            self._generation += 1
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
            self.privatelink_enabled_accounts = None
            self.in_use_refusal = "INVALID_STATE"
            self._clear()

    # --- time -------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock.now() * 1000)

    def _later(self, seconds: float, action: Callable[[], None]) -> None:
        generation = self._generation
        timer_id = next(self._timer_ids)

        def run() -> None:
            with self._lock:
                self._timers.pop(timer_id, None)
                if generation != self._generation:
                    return
            try:
                action()
            except Exception:  # a timer thread has no caller to report to
                log.exception("emulated delayed action failed")

        with self._lock:
            self._timers[timer_id] = self._scheduler.call_later(seconds, run)

    def _region(self, region: str) -> str:
        if self.catalog.region(region) is None:
            raise invalid(f"Region {region} is not supported (no Databricks endpoint services there)")
        return region

    # --- credentials --------------------------------------------------------------------------

    def create_credentials(self, body: Mapping[str, Any], *, credentials_id: str | None = None) -> Json:
        name = _req_str(body, "credentials_name")
        sts_role = _obj(_obj(body, "aws_credentials"), "sts_role")
        role_arn = _req_str(sts_role, "role_arn") if sts_role else None
        if role_arn is None:
            raise invalid("Missing required field: aws_credentials.sts_role.role_arn")
        if not ROLE_ARN.match(role_arn):
            raise invalid(f"Invalid role ARN: {role_arn}")
        with self._lock:
            cred = Credential(credentials_id or str(uuid.uuid4()), name, role_arn, self._now_ms())
            self.credentials[cred.credentials_id] = cred
            return cred.to_json(self.account_id)

    def get_credentials(self, credentials_id: str) -> Json:
        with self._lock:
            return self._credential(credentials_id).to_json(self.account_id)

    def list_credentials(self) -> list[Json]:
        with self._lock:
            return [c.to_json(self.account_id) for c in self.credentials.values()]

    def delete_credentials(self, credentials_id: str) -> Json:
        with self._lock:
            cred = self._credential(credentials_id)
            self._refuse_if_used_by_workspace("credentials_id", credentials_id, "Credential")
            del self.credentials[credentials_id]
            return cred.to_json(self.account_id)

    def _credential(self, credentials_id: str) -> Credential:
        cred = self.credentials.get(credentials_id)
        if cred is None:
            raise not_found(f"Credential configuration {credentials_id} does not exist")
        return cred

    # --- storage configurations ---------------------------------------------------------------

    def create_storage_configuration(
        self, body: Mapping[str, Any], *, storage_configuration_id: str | None = None
    ) -> Json:
        name = _req_str(body, "storage_configuration_name")
        bucket_info = _obj(body, "root_bucket_info")
        if not bucket_info:
            raise invalid("Missing required field: root_bucket_info")
        bucket = _req_str(bucket_info, "bucket_name")
        if not BUCKET_NAME.match(bucket) or ".." in bucket:
            raise invalid(f"Invalid S3 bucket name: {bucket}")
        role_arn = _opt_str(body, "role_arn")
        if role_arn is not None and not ROLE_ARN.match(role_arn):
            raise invalid(f"Invalid role ARN: {role_arn}")
        with self._lock:
            conf = StorageConfiguration(
                storage_configuration_id or str(uuid.uuid4()), name, bucket, role_arn, self._now_ms()
            )
            self.storage[conf.storage_configuration_id] = conf
            return conf.to_json(self.account_id)

    def get_storage_configuration(self, storage_configuration_id: str) -> Json:
        with self._lock:
            return self._storage(storage_configuration_id).to_json(self.account_id)

    def list_storage_configurations(self) -> list[Json]:
        with self._lock:
            return [s.to_json(self.account_id) for s in self.storage.values()]

    def delete_storage_configuration(self, storage_configuration_id: str) -> Json:
        with self._lock:
            conf = self._storage(storage_configuration_id)
            self._refuse_if_used_by_workspace(
                "storage_configuration_id", storage_configuration_id, "Storage configuration"
            )
            del self.storage[storage_configuration_id]
            return conf.to_json(self.account_id)

    def _storage(self, storage_configuration_id: str) -> StorageConfiguration:
        conf = self.storage.get(storage_configuration_id)
        if conf is None:
            raise not_found(f"Storage configuration {storage_configuration_id} does not exist")
        return conf

    # --- VPC endpoint registrations -----------------------------------------------------------

    def create_vpc_endpoint(self, body: Mapping[str, Any]) -> Json:
        name = _req_str(body, "vpc_endpoint_name")
        aws_id = _req_str(body, "aws_vpc_endpoint_id")
        region = self._region(_req_str(body, "region"))
        if not AWS_VPCE_ID.match(aws_id):
            raise invalid(f"Invalid AWS VPC endpoint id: {aws_id}")
        services = self.catalog.region(region)
        assert services is not None  # _region() checked it
        with self._lock:
            for reg in self.endpoints.values():
                if reg.aws_vpc_endpoint_id == aws_id and reg.region == region:
                    raise already_exists(
                        f"VPC endpoint {aws_id} is already registered as {reg.vpc_endpoint_id} "
                        f"({reg.vpc_endpoint_name})"
                    )
            endpoint = self.aws.get_vpc_endpoint(region, aws_id)
            if endpoint is None or endpoint.state.lower() in ("deleted", "deleting", "failed"):
                raise invalid(f"VPC endpoint {aws_id} does not exist in region {region}")
            use_case = services.use_case_of(endpoint.service_name)
            if use_case is None:
                raise invalid(
                    f"VPC endpoint {aws_id} connects to {endpoint.service_name}, which is not a Databricks "
                    f"endpoint service in {region}"
                )
            reg = VpcEndpointRegistration(
                vpc_endpoint_id=str(uuid.uuid4()),
                vpc_endpoint_name=name,
                aws_vpc_endpoint_id=aws_id,
                region=region,
                aws_endpoint_service_id=endpoint.service_name.rsplit(".", 1)[-1],
                aws_account_id=endpoint.owner_account_id,
                use_case=use_case,
            )
            self.endpoints[reg.vpc_endpoint_id] = reg
            self._later(self.config.endpoint_accept_delay_s, lambda: self._accept(reg.vpc_endpoint_id))
            return reg.to_json(self.account_id, endpoint.state)

    def _accept(self, vpc_endpoint_id: str) -> None:
        with self._lock:
            reg = self.endpoints.get(vpc_endpoint_id)
            enabled = self.privatelink_enabled_accounts
        if reg is None:
            return
        if enabled is not None and reg.aws_account_id not in enabled:
            self.aws.reject_vpc_endpoint(reg.region, reg.aws_vpc_endpoint_id)
        else:
            self.aws.accept_vpc_endpoint(reg.region, reg.aws_vpc_endpoint_id)

    def _endpoint_state(self, reg: VpcEndpointRegistration) -> str:
        # The registration has no state of its own: Databricks reports what AWS reports.
        endpoint = self.aws.get_vpc_endpoint(reg.region, reg.aws_vpc_endpoint_id)
        return "deleted" if endpoint is None else endpoint.state

    def get_vpc_endpoint(self, vpc_endpoint_id: str) -> Json:
        with self._lock:
            reg = self._endpoint(vpc_endpoint_id)
            return reg.to_json(self.account_id, self._endpoint_state(reg))

    def list_vpc_endpoints(self) -> list[Json]:
        with self._lock:
            return [r.to_json(self.account_id, self._endpoint_state(r)) for r in self.endpoints.values()]

    def delete_vpc_endpoint(self, vpc_endpoint_id: str) -> Json:
        with self._lock:
            reg = self._endpoint(vpc_endpoint_id)
            for net in self.networks.values():
                if vpc_endpoint_id in net.endpoint_ids():
                    raise self._in_use(
                        f"Unable to delete, VPC endpoint is being used by network {net.network_id}"
                    )
            for pas in self.private_access.values():
                if vpc_endpoint_id in pas.allowed_vpc_endpoint_ids:
                    raise self._in_use(
                        "Unable to delete, VPC endpoint is being used by private access settings "
                        f"{pas.private_access_settings_id}"
                    )
            del self.endpoints[vpc_endpoint_id]
            return reg.to_json(self.account_id, self._endpoint_state(reg))

    def _endpoint(self, vpc_endpoint_id: str) -> VpcEndpointRegistration:
        reg = self.endpoints.get(vpc_endpoint_id)
        if reg is None:
            raise not_found(f"VPC endpoint {vpc_endpoint_id} does not exist")
        return reg

    # --- private access settings --------------------------------------------------------------

    def _parse_private_access(self, body: Mapping[str, Any], pas_id: str) -> PrivateAccessSettings:
        name = _req_str(body, "private_access_settings_name")
        region = self._region(_req_str(body, "region"))
        public = _opt_bool(body, "public_access_enabled", False)
        level = body.get("private_access_level") or "ACCOUNT"
        if level == "ANY":
            raise invalid("private_access_level ANY is no longer supported: use ACCOUNT or ENDPOINT")
        if level not in ACCESS_LEVELS:
            raise malformed(f"Could not parse request object: unknown private_access_level {level!r}")
        allowed = _str_list(body, "allowed_vpc_endpoint_ids")
        _unique(allowed, "allowed_vpc_endpoint_ids")
        for endpoint_id in allowed:
            reg = self.endpoints.get(endpoint_id)
            if reg is None:
                raise invalid(
                    f"VPC endpoint {endpoint_id} in allowed_vpc_endpoint_ids is not a registered Databricks "
                    "VPC endpoint id (register the AWS endpoint first and use the vpc_endpoint_id)"
                )
            if reg.region != region:
                raise invalid(f"VPC endpoint {endpoint_id} is in {reg.region}, not in {region}")
        return PrivateAccessSettings(pas_id, name, region, public, str(level), allowed)

    def create_private_access_settings(self, body: Mapping[str, Any]) -> Json:
        with self._lock:
            pas = self._parse_private_access(body, str(uuid.uuid4()))
            self.private_access[pas.private_access_settings_id] = pas
            return pas.to_json(self.account_id)

    def replace_private_access_settings(self, pas_id: str, body: Mapping[str, Any]) -> Json:
        """PUT: every field is overwritten; what the body leaves out goes back to its default."""
        with self._lock:
            current = self._private_access(pas_id)
            pas = self._parse_private_access(body, pas_id)
            if pas.region != current.region:
                for ws in self.workspaces.values():
                    if ws.private_access_settings_id == pas_id:
                        raise invalid(
                            f"Private access settings {pas_id} are used by workspace {ws.workspace_id} in "
                            f"{ws.aws_region}; the region cannot change to {pas.region}"
                        )
            self.private_access[pas_id] = pas
            return pas.to_json(self.account_id)

    def get_private_access_settings(self, pas_id: str) -> Json:
        with self._lock:
            return self._private_access(pas_id).to_json(self.account_id)

    def list_private_access_settings(self) -> list[Json]:
        with self._lock:
            return [p.to_json(self.account_id) for p in self.private_access.values()]

    def delete_private_access_settings(self, pas_id: str) -> Json:
        with self._lock:
            pas = self._private_access(pas_id)
            self._refuse_if_used_by_workspace("private_access_settings_id", pas_id, "Private access settings")
            del self.private_access[pas_id]
            return pas.to_json(self.account_id)

    def _private_access(self, pas_id: str) -> PrivateAccessSettings:
        pas = self.private_access.get(pas_id)
        if pas is None:
            raise not_found(f"Private access settings {pas_id} do not exist")
        return pas

    # --- networks -----------------------------------------------------------------------------

    def create_network(self, body: Mapping[str, Any]) -> Json:
        name = _req_str(body, "network_name")
        vpc_id = _req_str(body, "vpc_id")
        if not VPC_ID.match(vpc_id):
            raise invalid(f"Invalid VPC id: {vpc_id}")
        subnet_ids = _str_list(body, "subnet_ids")
        security_group_ids = _str_list(body, "security_group_ids")
        endpoints = _obj(body, "vpc_endpoints")
        rest_api = _str_list(endpoints, "rest_api")
        relay = _str_list(endpoints, "dataplane_relay")
        if len(subnet_ids) < 2:
            raise invalid(f"At least 2 subnet_ids are required, got {len(subnet_ids)}")
        if not 1 <= len(security_group_ids) <= MAX_SECURITY_GROUPS:
            raise invalid(
                f"Between 1 and {MAX_SECURITY_GROUPS} security_group_ids are required, "
                f"got {len(security_group_ids)}"
            )
        _unique(subnet_ids, "subnet_ids")
        _unique(security_group_ids, "security_group_ids")
        for subnet_id in subnet_ids:
            if not SUBNET_ID.match(subnet_id):
                raise invalid(f"Invalid subnet id: {subnet_id}")
        for group_id in security_group_ids:
            if not SG_ID.match(group_id):
                raise invalid(f"Invalid security group id: {group_id}")
        with self._lock:
            for endpoint_id in [*rest_api, *relay]:
                if endpoint_id not in self.endpoints:
                    raise invalid(
                        f"VPC endpoint {endpoint_id} in vpc_endpoints is not a registered VPC endpoint id"
                    )
            for other in self.networks.values():
                for subnet_id in set(subnet_ids) & set(other.subnet_ids):
                    raise invalid(f"Subnet {subnet_id} is already used by network {other.network_id}")
                for group_id in set(security_group_ids) & set(other.security_group_ids):
                    raise invalid(f"Security group {group_id} is already used by network {other.network_id}")
            net = Network(
                network_id=str(uuid.uuid4()),
                network_name=name,
                vpc_id=vpc_id,
                subnet_ids=subnet_ids,
                security_group_ids=security_group_ids,
                rest_api=rest_api,
                dataplane_relay=relay,
                creation_time=self._now_ms(),
            )
            self.networks[net.network_id] = net
            return net.to_json(self.account_id)

    def get_network(self, network_id: str) -> Json:
        with self._lock:
            return self._network(network_id).to_json(self.account_id)

    def list_networks(self) -> list[Json]:
        with self._lock:
            return [n.to_json(self.account_id) for n in self.networks.values()]

    def delete_network(self, network_id: str) -> Json:
        with self._lock:
            net = self._network(network_id)
            self._refuse_if_used_by_workspace("network_id", network_id, "Network")
            del self.networks[network_id]
            return net.to_json(self.account_id)

    def _network(self, network_id: str) -> Network:
        net = self.networks.get(network_id)
        if net is None:
            raise not_found(f"Network {network_id} does not exist")
        return net

    def _validate_network(self, net: Network, region: str) -> list[NetworkProblem]:
        def facts(endpoint_id: str) -> EndpointFacts | None:
            reg = self.endpoints.get(endpoint_id)
            if reg is None:
                return None
            return EndpointFacts(reg.region, reg.use_case, self._endpoint_state(reg), reg.aws_vpc_endpoint_id)

        return validate_network(
            region=region,
            vpc_id=net.vpc_id,
            subnet_ids=net.subnet_ids,
            security_group_ids=net.security_group_ids,
            rest_api=net.rest_api,
            dataplane_relay=net.dataplane_relay,
            aws=self.aws,
            catalog=self.catalog,
            endpoint=facts,
        )

    # --- workspaces ---------------------------------------------------------------------------

    def _in_use(self, message: str) -> ApiError:
        return in_use(message, as_bare_409=self.in_use_refusal == "bare-409")

    def _refuse_if_used_by_workspace(self, attribute: str, value: str, kind: str) -> None:
        for ws in self.workspaces.values():
            if getattr(ws, attribute) == value:
                raise self._in_use(
                    f"Unable to delete, {kind} is being used by active workspace {ws.workspace_id}"
                )

    def _check_references(
        self,
        region: str,
        *,
        credentials_id: str | None,
        storage_configuration_id: str | None,
        network_id: str | None,
        private_access_settings_id: str | None,
        workspace_id: int | None,
    ) -> None:
        if credentials_id is not None and credentials_id not in self.credentials:
            raise invalid(f"Credential configuration {credentials_id} does not exist")
        if storage_configuration_id is not None and storage_configuration_id not in self.storage:
            raise invalid(f"Storage configuration {storage_configuration_id} does not exist")
        if private_access_settings_id is not None:
            pas = self.private_access.get(private_access_settings_id)
            if pas is None:
                raise invalid(f"Private access settings {private_access_settings_id} do not exist")
            if pas.region != region:
                raise invalid(
                    f"Private access settings {private_access_settings_id} are in {pas.region}, "
                    f"but the workspace is in {region}"
                )
        if network_id is not None:
            net = self.networks.get(network_id)
            if net is None:
                raise invalid(f"Network {network_id} does not exist")
            for other in self.workspaces.values():
                if other.network_id == network_id and other.workspace_id != workspace_id:
                    raise invalid(f"Network {network_id} is already used by workspace {other.workspace_id}")
            for endpoint_id in net.endpoint_ids():
                reg = self.endpoints.get(endpoint_id)
                if reg is not None and reg.region != region:
                    raise invalid(
                        f"Network {network_id} uses VPC endpoint {endpoint_id} in {reg.region}, "
                        f"but the workspace is in {region}"
                    )

    def create_workspace(self, body: Mapping[str, Any]) -> Json:
        name = _req_str(body, "workspace_name")
        region = self._region(_req_str(body, "aws_region"))
        credentials_id = _req_str(body, "credentials_id")
        storage_id = _req_str(body, "storage_configuration_id")
        network_id = _opt_str(body, "network_id")
        pas_id = _opt_str(body, "private_access_settings_id")
        deployment = _opt_str(body, "deployment_name")
        if deployment is not None and not DEPLOYMENT_NAME.match(deployment):
            raise invalid(
                f"Invalid deployment_name {deployment!r}: lowercase letters, digits and hyphens only"
            )
        tier = _opt_str(body, "pricing_tier") or "PREMIUM"
        if tier not in PRICING_TIERS:
            raise invalid(f"Invalid pricing_tier {tier!r}")
        tags = _tags(body)
        with self._lock:
            self._check_references(
                region,
                credentials_id=credentials_id,
                storage_configuration_id=storage_id,
                network_id=network_id,
                private_access_settings_id=pas_id,
                workspace_id=None,
            )
            if deployment is not None and any(
                w.deployment_name == deployment for w in self.workspaces.values()
            ):
                raise invalid(f"Deployment name {deployment} is already taken")
            ws = Workspace(
                workspace_id=next(self._workspace_ids),
                workspace_name=name,
                aws_region=region,
                credentials_id=credentials_id,
                storage_configuration_id=storage_id,
                deployment_name=deployment or f"dbc-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:4]}",
                pricing_tier=tier,
                creation_time=self._now_ms(),
                network_id=network_id,
                private_access_settings_id=pas_id,
                managed_services_customer_managed_key_id=_opt_str(
                    body, "managed_services_customer_managed_key_id"
                ),
                storage_customer_managed_key_id=_opt_str(body, "storage_customer_managed_key_id"),
                network_connectivity_config_id=_opt_str(body, "network_connectivity_config_id"),
                custom_tags=tags,
                workspace_status="PROVISIONING",
                workspace_status_message="Workspace resources are being set up.",
            )
            self.workspaces[ws.workspace_id] = ws
            self._start_provisioning(ws, self.config.workspace_provision_delay_s)
            return ws.to_json(self.account_id)

    def _start_provisioning(self, ws: Workspace, delay: float) -> None:
        ws.operation += 1
        operation, workspace_id = ws.operation, ws.workspace_id
        self._later(delay, lambda: self._finish_provisioning(workspace_id, operation))

    def _finish_provisioning(self, workspace_id: int, operation: int) -> None:
        with self._lock:
            ws = self.workspaces.get(workspace_id)
            if ws is None or ws.operation != operation or ws.deleting:
                return
            problems: list[NetworkProblem] = []
            if ws.network_id is not None:
                net = self.networks[ws.network_id]
                problems = self._validate_network(net, ws.aws_region)
                net.workspace_id = ws.workspace_id
                net.error_messages = problems
                net.vpc_status = "BROKEN" if problems else "VALID"
            if problems:
                ws.workspace_status = "FAILED"
                ws.workspace_status_message = f"Network {ws.network_id} failed validation: " + "; ".join(
                    p.error_message for p in problems
                )
            else:
                ws.workspace_status = "RUNNING"
                ws.workspace_status_message = "Workspace is running."

    def get_workspace(self, workspace_id: int) -> Json:
        with self._lock:
            return self._workspace(workspace_id).to_json(self.account_id)

    def list_workspaces(self) -> list[Json]:
        with self._lock:
            return [w.to_json(self.account_id) for w in self.workspaces.values()]

    def delete_workspace(self, workspace_id: int) -> Json:
        """Deletion is asynchronous: the workspace stays readable until the delay has passed."""
        with self._lock:
            ws = self._workspace(workspace_id)
            if not ws.deleting:
                ws.deleting = True
                ws.workspace_status_message = "Workspace is being deleted."
                self._later(
                    self.config.workspace_delete_delay_s, lambda: self._remove_workspace(workspace_id)
                )
            return ws.to_json(self.account_id)

    def _remove_workspace(self, workspace_id: int) -> None:
        with self._lock:
            ws = self.workspaces.pop(workspace_id, None)
            if ws is not None and ws.network_id is not None:
                self._detach_network(ws.network_id, workspace_id)

    def _detach_network(self, network_id: str, workspace_id: int) -> None:
        net = self.networks.get(network_id)
        if net is not None and net.workspace_id == workspace_id:
            net.workspace_id = None
            net.vpc_status = "UNATTACHED"
            net.error_messages = []

    def _workspace(self, workspace_id: int) -> Workspace:
        ws = self.workspaces.get(workspace_id)
        if ws is None:
            raise not_found(f"Workspace {workspace_id} does not exist")
        return ws

    def update_workspace(
        self, workspace_id: int, body: Mapping[str, Any], update_mask: str | None = None
    ) -> Json:
        """PATCH in any of the three shapes clients send: whole object + ?update_mask=, flat fields +
        "update_mask" in the body, or flat fields alone."""
        mask = update_mask if update_mask is not None else body.get("update_mask")
        if mask is not None and not isinstance(mask, str):
            raise malformed("Could not parse request object: update_mask must be a comma-separated string")
        with self._lock:
            ws = self._workspace(workspace_id)
            current = ws.to_json(self.account_id)
            if mask is None or mask.strip() == "*":
                # Without a mask the body's own fields are the update; whole objects repeat unchanged
                # and output-only fields, which are not an update.
                fields = [f for f in body if f not in WORKSPACE_READ_ONLY and body[f] != current.get(f)]
            else:
                fields = [f.strip() for f in mask.split(",") if f.strip()]
                for f in fields:
                    if f not in body:
                        raise invalid(f"update_mask names {f} but the request does not set it")
            unknown = [f for f in fields if f not in WORKSPACE_FIELDS]
            if unknown:
                raise invalid(f"Unknown or read-only workspace fields: {', '.join(sorted(unknown))}")
            if ws.deleting:
                raise invalid_state(f"Workspace {workspace_id} is being deleted and cannot be updated")
            if ws.workspace_status == "RUNNING":
                allowed = RUNNING_PATCHABLE
            elif ws.workspace_status == "FAILED":
                allowed = FAILED_PATCHABLE
            else:
                raise invalid_state(
                    f"Workspace {workspace_id} is in status {ws.workspace_status} and cannot be updated"
                )
            changes = {f: body[f] for f in fields if body[f] != current.get(f)}
            refused = sorted(f for f in changes if f not in allowed)
            if refused:
                raise invalid(
                    f"Fields {', '.join(refused)} cannot be updated while the workspace is "
                    f"{ws.workspace_status}"
                )
            if not changes:
                return current
            self._apply_workspace_changes(ws, changes)
            return ws.to_json(self.account_id)

    def _apply_workspace_changes(self, ws: Workspace, changes: Mapping[str, Any]) -> None:
        region = self._region(_req_str(changes, "aws_region")) if "aws_region" in changes else ws.aws_region
        parsed: dict[str, Any] = {}
        for f in changes:
            parsed[f] = _tags(changes) if f == "custom_tags" else _opt_str(changes, f)
        for f in ("credentials_id", "storage_configuration_id"):
            if f in parsed and parsed[f] is None:
                raise invalid(f"{f} cannot be removed from a workspace")
        network_id = parsed.get("network_id", ws.network_id)
        pas_id = parsed.get("private_access_settings_id", ws.private_access_settings_id)
        self._check_references(
            region,
            credentials_id=parsed.get("credentials_id"),
            storage_configuration_id=parsed.get("storage_configuration_id"),
            network_id=network_id,
            private_access_settings_id=pas_id,
            workspace_id=ws.workspace_id,
        )
        old_network = ws.network_id
        for f, value in parsed.items():
            setattr(ws, f, value)
        if old_network is not None and old_network != ws.network_id:
            self._detach_network(old_network, ws.workspace_id)
        was_failed = ws.workspace_status == "FAILED"
        ws.workspace_status = "PROVISIONING"
        ws.workspace_status_message = (
            "Workspace is being provisioned again." if was_failed else "Workspace is being updated."
        )
        self._start_provisioning(ws, self.config.workspace_update_delay_s)

    # --- seeding and inspection ---------------------------------------------------------------

    def state(self) -> Json:
        """Every object as the API would show it, for tests and the admin route."""
        return {
            "account_id": self.account_id,
            "credentials": self.list_credentials(),
            "storage_configurations": self.list_storage_configurations(),
            "vpc_endpoints": self.list_vpc_endpoints(),
            "private_access_settings": self.list_private_access_settings(),
            "networks": self.list_networks(),
            "workspaces": self.list_workspaces(),
            "pending_timers": len(self._timers),
        }
