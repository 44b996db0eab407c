"""`make bench`: figures of one reconcile of the sample workspace on the local stack, run twice.

    .venv/bin/python bench/run.py [--time-scale 0.01] [--repeats 3] [--no-imports] [--no-write]

Prints a text report and writes bench/RESULTS.md. What each figure means: bench/README.md.
Performance is measured here, never asserted as wall-clock in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT, REPO_ROOT / "layers" / "core", REPO_ROOT / "local"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench.report import (  # noqa: E402
    BenchReport,
    ImportFigures,
    Machine,
    RunFigures,
    count_transitions,
    delta,
    median_ms,
    render_markdown,
    render_text,
    scheduled_lambdas,
)
from dbx_privatelink.wiring import NEEDS  # noqa: E402
from dbx_privatelink_local.aws.calls import buffer_body, parse_call  # noqa: E402
from dbx_privatelink_local.aws.cloudtrail import IdentityResolver  # noqa: E402
from dbx_privatelink_local.stack import LocalStack, LocalStackConfig  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "RESULTS.md"
RUN_TIMEOUT_S = 300.0
POLL_S = 0.05
IMPORT_TIMEOUT_S = 60.0

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
    sys.path[:0] = [layer, code]
    started = time.perf_counter()
    spec = importlib.util.spec_from_file_location("app", code + "/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    assert callable(module.handler)
    print(time.perf_counter() - started)
    """
)

_IMPORT_MODULE = textwrap.dedent(
    """
    import importlib, sys, time
    started = time.perf_counter()
    importlib.import_module(sys.argv[1])
    print(time.perf_counter() - started)
    """
)


def function_environment(step: str) -> dict[str, str]:
    """What a deployed function sees (template Globals plus every variable a step may need), dummy values;
    AWS_LAMBDA_FUNCTION_NAME set so Powertools behaves as on Lambda (Tracing: Active)."""
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
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "OWNER_TAG": "dbx-privatelink",
        "TABLE_NAME": "dbx-privatelink-table",
        "DATABRICKS_HOST": "https://accounts.cloud.databricks.com",
        "DATABRICKS_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:dbx-AbCdEf",
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:dbx-privatelink",
        "POWERTOOLS_SERVICE_NAME": "dbx-privatelink",
        "POWERTOOLS_METRICS_NAMESPACE": "DbxPrivateLink",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def _time_subprocess(args: list[str], env: dict[str, str]) -> float:
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
    return float(done.stdout.strip().splitlines()[-1])


def measure_imports(repeats: int) -> ImportFigures:
    layer = REPO_ROOT / "layers" / "core"
    handlers: dict[str, float] = {}
    for code in sorted(p for p in (REPO_ROOT / "functions").iterdir() if (p / "app.py").is_file()):
        env = function_environment(code.name)
        samples = [
            _time_subprocess(["-c", _IMPORT_HANDLER, str(layer), str(code)], env) for _ in range(repeats)
        ]
        handlers[code.name] = median_ms(samples)
    env = function_environment("import")
    baseline = median_ms([_time_subprocess(["-c", _IMPORT_MODULE, "boto3"], env) for _ in range(repeats)])
    try:
        sdk: float | None = median_ms(
            [_time_subprocess(["-c", _IMPORT_MODULE, "databricks.sdk"], env) for _ in range(repeats)]
        )
    except RuntimeError as exc:
        print(f"bench: databricks.sdk not measured: {exc}", file=sys.stderr)
        sdk = None
    return ImportFigures(repeats=repeats, handlers_ms=handlers, sdk_ms=sdk, baseline_ms=baseline)


# --- main ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--time-scale", type=float, default=0.01, help="local-stack time scale (0.01)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh interpreters per import time (3)")
    parser.add_argument("--no-imports", action="store_true", help="skip the import-time measurements")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
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

    runs: list[RunFigures] = []
    # A daily drift scan: none fires during the runs, so the figures count only the executions' calls.
    with LocalStack(
        LocalStackConfig(time_scale=args.time_scale, parameters={"ScanRateMinutes": "1440"})
    ) as stack:
        assert stack.environment is not None
        counter = AwsCallCounter()
        counter.install(stack)
        spec = stack.environment.sample_spec()
        for label in ("first run", "second run"):
            runs.append(measure_run(stack, counter, spec, label))

    machine = replace(machine, load=f"{load_before:.1f} / {os.getloadavg()[0]:.1f}")
    report = BenchReport(
        machine=machine,
        runs=runs,
        imports=imports,
        notes=(
            "first run: creates everything (endpoints, registrations, private access settings, network, "
            "workspace); second run: same spec, nothing to change.",
        ),
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
