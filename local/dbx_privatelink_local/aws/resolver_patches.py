"""Route 53 Resolver calls moto (5.2.5) lacks or answers differently from AWS, that drift repair depends on.

- UpdateResolverRule is missing (moto answers "not implemented"). Patched as AWS documents it: the request
  is {ResolverRuleId, Config: {Name?, TargetIps?, ResolverEndpointId?}}; each Config field given replaces
  the rule's value; the response is {"ResolverRule": <the rule>}. Unknown rule: ResourceNotFoundException;
  an unknown endpoint: ResourceNotFoundException; targets on a SYSTEM rule: InvalidRequestException.
- A CreatorRequestId is an idempotency token. moto forgets it when the endpoint or rule that carried it is
  deleted, so a create with the same token makes a new resource. AWS does not document that a deletion
  frees the token; the local stack takes the stricter view: the token stays spent, and a create that
  reuses it answers ResourceExistsException while no live resource carries it. The reconcile must then
  create the next incarnation (a new token), never adopt the deleted resource.

Installed once per process from aws/server.install_patches() (idempotent).
"""

from __future__ import annotations

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


def _update_resolver_rule_response(self: Any) -> str:
    rule = update_resolver_rule(
        self.route53resolver_backend, self._get_param("ResolverRuleId"), self._get_param("Config") or {}
    )
    return json.dumps({"ResolverRule": rule.description()})


def _remember_on_delete(original: Callable[..., Any]) -> Callable[..., Any]:
    def delete(self: Any, *args: Any, **kwargs: Any) -> Any:
        resource = original(self, *args, **kwargs)
        _spent(self).add(resource.creator_request_id)
        return resource

    delete.__name__ = original.__name__
    delete.__wrapped__ = original  # type: ignore[attr-defined]
    return delete


def _refuse_spent(original: Callable[..., Any], kind: str) -> Callable[..., Any]:
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        from moto.route53resolver.exceptions import ResourceExistsException

        token = kwargs.get("creator_request_id")
        if token in _spent(self):
            raise ResourceExistsException(f"Resolver {kind} with creator request ID '{token}' already exists")
        return original(self, *args, **kwargs)

    create.__name__ = original.__name__
    create.__wrapped__ = original  # type: ignore[attr-defined]
    return create


def install() -> None:
    """Install the Route 53 Resolver patches (idempotent, once per process)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        from moto.route53resolver.models import Route53ResolverBackend
        from moto.route53resolver.responses import Route53ResolverResponse

        Route53ResolverResponse.update_resolver_rule = _update_resolver_rule_response  # type: ignore[attr-defined]
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
