"""The Account API objects as the emulator stores them; `to_json` gives the wire shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dbx_privatelink_local.databricks.network_validation import NetworkProblem

WORKSPACE_STATUSES = ("NOT_PROVISIONED", "PROVISIONING", "RUNNING", "FAILED", "BANNED", "CANCELLING")


@dataclass
class Credential:
    credentials_id: str
    credentials_name: str
    role_arn: str
    creation_time: int

    def to_json(self, account_id: str) -> dict[str, Any]:
        return {
            "credentials_id": self.credentials_id,
            "credentials_name": self.credentials_name,
            # Databricks uses the account id as the external id the role's trust policy must require.
            "aws_credentials": {"sts_role": {"role_arn": self.role_arn, "external_id": account_id}},
            "account_id": account_id,
            "creation_time": self.creation_time,
        }


@dataclass
class StorageConfiguration:
    storage_configuration_id: str
    storage_configuration_name: str
    bucket_name: str
    role_arn: str | None
    creation_time: int

    def to_json(self, account_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "storage_configuration_id": self.storage_configuration_id,
            "storage_configuration_name": self.storage_configuration_name,
            "root_bucket_info": {"bucket_name": self.bucket_name},
            "account_id": account_id,
            "creation_time": self.creation_time,
        }
        if self.role_arn:
            out["role_arn"] = self.role_arn
        return out


@dataclass
class VpcEndpointRegistration:
    vpc_endpoint_id: str
    vpc_endpoint_name: str
    aws_vpc_endpoint_id: str
    region: str
    aws_endpoint_service_id: str
    aws_account_id: str
    use_case: str

    def to_json(self, account_id: str, state: str) -> dict[str, Any]:
        return {
            "vpc_endpoint_id": self.vpc_endpoint_id,
            "vpc_endpoint_name": self.vpc_endpoint_name,
            "aws_vpc_endpoint_id": self.aws_vpc_endpoint_id,
            "aws_endpoint_service_id": self.aws_endpoint_service_id,
            "aws_account_id": self.aws_account_id,
            "account_id": account_id,
            "region": self.region,
            "state": state,
            "use_case": self.use_case,
        }


@dataclass
class PrivateAccessSettings:
    private_access_settings_id: str
    private_access_settings_name: str
    region: str
    public_access_enabled: bool
    private_access_level: str
    allowed_vpc_endpoint_ids: list[str]

    def to_json(self, account_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "private_access_settings_id": self.private_access_settings_id,
            "private_access_settings_name": self.private_access_settings_name,
            "region": self.region,
            "public_access_enabled": self.public_access_enabled,
            "private_access_level": self.private_access_level,
            "account_id": account_id,
        }
        if self.allowed_vpc_endpoint_ids:
            out["allowed_vpc_endpoint_ids"] = list(self.allowed_vpc_endpoint_ids)
        return out


@dataclass
class Network:
    network_id: str
    network_name: str
    vpc_id: str
    subnet_ids: list[str]
    security_group_ids: list[str]
    rest_api: list[str]
    dataplane_relay: list[str]
    creation_time: int
    workspace_id: int | None = None
    vpc_status: str = "UNATTACHED"
    error_messages: list[NetworkProblem] = field(default_factory=list)

    def endpoint_ids(self) -> list[str]:
        return [*self.rest_api, *self.dataplane_relay]

    def to_json(self, account_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "network_id": self.network_id,
            "network_name": self.network_name,
            "vpc_id": self.vpc_id,
            "subnet_ids": list(self.subnet_ids),
            "security_group_ids": list(self.security_group_ids),
            "account_id": account_id,
            "creation_time": self.creation_time,
            "vpc_status": self.vpc_status,
            "error_messages": [p.to_json() for p in self.error_messages],
            "warning_messages": [],
        }
        if self.rest_api or self.dataplane_relay:
            out["vpc_endpoints"] = {
                "rest_api": list(self.rest_api),
                "dataplane_relay": list(self.dataplane_relay),
            }
        if self.workspace_id is not None:
            out["workspace_id"] = self.workspace_id
        return out


@dataclass
class Workspace:
    workspace_id: int
    workspace_name: str
    aws_region: str
    credentials_id: str
    storage_configuration_id: str
    deployment_name: str
    pricing_tier: str
    creation_time: int
    network_id: str | None = None
    private_access_settings_id: str | None = None
    managed_services_customer_managed_key_id: str | None = None
    storage_customer_managed_key_id: str | None = None
    network_connectivity_config_id: str | None = None
    custom_tags: dict[str, str] = field(default_factory=dict)
    workspace_status: str = "PROVISIONING"
    workspace_status_message: str = ""
    # Bumped by every create/PATCH so a superseded provisioning timer knows to do nothing.
    operation: int = 0
    deleting: bool = False

    def to_json(self, account_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "workspace_id": self.workspace_id,
            "workspace_name": self.workspace_name,
            "aws_region": self.aws_region,
            "cloud": "aws",
            "credentials_id": self.credentials_id,
            "storage_configuration_id": self.storage_configuration_id,
            "deployment_name": self.deployment_name,
            "pricing_tier": self.pricing_tier,
            "account_id": account_id,
            "creation_time": self.creation_time,
            "workspace_status": self.workspace_status,
            "workspace_status_message": self.workspace_status_message,
        }
        for name in (
            "network_id",
            "private_access_settings_id",
            "managed_services_customer_managed_key_id",
            "storage_customer_managed_key_id",
            "network_connectivity_config_id",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.custom_tags:
            out["custom_tags"] = dict(self.custom_tags)
        return out
