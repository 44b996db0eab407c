"""Route 53 Resolver behaviour moto (5.2.5) gets wrong that DNS state reads depend on.

- ListResolverEndpoints, ListResolverRules and ListResolverRuleAssociations sort by Name. Name is optional
  on AWS and moto keeps None, so listing an unnamed resource next to another one raises TypeError (HTTP
  500). Patched: an unnamed endpoint, rule or association gets the name "" before the listing sorts.

Installed once per process by LocalDns.start(); the local stack may call `install()` from its own patch
installer instead (it is idempotent).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_LOCK = threading.Lock()
_INSTALLED = False

# backend method -> the backend attribute holding what it lists
_LISTINGS = {
    "list_resolver_endpoints": "resolver_endpoints",
    "list_resolver_rules": "resolver_rules",
    "list_resolver_rule_associations": "resolver_rule_associations",
}


def _named_first(original: Callable[..., Any], attribute: str) -> Callable[..., Any]:
    def listing(self: Any, *args: Any, **kwargs: Any) -> Any:
        for resource in list(getattr(self, attribute).values()):
            if resource.name is None:
                resource.name = ""
        return original(self, *args, **kwargs)

    listing.__name__ = original.__name__
    listing.__wrapped__ = original  # type: ignore[attr-defined]
    return listing


def install() -> None:
    """Install the Route 53 Resolver patches (idempotent, once per process)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        from moto.route53resolver.models import Route53ResolverBackend

        for method, attribute in _LISTINGS.items():
            setattr(
                Route53ResolverBackend,
                method,
                _named_first(getattr(Route53ResolverBackend, method), attribute),
            )
        _INSTALLED = True
