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
