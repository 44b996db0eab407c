"""Route 53 Resolver calls moto (5.2.5) lacks or answers differently from AWS, that drift repair depends on.

- UpdateResolverRule is missing (moto answers "not implemented"). Patched as AWS documents it: the request
  is {ResolverRuleId, Config: {Name?, TargetIps?, ResolverEndpointId?}}; each Config field given replaces
  the rule's value; the response is {"ResolverRule": <the rule>}. Unknown rule: ResourceNotFoundException;
  an unknown endpoint: ResourceNotFoundException; targets on a SYSTEM rule: InvalidRequestException.
- Resolver endpoints have no protocols (Do53, DoH, DoH-FIPS) nor endpoint type (IPV4, IPV6, DUALSTACK) in
  moto, and its UpdateResolverEndpoint takes the name only. Patched as AWS documents them: CreateResolverEndpoint
  takes Protocols (none means Do53) and ResolverEndpointType (IPV4 by default); both are answered by every
  call that describes an endpoint; UpdateResolverEndpoint takes Name, Protocols and ResolverEndpointType with
  AWS's rules: DoH-FIPS on inbound endpoints only, the documented combinations only, an inbound endpoint
  never straight from only Do53 to only DoH(-FIPS), the type only between IPV4 and DUALSTACK.
- A CreatorRequestId is an idempotency token. moto forgets it when the endpoint or rule that carried it is
  deleted, so a create with the same token makes a new resource. AWS does not document that a deletion
  frees the token; the local stack takes the stricter view: the token stays spent, and a create that
  reuses it answers ResourceExistsException while no live resource carries it. The reconcile must then
  create the next incarnation (a new token), never adopt the deleted resource.
- A rule's DomainName: moto appends a dot to whatever was asked, so "." reads back ".." (and a `DomainName=.`
  filter finds nothing) and "example.com." reads "example.com..". Patched: AWS's spelling, one trailing dot,
  "." for the root.
- TargetIps without a Port: moto answers HTTP 500 (KeyError) where AWS takes port 53. Patched: 53.
- The quota of endpoints per account and region: moto's is fixed (4, and it refuses only the sixth). While a
  ResolverLifecycle is active it is `LocalAwsSettings.resolver_endpoints_per_region`, counted as AWS counts
  it: every endpoint of the region until it is gone (a DELETING one too); past it, CreateResolverEndpoint
  answers LimitExceededException ("Account '<id>' has exceeded 'max-endpoints'") and creates nothing.

While a ResolverLifecycle is active (a LocalAws started), as AWS answers and moto does not:
- Every account and region has the auto-defined "Internet Resolver" rule (Id rslvr-autodefined-rr-internet-
  resolver, RuleType RECURSIVE, DomainName ".", OwnerId "Route 53 Resolver", an ARN without an account, no
  CreatorRequestId): ListResolverRules and GetResolverRule answer it; deleting it is refused.
- Resolver endpoints are CREATING, then OPERATIONAL after `resolver_endpoint_operational_after`; a deleted
  endpoint stays DELETING for `resolver_endpoint_deleted_after`, then is gone. Rule associations are CREATING,
  then COMPLETE after `rule_association_complete_after`; a disassociated one stays DELETING for
  `rule_association_deleted_after`. A second delete of what is DELETING answers it as it is. (The endpoint's
  network interfaces go at the delete call, as moto does.)

Installed once per process from aws/server.install_patches() (idempotent).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dbx_privatelink_local.aws.settings import LocalAwsSettings
from dbx_privatelink_local.timescale import TimeScale, Transitions

_LOCK = threading.Lock()
_QUOTA_LOCK = threading.Lock()
# moto's own endpoints-per-region check, lifted while a lifecycle counts the quota its way (_create_endpoint_in_steps).
_MOTO_LIMIT = 4
_NO_MOTO_LIMIT = 1_000_000
_INSTALLED = False
_SPENT = "_dbxpl_spent_creator_request_ids"


def _spent(backend: Any) -> set[str]:
    found: set[str] | None = getattr(backend, _SPENT, None)
    if found is None:
        found = set()
        setattr(backend, _SPENT, found)
    return found


def update_resolver_rule(backend: Any, resolver_rule_id: str, config: dict[str, Any]) -> Any:
    """The backend side of UpdateResolverRule."""
    from moto.route53resolver.exceptions import (
        InvalidParameterException,
        InvalidRequestException,
        ResourceNotFoundException,
    )

    rule = backend.resolver_rules.get(resolver_rule_id)
    if resolver_rule_id == INTERNET_RESOLVER_RULE_ID:
        raise InvalidRequestException(f"Cannot update the auto-defined rule {INTERNET_RESOLVER_RULE_ID}")
    if rule is None:
        raise ResourceNotFoundException(f"Resolver rule with ID '{resolver_rule_id}' does not exist")
    targets = config.get("TargetIps")
    endpoint_id = config.get("ResolverEndpointId")
    if rule.rule_type == "SYSTEM" and (targets or endpoint_id):
        raise InvalidRequestException(
            "Cannot specify resolver endpoint ID and target IP for SYSTEM type rule"
        )
    if endpoint_id and endpoint_id not in backend.resolver_endpoints:
        raise ResourceNotFoundException(f"Resolver endpoint with ID '{endpoint_id}' does not exist.")
    if targets is not None:
        if not 1 <= len(targets) <= 6:
            raise InvalidParameterException("TargetIps must hold 1 to 6 addresses")
        rule.target_ips = [{"Ip": t["Ip"], "Port": int(t.get("Port", 53) or 53)} for t in targets]
    if endpoint_id:
        rule.resolver_endpoint_id = endpoint_id
    if config.get("Name") is not None:
        rule.name = config["Name"]
    rule.modification_time = datetime.now(UTC).isoformat()
    return rule


DEFAULT_PROTOCOLS = ("Do53",)
_PROTOCOLS = "_dbxpl_protocols"
_TYPE = "_dbxpl_endpoint_type"
# The combinations AWS accepts, per direction (UpdateResolverEndpoint, "Protocols").
_ALLOWED_PROTOCOLS = {
    "INBOUND": [{"Do53", "DoH"}, {"Do53", "DoH-FIPS"}, {"Do53"}, {"DoH"}, {"DoH-FIPS"}],
    "OUTBOUND": [{"Do53", "DoH"}, {"Do53"}, {"DoH"}],
}


def endpoint_protocols(endpoint: Any) -> list[str]:
    return list(getattr(endpoint, _PROTOCOLS, DEFAULT_PROTOCOLS))


def _checked_protocols(direction: str, protocols: list[str] | None) -> list[str]:
    from moto.route53resolver.exceptions import InvalidParameterException

    wanted = set(protocols or DEFAULT_PROTOCOLS)
    unknown = wanted - {"Do53", "DoH", "DoH-FIPS"}
    if unknown:
        raise InvalidParameterException(f"Protocols: unknown protocol(s) {sorted(unknown)}")
    if wanted not in _ALLOWED_PROTOCOLS.get(direction, []):
        raise InvalidParameterException(
            f"Protocols {sorted(wanted)} cannot be applied to an {direction} endpoint"
            + (" (DoH-FIPS is for inbound endpoints only)" if "DoH-FIPS" in wanted else "")
        )
    return sorted(wanted)


def update_resolver_endpoint(
    backend: Any,
    endpoint_id: str,
    *,
    name: str | None = None,
    protocols: list[str] | None = None,
    endpoint_type: str | None = None,
) -> Any:
    """The backend side of UpdateResolverEndpoint (name, protocols, endpoint type)."""
    from moto.route53resolver.exceptions import InvalidRequestException, ResourceNotFoundException

    endpoint = backend.resolver_endpoints.get(endpoint_id)
    if endpoint is None:
        raise ResourceNotFoundException(f"Resolver endpoint with ID '{endpoint_id}' does not exist")
    if protocols:
        new = _checked_protocols(endpoint.direction, protocols)
        old = set(endpoint_protocols(endpoint))
        if endpoint.direction == "INBOUND" and old == {"Do53"} and "Do53" not in new:
            raise InvalidRequestException(
                "[RSLVR-01311] An inbound endpoint cannot change from only Do53 to only DoH or DoH-FIPS: "
                "enable both first, then remove Do53"
            )
        setattr(endpoint, _PROTOCOLS, tuple(new))
    if endpoint_type:
        current = getattr(endpoint, _TYPE, "IPV4")
        if endpoint_type not in ("IPV4", "DUALSTACK") or current == "IPV6":
            raise InvalidRequestException(
                f"Cannot update the endpoint type from {current} to {endpoint_type}: only between IPV4 and "
                "DUALSTACK"
            )
        setattr(endpoint, _TYPE, endpoint_type)
    if name is not None:
        endpoint.name = name
    endpoint.modification_time = datetime.now(UTC).isoformat()
    return endpoint


def _update_resolver_endpoint_response(self: Any) -> str:
    endpoint = update_resolver_endpoint(
        self.route53resolver_backend,
        self._get_param("ResolverEndpointId"),
        name=self._get_param("Name"),
        protocols=self._get_param("Protocols"),
        endpoint_type=self._get_param("ResolverEndpointType"),
    )
    return json.dumps({"ResolverEndpoint": endpoint.description()})


def _create_with_protocols(original: Callable[..., Any]) -> Callable[..., Any]:
    """CreateResolverEndpoint keeping Protocols and ResolverEndpointType (checked before anything is made)."""

    @functools.wraps(original)
    def create(self: Any) -> str:
        from moto.route53resolver.exceptions import InvalidParameterException

        protocols = _checked_protocols(self._get_param("Direction"), self._get_param("Protocols"))
        endpoint_type = self._get_param("ResolverEndpointType") or "IPV4"
        if endpoint_type not in ("IPV4", "IPV6", "DUALSTACK"):
            raise InvalidParameterException(f"ResolverEndpointType: unknown type {endpoint_type}")
        answer = json.loads(original(self))
        endpoint = self.route53resolver_backend.resolver_endpoints[answer["ResolverEndpoint"]["Id"]]
        setattr(endpoint, _PROTOCOLS, tuple(protocols))
        setattr(endpoint, _TYPE, endpoint_type)
        return json.dumps({"ResolverEndpoint": endpoint.description()})

    return create


def _describe_with_protocols(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def description(self: Any) -> dict[str, Any]:
        answer = dict(original(self))
        answer["Protocols"] = endpoint_protocols(self)
        answer["ResolverEndpointType"] = getattr(self, _TYPE, "IPV4")
        return answer

    return description


def _update_resolver_rule_response(self: Any) -> str:
    rule = update_resolver_rule(
        self.route53resolver_backend, self._get_param("ResolverRuleId"), self._get_param("Config") or {}
    )
    return json.dumps({"ResolverRule": rule.description()})


def _remember_on_delete(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def delete(self: Any, *args: Any, **kwargs: Any) -> Any:
        resource = original(self, *args, **kwargs)
        _spent(self).add(resource.creator_request_id)
        return resource

    return delete


def _refuse_spent(original: Callable[..., Any], kind: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        from moto.route53resolver.exceptions import ResourceExistsException

        token = kwargs.get("creator_request_id")
        if token in _spent(self):
            raise ResourceExistsException(f"Resolver {kind} with creator request ID '{token}' already exists")
        return original(self, *args, **kwargs)

    return create


def install() -> None:
    """Install the Route 53 Resolver patches (idempotent, once per process)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        from moto.route53resolver.models import ResolverEndpoint, ResolverRule, Route53ResolverBackend
        from moto.route53resolver.responses import Route53ResolverResponse

        Route53ResolverResponse.update_resolver_rule = _update_resolver_rule_response  # type: ignore[attr-defined]
        Route53ResolverResponse.update_resolver_endpoint = _update_resolver_endpoint_response  # type: ignore[method-assign]
        Route53ResolverResponse.create_resolver_endpoint = _create_with_protocols(  # type: ignore[method-assign]
            Route53ResolverResponse.create_resolver_endpoint
        )
        ResolverEndpoint.description = _describe_with_protocols(ResolverEndpoint.description)  # type: ignore[method-assign]
        for kind, create, delete in (
            ("endpoint", "create_resolver_endpoint", "delete_resolver_endpoint"),
            ("rule", "create_resolver_rule", "delete_resolver_rule"),
        ):
            setattr(
                Route53ResolverBackend, create, _refuse_spent(getattr(Route53ResolverBackend, create), kind)
            )
            setattr(
                Route53ResolverBackend, delete, _remember_on_delete(getattr(Route53ResolverBackend, delete))
            )
        ResolverRule.__init__ = _root_spelled_once(ResolverRule.__init__)  # type: ignore[method-assign]
        Route53ResolverBackend.create_resolver_rule = _port_defaults_to_53(  # type: ignore[method-assign]
            Route53ResolverBackend.create_resolver_rule
        )
        _install_lifecycle(Route53ResolverBackend)
        _INSTALLED = True


