"""`make bench`: figures of one reconcile of the sample workspace on the local stack, run twice, side by
side with the baseline script (bench/baseline.py) run twice on a fresh stack of its own.

    .venv/bin/python bench/run.py [--time-scale 1.0] [--repeats 5] [--no-imports | --imports-only] [--no-baseline]
        [--no-write]

Prints a text report and writes bench/RESULTS.md. What each figure means: bench/README.md.
Performance is measured here, never asserted as wall-clock in tests.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT, REPO_ROOT / "layers" / "core", REPO_ROOT / "local"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from databricks.sdk import AccountClient  # noqa: E402

from bench.baseline import BaselineInputs, run_baseline  # noqa: E402
from bench.report import (  # noqa: E402
    BenchReport,
    EmulatorDelays,
    ImportFigures,
    Machine,
    Procedure,
    ProcedureRun,
    RunFigures,
    SideBySide,
    census_delta,
    count_transitions,
    delta,
    import_section,
    markdown_table,
    median_ms,
    render_markdown,
    render_text,
    scheduled_lambdas,
    splice_import_section,
    text_table,
    walkthrough_lower_bound,
)
from dbx_privatelink.aws.resolver import ResolverClient  # noqa: E402
from dbx_privatelink.catalog import default_catalog  # noqa: E402
from dbx_privatelink.wiring import NEEDS  # noqa: E402
from dbx_privatelink_local import yaml_cfn  # noqa: E402
from dbx_privatelink_local.aws.calls import buffer_body, parse_call  # noqa: E402
from dbx_privatelink_local.aws.cloudtrail import IdentityResolver  # noqa: E402
from dbx_privatelink_local.seed import DATA_PLANE_CIDR, DNS_VPC_CIDR  # noqa: E402
from dbx_privatelink_local.stack import LocalStack, LocalStackConfig  # noqa: E402
from dbx_privatelink_local.timescale import TIME_SCALE  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "RESULTS.md"
RUN_TIMEOUT_S = 300.0
POLL_S = 0.05
IMPORT_TIMEOUT_S = 300.0  # a busy shared machine stretches a cold import many times over

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


# --- AWS calls -----------------------------------------------------------------------------------------


class AwsCallCounter:
    """Counts every signed request that reaches moto, by access key, service and operation.

    A WSGI wrapper around the app inside the local stack's middleware (faults and the rate limiter are off,
    so every request passes through). Requests are attributed to a Lambda function afterwards, from the
    access key: the in-process runtime gives each function credentials of its own role from STS
    AssumeRole with the function's name as the session name; everything else (the benchmark's own
    clients, Step Functions invoking the Lambdas, the runtime's AssumeRole) uses other keys.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[tuple[str, str]] = Counter()  # (access key, "service:Operation")

    def wrap(self, app: WsgiApp) -> WsgiApp:
        def counting(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            try:
                call = parse_call(environ, buffer_body(environ))
                if call is not None:
                    key = (call.access_key_id, f"{call.service}:{call.action or '?'}")
                    with self._lock:
                        self._calls[key] += 1
            except Exception as exc:  # counting must never break a call
                print(f"bench: could not count a call: {exc!r}", file=sys.stderr)
            return app(environ, start_response)

        return counting

    def install(self, stack: LocalStack) -> None:
        middleware = stack.aws.middleware  # the app moto serves behind the middleware
        middleware.app = self.wrap(middleware.app)

    def snapshot(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self._calls)


def lambda_calls(
    calls: Counter[tuple[str, str]], functions: dict[str, str], resolver: IdentityResolver, account: str
) -> tuple[dict[str, int], dict[str, int]]:
    """({"service:Operation": n}, {step: n}) of the calls whose key belongs to a function's role session.

    `functions` maps deployed function names to step names. A session name is the function name cut to
    64 characters (STS's limit), so a function is found by prefix.
    """
    by_operation: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    owners: dict[str, str | None] = {}
    for (key, operation), n in calls.items():
        if key not in owners:
            identity = resolver.resolve(key, account)
            session = str(identity.get("arn", "")).rsplit("/", 1)[-1]
            owner = None
            if identity.get("type") == "AssumedRole" and session:
                owner = next((step for fn, step in functions.items() if fn.startswith(session)), None)
            owners[key] = owner
        owner = owners[key]
        if owner is not None:
            by_operation[operation] += n
            by_function[owner] += n
    return dict(by_operation), dict(by_function)


# --- runs ----------------------------------------------------------------------------------------------


def full_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    for _ in range(100):
        page = sfn.get_execution_history(**kwargs)
        events += page["events"]
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    return events


def measure_run(stack: LocalStack, counter: AwsCallCounter, spec: dict[str, Any], label: str) -> RunFigures:
    """Start one execution with the sample spec, wait for it, and take the deltas of every counter."""
    assert stack.runtime is not None and stack.deployment is not None
    sfn = stack.client("stepfunctions")
    machine_arn = stack.deployment.outputs["ReconcileStateMachineArn"]
    steps = {name: source.code_dir.name for name, source in stack.runtime.sources().items()}
    resolver = IdentityResolver(stack.aws.settings.default_identity_arn)

    stats_before = stack.runtime.stats()
    calls_before = counter.snapshot()
    dbx_before = stack.emulator.calls_by_operation()
    name = f"bench-{label.split()[0]}-{int(time.time() * 1000) % 10**8}"
    started = time.monotonic()
    execution = sfn.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps(spec))
    deadline = started + RUN_TIMEOUT_S
    while True:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: execution {name} still RUNNING after {RUN_TIMEOUT_S:.0f}s")
        time.sleep(POLL_S)
    wall = time.monotonic() - started
    history = full_history(sfn, execution["executionArn"])
    stats_after = stack.runtime.stats()
    calls = counter.snapshot() - calls_before
    dbx = delta(dbx_before, stack.emulator.calls_by_operation())

    invocations: dict[str, int] = {}
    lambda_seconds = 0.0
    for fn, after in stats_after.items():
        before = stats_before.get(fn)
        n = after.invocations - (before.invocations if before else 0)
        if n:
            invocations[steps.get(fn, fn)] = n
        lambda_seconds += after.total_duration_seconds - (before.total_duration_seconds if before else 0)
    aws_calls, _by_function = lambda_calls(calls, steps, resolver, stack.aws.account_id)

    notes: list[str] = []
    scheduled = {steps.get(fn, fn): n for fn, n in scheduled_lambdas(history).items()}
    if scheduled != invocations:
        notes.append(f"runtime invocations {invocations} differ from LambdaFunctionScheduled {scheduled}")
    if described["status"] != "SUCCEEDED":
        notes.append(
            f"execution ended {described['status']}: {described.get('error')} {described.get('cause')}"
        )
    return RunFigures(
        label=label,
        status=described["status"],
        wall_seconds=wall,
        transitions=count_transitions(history),
        history_events=len(history),
        invocations=invocations,
        aws_calls=aws_calls,
        aws_calls_by_function=_by_function,
        databricks_calls=dbx,
        lambda_seconds=lambda_seconds,
        notes=tuple(notes),
    )


