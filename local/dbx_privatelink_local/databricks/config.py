"""Tunable behaviour of the emulator; durations are emulated seconds unless named otherwise."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmulatorConfig:
    # Real seconds, not scaled: clients compute expiry from expires_in on their own wall clock.
    token_lifetime_s: int = 3600
    # How long the Databricks endpoint service takes to accept a registered AWS endpoint.
    endpoint_accept_delay_s: float = 20.0
    # PROVISIONING -> RUNNING/FAILED after a create, and after a PATCH.
    workspace_provision_delay_s: float = 60.0
    workspace_update_delay_s: float = 30.0
    # A deleted workspace stays readable this long, then GET answers 404.
    workspace_delete_delay_s: float = 30.0
    # Requests kept in the call log (the per-operation counters are never truncated).
    request_log_size: int = 10_000

    def __post_init__(self) -> None:
        if self.token_lifetime_s <= 0:
            raise ValueError("token_lifetime_s must be positive")
        for name in (
            "endpoint_accept_delay_s",
            "workspace_provision_delay_s",
            "workspace_update_delay_s",
            "workspace_delete_delay_s",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
