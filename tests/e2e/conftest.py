"""The whole template on the local stack: one stack per test session, one data-plane VPC per test."""

from __future__ import annotations

import copy
import ipaddress
import itertools
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from dbx_privatelink_local.seed import DataPlane, create_data_plane
from dbx_privatelink_local.stack import LocalStack, LocalStackConfig

MUTATING_HTTP = {"POST", "PUT", "PATCH", "DELETE"}
SWEEP_AGENT = " step/scan_orphans"  # the User-Agent suffix of the drift scan's orphan sweep
# A /22 per data plane: 10.100.0.0/22, 10.100.4.0/22, ... (64 per second octet), never one twice.
_cidrs = (f"10.{100 + n // 64}.{n % 64 * 4}.0/22" for n in itertools.count())


# Package scope: the stack is gone before other packages start stacks or moto servers of their own.
@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    # The tests make Resolver endpoints in many VPCs of one region, as an account with a raised quota would.
    parameters = {"ScanRateMinutes": "10", "ResolverEndpointsQuota": "100"}
    with LocalStack(LocalStackConfig(time_scale=0.01, parameters=parameters)) as s:
        yield s


@dataclass
class Run:
    """One finished execution, with the calls it made on both sides."""

    arn: str
    status: str
    error: str | None
    cause: str | None
    output: dict[str, Any]
    aws_mutations: Counter[str] = field(default_factory=Counter)
    databricks_mutations: Counter[str] = field(default_factory=Counter)
    history: list[dict[str, Any]] = field(default_factory=list)

    def failed_attempts(self, error: str) -> int:
        return sum(
            1
            for e in self.history
            if e["type"] == "LambdaFunctionFailed"
            and e["lambdaFunctionFailedEventDetails"].get("error") == error
        )