# --- import times --------------------------------------------------------------------------------------

_IMPORT_HANDLER = textwrap.dedent(
    """
    import importlib.util, sys, time
    layer, code = sys.argv[1], sys.argv[2]
    sys.path[:0] = [layer, code]  # as on Lambda: the layer's tree (/opt/python) before the runtime's
    started, cpu = time.perf_counter(), time.process_time()
    spec = importlib.util.spec_from_file_location("app", code + "/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    assert callable(module.handler)
    print(time.perf_counter() - started, time.process_time() - cpu)
    """
)

_IMPORT_MODULE = textwrap.dedent(
    """
    import importlib, sys, time
    started, cpu = time.perf_counter(), time.process_time()
    importlib.import_module(sys.argv[1])
    print(time.perf_counter() - started, time.process_time() - cpu)
    """
)

# The floor no handler can go below: the dependencies every function imports, and Powertools' Logger,
# Metrics and Tracer created as dbx_privatelink.handler creates them.
_IMPORT_FLOOR = textwrap.dedent(
    """
    import sys, time
    sys.path[:0] = sys.argv[1:]  # the layer's tree
    started, cpu = time.perf_counter(), time.process_time()
    import boto3, requests, pydantic, aws_lambda_powertools
    from aws_lambda_powertools import Logger, Metrics, Tracer
    Logger(service="dbx-privatelink")
    Metrics(namespace="DbxPrivateLink", service="dbx-privatelink")
    Tracer(service="dbx-privatelink")
    print(time.perf_counter() - started, time.process_time() - cpu)
    """
)

