"""The emulated AWS of the local stack: moto's server plus the AWS behaviour moto lacks (endpoint
lifecycle, ClientToken, Databricks endpoint services, the quotas and refusals a fleet meets, opt-in rate
limits, faults, CloudTrail events, EventBridge delivery)."""

from dbx_privatelink_local.aws.server import LocalAws, install_patches
from dbx_privatelink_local.aws.settings import LocalAwsSettings

__all__ = ["LocalAws", "LocalAwsSettings", "install_patches"]
