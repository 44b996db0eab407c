"""CloudTrail for the emulated AWS: every successful mutating call to EC2, Route 53 Resolver and Route 53
becomes an "AWS API Call via CloudTrail" event on the caller's default event bus, after a delay.

moto records no CloudTrail events. The shapes follow real CloudTrail records:

- EC2's older Query APIs log their parameters under the lower-camel wire names with lists as
  {"items": [...]}: RevokeSecurityGroupIngress ->
  {"groupId": "sg-..", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443,
  "ipRanges": {"items": [{"cidrIp": "10.0.0.0/16"}]}}]}}.
- EC2's newer APIs (VPC endpoints, transit gateways, prefix lists) log {"<Action>Request": {...}} with the
  Query wire names and every list item tagged with its position: DeleteVpcEndpoints ->
  {"DeleteVpcEndpointsRequest": {"VpcEndpointId": {"tag": 1, "content": "vpce-.."}}}, ModifyVpcEndpoint
  -> {"ModifyVpcEndpointRequest": {"VpcEndpointId": "vpce-..", "PrivateDnsEnabled": false}}.
- JSON and REST APIs keep their request body with the first letter of each key lowered
  (DisassociateResolverRule -> {"resolverRuleId": "rslvr-rr-..", "vPCId": "vpc-.."}).

Route 53 is global: its events go to us-east-1. Events are best effort and late on AWS (about five
minutes on average); here the delay is `cloudtrail_delay` emulated seconds, and tests pause, flush or
inspect the queue instead of waiting.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dbx_privatelink_local.aws.calls import AwsCall, caller_account
from dbx_privatelink_local.aws.delay import DelayQueue
from dbx_privatelink_local.aws.settings import LocalAwsSettings
from dbx_privatelink_local.timescale import TimeScale

log = logging.getLogger(__name__)

DETAIL_TYPE = "AWS API Call via CloudTrail"

# service model name -> (EventBridge source, CloudTrail eventSource)
TRAIL_SERVICES: dict[str, tuple[str, str]] = {
    "ec2": ("aws.ec2", "ec2.amazonaws.com"),
    "route53resolver": ("aws.route53resolver", "route53resolver.amazonaws.com"),
    "route53": ("aws.route53", "route53.amazonaws.com"),
}
# Global services record their events in us-east-1.
_GLOBAL_REGION = {"route53": "us-east-1"}

_MUTATING_PREFIXES = (
    "Accept",
    "Add",
    "Allocate",
    "Apply",
    "Assign",
    "Associate",
    "Attach",
    "Authorize",
    "Cancel",
    "Change",
    "Copy",
    "Create",
    "Delete",
    "Deregister",
    "Detach",
    "Disable",
    "Disassociate",
    "Enable",
    "Import",
    "Modify",
    "Move",
    "Put",
    "Reboot",
    "Register",
    "Reject",
    "Release",
    "Remove",
    "Replace",
    "Reset",
    "Restore",
    "Revoke",
    "Run",
    "Start",
    "Stop",
    "Tag",
    "Terminate",
    "Unassign",
    "Untag",
    "Update",
)
_READ_ONLY_PREFIXES = ("Describe", "List", "Get", "Search", "Test", "Lookup", "Export")

# EC2 actions CloudTrail logs in the newer {"<Action>Request": {...}} form.
_EC2_REQUEST_WRAPPED = ("VpcEndpoint", "TransitGateway", "ManagedPrefixList")


def is_mutating(action: str | None) -> bool:
    """True for Create*, Delete*, Modify*, Associate* ... ; never for Describe*, List*, Get*."""
    if not action or action.startswith(_READ_ONLY_PREFIXES):
        return False
    return action.startswith(_MUTATING_PREFIXES)


def _lower_first(key: str) -> str:
    return key[:1].lower() + key[1:]


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_lower_first(str(k)): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _ec2_wrapped_parameters(call: AwsCall) -> dict[str, Any]:
    """The Query wire parameters nested by their dotted names, list positions as {"tag": n}."""
    root: dict[str, Any] = {}
    for key, value in call.form.items(multi=True):
        if key in ("Action", "Version"):
            continue
        parts = key.split(".")
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt = parts[i + 1] if not last else None
            if part.isdigit():
                continue
            if nxt is not None and nxt.isdigit():
                items = node.setdefault(part, [])
                tag = int(nxt)
                item = next((it for it in items if it.get("tag") == tag), None)
                if item is None:
                    item = {"tag": tag}
                    items.append(item)
                if i + 1 == len(parts) - 1:
                    item["content"] = _typed(value)
                    break
                node = item
            elif last:
                node[part] = _typed(value)
            else:
                node = node.setdefault(part, {})
    return {f"{call.action}Request": _collapse_single_items(root)}


def _collapse_single_items(value: Any) -> Any:
    # CloudTrail writes a one-element list as the element itself.
    if isinstance(value, dict):
        return {k: _collapse_single_items(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_collapse_single_items(v) for v in value]
        return items[0] if len(items) == 1 else items
    return value


def _typed(value: str) -> Any:
    if value in ("true", "false"):
        return value == "true"
    return value


def _ec2_classic_parameters(call: AwsCall) -> dict[str, Any]:
    """Parsed parameters renamed to their lower-camel wire names, lists as {"items": [...]}."""
    operation = call.operation_model
    if operation is None or operation.input_shape is None:
        return {}

    def convert(shape: Any, value: Any) -> Any:
        if shape.type_name == "structure" and isinstance(value, dict):
            out = {}
            for name, member in shape.members.items():
                if name in value and name != "DryRun":
                    out[_lower_first(member.serialization.get("name", name))] = convert(member, value[name])
            return out
        if shape.type_name == "list" and isinstance(value, list):
            return {"items": [convert(shape.member, v) for v in value]}
        return _lower_keys(value)

    return dict(convert(operation.input_shape, call.parameters))


def request_parameters(call: AwsCall) -> dict[str, Any] | None:
    """requestParameters as CloudTrail writes them for this call."""
    if call.service == "ec2":
        if call.action and any(part in call.action for part in _EC2_REQUEST_WRAPPED):
            return _ec2_wrapped_parameters(call)
        return _ec2_classic_parameters(call)
    params = _lower_keys(call.parameters)
    return params or None


def _xml_to_trail(value: Any, classic: bool = True) -> Any:
    """An XML response as CloudTrail logs it: <item> lists as {"items": [...]}, booleans typed, and (in
    the classic EC2 form) "return" spelled "_return"."""
    if isinstance(value, dict):
        children = {k: v for k, v in value.items() if not k.startswith("@")}
        if set(children) == {"item"}:
            items = children["item"]
            listed = items if isinstance(items, list) else [items]
            return {"items": [_xml_to_trail(v, classic) for v in listed]}
        return {
            ("_return" if classic and k == "return" else k): _xml_to_trail(v, classic)
            for k, v in children.items()
        }
    if isinstance(value, list):
        return [_xml_to_trail(v, classic) for v in value]
    if value in ("true", "false"):
        return value == "true"
    return value


def response_elements(call: AwsCall, body: bytes) -> dict[str, Any] | None:
    """responseElements as CloudTrail writes them (EC2 XML, JSON bodies with lowered keys)."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        if text.startswith("<"):
            import xmltodict

            parsed = xmltodict.parse(text)
            root_name, root = next(iter(parsed.items()))
            root = root if isinstance(root, dict) else {}
            if call.service == "ec2" and call.action and any(p in call.action for p in _EC2_REQUEST_WRAPPED):
                inner = _xml_to_trail(root, classic=False)
                if "@xmlns" in root:
                    inner = {"xmlns": root["@xmlns"], **inner}
                return {root_name: inner}
            converted = _xml_to_trail(root)
            return dict(_lower_keys(converted) if call.service != "ec2" else converted)
        return dict(_lower_keys(json.loads(text)))
    except Exception:
        log.debug("unparsable response for %s", call.action, exc_info=True)
        return None


