"""A shared resource by what it is (ledger.py keeps who uses it): known from the spec before the resource
exists, so that the steps and the decommission name it without loading the ledger."""

from __future__ import annotations

from typing import Literal, NamedTuple

SharedKind = Literal[
    "vpc-endpoint",
    "registration",
    "resolver-security-group",
    "resolver-endpoint",
    "resolver-rule",
    "rule-association",
]


class SharedKey(NamedTuple):
    """A shared resource by what it is, known from the spec before the resource exists."""

    kind: SharedKind
    key: str  # the natural key, e.g. "vpc-0a1b...|com.amazonaws.us-east-1.sts"

    @property
    def pk(self) -> str:
        return f"SHARED#{self.kind}#{self.key}"

    @classmethod
    def from_pk(cls, pk: str) -> SharedKey:
        _, kind, key = pk.split("#", 2)
        return cls(kind, key)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


def resolver_key(
    kind: Literal["resolver-endpoint", "resolver-security-group"], vpc_id: str, role: str
) -> SharedKey:
    """A Route 53 Resolver endpoint, or the security group made for it, by its VPC and role
    ("vpc-0a1b...|outbound"); `vpc_and_role` reads the two back."""
    return SharedKey(kind, f"{vpc_id}|{role}")


def vpc_and_role(natural_key: str) -> tuple[str, str]:
    """The VPC and role in a `resolver_key`'s natural key."""
    vpc_id, _, role = natural_key.partition("|")
    return vpc_id, role
