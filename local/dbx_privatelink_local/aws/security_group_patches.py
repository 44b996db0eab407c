"""The rules-per-security-group quota, counted the way AWS counts it.

Workspaces that share a VPC share security groups, and every workspace, endpoint or forwarder that adds its
CIDRs to a shared group brings it nearer AWS's quota of 60 inbound and 60 outbound rules per group. A fleet
reaches it; a local stack that never refuses would hide that until production. moto (5.2.5) has the quota
but not AWS's way of counting it:

- moto checks each IpPermission of a request on its own, so a request whose permissions together pass the
  quota is half applied before it is refused. AWS refuses the whole request and adds nothing.
- moto does not count prefix-list references. AWS counts each as the list's maximum number of entries
  (MaxEntries), whatever the list holds now.
- moto's limit is fixed at 60; ours is `LocalAwsSettings.rules_per_security_group`.

Patched while a LocalAws is started (`activate`): AuthorizeSecurityGroupIngress and AuthorizeSecurityGroupEgress
weigh the rules the group would have after the whole request, inbound and outbound apart, and past the quota
answer `RulesPerSecurityGroupLimitExceeded` ("The maximum number of rules per security group has been
reached.", HTTP 400) with nothing added. Each CIDR range, IPv6 range and referenced group of a permission
weighs 1; a prefix list weighs its MaxEntries. AWS-managed prefix lists (com.amazonaws.<region>.s3 ...) carry
a weight of their own on AWS that moto does not know: they weigh 1 here. The egress rule CreateSecurityGroup
adds to every VPC group (all traffic to 0.0.0.0/0) is a rule like any other, as on AWS: 59 more fit beside
it. The same count guards the backend calls that do not come through the EC2 API (CloudFormation's
AWS::EC2::SecurityGroupIngress / Egress), one permission at a time.

Without a started LocalAws, moto's own behaviour stays, so plain moto tests in the same process see moto.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.ec2.exceptions import RulesPerSecurityGroupLimitExceededError

from dbx_privatelink_local.aws.settings import LocalAwsSettings

_ACTIVE: LocalAwsSettings | None = None
_INSTALL_LOCK = threading.Lock()
_INSTALLED = False
# One request's count and its rules are added together: two concurrent requests cannot both fit the last slot.
_AUTHORIZE_LOCK = threading.RLock()


def activate(settings: LocalAwsSettings) -> None:
    """Enforce the quota of `settings` until deactivate(settings)."""
    global _ACTIVE
    install()
    _ACTIVE = settings


def deactivate(settings: LocalAwsSettings) -> None:
    """Stop enforcing the quota of `settings` (moto's behaviour comes back)."""
    global _ACTIVE
    if _ACTIVE is settings:
        _ACTIVE = None


def prefix_list_weight(backend: Any, prefix_list_id: str) -> int:
    """The rules one reference to a prefix list counts as: its MaxEntries, 1 when moto knows none."""
    prefix_list = backend.managed_prefix_lists.get(prefix_list_id)
    try:
        return max(1, int(getattr(prefix_list, "max_entries", None)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1


def rules_weight(backend: Any, rules: Iterable[Any]) -> int:
    """The quota the rules of a group take (moto keeps one rule per range, group or prefix list)."""
    return sum(prefix_list_weight(backend, r.prefix_list_id) if r.prefix_list_id else 1 for r in rules)


def permission_weight(
    backend: Any,
    ip_ranges: list[Any] | None,
    source_groups: list[Any] | None,
    prefix_list_ids: list[dict[str, str]] | None,
) -> int:
    """The quota one IpPermission takes."""
    prefix_lists = [p.get("PrefixListId", "") for p in prefix_list_ids or []]
    return (
        len(ip_ranges or [])
        + len(source_groups or [])
        + sum(prefix_list_weight(backend, p) for p in prefix_lists)
    )


def _check(backend: Any, group: Any, egress: bool, adding: int, settings: LocalAwsSettings) -> None:
    present = rules_weight(backend, group.egress_rules if egress else group.ingress_rules)
    if present + adding > settings.rules_per_security_group:
        raise RulesPerSecurityGroupLimitExceededError()


def _patch_response(original: Callable[..., Any], egress: bool) -> Callable[..., Any]:
    def authorize(self: Any) -> Any:
        settings = _ACTIVE
        if settings is None:
            return original(self)
        backend = self.ec2_backend
        permissions = list(self._process_rules_from_querystring())
        with _AUTHORIZE_LOCK:
            if permissions:
                group = backend.get_security_group_by_name_or_id(permissions[0]["group_name_or_id"])
                if group is not None:  # an unknown group: moto answers InvalidGroup.NotFound
                    adding = sum(
                        permission_weight(backend, p["ip_ranges"], p["source_groups"], p["prefix_list_ids"])
                        for p in permissions
                    )
                    _check(backend, group, egress, adding, settings)
            return original(self)

    authorize.__wrapped__ = original  # type: ignore[attr-defined]
    return authorize


def _patch_backend(original: Callable[..., Any], egress: bool) -> Callable[..., Any]:
    signature = inspect.signature(original)

    def authorize(self: Any, *args: Any, **kwargs: Any) -> Any:
        settings = _ACTIVE
        if settings is not None:
            call = signature.bind(self, *args, **kwargs).arguments
            group = self.get_security_group_by_name_or_id(call["group_name_or_id"], call.get("vpc_id"))
            if group is not None:
                ip_ranges = call.get("ip_ranges")
                # moto also takes one range as a string (a CIDR or a JSON document)
                ranges = [ip_ranges] if isinstance(ip_ranges, str | dict) else ip_ranges
                adding = permission_weight(
                    self, ranges, call.get("source_groups"), call.get("prefix_list_ids")
                )
                _check(self, group, egress, adding, settings)
        return original(self, *args, **kwargs)

    authorize.__wrapped__ = original  # type: ignore[attr-defined]
    return authorize


def _patch_moto_check(original: Callable[..., Any]) -> Callable[..., Any]:
    def verify(self: Any, *args: Any, **kwargs: Any) -> None:
        if _ACTIVE is None:  # ours counts instead, with the configured quota
            original(self, *args, **kwargs)

    verify.__wrapped__ = original  # type: ignore[attr-defined]
    return verify


def install() -> None:
    """Install the security group patches (idempotent, once per process)."""
    global _INSTALLED
    with _INSTALL_LOCK:
        if _INSTALLED:
            return
        from moto.ec2.models.security_groups import SecurityGroupBackend
        from moto.ec2.responses.security_groups import SecurityGroups

        SecurityGroups.authorize_security_group_ingress = _patch_response(  # type: ignore[method-assign]
            SecurityGroups.authorize_security_group_ingress, egress=False
        )
        SecurityGroups.authorize_security_group_egress = _patch_response(  # type: ignore[method-assign]
            SecurityGroups.authorize_security_group_egress, egress=True
        )
        SecurityGroupBackend.authorize_security_group_ingress = _patch_backend(  # type: ignore[method-assign]
            SecurityGroupBackend.authorize_security_group_ingress, egress=False
        )
        SecurityGroupBackend.authorize_security_group_egress = _patch_backend(  # type: ignore[method-assign]
            SecurityGroupBackend.authorize_security_group_egress, egress=True
        )
        SecurityGroupBackend._verify_group_will_respect_rule_count_limit = _patch_moto_check(  # type: ignore[method-assign]
            SecurityGroupBackend._verify_group_will_respect_rule_count_limit
        )
        _INSTALLED = True