class Reconciler:
    """Starts executions of the deployed state machine and observes what they did."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.sfn = stack.client("stepfunctions")
        self.arn = stack.deployment.outputs["ReconcileStateMachineArn"] if stack.deployment else ""
        self._names = itertools.count(1)

    def _databricks_writes(self) -> Counter[str]:
        """Mutating Account API calls so far, leaving out the drift scan's orphan sweep: its schedule runs
        beside every test and may tidy up what an earlier test left, which is no call of the run observed."""
        writes: Counter[str] = Counter()
        for (op, agent), n in self.stack.emulator.calls.by_operation_and_agent().items():
            if (
                op.split(" ", 1)[0] in MUTATING_HTTP
                and "/oidc/" not in op
                and not agent.endswith(SWEEP_AGENT)
            ):
                writes[op] += n
        return writes

    def _aws_writes(self, arns: list[str]) -> Counter[str]:
        """The mutating AWS calls the executions' own Lambda invocations made, told by the trace header each
        request carried: an execution running beside them (another test's workspace repaired by the drift
        scan, on the same stack) makes calls in the same span that are not theirs."""
        trail, runtime = self.stack.aws.cloudtrail, self.stack.runtime
        assert runtime is not None
        trail.flush()
        names = {arn.rsplit(":", 1)[-1] for arn in arns}
        return Counter(
            e["detail"]["eventName"]
            for e in trail.events()
            if runtime.execution_of(trail.trace_header(e)) in names
        )

    def _start(self, spec: dict[str, Any]) -> str:
        name = f"{spec.get('workspace_key', 'invalid')}-{next(self._names)}-{int(time.time() * 1000) % 10**8}"
        started = self.sfn.start_execution(stateMachineArn=self.arn, name=name[:80], input=json.dumps(spec))
        return str(started["executionArn"])

    def _finished(self, arns: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        done: dict[str, dict[str, Any]] = {}
        while len(done) < len(arns):
            for arn in arns:
                if arn not in done:
                    described = self.sfn.describe_execution(executionArn=arn)
                    if described["status"] != "RUNNING":
                        done[arn] = described
            running = [a.rsplit(":", 1)[-1] for a in arns if a not in done]
            assert not running or time.monotonic() < deadline, f"still RUNNING after {timeout}s: {running}"
            time.sleep(0.05)
        return done

    def _run(self, arn: str, described: dict[str, Any], aws: Counter[str], dbx: Counter[str]) -> Run:
        history = self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return Run(
            arn=arn,
            status=described["status"],
            error=described.get("error"),
            cause=described.get("cause"),
            output=json.loads(described.get("output") or "{}"),
            aws_mutations=aws,
            databricks_mutations=dbx,
            history=history,
        )

    def run(self, spec: dict[str, Any], *, timeout: float = 120.0) -> Run:
        dbx_before = self._databricks_writes()
        arn = self._start(spec)
        described = self._finished([arn], timeout)[arn]
        return self._run(arn, described, self._aws_writes([arn]), self._databricks_writes() - dbx_before)

    def run_all(self, specs: list[dict[str, Any]], *, timeout: float = 240.0) -> list[Run]:
        """Start one execution per spec at the same moment and wait for all of them; each Run carries the
        mutating calls of the whole batch's executions (the Account API's calls cannot be told apart by
        execution, and the tests judge the batch)."""
        dbx_before = self._databricks_writes()
        arns = [self._start(spec) for spec in specs]
        done = self._finished(arns, timeout)
        aws, dbx = self._aws_writes(arns), self._databricks_writes() - dbx_before
        return [self._run(arn, done[arn], aws, dbx) for arn in arns]


@pytest.fixture(scope="package")
def reconciler(stack: LocalStack) -> Reconciler:
    return Reconciler(stack)


def _new_data_plane(stack: LocalStack, request: pytest.FixtureRequest, *, standby: bool) -> DataPlane:
    ec2 = stack.client("ec2")
    azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    name = request.node.name.replace("_", "-")[:24].strip("-")
    return create_data_plane(ec2, next(_cidrs), name, azs, standby=standby)


@pytest.fixture
def data_plane(stack: LocalStack, request: pytest.FixtureRequest) -> DataPlane:
    """A fresh customer-managed VPC for one test, built as the walkthrough builds it."""
    return _new_data_plane(stack, request, standby=False)


@pytest.fixture
def standby_plane(stack: LocalStack, request: pytest.FixtureRequest) -> DataPlane:
    """A fresh customer-managed VPC with a second set of workspace subnets and group (network.standby)."""
    return _new_data_plane(stack, request, standby=True)


def listed(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of a paginated list call: one stack serves the whole session, so a list outgrows a page."""
    return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page[key]]


def free_subnets(plane: DataPlane, prefix: int) -> list[str]:
    """CIDRs of size `prefix` in the data plane's first quarter, which a plane without a standby set
    leaves free (create_data_plane puts the workspace and endpoint subnets in the other three)."""
    first_quarter = next(ipaddress.ip_network(plane.cidr).subnets(prefixlen_diff=2))
    return [str(s) for s in first_quarter.subnets(new_prefix=prefix)]


def spec_for(stack: LocalStack, plane: DataPlane, key: str) -> dict[str, Any]:
    """The sample spec of the stack, pointed at `plane` and named `key` (with network.standby when the
    plane has a standby set)."""
    assert stack.environment is not None
    spec = copy.deepcopy(stack.environment.sample_spec(key))
    spec["network"].update(
        vpc_id=plane.vpc_id,
        workspace_subnet_ids=plane.workspace_subnet_ids,
        workspace_security_group_ids=[plane.workspace_sg_id],
        endpoint_subnet_ids=[plane.endpoint_subnet_id],
        endpoint_security_group_id=plane.endpoint_sg_id,
    )
    spec["network"].pop("standby", None)
    if plane.standby_subnet_ids:
        spec["network"]["standby"] = {
            "workspace_subnet_ids": plane.standby_subnet_ids,
            "workspace_security_group_ids": [plane.standby_sg_id],
        }
    return spec
