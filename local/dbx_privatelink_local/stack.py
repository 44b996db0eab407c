"""The local stack: emulated AWS and Databricks on loopback, with template.yaml deployed into it.

    with LocalStack(LocalStackConfig(time_scale=0.01)) as stack:
        info = stack.info          # endpoint URLs, credentials, the sample spec's path
        ...                        # boto3 / the AWS CLI / the Databricks SDK / the dbx-privatelink CLI

    LocalStackConfig(aws=LocalAwsSettings(aws_rate_limits=True))   # AWS's rate limits too

One stack runs per process (moto's backends are process-wide). Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import tempfile
import threading
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Self

import boto3
import yaml

from dbx_privatelink_local.aws.server import LocalAws
from dbx_privatelink_local.aws.settings import LocalAwsSettings
from dbx_privatelink_local.databricks.config import EmulatorConfig
from dbx_privatelink_local.databricks.emulator import DatabricksEmulator
from dbx_privatelink_local.databricks.server import EmulatorServer
from dbx_privatelink_local.deployer import Deployment, deploy_template
from dbx_privatelink_local.dns import LocalDns, attach_local_dns
from dbx_privatelink_local.lambda_runtime import InProcessLambdaRuntime, share_service_models
from dbx_privatelink_local.seed import SeededEnvironment, seed_environment, seed_trail
from dbx_privatelink_local.sfn import StepFunctionsControl, enable_step_functions
from dbx_privatelink_local.timescale import TIME_SCALE

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
# Credentials moto accepts: the local stack is the only thing they open.
LOCAL_AWS_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

# Process-wide settings of the Lambda functions when they run in-process: no X-Ray daemon, no EMF on stdout.
LOCAL_PROCESS_ENV = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
}


@dataclass(frozen=True)
class LocalStackConfig:
    region: str = "us-east-1"
    # 0.01: a 60-second Wait lasts 0.6 s; the emulated services keep their realistic delays, scaled alike.
    time_scale: float = 0.01
    stack_name: str = "dbx-privatelink"
    template: Path = DEFAULT_TEMPLATE
    workdir: Path | None = None
    databricks_account_id: str = "0f5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
    # The emulated AWS: delays, quotas (on, AWS's defaults) and rate limits (off; aws_rate_limits=True turns
    # on EC2's endpoint-mutation bucket and Route 53 Resolver's 5/s; stack.aws.rate_limits counts refusals).
    aws: LocalAwsSettings = field(default_factory=LocalAwsSettings)
    databricks: EmulatorConfig = field(default_factory=EmulatorConfig)
    quiet_lambda_telemetry: bool = True
    # Template parameters besides the secret and the host. A 10-minute drift scan fires every 6 s at 0.01:
    # often enough to watch it catch a Databricks-side change, rare enough to stay out of the way.
    parameters: dict[str, str] = field(default_factory=lambda: {"ScanRateMinutes": "10"})


@dataclass(frozen=True)
class LocalStackInfo:
    """What `dbx-privatelink local up` prints: everything a client needs to talk to the stack."""

    aws_endpoint_url: str
    region: str
    stack_name: str
    databricks_host: str
    account_id: str
    client_id: str
    client_secret: str
    sample_spec: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def account_quotas(config: LocalStackConfig) -> LocalAwsSettings:
    """The emulated AWS of `config`, with the account's Route 53 Resolver endpoint quota as the template's
    ResolverEndpointsQuota says it was raised (the application counts against that parameter, AWS against the
    account's quota: on a real account the two are set together)."""
    raised = config.parameters.get("ResolverEndpointsQuota")
    return replace(config.aws, resolver_endpoints_per_region=int(raised)) if raised else config.aws


class LocalStack:
    """Emulated AWS (moto + gaps closed), the Databricks Account API emulator, and the deployed template."""

    def __init__(self, config: LocalStackConfig | None = None) -> None:
        self.config = config or LocalStackConfig()
        self.aws = LocalAws(account_quotas(self.config))
        self.client_id = str(uuid.uuid4())
        self.client_secret = "dose" + secrets.token_hex(16)
        self.emulator = DatabricksEmulator(
            self.aws.view,
            self.config.databricks_account_id,
            {self.client_id: self.client_secret},
            config=self.config.databricks,
        )
        self.databricks = EmulatorServer(self.emulator)
        self.runtime: InProcessLambdaRuntime | None = None
        self.sfn: StepFunctionsControl | None = None
        self.environment: SeededEnvironment | None = None
        self.deployment: Deployment | None = None
        self._info: LocalStackInfo | None = None
        self._workdir: Path | None = None
        self.dns: LocalDns | None = None
        self._dns_watch: threading.Event | None = None

    # --- lifecycle ---

    def start(self) -> Self:
        """Start the servers, seed the customer environment and deploy template.yaml; idempotent."""
        if self._info is not None:
            return self
        cfg = self.config
        TIME_SCALE.factor = cfg.time_scale
        # The functions pace rate-limited AWS calls in service seconds: they must know how long one lasts here.
        os.environ["DBX_PRIVATELINK_TIME_SCALE"] = repr(cfg.time_scale)
        if cfg.quiet_lambda_telemetry:
            for key, value in LOCAL_PROCESS_ENV.items():
                os.environ.setdefault(key, value)
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        share_service_models()
        self.aws.start()
        # moto's backends are process-wide: a new stack starts from nothing, whatever ran before it here.
        self.aws.reset()
        self.sfn = enable_step_functions(TIME_SCALE)
        self.aws.enable_state_machine_execution(True)
        self.runtime = InProcessLambdaRuntime(self.aws.endpoint_url, region=cfg.region).install()
        host = self.databricks.start()
        session = self.boto_session()
        self.environment = seed_environment(
            session,
            self.aws.endpoint_url,
            cfg.region,
            self.emulator,
            client_id=self.client_id,
            client_secret=self.client_secret,
        )
        # Event-driven drift needs a trail that is logging; `dbx-privatelink doctor` checks for one.
        seed_trail(session, self.aws.endpoint_url, cfg.region)
        self.deployment = deploy_template(
            cfg.template,
            cfg.stack_name,
            {**cfg.parameters, "DatabricksSecretArn": self.environment.secret_arn, "DatabricksHost": host},
            self.aws.endpoint_url,
            self.runtime,
            region=cfg.region,
        )
        self.dns = attach_local_dns(self)
        self._watch_dns_addresses()
        self._workdir = cfg.workdir or Path(tempfile.mkdtemp(prefix="dbx-privatelink-local-"))
        self._workdir.mkdir(parents=True, exist_ok=True)
        spec_path = self._workdir / "sample-workspace.yaml"
        spec_path.write_text(
            "# The sample workspace on the local stack: the seed walkthrough's VPC, subnets and groups, with\n"
            "# custom DNS through Route 53 Resolver to the seeded corporate DNS servers.\n"
            + yaml.safe_dump(self.environment.sample_spec(custom_dns=True), sort_keys=False)
        )
        (self._workdir / "environment.json").write_text(json.dumps(self.environment.to_json(), indent=2))
        self._info = LocalStackInfo(
            aws_endpoint_url=self.aws.endpoint_url,
            region=cfg.region,
            stack_name=cfg.stack_name,
            databricks_host=host,
            account_id=cfg.databricks_account_id,
            client_id=self.client_id,
            client_secret=self.client_secret,
            sample_spec=str(spec_path),
        )
        return self

    def _watch_dns_addresses(self, interval_s: float = 0.25) -> None:
        """Keep VerifyDns's DNS_ADDRESS_MAP current: a VPC created after start gets its resolver (a loopback
        server) and the function its address, as a Lambda configuration update would give it on AWS."""
        if self.dns is None or self.deployment is None:
            return
        try:
            function = self.deployment.function_by_logical_id("VerifyDnsFunction").function_name
        except KeyError:
            return  # a template without DNS verification
        lam = self.client("lambda")
        stop = self._dns_watch = threading.Event()
        dns = self.dns

        def publish() -> None:
            current = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
            wanted = dns.address_map_json()
            if current.get("DNS_ADDRESS_MAP") != wanted:
                lam.update_function_configuration(
                    FunctionName=function, Environment={"Variables": {**current, "DNS_ADDRESS_MAP": wanted}}
                )

        def watch() -> None:
            while not stop.wait(interval_s):
                with contextlib.suppress(Exception):  # the stack is stopping: the next round ends the loop
                    publish()

        publish()
        threading.Thread(target=watch, name="local-dns-address-map", daemon=True).start()

    def stop(self) -> None:
        """Stop every server and background thread."""
        if self._dns_watch is not None:
            self._dns_watch.set()
            self._dns_watch = None
        if self.dns is not None:
            self.dns.stop()
            self.dns = None
        self.databricks.stop()
        self.aws.stop()
        # After AWS: a late EventBridge delivery must still find the in-process runtime, not moto's Docker path.
        if self.runtime is not None:
            self.runtime.uninstall()
        self._info = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- access ---

    @property
    def info(self) -> LocalStackInfo:
        if self._info is None:
            raise RuntimeError("the local stack is not started")
        return self._info

    def boto_session(self) -> boto3.session.Session:
        """A boto3 session for the stack's account (pass endpoint_url=stack.info.aws_endpoint_url)."""
        return boto3.session.Session(region_name=self.config.region, **LOCAL_AWS_KEYS)

    def client(self, service: str) -> Any:
        """A boto3 client of the emulated AWS."""
        return self.boto_session().client(service, endpoint_url=self.aws.endpoint_url)

    def client_environment(self) -> dict[str, str]:
        """Environment variables that point boto3, the AWS CLI and the Databricks SDK at this stack."""
        info = self.info
        return {
            "AWS_ENDPOINT_URL": info.aws_endpoint_url,
            "AWS_REGION": info.region,
            "AWS_DEFAULT_REGION": info.region,
            "AWS_ACCESS_KEY_ID": LOCAL_AWS_KEYS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_AWS_KEYS["aws_secret_access_key"],
            "DBX_PRIVATELINK_STACK": info.stack_name,
            "DATABRICKS_HOST": info.databricks_host,
            "DATABRICKS_ACCOUNT_ID": info.account_id,
            "DATABRICKS_CLIENT_ID": info.client_id,
            "DATABRICKS_CLIENT_SECRET": info.client_secret,
        }
