"""`make bench-fleet`: N workspaces started at once on the local stack with AWS's rate limits on.

    .venv/bin/python bench/fleet.py [--sizes 10 25 50] [--time-scale 0.5] [--pacing shared off] [--off-sizes 10 25] [--no-write]

For each N, a fresh local stack (nothing shared exists yet) with EC2's endpoint-mutation bucket (4, 0.3/s)
and Route 53 Resolver's 5 requests/s enforced account-wide; N workspaces with custom DNS through ONE new
DNS VPC; every fifth workspace joins the VPC of the one before it (on subnets and a group of its own).
All N executions are started at once and followed to the end, then all N are applied again. Reported per
N: executions SUCCEEDED / FAILED, duplicate resources of every kind (must be 0), the time from the first
start to the last end in emulated seconds against the rate-limit bound, calls the limits refused, Lambda
invocations and state transitions per workspace, and the mutating calls of the second apply (must be 0).

The rate-limit bound: what AWS's rates alone impose on the calls the fleet needed (the calls each limit let
through), after the bucket's burst:
    bound = max((EC2 endpoint mutations - 4) / 0.3, (Route 53 Resolver calls - 5) / 5)   emulated seconds.
Performance is measured here and written to bench/RESULTS.md (the "Fleet" section), never asserted in tests.
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import json
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT, REPO_ROOT / "layers" / "core", REPO_ROOT / "local"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench.report import count_transitions, markdown_table, scheduled_lambdas, text_table  # noqa: E402
from bench.run import full_history  # noqa: E402
from dbx_privatelink.aws.resolver import ResolverClient, normalize_domain  # noqa: E402
from dbx_privatelink.rates import EC2_ENDPOINT_MUTATIONS, ROUTE53_RESOLVER  # noqa: E402
from dbx_privatelink_local.aws import LocalAwsSettings  # noqa: E402
from dbx_privatelink_local.seed import DataPlane, create_data_plane, workspace_security_group  # noqa: E402
from dbx_privatelink_local.stack import LocalStack, LocalStackConfig  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "RESULTS.md"
SECTION = "## Fleet"
SHARE_EVERY = 5  # every fifth workspace joins the VPC of the one before it
POLL_S = 0.5


@dataclass
class FleetFigures:
    size: int
    pacing: str
    vpcs: int
    succeeded: int = 0
    failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    duplicates: dict[str, int] = field(default_factory=dict)
    emulated_s: float = 0.0
    wall_s: float = 0.0
    ec2_mutations: int = 0
    resolver_calls: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    lambdas: int = 0
    transitions: int = 0
    second_mutations: int = 0
    second_succeeded: int = 0
    second_failures: Counter[str] = field(default_factory=Counter)
    ec2_drained_s: float = 0.0  # the last EC2 endpoint mutation, emulated seconds after the first start
    median_end_s: float = 0.0  # half the executions had ended by then

    @property
    def bound_s(self) -> float:
        ec2 = max(0, self.ec2_mutations - EC2_ENDPOINT_MUTATIONS.burst) / EC2_ENDPOINT_MUTATIONS.rate
        resolver = max(0, self.resolver_calls - ROUTE53_RESOLVER.burst) / ROUTE53_RESOLVER.rate
        return max(ec2, resolver)

    @property
    def ratio(self) -> float:
        return self.emulated_s / self.bound_s if self.bound_s else 0.0


def _dns_vpc(ec2: Any, azs: list[str]) -> tuple[str, list[str]]:
    """A new DNS VPC with two resolver subnets in two AZs: nothing of Route 53 Resolver in it yet."""
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/24")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.99.0.{i * 128}/25", AvailabilityZone=azs[i])["Subnet"][
            "SubnetId"
        ]
        for i in range(2)
    ]
    return vpc, subnets


def fleet_specs(stack: LocalStack, size: int) -> tuple[list[dict[str, Any]], int]:
    """N specs: custom DNS through one new DNS VPC; every fifth workspace in the VPC of the one before."""
    assert stack.environment is not None
    ec2 = stack.client("ec2")
    azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    dns_vpc, dns_subnets = _dns_vpc(ec2, azs)
    specs: list[dict[str, Any]] = []
    plane: DataPlane | None = None
    vpcs = 0
    for n in range(size):
        key = f"fleet-{n:03d}"
        spec = copy.deepcopy(stack.environment.sample_spec(key, custom_dns=True))
        spec["dns"]["custom_dns"].update(dns_vpc_id=dns_vpc, resolver_subnet_ids=dns_subnets)
        spec["dns"]["custom_dns"].pop("allowed_cidrs", None)
        spec["network"].pop("standby", None)
        joins = n % SHARE_EVERY == SHARE_EVERY - 1 and plane is not None
        if not joins:
            plane = create_data_plane(ec2, f"10.{100 + n // 64}.{n % 64 * 4}.0/22", key, azs)
            vpcs += 1
            subnets, group = plane.workspace_subnet_ids, plane.workspace_sg_id
        else:
            assert plane is not None
            free = list(
                next(ipaddress.ip_network(plane.cidr).subnets(prefixlen_diff=2)).subnets(new_prefix=25)
            )
            subnets = [
                ec2.create_subnet(VpcId=plane.vpc_id, CidrBlock=str(free[i]), AvailabilityZone=azs[i])[
                    "Subnet"
                ]["SubnetId"]
                for i in range(2)
            ]
            group = workspace_security_group(ec2, plane.vpc_id, f"{key}-sg")
        spec["network"].update(
            vpc_id=plane.vpc_id,
            workspace_subnet_ids=subnets,
            workspace_security_group_ids=[group],
            endpoint_subnet_ids=[plane.endpoint_subnet_id],
            endpoint_security_group_id=plane.endpoint_sg_id,
        )
        specs.append(spec)
    return specs, vpcs


def duplicates(stack: LocalStack) -> dict[str, int]:
    """Resources of each kind that exist more than once where one must exist (extra copies counted)."""
    ec2, r53r = stack.client("ec2"), stack.client("route53resolver")

    def extra(counter: Counter[Any]) -> int:
        return sum(n - 1 for n in counter.values() if n > 1)

    endpoints = [
        e
        for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]
        if e["State"].lower() not in ("deleted", "deleting")
    ]
    # Read as the application reads them: every page (a fleet outgrows one), the auto-defined rules left out.
    resolver = ResolverClient(r53r, ec2)
    resolver_endpoints = resolver.list_endpoints()
    rules = [r for r in resolver.list_rules() if not r.autodefined]
    associations = resolver.list_associations()
    groups = [
        g
        for g in ec2.describe_security_groups()["SecurityGroups"]
        if g["GroupName"].startswith("dbx-privatelink-")
    ]
    backend = stack.emulator.backend
    return {
        "VPC endpoints (per VPC and service)": extra(
            Counter((e["VpcId"], e["ServiceName"]) for e in endpoints)
        ),
        "registrations (per AWS endpoint)": extra(
            Counter(r.aws_vpc_endpoint_id for r in backend.endpoints.values())
        ),
        "Resolver endpoints (per VPC and direction)": extra(
            Counter((e.vpc_id, e.direction) for e in resolver_endpoints)
        ),
        "Resolver groups (per VPC and name)": extra(Counter((g["VpcId"], g["GroupName"]) for g in groups)),
        "Resolver rules (per domain and type)": extra(
            Counter((normalize_domain(r.domain), r.rule_type) for r in rules)
        ),
        "rule associations (per rule and VPC)": extra(
            Counter((a.resolver_rule_id, a.vpc_id) for a in associations)
        ),
        "networks, PAS, workspaces (per name)": extra(
            Counter(n.network_name for n in backend.networks.values())
            + Counter(p.private_access_settings_name for p in backend.private_access.values())
            + Counter(w.workspace_name for w in backend.workspaces.values())
        ),
    }


def _mutations(stack: LocalStack) -> int:
    stack.aws.cloudtrail.flush()
    aws = len(stack.aws.cloudtrail.events())
    dbx = sum(
        n
        for op, n in stack.emulator.calls_by_operation().items()
        if op.split(" ", 1)[0] in {"POST", "PUT", "PATCH", "DELETE"} and "/oidc/" not in op
    )
    return aws + dbx


def failure(sfn: Any, described: dict[str, Any]) -> str:
    """Where and why an execution did not succeed: the last task state it entered, the error, the cause's
    start (a timed-out Lambda's cause names only its request id, so the state is what tells)."""
    error = str(described.get("error") or described["status"])
    by_id = {e["id"]: e for e in full_history(sfn, described["executionArn"])}
    where = "-"
    for e in by_id.values():
        details = e.get("lambdaFunctionFailedEventDetails") or e.get("lambdaFunctionTimedOutEventDetails")
        if details and details.get("error") == error:
            # the task state this Lambda belongs to: walk back to where it was entered
            back: dict[str, Any] | None = e
            while back is not None and back["type"] != "TaskStateEntered":
                back = by_id.get(back.get("previousEventId", 0))
            if back is not None:
                where = back["stateEnteredEventDetails"]["name"]
    cause = str(described.get("cause") or "")
    cause = cause.split("Error:", 1)[-1].strip() if "Sandbox.Timedout" in error else cause
    return f"{where}: {error}: {cause[:120]}"


def run_all(
    stack: LocalStack, specs: list[dict[str, Any]], label: str, timeout_s: float
) -> list[dict[str, Any]]:
    """Start one execution per spec at once, follow them to the end; the described executions."""
    assert stack.deployment is not None
    sfn = stack.client("stepfunctions")
    arn = stack.deployment.outputs["ReconcileStateMachineArn"]
    started = [
        sfn.start_execution(stateMachineArn=arn, name=f"{s['workspace_key']}-{label}", input=json.dumps(s))[
            "executionArn"
        ]
        for s in specs
    ]
    done: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while len(done) < len(started) and time.monotonic() < deadline:
        for execution in started:
            if execution not in done:
                described = sfn.describe_execution(executionArn=execution)
                if described["status"] != "RUNNING":
                    done[execution] = described
        time.sleep(POLL_S)
    return [done.get(e) or sfn.describe_execution(executionArn=e) for e in started]


def _entered(history: list[dict[str, Any]]) -> list[tuple[float, str]]:
    """(timestamp, state name) of every state an execution entered, in order."""
    return [
        (e["timestamp"].timestamp(), e["stateEnteredEventDetails"]["name"])
        for e in history
        if str(e.get("type", "")).endswith("StateEntered") and "stateEnteredEventDetails" in e
    ]


def where_the_time_goes(
    histories: list[list[dict[str, Any]]], mutations: list[float], t_first: float, time_scale: float
) -> str:
    """Where the fleet's time went: when each workspace first entered its milestone states (median and
    last, emulated seconds after the first start), and the EC2 schedule's idle time (a gap between two
    mutations while AWS's bucket stood full: capacity nobody used) with the states the executions were in meanwhile."""
    entered = [_entered(h) for h in histories]
    milestones = (
        "Preflight",
        "EnsureEndpoints",
        "RegisterEndpoints",
        "EnablePrivateDns",
        "EnsureWorkspace",
        "CheckWorkspaceRunning",
        "VerifyDns",
        "RecordAndRelease",
    )
    lines = ["milestones (emulated s after the first start: median / last):"]
    for name in milestones:
        firsts = (next((t for t, n in states if n == name), None) for states in entered)
        times = sorted((t - t_first) / time_scale for t in firsts if t is not None)
        if times:
            lines.append(f"  {name:<24} {times[len(times) // 2]:7.0f} / {times[-1]:7.0f}")
    interval = 1 / EC2_ENDPOINT_MUTATIONS.rate
    ordered = sorted((t - t_first) / time_scale for t in mutations)
    # Idle: the time AWS's bucket stood full, capacity nobody used (a pause the bucket absorbs, made up by
    # calls made together after it, costs nothing; the schedule keeps the bucket near empty while it runs).
    capacity, rate = EC2_ENDPOINT_MUTATIONS.burst, EC2_ENDPOINT_MUTATIONS.rate
    tokens, last = float(capacity), ordered[0] if ordered else 0.0
    full: list[tuple[float, float]] = []
    for t in ordered:
        level = tokens + (t - last) * rate
        if level > capacity:
            full.append((last + (capacity - tokens) / rate, t))
            level = capacity
        tokens, last = max(0.0, level - 1), t
    idle = sum(b - a for a, b in full)
    gaps = [(a, b) for a, b in full if b - a >= 0.5 * interval]
    lines.append(
        f"EC2 schedule idle (AWS's bucket full): {idle:.0f} s, {len(gaps)} gaps (first mutation at {ordered[0] if ordered else 0:.0f} s)"
    )
    waiting: Counter[str] = Counter()
    for a, b in gaps:
        middle = t_first + (a + b) / 2 * time_scale
        for states in entered:
            current = [n for t, n in states if t <= middle]
            if current and current[-1] != "RecordAndRelease":
                waiting[current[-1]] += round(b - a)
    lines.append(
        "  executions during the gaps, by state (state x idle seconds): "
        + ", ".join(f"{n} {c}" for n, c in waiting.most_common(8))
    )
    return "\n".join(lines)


def cpu_by_function(stack: LocalStack) -> str:
    """The local stack is one process: the CPU each function's invocations took on it, most first."""
    assert stack.deployment is not None
    logical = {name: f.logical_id for name, f in stack.deployment.functions.items()}
    stats = sorted(stack.runtime.stats().items(), key=lambda kv: -kv[1].cpu_seconds)
    total = sum(s.cpu_seconds for _, s in stats)
    return f"functions' CPU on the local stack: {total:.0f} s (s / invocations): " + ", ".join(
        f"{logical.get(name, name)} {s.cpu_seconds:.1f}/{s.invocations}" for name, s in stats[:10]
    )


def measure(size: int, time_scale: float, pacing: str) -> FleetFigures:
    config = LocalStackConfig(
        time_scale=time_scale,
        aws=LocalAwsSettings(aws_rate_limits=True),
        # A daily scan: no drift scan during the runs; the rate pacing as asked.
        parameters={"ScanRateMinutes": "1440", "RatePacing": pacing, "LogLevel": "ERROR"},
    )
    with LocalStack(config) as stack:
        specs, vpcs = fleet_specs(stack, size)
        figures = FleetFigures(size=size, pacing=pacing, vpcs=vpcs)
        stack.aws.rate_limits.reset()
        # Generous: a queue of EC2 endpoint mutations at 0.3/s for the whole fleet, twice over, then some.
        timeout = (size * 8 / 0.3 * 2 + 1200) * time_scale
        t0 = time.monotonic()
        first = run_all(stack, specs, "first", timeout)
        figures.wall_s = time.monotonic() - t0
        ends = sorted(d["stopDate"].timestamp() for d in first if d.get("stopDate"))
        starts = [d["startDate"].timestamp() for d in first]
        t_first = min(starts)
        figures.emulated_s = (ends[-1] - t_first) / time_scale if ends else 0.0
        figures.median_end_s = (ends[len(ends) // 2] - t_first) / time_scale if ends else 0.0
        stack.aws.cloudtrail.flush()
        mutations = [
            datetime.fromisoformat(e["detail"]["eventTime"].replace("Z", "+00:00")).timestamp()
            for e in stack.aws.cloudtrail.events()
            if e["detail"]["eventName"] in ("CreateVpcEndpoint", "ModifyVpcEndpoint")
        ]
        figures.ec2_drained_s = (max(mutations) - t_first) / time_scale if mutations else 0.0
        # Where the EC2 schedule ran below AWS's rate (18 calls a minute at 0.3/s): calls per emulated minute.
        per_minute = Counter(int((t - t_first) / time_scale // 60) for t in mutations)
        print(
            f"N={size} {pacing}: EC2 endpoint mutations per emulated minute: "
            + " ".join(str(per_minute.get(m, 0)) for m in range(max(per_minute, default=-1) + 1)),
            file=sys.stderr,
            flush=True,
        )
        sfn = stack.client("stepfunctions")
        for d in first:
            if d["status"] == "SUCCEEDED":
                figures.succeeded += 1
            else:
                figures.failed += 1
                figures.failures[failure(sfn, d)] += 1
        allowed = stack.aws.rate_limits.allowed()
        figures.refused = stack.aws.rate_limits.refused()
        figures.ec2_mutations = sum(n for k, n in allowed.items() if k.startswith("ec2:"))
        figures.resolver_calls = sum(n for k, n in allowed.items() if k.startswith("route53resolver:"))
        histories = [full_history(sfn, d["executionArn"]) for d in first]
        for history in histories:
            figures.transitions += count_transitions(history)
            figures.lambdas += sum(scheduled_lambdas(history).values())
        print(where_the_time_goes(histories, mutations, t_first, time_scale), file=sys.stderr, flush=True)
        print(cpu_by_function(stack), file=sys.stderr, flush=True)
        figures.duplicates = duplicates(stack)
        before = _mutations(stack)
        second = run_all(stack, specs, "second", timeout)
        figures.second_succeeded = sum(1 for d in second if d["status"] == "SUCCEEDED")
        figures.second_failures = Counter(failure(sfn, d) for d in second if d["status"] != "SUCCEEDED")
        figures.second_mutations = _mutations(stack) - before
        return figures


def _rows(results: list[FleetFigures]) -> list[list[str]]:
    rows = []
    for f in results:
        refused = sum(f.refused.values())
        rows.append(
            [
                f"{f.size} ({f.vpcs} VPCs)",
                f.pacing,
                f"{f.succeeded} / {f.failed}"
                + (f" ({', '.join(f'{k} {n}' for k, n in f.failures.items())})" if f.failures else ""),
                str(sum(f.duplicates.values())),
                f"{f.emulated_s:.0f} (half by {f.median_end_s:.0f}, EC2 queue drained at {f.ec2_drained_s:.0f})",
                f"{f.bound_s:.0f}",
                f"{f.ratio:.2f}x",
                f"{f.ec2_mutations} / {f.resolver_calls}",
                f"{refused} ({refused / f.size:.1f})",
                f"{f.lambdas / f.size:.1f}",
                f"{f.transitions / f.size:.1f}",
                f"{f.second_succeeded} / {f.second_mutations}",
            ]
        )
    return rows


HEADERS = [
    "workspaces",
    "pacing",
    "SUCCEEDED / FAILED",
    "duplicates",
    "time (emulated s)",
    "rate-limit bound (s)",
    "time / bound",
    "EC2 mutations / Resolver calls",
    "refused (per workspace)",
    "Lambda invocations per workspace",
    "state transitions per workspace",
    "2nd apply: SUCCEEDED / mutating calls",
]


def render(results: list[FleetFigures], time_scale: float, markdown: bool) -> str:
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    rows = _rows(results)
    table = markdown_table(HEADERS, rows) if markdown else text_table(HEADERS, rows)
    dup_kinds = sorted({k for f in results for k in f.duplicates})
    dup_rows = [[k] + [str(f.duplicates.get(k, 0)) for f in results] for k in dup_kinds]
    dup_headers = ["duplicates by kind"] + [f"N={f.size} {f.pacing}" for f in results]
    dups = markdown_table(dup_headers, dup_rows) if markdown else text_table(dup_headers, dup_rows)
    failure_rows = [
        [f"N={f.size} {f.pacing}", k, str(n)] for f in results for k, n in sorted(f.second_failures.items())
    ]
    failures = (
        (markdown_table if markdown else text_table)(
            ["2nd apply", "did not succeed", "executions"], failure_rows
        )
        if failure_rows
        else ""
    )
    refused_rows = [
        [f"N={f.size} {f.pacing}", ", ".join(f"{k} {n}" for k, n in sorted(f.refused.items())) or "none"]
        for f in results
    ]
    refused = (markdown_table if markdown else text_table)(["refused calls by operation", ""], refused_rows)
    lines = [
        SECTION,
        "",
        f"`make bench-fleet` on {when} ({machine}), local stack at time scale {time_scale:g} with AWS's rate limits "
        "on (EC2 endpoint mutations: bucket 4, 0.3/s; Route 53 Resolver: 5/s; account-wide). Custom DNS through one "
        f"new DNS VPC; every {SHARE_EVERY}th workspace joins the VPC of the one before it. All N started at once. "
        "Rate-limit bound = max((EC2 endpoint mutations - 4) / 0.3, (Resolver calls - 5) / 5) over the calls the "
        "limits let through; emulated seconds = wall seconds / time scale.",
        "",
        table,
        "",
        dups,
        "",
        refused,
        "",
        failures,
    ]
    return "\n".join(lines)


def write_results(text: str) -> None:
    current = RESULTS.read_text() if RESULTS.exists() else ""
    if SECTION in current:
        head, _, rest = current.partition(SECTION)
        tail = rest.split("\n## ", 1)
        current = head.rstrip() + "\n\n" + text + ("\n## " + tail[1] if len(tail) > 1 else "")
    else:
        current = current.rstrip() + "\n\n" + text
    RESULTS.write_text(current.rstrip() + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 25, 50])
    parser.add_argument("--time-scale", type=float, default=0.5)
    parser.add_argument("--pacing", nargs="+", default=["shared", "off"], choices=["shared", "off"])
    parser.add_argument(
        "--off-sizes",
        type=int,
        nargs="+",
        default=[10, 25],
        help="the sizes run with --pacing off too (the comparison; 50 without pacing mostly measures retries)",
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    results = []
    for pacing in args.pacing:
        for size in args.sizes if pacing == "shared" else [n for n in args.sizes if n in args.off_sizes]:
            print(
                f"bench-fleet: N={size}, pacing {pacing}, time scale {args.time_scale:g} ...",
                file=sys.stderr,
                flush=True,
            )
            figures = measure(size, args.time_scale, pacing)
            results.append(figures)
            print(render([figures], args.time_scale, markdown=False), file=sys.stderr, flush=True)
    print(render(results, args.time_scale, markdown=False))
    if not args.no_write:
        write_results(render(results, args.time_scale, markdown=True))
    return 0 if all(f.failed == 0 and not any(f.duplicates.values()) for f in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
