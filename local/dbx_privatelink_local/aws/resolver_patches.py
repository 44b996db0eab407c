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

Installed once per process from aws/server.install_patches() (idempotent).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

_LOCK = threading.Lock()
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
        from moto.route53resolver.models import ResolverEndpoint, Route53ResolverBackend
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
        _INSTALLED = True
