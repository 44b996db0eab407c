"""The Databricks Account API emulator: one account's backend, its OAuth clients, faults and call log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dbx_privatelink.catalog import Catalog, default_catalog
from dbx_privatelink_local.aws_view import AwsView
from dbx_privatelink_local.databricks.auth import TokenIssuer
from dbx_privatelink_local.databricks.backend import AccountBackend
from dbx_privatelink_local.databricks.clock import Clock, Scheduler, TimeScaleScheduler, WallClock
from dbx_privatelink_local.databricks.config import EmulatorConfig
from dbx_privatelink_local.databricks.faults import Fault, FaultInjector, FaultKind
from dbx_privatelink_local.databricks.request_log import RequestLog
from dbx_privatelink_local.timescale import TIME_SCALE


class DatabricksEmulator:
    """Everything the HTTP routes serve, usable directly from Python (seeding, state, faults, counters).

    clock: time for creation_time and token expiry (default: the wall clock).
    scheduler: runs emulated delays (default: daemon timers scaled by TIME_SCALE). A ManualClock passed as
        `clock` is also used as the scheduler unless one is given, so tests step time explicitly.
    sleep: how injected latency is spent (default: TIME_SCALE.sleep, emulated seconds).
    """

    def __init__(
        self,
        aws: AwsView,
        account_id: str,
        clients: dict[str, str],
        *,
        config: EmulatorConfig | None = None,
        catalog: Catalog | None = None,
        clock: Clock | None = None,
        scheduler: Scheduler | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.account_id = account_id
        self.clock: Clock = clock or WallClock()
        if scheduler is None:
            scheduler = clock if hasattr(clock, "call_later") else TimeScaleScheduler(TIME_SCALE)  # type: ignore[assignment]
        assert scheduler is not None
        self.scheduler: Scheduler = scheduler
        self.sleep: Callable[[float], None] = sleep or TIME_SCALE.sleep
        self.backend = AccountBackend(
            aws,
            account_id,
            catalog=catalog or default_catalog(),
            config=self.config,
            clock=self.clock,
            scheduler=self.scheduler,
        )
        self.tokens = TokenIssuer(
            account_id, clients, lifetime_s=self.config.token_lifetime_s, clock=self.clock
        )
        self.faults = FaultInjector()
        self.calls = RequestLog(self.config.request_log_size)

    # --- the WSGI application ---------------------------------------------------------------

    def wsgi_app(self) -> Any:
        from dbx_privatelink_local.databricks.routes import AccountApiApp

        return AccountApiApp(self)

    # --- inspection and reset ---------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Every object as the API shows it, plus the live faults."""
        state = self.backend.state()
        state["faults"] = [f.to_json() for f in self.faults.list()]
        return state

    def reset(self, *, revoke_tokens: bool = False) -> None:
        """Forget objects, faults and the call log; issued tokens stay valid unless asked, so a client
        that cached one keeps working across test cases."""
        self.backend.reset()
        self.faults.clear()
        self.calls.clear()
        if revoke_tokens:
            self.tokens.revoke_all()

    def calls_by_operation(self) -> dict[str, int]:
        """Requests answered per "METHOD /path/{template}", faults and errors included."""
        return self.calls.by_operation()

    # --- faults -----------------------------------------------------------------------------

    def add_fault(
        self,
        kind: FaultKind,
        *,
        method: str = "*",
        path: str = "*",
        regex: bool = False,
        count: int = 1,
        retry_after_s: int = 1,
        latency_s: float = 1.0,
        status: int | None = None,
    ) -> Fault:
        return self.faults.add(
            Fault(
                kind=kind,
                method=method,
                path=path,
                regex=regex,
                count=count,
                retry_after_s=retry_after_s,
                latency_s=latency_s,
                status=status,
            )
        )

    def clear_faults(self) -> None:
        self.faults.clear()

    # --- seeding (the local stack's seed step) ----------------------------------------------

    def seed_credentials(
        self, credentials_name: str, role_arn: str, *, credentials_id: str | None = None
    ) -> dict[str, Any]:
        return self.backend.create_credentials(
            {"credentials_name": credentials_name, "aws_credentials": {"sts_role": {"role_arn": role_arn}}},
            credentials_id=credentials_id,
        )

    def seed_storage_configuration(
        self,
        storage_configuration_name: str,
        bucket_name: str,
        *,
        storage_configuration_id: str | None = None,
        role_arn: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "storage_configuration_name": storage_configuration_name,
            "root_bucket_info": {"bucket_name": bucket_name},
        }
        if role_arn:
            body["role_arn"] = role_arn
        return self.backend.create_storage_configuration(
            body, storage_configuration_id=storage_configuration_id
        )
