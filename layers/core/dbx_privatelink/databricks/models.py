"""Databricks Account API objects (AWS provisioning), as the API returns them.

Response models ignore unknown fields, so a field Databricks adds later does not break a running
reconcile; fields the API may omit are optional. Request models validate what we send before it leaves.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]
AwsRegion = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")]
AwsVpcEndpointId = Annotated[str, StringConstraints(pattern=r"^vpce-[0-9a-f]+$")]
AwsEndpointServiceId = Annotated[str, StringConstraints(pattern=r"^vpce-svc-[0-9a-f]+$")]
AwsAccountId = Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
VpcId = Annotated[str, StringConstraints(pattern=r"^vpc-[0-9a-f]+$")]
SubnetId = Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]+$")]
SecurityGroupId = Annotated[str, StringConstraints(pattern=r"^sg-[0-9a-f]+$")]
IamRoleArn = Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")]
EpochMillis = Annotated[int, Field(ge=0)]
WorkspaceId = Annotated[int, Field(gt=0)]

EndpointUseCase = Literal["WORKSPACE_ACCESS", "DATAPLANE_RELAY_ACCESS", "GENERAL_ACCESS"]
PrivateAccessLevel = Literal["ACCOUNT", "ENDPOINT"]
VpcStatus = Literal["UNATTACHED", "VALID", "BROKEN", "WARNED"]
WorkspaceStatus = Literal["NOT_PROVISIONED", "PROVISIONING", "RUNNING", "FAILED", "BANNED", "CANCELLING"]
PricingTier = Literal["COMMUNITY_EDITION", "DEDICATED", "ENTERPRISE", "PREMIUM", "STANDARD", "UNKNOWN"]


class _ApiObject(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


# --- credentials and storage -------------------------------------------------------------------------


class StsRole(_ApiObject):
    role_arn: IamRoleArn
    external_id: str | None = None


class AwsCredentials(_ApiObject):
    sts_role: StsRole


class Credentials(_ApiObject):
    credentials_id: NonEmptyStr
    credentials_name: NonEmptyStr
    aws_credentials: AwsCredentials | None = None
    account_id: str | None = None
    creation_time: EpochMillis | None = None


class RootBucketInfo(_ApiObject):
    bucket_name: NonEmptyStr


class StorageConfiguration(_ApiObject):
    storage_configuration_id: NonEmptyStr
    storage_configuration_name: NonEmptyStr
    root_bucket_info: RootBucketInfo | None = None
    account_id: str | None = None
    creation_time: EpochMillis | None = None


# --- PrivateLink objects ------------------------------------------------------------------------------


class VpcEndpoint(_ApiObject):
    """A VPC endpoint registration; `vpc_endpoint_id` is the Databricks id, `aws_vpc_endpoint_id` AWS's."""

    vpc_endpoint_id: NonEmptyStr
    vpc_endpoint_name: NonEmptyStr
    aws_vpc_endpoint_id: AwsVpcEndpointId
    region: AwsRegion
    aws_endpoint_service_id: AwsEndpointServiceId | None = None
    aws_account_id: AwsAccountId | None = None
    account_id: str | None = None
    # Mirrors the AWS endpoint state (pending, pendingAcceptance, available, rejected ...): kept open.
    state: str | None = None
    use_case: EndpointUseCase | None = None


class PrivateAccessSettings(_ApiObject):
    private_access_settings_id: NonEmptyStr
    private_access_settings_name: NonEmptyStr
    region: AwsRegion
    public_access_enabled: bool = False
    # Objects created before the ANY level was removed may still report it; reading one must not fail,
    # the reconciler sees it differ from the desired level and replaces the object.
    private_access_level: PrivateAccessLevel | Literal["ANY"] = "ACCOUNT"
    allowed_vpc_endpoint_ids: list[NonEmptyStr] = []
    account_id: str | None = None


class NetworkVpcEndpoints(_ApiObject):
    rest_api: list[NonEmptyStr] = []
    dataplane_relay: list[NonEmptyStr] = []