# The floor, then what any handler that validates its input with pydantic pays besides: BaseModel imported
# and one model of one field built and used (pydantic's first build loads its schema machinery).
_IMPORT_VALIDATING_FLOOR = _IMPORT_FLOOR.replace(
    "print(",
    "from pydantic import BaseModel\n"
    "class Event(BaseModel):\n"
    "    workspace_key: str\n"
    "Event.model_validate({'workspace_key': 'w'})\n"
    "print(",
)


# What a first invocation may add to a cold start beyond the import (not in the handler figures): the
# models built on first use and the adapters imported where they are built. Timed in a fresh interpreter
# just after importing the function below (a light one), `prepare` untimed, then `what`.
_FIRST_USE_AFTER = "acquire_lease"
_FIRST_USE = textwrap.dedent(
    """
    import importlib.util, json, sys, time
    layer, code, sample, prepare, what = sys.argv[1:6]
    sys.path[:0] = [layer, code]
    spec = importlib.util.spec_from_file_location("app", code + "/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    exec(prepare)
    started, cpu = time.perf_counter(), time.process_time()
    exec(what)
    print(time.perf_counter() - started, time.process_time() - cpu)
    """
)
FIRST_USES: tuple[tuple[str, str, str], ...] = (
    (
        "the spec's models built (the first parse_spec, examples/us-east-1.yaml)",
        "from dbx_privatelink.spec import parse_spec\ndoc = json.loads(sample)",
        "parse_spec(doc)",
    ),
    ("the store (specs, leases, runs, the resource index)", "", "import dbx_privatelink.store"),
    (
        "drift's part of the store (its records)",
        "import dbx_privatelink.store",
        "import dbx_privatelink.drift_store",
    ),
    ("the ledger (shared resources)", "", "import dbx_privatelink.ledger"),
    (
        "what every Preflight run loads once its checks pass (reconcile/converged.py and reconcile/dns.py: the "
        "convergence check and the quota locks; imported there, as they import preflight), adapters apart",
        "import dbx_privatelink.reconcile.preflight, dbx_privatelink.aws.ec2, dbx_privatelink.aws.resolver, "
        "dbx_privatelink.databricks.client, dbx_privatelink.store, dbx_privatelink.ledger",
        "import dbx_privatelink.reconcile.converged, dbx_privatelink.reconcile.dns",
    ),
    (
        "the scan's Resolver comparison (ScanWorkspace, for a workspace with a dns section)",
        "import dbx_privatelink.drift.scan",
        "import dbx_privatelink.drift.scan_dns",
    ),
    ("the EC2 adapter", "", "import dbx_privatelink.aws.ec2"),
    ("the Route 53 Resolver adapter", "", "import dbx_privatelink.aws.resolver"),
    ("the Route 53 hosted-zone adapter", "", "import dbx_privatelink.aws.zones"),
    ("the Databricks client", "", "import dbx_privatelink.databricks.client"),
    ("dnspython and the DNS query adapter (VerifyDns only)", "", "import dbx_privatelink.aws.dns_query"),
    (
        "a boto3 EC2 client (its service model read: any code that calls EC2 pays it)",
        "import boto3",
        "boto3.client('ec2', region_name='us-east-1')",
    ),
)