def _request_id(call: AwsCall, headers: list[tuple[str, str]], elements: dict[str, Any] | None) -> str:
    for name, value in headers:
        if name.lower() in ("x-amzn-requestid", "x-amz-request-id"):
            return value
    if elements:
        inner = next(iter(elements.values())) if len(elements) == 1 else elements
        if isinstance(inner, dict) and isinstance(inner.get("requestId"), str):
            return str(inner["requestId"])
        if isinstance(elements.get("requestId"), str):
            return str(elements["requestId"])
    return str(uuid.uuid4())


def _principal_suffix(arn: str) -> str:
    return hashlib.sha1(arn.encode()).hexdigest()[:17].upper()


class IdentityResolver:
    """Who made a call, from its access key, as CloudTrail's userIdentity."""

    def __init__(self, default_identity_arn: str) -> None:
        self.default_identity_arn = default_identity_arn

    def resolve(self, access_key_id: str, account_id: str) -> dict[str, Any]:
        """userIdentity for an assumed-role session key, an IAM user key, or the default identity."""
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends

        for acct in [account_id] + [a for a in list(sts_backends.keys()) if a != account_id]:
            for partition_backend in list(sts_backends[acct].values()):
                role = partition_backend.get_assumed_role_from_access_key(access_key_id)
                if role is not None:
                    return self._assumed_role(
                        role.arn, role.role_arn, role.user_id, role.account_id, access_key_id
                    )
        for acct in [account_id] + [a for a in list(iam_backends.keys()) if a != account_id]:
            for iam_backend in list(iam_backends[acct].values()):
                user = iam_backend.get_user_from_access_key_id(access_key_id)
                if user is not None:
                    return {
                        "type": "IAMUser",
                        "principalId": user.id,
                        "arn": user.arn,
                        "accountId": user.account_id,
                        "accessKeyId": access_key_id,
                        "userName": user.name,
                    }
        return self._default(access_key_id)

    def _assumed_role(
        self, session_arn: str, role_arn: str, principal: str, account: str, key: str
    ) -> dict[str, Any]:
        role_id = principal.split(":", 1)[0]
        return {
            "type": "AssumedRole",
            "principalId": principal,
            "arn": session_arn,
            "accountId": account,
            "accessKeyId": key,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": role_arn,
                    "accountId": account,
                    "userName": role_arn.rsplit("/", 1)[-1],
                },
                "webIdFederationData": {},
                "attributes": {
                    "creationDate": _iso(datetime.now(UTC)),
                    "mfaAuthenticated": "false",
                },
            },
        }

    def _default(self, access_key_id: str) -> dict[str, Any]:
        arn = self.default_identity_arn
        account = arn.split(":")[4]
        resource = arn.split(":", 5)[5]
        if resource.startswith("assumed-role/"):
            _, role_name, session = resource.split("/", 2)
            role_arn = f"arn:aws:iam::{account}:role/{role_name}"
            principal = f"AROA{_principal_suffix(role_arn)}:{session}"
            return self._assumed_role(arn, role_arn, principal, account, access_key_id)
        return {
            "type": "IAMUser",
            "principalId": f"AIDA{_principal_suffix(arn)}",
            "arn": arn,
            "accountId": account,
            "accessKeyId": access_key_id,
            "userName": resource.rsplit("/", 1)[-1],
        }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