def _root_spelled_once(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.domain_name = self.domain_name.rstrip(".") + "." if self.domain_name.strip(".") else "."

    return init


def _port_defaults_to_53(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        targets = kwargs.get("target_ips")
        if targets:
            kwargs["target_ips"] = [dict(t, Port=t.get("Port") or 53) for t in targets]
        return original(self, *args, **kwargs)

    return create


# -- the auto-defined rule and the lifecycle (active with a LocalAws) ----------------------------------------

INTERNET_RESOLVER_RULE_ID = "rslvr-autodefined-rr-internet-resolver"
INTERNET_RESOLVER_OWNER = "Route 53 Resolver"

_ACTIVE: ResolverLifecycle | None = None


def _internet_resolver_rule(backend: Any) -> Any:
    """The auto-defined rule as ListResolverRules shows it on AWS (no CreatorRequestId, targets or times)."""
    from moto.route53resolver.models import ResolverRule

    class AutodefinedRule(ResolverRule):
        @property
        def arn(self) -> str:
            return f"arn:aws:route53resolver:{self.region}::autodefined-rule/{self.id}"

        def description(self) -> dict[str, Any]:
            return {
                "Id": self.id,
                "CreatorRequestId": "",
                "Arn": self.arn,
                "DomainName": ".",
                "Status": "COMPLETE",
                "RuleType": "RECURSIVE",
                "Name": "Internet Resolver",
                "OwnerId": INTERNET_RESOLVER_OWNER,
                "ShareStatus": "NOT_SHARED",
            }

    return AutodefinedRule(
        account_id=INTERNET_RESOLVER_OWNER,
        region=backend.region_name,
        rule_id=INTERNET_RESOLVER_RULE_ID,
        creator_request_id="",
        rule_type="RECURSIVE",
        domain_name="",
        target_ips=None,
        resolver_endpoint_id=None,
        name="Internet Resolver",
    )


def _with_internet_resolver(backend: Any) -> None:
    if _ACTIVE is not None and INTERNET_RESOLVER_RULE_ID not in backend.resolver_rules:
        backend.resolver_rules[INTERNET_RESOLVER_RULE_ID] = _internet_resolver_rule(backend)


class ResolverLifecycle:
    """Moves Resolver endpoints and rule associations through AWS's transitional statuses on timers."""

    def __init__(self, settings: LocalAwsSettings, time_scale: TimeScale) -> None:
        self.settings = settings
        self._time = time_scale
        self._transitions = Transitions(time_scale, threading.Lock())
        self.state_listeners = self._transitions.listeners

    def activate(self) -> None:
        """Make this lifecycle the one the moto patches consult; its quota of endpoints replaces moto's."""
        global _ACTIVE
        from moto.route53resolver.models import ResolverEndpoint

        install()
        _ACTIVE = self
        ResolverEndpoint.MAX_ENDPOINTS_PER_REGION = _NO_MOTO_LIMIT

    def deactivate(self) -> None:
        """Stop consulting this lifecycle and cancel its pending transitions (moto's quota comes back)."""
        global _ACTIVE
        from moto.route53resolver.models import ResolverEndpoint

        if _ACTIVE is self:
            _ACTIVE = None
            ResolverEndpoint.MAX_ENDPOINTS_PER_REGION = _MOTO_LIMIT
        self.reset()

    def reset(self) -> None:
        """Cancel every pending transition (after moto's backends were reset)."""
        self._transitions.cancel()

    def created(self, resource: Any, final: str, delay: float, message: str) -> None:
        """CREATING (with `message`) now, `final` after `delay` emulated seconds (at once when that is no wall
        time)."""
        if self._time.scaled(delay) <= 0:
            return
        done_message = resource.status_message
        resource.status, resource.status_message = "CREATING", message

        def finish() -> bool:
            if resource.status != "CREATING":
                return False
            resource.status, resource.status_message = final, done_message
            return True

        self._transitions.later(delay, finish)

    def deleting(self, table: dict[str, Any], resource: Any, delay: float) -> None:
        """Keep a resource moto already removed from `table` as DELETING for `delay`, then let it go."""
        if self._time.scaled(delay) <= 0:
            return
        key = resource.id
        resource.status = "DELETING"
        table[key] = resource

        def finish() -> bool:
            if table.get(key) is not resource:
                return False
            del table[key]
            return True

        self._transitions.later(delay, finish)


def _create_endpoint_in_steps(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        lifecycle = _ACTIVE
        if lifecycle is None:
            return original(self, *args, **kwargs)
        from moto.route53resolver.exceptions import LimitExceededException

        region = kwargs.get("region", args[0] if args else None)
        with _QUOTA_LOCK:  # one count per create: two at once cannot both take the last place
            present = sum(1 for e in self.resolver_endpoints.values() if e.region == region)
            if present >= lifecycle.settings.resolver_endpoints_per_region:
                raise LimitExceededException(f"Account '{self.account_id}' has exceeded 'max-endpoints'")
            endpoint = original(self, *args, **kwargs)
            lifecycle.created(
                endpoint,
                "OPERATIONAL",
                lifecycle.settings.resolver_endpoint_operational_after,
                endpoint.status_message.replace("Successfully created", "Creating"),
            )
        return endpoint

    return create


def _delete_endpoint_in_steps(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def delete(self: Any, resolver_endpoint_id: str) -> Any:
        lifecycle = _ACTIVE
        current = self.resolver_endpoints.get(resolver_endpoint_id)
        if lifecycle is not None and current is not None and current.status == "DELETING":
            return current
        endpoint = original(self, resolver_endpoint_id)
        if lifecycle is not None:
            lifecycle.deleting(
                self.resolver_endpoints, endpoint, lifecycle.settings.resolver_endpoint_deleted_after
            )
        return endpoint

    return delete


def _associate_in_steps(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def associate(self: Any, *args: Any, **kwargs: Any) -> Any:
        association = original(self, *args, **kwargs)
        lifecycle = _ACTIVE
        if lifecycle is not None:
            lifecycle.created(
                association,
                "COMPLETE",
                lifecycle.settings.rule_association_complete_after,
                "Creating Association",
            )
        return association

    return associate


def _disassociate_in_steps(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def disassociate(self: Any, resolver_rule_id: str, vpc_id: str) -> Any:
        lifecycle = _ACTIVE
        if lifecycle is not None:
            for association in list(self.resolver_rule_associations.values()):
                if (
                    association.resolver_rule_id == resolver_rule_id
                    and association.vpc_id == vpc_id
                    and association.status == "DELETING"
                ):
                    return association
        association = original(self, resolver_rule_id, vpc_id)
        if lifecycle is not None:
            lifecycle.deleting(
                self.resolver_rule_associations,
                association,
                lifecycle.settings.rule_association_deleted_after,
            )
        return association

    return disassociate


def _listing_internet_resolver(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def read(self: Any, *args: Any, **kwargs: Any) -> Any:
        _with_internet_resolver(self)
        return original(self, *args, **kwargs)

    return read


def _refuse_autodefined(original: Callable[..., Any], action: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def change(self: Any, resolver_rule_id: str, *args: Any, **kwargs: Any) -> Any:
        from moto.route53resolver.exceptions import InvalidRequestException

        if resolver_rule_id == INTERNET_RESOLVER_RULE_ID:
            raise InvalidRequestException(
                f"Cannot {action} the auto-defined rule {INTERNET_RESOLVER_RULE_ID}"
            )
        return original(self, resolver_rule_id, *args, **kwargs)

    return change


def _install_lifecycle(backend_class: Any) -> None:
    backend_class.create_resolver_endpoint = _create_endpoint_in_steps(backend_class.create_resolver_endpoint)
    backend_class.delete_resolver_endpoint = _delete_endpoint_in_steps(backend_class.delete_resolver_endpoint)
    backend_class.associate_resolver_rule = _associate_in_steps(backend_class.associate_resolver_rule)
    backend_class.disassociate_resolver_rule = _disassociate_in_steps(
        backend_class.disassociate_resolver_rule
    )
    for method in ("list_resolver_rules", "get_resolver_rule", "associate_resolver_rule"):
        setattr(backend_class, method, _listing_internet_resolver(getattr(backend_class, method)))
    backend_class.delete_resolver_rule = _refuse_autodefined(backend_class.delete_resolver_rule, "delete")