def function_environment(step: str) -> dict[str, str]:
    """What a deployed function sees (template Globals plus every variable a step may need), dummy values;
    AWS_LAMBDA_FUNCTION_NAME and LAMBDA_TASK_ROOT set so Powertools behaves as on Lambda (Tracing: Active:
    the Tracer patches botocore and requests)."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    return {
        **keep,
        # Every variable a step may declare it needs (wiring.NEEDS), a placeholder unless set below.
        **{var: "1" for variables in NEEDS.values() for var in variables},
        "PYTHONDONTWRITEBYTECODE": "1",  # no __pycache__ in the tree; Lambda's code directory is read-only
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": f"dbx-privatelink-{step}",
        "LAMBDA_TASK_ROOT": str(REPO_ROOT / "functions" / step),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "OWNER_TAG": "dbx-privatelink",
        "TABLE_NAME": "dbx-privatelink-table",
        "DATABRICKS_HOST": "https://accounts.cloud.databricks.com",
        "DATABRICKS_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:dbx-AbCdEf",
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:dbx-privatelink",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        **template_constants(),
    }


@functools.cache
def template_constants() -> dict[str, str]:
    """The variables template.yaml's Globals give every function a fixed value (the others are parameters);
    read once (a parse takes about half a second, and every sample's environment asks for them)."""
    return yaml_cfn.function_constants(REPO_ROOT / "template.yaml")


def _time_subprocess(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds the child printed for what it timed."""
    done = subprocess.run(
        [sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[:3]} failed: {done.stderr.strip()[-800:]}")
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def build_layer(dest: Path) -> Path:
    """The layer as `sam build` makes it (layers/core/Makefile: the locked tree, compiled to bytecode), for
    this machine's platform so that its compiled dependencies load here; returns its python/ directory."""
    machine = platform.machine().lower()
    wheel_platform = "manylinux2014_aarch64" if machine in ("aarch64", "arm64") else "manylinux2014_x86_64"
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-f",
            "Makefile",
            "build-CoreLayer",
            f"ARTIFACTS_DIR={dest}",
            f"PLATFORM={wheel_platform}",
            f"PYTHON={sys.executable}",
        ],
        cwd=REPO_ROOT / "layers" / "core",
        check=True,
        timeout=IMPORT_TIMEOUT_S,
    )
    return dest / "python"