class NetworkHealth(_ApiObject):
    error_type: Literal["credentials", "vpc", "subnet", "securityGroup", "networkAcl"] | None = None
    error_message: str = ""


class NetworkWarning(_ApiObject):
    warning_type: Literal["subnet", "securityGroup"] | None = None
    warning_message: str = ""


class Network(_ApiObject):
    network_id: NonEmptyStr
    network_name: NonEmptyStr
    vpc_id: VpcId | None = None
    subnet_ids: list[SubnetId] = []
    security_group_ids: list[SecurityGroupId] = []
    vpc_endpoints: NetworkVpcEndpoints = Field(default_factory=NetworkVpcEndpoints)
    vpc_status: VpcStatus | None = None
    error_messages: list[NetworkHealth] = []
    warning_messages: list[NetworkWarning] = []
    workspace_id: WorkspaceId | None = None
    account_id: str | None = None
    creation_time: EpochMillis | None = None


class Workspace(_ApiObject):
    workspace_id: WorkspaceId
    workspace_name: NonEmptyStr
    deployment_name: str | None = None
    aws_region: AwsRegion | None = None
    credentials_id: str | None = None
    storage_configuration_id: str | None = None
    network_id: str | None = None
    private_access_settings_id: str | None = None
    workspace_status: WorkspaceStatus | None = None
    workspace_status_message: str | None = None
    pricing_tier: PricingTier | None = None
    custom_tags: dict[str, str] = {}
    account_id: str | None = None
    creation_time: EpochMillis | None = None


# --- request bodies -----------------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class CreateCredentialsRequest(_Request):
    credentials_name: NonEmptyStr
    aws_credentials: AwsCredentials


class CreateStorageConfigurationRequest(_Request):
    storage_configuration_name: NonEmptyStr
    root_bucket_info: RootBucketInfo


class RegisterVpcEndpointRequest(_Request):
    vpc_endpoint_name: NonEmptyStr
    aws_vpc_endpoint_id: AwsVpcEndpointId
    region: AwsRegion


class PrivateAccessSettingsRequest(_Request):
    """The body of both create (POST) and replace (PUT): PUT overwrites the whole object."""

    private_access_settings_name: NonEmptyStr
    region: AwsRegion
    public_access_enabled: bool = False
    private_access_level: PrivateAccessLevel = "ACCOUNT"
    allowed_vpc_endpoint_ids: list[NonEmptyStr] = []


class CreateNetworkRequest(_Request):
    network_name: NonEmptyStr
    vpc_id: VpcId
    subnet_ids: Annotated[list[SubnetId], Field(min_length=2)]
    security_group_ids: Annotated[list[SecurityGroupId], Field(min_length=1, max_length=5)]
    vpc_endpoints: NetworkVpcEndpoints


class CreateWorkspaceRequest(_Request):
    workspace_name: NonEmptyStr
    aws_region: AwsRegion
    credentials_id: NonEmptyStr
    storage_configuration_id: NonEmptyStr
    network_id: NonEmptyStr | None = None
    private_access_settings_id: NonEmptyStr | None = None
    deployment_name: NonEmptyStr | None = None
    pricing_tier: PricingTier | None = None
    custom_tags: dict[str, str] | None = None


class UpdateWorkspaceRequest(_Request):
    """The fields PATCH may change (a FAILED workspace also takes aws_region and storage_configuration_id)."""

    credentials_id: NonEmptyStr | None = None
    network_id: NonEmptyStr | None = None
    private_access_settings_id: NonEmptyStr | None = None
    managed_services_customer_managed_key_id: NonEmptyStr | None = None
    storage_customer_managed_key_id: NonEmptyStr | None = None
    network_connectivity_config_id: NonEmptyStr | None = None
    custom_tags: dict[str, str] | None = None
    aws_region: AwsRegion | None = None
    storage_configuration_id: NonEmptyStr | None = None
