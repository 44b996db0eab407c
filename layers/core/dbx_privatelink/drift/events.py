"""The events the drift functions receive: CloudTrail API calls through EventBridge, and scheduled scans.

CloudTrail events are late, unordered and delivered at least once; nothing here relies on their order.
Only the fields the detector reads are modelled; everything else is kept but ignored.
"""

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
SCHEDULED_DETAIL_TYPE = "Scheduled Event"

# Resource ids a drift event can name. vpce-svc-... (endpoint services) and sgr-... (rule ids) are not
# resources the store indexes; the group id always travels with a rule change.
_RESOURCE_ID = re.compile(
    r"^(?:vpce-[0-9a-f]{8,17}|sg-[0-9a-f]{8,17}|vpc-[0-9a-f]{8,17}|subnet-[0-9a-f]{8,17}|pcx-[0-9a-f]{8,17}"
    r"|rslvr-(?:rr|out|in|rrassoc)-[0-9a-f]{8,17}|rtb-[0-9a-f]{8,17})$"
)
_HOSTED_ZONE = re.compile(r"^(?:/hostedzone/)?(Z[A-Z0-9]{8,32})$")
# Parameters that hold a hosted zone id (its value pattern alone would match too many strings).
_HOSTED_ZONE_KEYS = {"hostedZoneId", "id", "HostedZoneId"}


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True, defer_build=True)


class SessionIssuer(_Lenient):
    type: str = ""
    arn: str = ""
    accountId: str = ""
    userName: str = ""


class SessionContext(_Lenient):
    sessionIssuer: SessionIssuer | None = None


class UserIdentity(_Lenient):
    type: str = ""
    arn: str = ""
    accountId: str = ""
    principalId: str = ""
    invokedBy: str = ""
    sessionContext: SessionContext | None = None

    @property
    def role_arn(self) -> str:
        """The role behind an assumed-role session ("" for users and services)."""
        issuer = self.sessionContext.sessionIssuer if self.sessionContext else None
        return issuer.arn if issuer and issuer.type == "Role" else ""


class CloudTrailDetail(_Lenient):
    eventID: str = Field(min_length=1)
    eventName: str = Field(min_length=1)
    eventSource: str = Field(min_length=1)
    eventTime: str = ""
    awsRegion: str = ""
    recipientAccountId: str = ""
    userIdentity: UserIdentity = Field(default_factory=UserIdentity)
    requestParameters: dict[str, Any] | None = None
    responseElements: dict[str, Any] | None = None
    errorCode: str | None = None
    errorMessage: str | None = None


class CloudTrailEvent(_Lenient):
    """An "AWS API Call via CloudTrail" event as EventBridge delivers it."""

    id: str = Field(min_length=1)
    detail_type: Literal["AWS API Call via CloudTrail"] = Field(alias="detail-type")
    source: str
    account: str = Field(pattern=r"^\d{12}$")
    time: str = ""
    region: str = ""
    detail: CloudTrailDetail

    @property
    def failed(self) -> bool:
        """CloudTrail records refused calls too: they changed nothing."""
        return bool(self.detail.errorCode)

    def resource_ids(self) -> list[str]:
        """Every resource id named in the request or the response, once, in order of appearance."""
        found: list[str] = []
        for part in (self.detail.requestParameters, self.detail.responseElements):
            _collect(part, found, key="")
        return list(dict.fromkeys(found))


class ScheduledEvent(_Lenient):
    """What an EventBridge schedule (rate(...)) delivers."""

    id: str = Field(min_length=1)
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    source: Literal["aws.events"] = "aws.events"
    account: str = ""
    time: str = ""
    resources: list[str] = []


def _collect(value: Any, found: list[str], key: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _collect(v, found, str(k))
    elif isinstance(value, list):
        for v in value:
            _collect(v, found, key)
    elif isinstance(value, str):
        if _RESOURCE_ID.match(value):
            found.append(value)
        elif key in _HOSTED_ZONE_KEYS and (zone := _HOSTED_ZONE.match(value)):
            found.append(zone.group(1))


def _items(value: Any) -> list[Any]:
    """CloudTrail's list shapes ({"items": [...]}, a bare list, a single {"tag", "content"}) as a list."""
    if isinstance(value, dict) and "items" in value:
        value = value["items"]
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _rule_text(permission: dict[str, Any]) -> str:
    proto = str(permission.get("ipProtocol", "-1"))
    lo, hi = permission.get("fromPort"), permission.get("toPort")
    ports = "all" if proto == "-1" or lo is None else (str(lo) if lo == hi else f"{lo}-{hi}")
    peers = [str(r.get("cidrIp")) for r in _items(permission.get("ipRanges")) if isinstance(r, dict)]
    peers += [str(g.get("groupId")) for g in _items(permission.get("groups")) if isinstance(g, dict)]
    return f"{'all' if proto == '-1' else proto.upper()} {ports} {', '.join(peers) or 'any peer'}".strip()


def describe_change(event: CloudTrailEvent) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    """A one-line summary of the change, and what was true before and after it, where the event tells."""
    d = event.detail
    name = d.eventName
    params: dict[str, Any] = d.requestParameters or {}
    wrapped = params.get(f"{name}Request")
    inner: dict[str, Any] = wrapped if isinstance(wrapped, dict) else params
    if name == "ModifyVpcEndpoint":
        endpoint = inner.get("VpcEndpointId", "?")
        if "PrivateDnsEnabled" in inner:
            enabled = bool(inner["PrivateDnsEnabled"])
            return (
                f"private DNS turned {'on' if enabled else 'off'} on {endpoint}",
                {"private_dns_enabled": not enabled},
                {"private_dns_enabled": enabled},
            )
        return f"endpoint {endpoint} modified", None, _trim(inner)
    if name == "DeleteVpcEndpoints":
        ids = [
            str(i.get("content") if isinstance(i, dict) else i) for i in _items(inner.get("VpcEndpointId"))
        ]
        return f"endpoint(s) {', '.join(ids)} deleted", {"exists": True}, {"exists": False}
    if name in ("RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress"):
        direction = "ingress" if name.endswith("Ingress") else "egress"
        rules: list[str] = [_rule_text(p) for p in _items(params.get("ipPermissions")) if isinstance(p, dict)]
        ids = [str(r) for r in _items(params.get("securityGroupRuleIds"))]
        what = "; ".join(rules) or ", ".join(ids) or "a rule"
        group = params.get("groupId", "?")
        return (
            f"{direction} rule revoked on {group}: {what}",
            {f"{direction}_rules": rules or ids},
            {f"{direction}_rules": []},
        )
    if name == "ModifyVpcAttribute":
        for attribute in ("enableDnsSupport", "enableDnsHostnames"):
            if isinstance(params.get(attribute), dict):
                value = bool(params[attribute].get("value"))
                return (
                    f"{attribute} turned {'on' if value else 'off'} on {params.get('vpcId', '?')}",
                    {attribute: not value},
                    {attribute: value},
                )
        return f"VPC {params.get('vpcId', '?')} attribute modified", None, _trim(params)
    ids = event.resource_ids()
    verb = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    return f"{verb}: {', '.join(ids) or 'no resource id'}", None, _trim(params) or None


def _trim(value: dict[str, Any], limit: int = 2000) -> dict[str, Any]:
    text = json.dumps(value, sort_keys=True, default=str)
    return value if len(text) <= limit else {"truncated": text[:limit]}