def source_copy(site: Path, dest: Path) -> Path:
    """The same tree without its bytecode: what the layer was before the build compiled it."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(site, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def _import_round(
    site: Path,
    codes: list[Path],
    floor: list[tuple[float, float]],
    samples: dict[str, list[tuple[float, float]]],
    paired: dict[str, list[float]] | None = None,
) -> None:
    """One round: the floor, then every handler once. With `paired`, the floor is measured again just
    before each handler and the handler's time over it is kept: a slow spell of the machine (this one is a
    shared VM) then touches both sides of each ratio alike."""

    def floor_sample() -> tuple[float, float]:
        sample = _time_subprocess(["-c", _IMPORT_FLOOR, str(site)], function_environment("import"))
        floor.append(sample)
        return sample

    if paired is None:
        floor_sample()
    for code in codes:
        before = floor_sample() if paired is not None else None
        args = ["-c", _IMPORT_HANDLER, str(site), str(code)]
        sample = _time_subprocess(args, function_environment(code.name))
        samples[code.name].append(sample)
        if paired is not None and before is not None:
            paired[code.name].append(sample[0] / before[0])


def measure_first_use(site: Path, repeats: int) -> dict[str, float]:
    """FIRST_USES against the built layer: label -> median ms over `repeats` fresh interpreters."""
    sample = json.dumps(yaml.safe_load((REPO_ROOT / "examples" / "us-east-1.yaml").read_text()))
    code = str(REPO_ROOT / "functions" / _FIRST_USE_AFTER)
    env = function_environment(_FIRST_USE_AFTER)
    return {
        label: median_ms(
            [
                _time_subprocess(["-c", _FIRST_USE, str(site), code, sample, prepare, what], env)[0]
                for _ in range(repeats)
            ]
        )
        for label, prepare, what in FIRST_USES
    }


def measure_imports(repeats: int) -> ImportFigures:
    """Each handler and the floor against the layer as built, in `repeats` rounds (a round: every handler
    once, each just after a floor of its own: the ratio is paired), so that a change of the machine's load
    touches both alike; the same rounds against the layer's tree as source (one floor a round) give the
    column before the build compiled it."""
    work = REPO_ROOT / ".aws-sam" / "bench-layer"
    site = build_layer(work / "built")
    source = source_copy(site, work / "source" / "python")
    codes = sorted(p for p in (REPO_ROOT / "functions").iterdir() if (p / "app.py").is_file())
    samples: dict[str, list[tuple[float, float]]] = {code.name: [] for code in codes}
    paired: dict[str, list[float]] = {code.name: [] for code in codes}
    source_samples: dict[str, list[tuple[float, float]]] = {code.name: [] for code in codes}
    floor: list[tuple[float, float]] = []
    source_floor: list[tuple[float, float]] = []
    validating: list[float] = []
    validating_ratio: list[float] = []
    for _ in range(repeats):
        env = function_environment("import")
        before = _time_subprocess(["-c", _IMPORT_FLOOR, str(site)], env)[0]
        validating.append(_time_subprocess(["-c", _IMPORT_VALIDATING_FLOOR, str(site)], env)[0])
        validating_ratio.append(validating[-1] / before)
        _import_round(site, codes, floor, samples, paired)
        _import_round(source, codes, source_floor, source_samples)
    first_use = measure_first_use(site, repeats)
    floor_env = function_environment("import")
    baseline = median_ms(
        [_time_subprocess(["-c", _IMPORT_MODULE, "boto3"], floor_env)[0] for _ in range(repeats)]
    )
    try:
        sdk: float | None = median_ms(
            [_time_subprocess(["-c", _IMPORT_MODULE, "databricks.sdk"], floor_env)[0] for _ in range(repeats)]
        )
    except RuntimeError as exc:
        print(f"bench: databricks.sdk not measured: {exc}", file=sys.stderr)
        sdk = None
    return ImportFigures(
        repeats=repeats,
        handlers_ms={name: median_ms([w for w, _ in s]) for name, s in samples.items()},
        handlers_ratio={name: statistics.median(r) for name, r in paired.items()},
        validating_floor_ms=median_ms(validating),
        validating_floor_ratio=statistics.median(validating_ratio),
        handlers_cpu_ms={name: median_ms([c for _, c in s]) for name, s in samples.items()},
        floor_ms=median_ms([w for w, _ in floor]),
        floor_cpu_ms=median_ms([c for _, c in floor]),
        sdk_ms=sdk,
        baseline_ms=baseline,
        source_handlers_ms={name: median_ms([w for w, _ in s]) for name, s in source_samples.items()},
        source_floor_ms=median_ms([w for w, _ in source_floor]),
        first_use_after=_FIRST_USE_AFTER,
        first_use_ms=first_use,
    )


# --- side by side with the baseline script --------------------------------------------------------------


def census(stack: LocalStack) -> dict[str, int]:
    """How many resources of each kind the run's procedures make exist on the stack, AWS and Databricks."""
    ec2, r53r = stack.client("ec2"), stack.client("route53resolver")
    endpoints = [
        e
        for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]
        if e["State"].lower() not in ("deleted", "deleting")
    ]
    resolver = ResolverClient(r53r, ec2)  # every page, as the application reads them
    backend = stack.emulator.backend
    return {
        "VPC endpoints": len(endpoints),
        "security groups": len(ec2.describe_security_groups()["SecurityGroups"]),
        "Resolver endpoints": len(resolver.list_endpoints()),
        # Rules of the account: the auto-defined Internet Resolver rule is Route 53 Resolver's own.
        "Resolver rules": sum(1 for r in resolver.list_rules() if not r.autodefined),
        "Resolver rule associations": len(resolver.list_associations()),
        "endpoint registrations": len(backend.endpoints),
        "private access settings": len(backend.private_access),
        "networks": len(backend.networks),
        "workspaces": sum(1 for w in backend.workspaces.values() if not w.deleting),
    }


