"""The composition root of the Lambda functions: settings from the environment, adapters built once per
cold start. The domain never reads os.environ or builds clients; this module does, for it.

Every adapter is imported where it is built, not at the top of this module: a function imports only the
adapters its step touches (a step that resolves no name never loads dnspython, a step that never calls
Databricks never loads its client). boto3 itself is imported here: every step calls AWS, so deferring it
would only move it into the first invocation. The imports under TYPE_CHECKING are for the annotations alone.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

import boto3
from botocore.config import Config

from dbx_privatelink.aws import DEFAULT_SECRET_MAX_AGE_S
from dbx_privatelink.models.base import parse_expected_seconds
from dbx_privatelink.rates import (
    EC2_ENDPOINT_MUTATIONS,
    RESOLVER_ENDPOINTS_PER_REGION,
    ROUTE53_RESOLVER,
    RateBudget,
)

if TYPE_CHECKING:
    from dbx_privatelink.aws.dns_query import DnsQueryClient
    from dbx_privatelink.aws.dns_state import DnsStateClient
    from dbx_privatelink.aws.ec2 import Ec2Client
    from dbx_privatelink.aws.resolver import ResolverClient
    from dbx_privatelink.aws.secrets import SecretsClient, ServicePrincipalSecret
    from dbx_privatelink.aws.zones import HostedZoneClient
    from dbx_privatelink.catalog import Catalog
    from dbx_privatelink.databricks.client import DatabricksAccountClient
    from dbx_privatelink.drift.aws import DriftEc2Client
    from dbx_privatelink.drift_store import DriftStore
    from dbx_privatelink.ledger import LedgerClient
    from dbx_privatelink.pacing import SharedPacer
    from dbx_privatelink.store import StoreClient

# Environment variables by the capability that needs them.
NEEDS: dict[str, tuple[str, ...]] = {
    "base": ("AWS_REGION", "OWNER_TAG"),
    "store": ("TABLE_NAME",),
    "databricks": ("DATABRICKS_HOST", "DATABRICKS_SECRET_ID"),
    # Drift: start reconcile executions, notify, and bound the remediations per workspace and hour.
    "state_machine": ("STATE_MACHINE_ARN",),
    "notify": ("TOPIC_ARN",),
    "drift": ("MAX_REMEDIATIONS_PER_HOUR",),
    # The detector: the exact ARNs of the stack's roles whose calls are the application's own.
    "own_roles": ("OWN_ROLE_ARNS",),
    # Shared resources (the ledger) and the stack-wide pace of EC2 endpoint mutations and Resolver calls.
    "shared": ("TABLE_NAME",),
}


class SettingsError(RuntimeError):
    """A required environment variable is missing or not what it must be: the template must pass it so."""


class Settings(NamedTuple):
    """One function's settings, read from its environment at cold start (`from_env` converts and checks each
    value). A NamedTuple, neither a pydantic model (building its validator at every cold start bought no
    checking that `from_env` does not already do) nor a dataclass (which compiles its methods when the class
    is created, at every cold start: about 3 ms for these fields, against 0.5 ms)."""

    region: str
    owner_tag: str
    table_name: str = ""
    databricks_host: str = ""
    databricks_secret_id: str = ""
    # How long a read Databricks secret is used before it is read again (a rotation reaches warm containers).
    secret_max_age_s: int = DEFAULT_SECRET_MAX_AGE_S
    endpoint_services_json: str = ""
    state_machine_arn: str = ""
    topic_arn: str = ""
    max_remediations_per_hour: int = 3
    # The roles whose calls are the application's own (comma-separated ARNs; drift/principals.py).
    own_role_arns: str = ""
    # VerifyDns: the subnets it runs in (empty: outside any VPC), and the local stack's address map.
    verifier_subnet_ids: str = ""
    dns_address_map: str = ""
    # "shared": EC2 endpoint mutations and Route 53 Resolver calls are paced stack-wide through the table;
    # "off": each container keeps its own Resolver bucket and refusals are retried (the benchmark compares).
    rate_pacing: str = "shared"
    resolver_requests_per_second: float = ROUTE53_RESOLVER.rate
    resolver_endpoints_quota: int = RESOLVER_ENDPOINTS_PER_REGION  # a raised quota: more
    # Emulated time on the local stack (0.01: an emulated second lasts 10 ms); 1 everywhere else.
    time_scale: float = 1.0
    # When the polled changes are expected ("workspace_created=300,..."; reconcile/polling.py's SCHEDULES).
    poll_expected_seconds: str = ""

    @classmethod
    def from_env(cls, needs: tuple[str, ...], env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        required = [var for need in ("base", *needs) for var in NEEDS[need]]
        missing = [var for var in required if not env.get(var)]
        if missing:
            raise SettingsError(
                f"environment variable(s) {', '.join(missing)} not set: add them to this function's "
                "Environment in template.yaml"
            )
        expected = env.get("POLL_EXPECTED_SECONDS", "")
        parse_expected_seconds(expected)  # a mistyped override fails at cold start, not in a poll
        return cls(
            region=env["AWS_REGION"],
            owner_tag=env["OWNER_TAG"],
            table_name=env.get("TABLE_NAME", ""),
            databricks_host=env.get("DATABRICKS_HOST", ""),
            databricks_secret_id=env.get("DATABRICKS_SECRET_ID", ""),
            secret_max_age_s=_number(env, "POWERTOOLS_PARAMETERS_MAX_AGE", int, DEFAULT_SECRET_MAX_AGE_S),
            endpoint_services_json=env.get("ENDPOINT_SERVICES_JSON", ""),
            state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
            topic_arn=env.get("TOPIC_ARN", ""),
            max_remediations_per_hour=_number(env, "MAX_REMEDIATIONS_PER_HOUR", int, 3, least=0),
            own_role_arns=env.get("OWN_ROLE_ARNS", ""),
            verifier_subnet_ids=env.get("VERIFIER_SUBNET_IDS", ""),
            dns_address_map=env.get("DNS_ADDRESS_MAP", ""),
            rate_pacing=env.get("RATE_PACING") or "shared",
            resolver_requests_per_second=_number(
                env, "RESOLVER_REQUESTS_PER_SECOND", float, ROUTE53_RESOLVER.rate
            ),
            time_scale=_number(env, "DBX_PRIVATELINK_TIME_SCALE", float, 1.0),
            resolver_endpoints_quota=_number(env, "RESOLVER_ENDPOINTS_QUOTA", int, 4),
            poll_expected_seconds=expected,
        )


def _number[N: (int, float)](
    env: Mapping[str, str], var: str, kind: type[N], default: N, *, least: N | None = None
) -> N:
    """The variable as a finite number of `kind` (above zero, or at least `least`), `default` when unset; a
    SettingsError naming the variable and the fix otherwise."""
    raw = env.get(var)
    if not raw:
        return default
    try:
        value: N | None = kind(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or (value < least if least is not None else value <= 0):
        want = f"at least {least}" if least is not None else "above 0"
        noun = "a whole number" if kind is int else "a number"
        raise SettingsError(
            f"environment variable {var}={raw!r} must be {noun} {want}: set it so in template.yaml"
        )
    return value


_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=20)


class Deps:
    """The adapters a step may use, built lazily so a step pays only for what it touches. (A plain class: a
    dataclass would compile its methods at every cold start.)"""

    def __init__(
        self,
        settings: Settings,
        *,
        step_name: str = "",
        session: Any = None,
        remaining_time_s: Callable[[], float] = lambda: 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.step_name = (
            step_name  # the step these adapters serve: named in the Databricks client's User-Agent
        )
        self.session = session  # a boto3 Session; None: the default one, made at the first client
        self.remaining_time_s = remaining_time_s
        self.clock = clock
        self._lock = threading.Lock()
        self._session_lock = threading.Lock()
        self._ec2: dict[str, Ec2Client] = {}
        self._databricks: dict[str, DatabricksAccountClient] = {}
        self._databricks_principal: dict[str, ServicePrincipalSecret] = {}
        self._resolver: dict[str, ResolverClient] = {}
        self._pacers: dict[tuple[str, str], SharedPacer] = {}

    def pause(self, seconds: float) -> None:
        """Sleep `seconds` of the deployment's time (the local stack's time scale shortens it)."""
        time.sleep(seconds * self.settings.time_scale)

    def _client(self, service: str, region: str | None = None) -> Any:
        return self._boto().client(service, region_name=region, config=_BOTO_CONFIG)

    def _table(self) -> Any:
        return self._boto().resource("dynamodb", config=_BOTO_CONFIG).Table(self.settings.table_name)

    def _boto(self) -> Any:
        with self._session_lock:
            if self.session is None:
                self.session = boto3.session.Session()
            return self.session

    @cached_property
    def catalog(self) -> Catalog:
        from dbx_privatelink.catalog import load_catalog

        return load_catalog(self.settings.endpoint_services_json or None)

    def ec2(self, region: str) -> Ec2Client:
        from dbx_privatelink.aws.ec2 import Ec2Client

        with self._lock:
            if region not in self._ec2:
                self._ec2[region] = Ec2Client(self._client("ec2", region))
            return self._ec2[region]

    def pacer(self, budget: RateBudget, region: str) -> SharedPacer | None:
        """The stack-wide pace of `budget` in `region`; None when pacing is off or there is no table."""
        if self.settings.rate_pacing != "shared" or not self.settings.table_name:
            return None
        if budget.name == ROUTE53_RESOLVER.name:
            budget = RateBudget(
                budget.name, self.settings.resolver_requests_per_second, budget.burst, budget.utilization
            )
        from dbx_privatelink.pacing import SharedPacer

        with self._lock:
            key = (budget.name, region)
            if key not in self._pacers:
                self._pacers[key] = SharedPacer(
                    self._table(), budget, region, time_scale=self.settings.time_scale
                )
            return self._pacers[key]

    def endpoint_pacer(self, region: str) -> SharedPacer | None:
        """The pace of EC2 endpoint mutations (CreateVpcEndpoint, ModifyVpcEndpoint, DeleteVpcEndpoints)."""
        return self.pacer(EC2_ENDPOINT_MUTATIONS, region)

    def resolver(self, region: str) -> ResolverClient:
        from dbx_privatelink.aws.resolver import ResolverClient

        pacer = self.pacer(ROUTE53_RESOLVER, region)
        with self._lock:
            if region not in self._resolver:
                clients = (self._client("route53resolver", region), self._client("ec2", region))
                self._resolver[region] = (
                    ResolverClient(*clients, limiter=pacer) if pacer else ResolverClient(*clients)
                )
            return self._resolver[region]

    def end_invocation(self) -> None:
        """What one invocation holds and the next must not inherit (the adapters outlive it in a warm
        container): the Resolver slots its step reserved and did not spend."""
        with self._lock:
            clients = list(self._resolver.values())
        for client in clients:
            client.drop_unspent_slots()

    def dns_state(self, region: str) -> DnsStateClient:
        """A reader of the region's DNS state (for explaining how a name resolved); built per call."""
        from dbx_privatelink.aws.dns_state import DnsStateClient

        return DnsStateClient.from_session(self._boto(), region, config=_BOTO_CONFIG)

    @cached_property
    def zones(self) -> HostedZoneClient:
        """Route 53 private hosted zones (a global service: one client for every region)."""
        from dbx_privatelink.aws.zones import HostedZoneClient

        return HostedZoneClient(self._client("route53"))

    @cached_property
    def dns_query(self) -> DnsQueryClient:
        """DNS queries to the VPC's resolver: the one adapter that loads dnspython."""
        from dbx_privatelink.aws.dns_query import DnsQueryClient

        return DnsQueryClient.from_env_value(self.settings.dns_address_map)

    @cached_property
    def store(self) -> StoreClient:
        from dbx_privatelink.store import StoreClient

        return StoreClient(self._table())

    @cached_property
    def ledger(self) -> LedgerClient:
        from dbx_privatelink.ledger import LedgerClient

        return LedgerClient(self._table())

    @cached_property
    def drift_store(self) -> DriftStore:
        from dbx_privatelink.drift_store import DriftStore

        return DriftStore(self._table())

    @cached_property
    def sns(self) -> Any:
        return self._client("sns")

    def drift_ec2(self, region: str) -> DriftEc2Client:
        from dbx_privatelink.drift.aws import DriftEc2Client

        return DriftEc2Client(self._client("ec2", region))

    @cached_property
    def sfn(self) -> Any:
        return self._client("stepfunctions")

    @cached_property
    def secrets(self) -> SecretsClient:
        from dbx_privatelink.aws.secrets import SecretsClient

        return SecretsClient(self._client("secretsmanager"), max_age_s=self.settings.secret_max_age_s)

    def databricks_user_agent(self) -> str:
        from dbx_privatelink.databricks.client import USER_AGENT

        return f"{USER_AGENT} step/{self.step_name}" if self.step_name else USER_AGENT

    def databricks(self, account_id: str) -> DatabricksAccountClient:
        """The account's client, built again (new token) once the secret read at most max age ago changed;
        only Databricks steps load the client."""
        from dbx_privatelink.databricks.client import DatabricksAccountClient

        with self._lock:
            given = self._databricks.get(account_id)
            if given is not None and account_id not in self._databricks_principal:
                return given  # handed in ready-made, not built from the secret
        principal = self.secrets.service_principal(self.settings.databricks_secret_id)
        with self._lock:
            if self._databricks_principal.get(account_id) != principal:
                self._databricks[account_id] = DatabricksAccountClient(
                    self.settings.databricks_host,
                    account_id,
                    principal.client_id,
                    principal.client_secret.get_secret_value(),
                    remaining_time_s=lambda: self.remaining_time_s(),
                    user_agent=self.databricks_user_agent(),
                )
                self._databricks_principal[account_id] = principal
            return self._databricks[account_id]