Publisher = Callable[[str, str, dict[str, Any]], str | None]


def publish_to_default_bus(account_id: str, region: str, event: dict[str, Any]) -> str | None:
    """Put an event on the default bus of moto's EventBridge (rules and targets take it from there)."""
    from moto.events.models import events_backends

    entries = events_backends[account_id][region].put_events(
        [
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
                "Resources": event.get("resources", []),
                # moto keeps event time as a Unix timestamp.
                "Time": datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")
                .replace(tzinfo=UTC)
                .timestamp(),
            }
        ]
    )
    return entries[0].get("EventId") if entries else None


class CloudTrailEmitter:
    """Builds the CloudTrail event of each mutating call and publishes it after the configured delay."""

    def __init__(
        self,
        settings: LocalAwsSettings,
        time_scale: TimeScale,
        publish: Publisher = publish_to_default_bus,
    ) -> None:
        self.delay = settings.cloudtrail_delay
        self.identities = IdentityResolver(settings.default_identity_arn)
        self._publish = publish
        self._queue = DelayQueue("cloudtrail", time_scale)
        self._lock = threading.Condition()
        self._emitted: list[dict[str, Any]] = []
        self._recorded = 0
        # eventID -> the X-Amzn-Trace-Id header of the call (not part of a CloudTrail record: for tests that
        # tell one execution's calls from those of executions running beside it).
        self._trace_headers: dict[str, str] = {}

    def start(self) -> None:
        self._queue.start()

    def stop(self) -> None:
        self._queue.stop()

    def record(
        self, call: AwsCall, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> dict[str, Any] | None:
        """Queue the CloudTrail event of a finished call; None when CloudTrail would not record it here
        (a failed, read-only, or untracked call)."""
        if call.service not in TRAIL_SERVICES or not is_mutating(call.action) or not 200 <= status < 300:
            return None
        account = caller_account(call)
        region = _GLOBAL_REGION.get(call.service, call.region)
        source, event_source = TRAIL_SERVICES[call.service]
        elements = response_elements(call, body)
        now = _iso(datetime.now(UTC))
        detail = {
            "eventVersion": "1.09",
            "userIdentity": self.identities.resolve(call.access_key_id, account),
            "eventTime": now,
            "eventSource": event_source,
            "eventName": call.action,
            "awsRegion": region,
            "sourceIPAddress": call.source_ip,
            "userAgent": call.user_agent,
            "requestParameters": request_parameters(call),
            "responseElements": elements,
            "requestID": _request_id(call, headers, elements),
            "eventID": str(uuid.uuid4()),
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
        }
        event: dict[str, Any] = {
            "version": "0",
            "id": None,
            "detail-type": DETAIL_TYPE,
            "source": source,
            "account": account,
            "time": now,
            "region": region,
            "resources": [],
            "detail": detail,
        }
        with self._lock:
            self._recorded += 1
            self._trace_headers[str(detail["eventID"])] = call.headers.get("X-Amzn-Trace-Id", "")
        self._queue.submit(self.delay, lambda: self._emit(account, region, event), label=str(call.action))
        return event

    def _emit(self, account: str, region: str, event: dict[str, Any]) -> None:
        event["id"] = self._publish(account, region, event) or str(uuid.uuid4())
        with self._lock:
            self._emitted.append(event)
            self._lock.notify_all()

    # -- control and inspection -------------------------------------------------------------------------
    def pause(self) -> None:
        """Hold events back (they stay queued) until resume() or flush()."""
        self._queue.pause()

    def resume(self) -> None:
        """Deliver held events when their delay has passed."""
        self._queue.resume()

    def flush(self) -> int:
        """Deliver every queued event now, delay or not; returns how many."""
        return self._queue.flush()

    def lose_pending(self) -> int:
        """Drop the events still queued, as AWS may (CloudTrail to EventBridge is best effort); returns how
        many were lost. Only the scheduled scan can find those changes then."""
        return self._queue.clear()

    def pending(self) -> list[str]:
        """eventNames of the events still waiting for their delay."""
        return self._queue.pending()

    def trace_header(self, event: dict[str, Any]) -> str:
        """The X-Amzn-Trace-Id header of the call an event records ("" when the call carried none)."""
        with self._lock:
            return self._trace_headers.get(event["detail"]["eventID"], "")

    def events(self, event_name: str | None = None, source: str | None = None) -> list[dict[str, Any]]:
        """Events delivered to EventBridge so far, oldest first, optionally of one eventName/source."""
        with self._lock:
            return [
                e
                for e in self._emitted
                if (event_name is None or e["detail"]["eventName"] == event_name)
                and (source is None or e["source"] == source)
            ]

    def wait_for(self, event_name: str, timeout: float, count: int = 1) -> list[dict[str, Any]]:
        """Wait (bounded) until `count` events named `event_name` were delivered; returns those seen."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [e for e in self._emitted if e["detail"]["eventName"] == event_name]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    return found
                self._lock.wait(min(remaining, 0.05))

    def reset(self) -> None:
        """Drop queued and delivered events."""
        self._queue.clear()
        with self._lock:
            self._emitted.clear()
            self._recorded = 0
