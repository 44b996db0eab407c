"""Whose change is it: the application's own calls must never trigger a repair of what they just did.

The application's functions call AWS as sessions of their own IAM roles. The template hands the detector
the exact ARNs of the roles that may make a call the drift rules watch (OWN_ROLE_ARNS, from the roles'
own resources): a call is the application's when its session was issued by one of those roles, in this
account. A name pattern would not do: a human role named `<stack>-Breakglass-admin` fits
`<stack>-<LogicalId>-<suffix>` as well as the stack's roles do, and its change would go unrepaired.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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


def _role_arn_of(identity: UserIdentity) -> str:
    """The issuing role's ARN; from the session ARN when the event carries no session issuer (a role
    made by the stack has the path "/", so its ARN follows from its name)."""
    if identity.role_arn:
        return identity.role_arn
    name = role_name_of(identity)
    partition = identity.arn.split(":")[1] if identity.arn.count(":") >= 5 else "aws"
    return f"arn:{partition}:iam::{identity.accountId}:role/{name}" if name else ""


def is_own_principal(identity: UserIdentity, *, account_id: str, role_arns: Iterable[str]) -> bool:
    """True when the call was made by one of the roles named in `role_arns`, in this stack's account."""
    if identity.type != "AssumedRole" or identity.accountId != account_id:
        return False
    own = {a.strip() for a in role_arns if a.strip()}
    return _role_arn_of(identity) in own


def actor_of(identity: UserIdentity) -> str:
    """Who made the change, as a human reads it: the session ARN, else the principal id, else the type."""
    return identity.arn or identity.principalId or identity.invokedBy or identity.type or "unknown"