def emulator_delays(stack: LocalStack) -> EmulatorDelays:
    """The delays this stack's emulators are configured with (emulated seconds)."""
    aws, databricks = stack.aws.settings, stack.emulator.config
    return EmulatorDelays(
        endpoint_accept_s=databricks.endpoint_accept_delay_s,
        accepted_available_s=aws.accepted_endpoint_available_after,
        private_dns_s=aws.private_dns_update_after,
        workspace_running_s=databricks.workspace_provision_delay_s,
        aws_endpoint_available_s=aws.aws_endpoint_available_after,
        gateway_endpoint_available_s=aws.gateway_endpoint_available_after,
        # The outbound endpoint OPERATIONAL, then the rules' associations COMPLETE (rules are at once).
        resolver_s=aws.resolver_endpoint_operational_after + aws.rule_association_complete_after,
    )


def ours_run(run: RunFigures, created: dict[str, int], time_scale: float) -> ProcedureRun:
    return ProcedureRun(
        status=run.status,
        emulated_seconds=run.wall_seconds / time_scale,
        aws_calls=run.aws_calls,
        databricks_calls=run.databricks_calls,
        created=created,
    )


def baseline_inputs(stack: LocalStack) -> BaselineInputs:
    """The seeded environment as the walkthrough's reader notes it down (the sample spec's resources)."""
    env = stack.environment
    assert env is not None
    services = default_catalog().region(env.region)
    assert services is not None
    return BaselineInputs(
        region=env.region,
        vpc_id=env.vpc_id,
        workspace_subnet_ids=env.workspace_subnet_ids,
        workspace_security_group_id=env.workspace_sg_id,
        endpoint_subnet_id=env.endpoint_subnet_id,
        endpoint_security_group_id=env.endpoint_sg_id,
        workspace_service=services.workspace_service,
        relay_service=services.relay_service,
        credentials_id=env.credentials_id,
        storage_configuration_id=env.storage_configuration_id,
        workspace_name="privatelink-test",
        deployment_name="privatelink-test",
        data_plane_cidr=DATA_PLANE_CIDR,
        dns_vpc_id=env.dns_vpc_id,
        dns_vpc_cidr=DNS_VPC_CIDR,
        resolver_subnet_ids=env.dns_subnet_ids,
        corporate_dns_ips=env.corporate_dns_ips,
    )


def failure_text(exc: Exception) -> str:
    """Where the baseline stopped, short enough for a table cell: an AWS error's code and operation."""
    if isinstance(exc, ClientError):
        return f"{exc.response['Error'].get('Code', '?')} on {exc.operation_name}"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''}"


def measure_baseline(time_scale: float) -> Procedure:
    """The baseline script twice on a fresh local stack, as an IAM user of its own (its calls are told
    apart by access key)."""
    with LocalStack(LocalStackConfig(time_scale=time_scale, parameters={"ScanRateMinutes": "1440"})) as stack:
        counter = AwsCallCounter()
        counter.install(stack)
        iam = stack.client("iam")
        iam.create_user(UserName="baseline-operator")
        key = iam.create_access_key(UserName="baseline-operator")["AccessKey"]
        session = boto3.session.Session(
            region_name=stack.config.region,
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )
        ec2 = session.client("ec2", endpoint_url=stack.aws.endpoint_url)
        resolver = session.client("route53resolver", endpoint_url=stack.aws.endpoint_url)
        info = stack.info
        account = AccountClient(
            host=info.databricks_host,
            account_id=info.account_id,
            client_id=info.client_id,
            client_secret=info.client_secret,
            auth_type="oauth-m2m",
        )
        inputs = baseline_inputs(stack)
        runs: list[ProcedureRun] = []
        for _ in range(2):
            before, calls_before = census(stack), counter.snapshot()
            dbx_before = stack.emulator.calls_by_operation()
            started = time.monotonic()
            try:
                run_baseline(ec2, resolver, account, inputs, sleep=TIME_SCALE.sleep)
                status = "SUCCEEDED"
            except Exception as exc:  # measured, not fixed: the second run stops where a copy is refused
                status = f"FAILED: {failure_text(exc)}"
            elapsed = time.monotonic() - started
            calls = {
                op: n - calls_before.get((k, op), 0)
                for (k, op), n in counter.snapshot().items()
                if k == key["AccessKeyId"] and n > calls_before.get((k, op), 0)
            }
            runs.append(
                ProcedureRun(
                    status=status,
                    emulated_seconds=elapsed / time_scale,
                    aws_calls=calls,
                    databricks_calls=delta(dbx_before, stack.emulator.calls_by_operation()),
                    created=census_delta(before, census(stack)),
                )
            )
    return Procedure(
        "the baseline: bench/baseline.py, boto3 + databricks-sdk in the walkthrough's order, polling every 5 s",
        runs[0],
        runs[1],
    )


