"""Whose change is it: the application's own calls must never trigger a repair of what they just did.

The application's functions and its state machine call AWS as sessions of their own IAM roles. Without a
RoleName, CloudFormation names a role `<stack name>-<logical id>-<suffix>` (a logical id has no hyphen),
so "an assumed role of this account named `<stack name>-<LogicalId>-<suffix>`" covers every role the stack
has and will have (a new function needs no change here), and not those of a stack named
`<stack name>-prod`. CloudFormation shortens names past 64 characters: keep the stack name under about
20 characters, or name the roles in OWN_ROLE_ARNS. Listing the role ARNs instead would put every function's role into the
detector's environment and miss a role added later; it is supported as well (OWN_ROLE_ARNS) for stacks
whose roles are named by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from dbx_privatelink.drift.events import UserIdentity


def role_name_of(identity: UserIdentity) -> str:
    """The IAM role name behind an assumed-role session, "" for anything else."""
    if identity.type != "AssumedRole":
        return ""
    issuer = identity.sessionContext.sessionIssuer if identity.sessionContext else None
    if issuer and issuer.userName:
        return issuer.userName
    # arn:aws:sts::<account>:assumed-role/<role name>/<session name>
    resource = identity.arn.split(":", 5)[5] if identity.arn.count(":") >= 5 else ""
    parts = resource.split("/")
    return parts[1] if len(parts) >= 3 and parts[0] == "assumed-role" else ""


def is_own_principal(
    identity: UserIdentity, *, stack_name: str, account_id: str, role_arns: Iterable[str] = ()
) -> bool:
    """True when the call was made by one of this stack's roles, in this stack's account."""
    if identity.type != "AssumedRole" or identity.accountId != account_id:
        return False
    explicit = {a for a in role_arns if a}
    if explicit and identity.role_arn in explicit:
        return True
    name = role_name_of(identity)
    return (
        bool(stack_name)
        and re.fullmatch(rf"{re.escape(stack_name)}-[A-Za-z0-9]+-[A-Za-z0-9]+", name) is not None
    )


def actor_of(identity: UserIdentity) -> str:
    """Who made the change, as a human reads it: the session ARN, else the principal id, else the type."""
    return identity.arn or identity.principalId or identity.invokedBy or identity.type or "unknown"