# --- main ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="local-stack time scale (1.0: an emulated second is a wall second; the emulated delays dominate)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="fresh interpreters per import time (5)")
    imports_only = parser.add_mutually_exclusive_group()
    imports_only.add_argument("--no-imports", action="store_true", help="skip the import-time measurements")
    imports_only.add_argument(
        "--imports-only",
        action="store_true",
        help="measure only the handler imports against the floor; RESULTS.md gets only that section replaced",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the baseline script (bench/baseline.py)"
    )
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    machine = Machine(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        nproc=os.cpu_count() or 0,
        python=platform.python_version(),
        platform=f"{platform.system()} {platform.machine()}",
        time_scale=args.time_scale,
    )
    # Import times first, on a quiet machine (the local stack's threads would add noise).
    imports = None if args.no_imports else measure_imports(max(1, args.repeats))
    if imports is not None and args.imports_only:
        title, explanation, headers, rows = import_section(imports)
        print(f"{title}\n{explanation}\n\n{text_table(headers, rows)}")
        print(f"load average {load_before:.1f} / {os.getloadavg()[0]:.1f} (before / after)")
        if not args.no_write:
            section = f"## {title}\n\n{explanation}\n\n{markdown_table(headers, rows)}\n"
            current = RESULTS.read_text() if RESULTS.exists() else ""
            RESULTS.write_text(splice_import_section(current, section))
            print(f"written: {RESULTS.relative_to(REPO_ROOT)} (import section only)")
        return 0

    runs: list[RunFigures] = []
    # A daily drift scan: none fires during the runs, so the figures count only the executions' calls.
    with LocalStack(
        LocalStackConfig(time_scale=args.time_scale, parameters={"ScanRateMinutes": "1440"})
    ) as stack:
        assert stack.environment is not None
        counter = AwsCallCounter()
        counter.install(stack)
        # The sample workspace with custom DNS: the seeds' whole walkthrough, as the baseline script does it.
        spec = stack.environment.sample_spec(custom_dns=True)
        created: list[dict[str, int]] = []
        for label in ("first run", "second run"):
            before = census(stack)
            runs.append(measure_run(stack, counter, spec, label))
            created.append(census_delta(before, census(stack)))
        bound = walkthrough_lower_bound(emulator_delays(stack))
    ours = Procedure(
        "dbx-privatelink: one execution of the reconcile state machine per run",
        ours_run(runs[0], created[0], args.time_scale),
        ours_run(runs[1], created[1], args.time_scale),
    )
    side_by_side = (
        None
        if args.no_baseline
        else SideBySide(args.time_scale, bound, ours, measure_baseline(args.time_scale))
    )

    machine = replace(machine, load=f"{load_before:.1f} / {os.getloadavg()[0]:.1f}")
    report = BenchReport(
        machine=machine,
        runs=runs,
        imports=imports,
        notes=(
            "first run: creates everything (endpoints, registrations, private access settings, network, "
            "workspace, Route 53 Resolver endpoint, rules and associations); second run: same spec, nothing "
            "to change.",
        ),
        side_by_side=side_by_side,
    )
    print(render_text(report))
    if not args.no_write:
        # The "## Fleet" section is bench/fleet.py's (make bench-fleet): kept as it is, at the end.
        current = RESULTS.read_text() if RESULTS.exists() else ""
        fleet = "## Fleet" + current.split("\n## Fleet", 1)[1] if "\n## Fleet" in current else ""
        RESULTS.write_text(
            render_markdown(report).rstrip() + ("\n\n" + fleet.rstrip() if fleet else "") + "\n"
        )
        print(f"written: {RESULTS.relative_to(REPO_ROOT)}")
    return 0 if all(r.status == "SUCCEEDED" for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
