"""The demo's drift act: break the applied sample workspace the way a careless human would (plain boto3
calls as the operator), and watch the application detect and repair each change as it happens.

    run_drift_demo(stack, out) -> True when every change was repaired and the workspace is healthy again

Breaks, one after the other: private DNS off on the workspace endpoint; the endpoint security group's
ingress rule revoked; and, when the spec has custom DNS, the "." rule disassociated from the data-plane VPC.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from dbx_privatelink.aws.executions import execution_status
from dbx_privatelink.catalog import default_catalog, port_ranges
from dbx_privatelink.drift_store import DriftRecord, DriftStore
from dbx_privatelink.spec import WorkspaceSpec, parse_spec
from dbx_privatelink_cli.output import emit_lines, heading

if TYPE_CHECKING:
    from dbx_privatelink_local.stack import LocalStack

DETECT_TIMEOUT_S = 60.0
REPAIR_TIMEOUT_S = 90.0


def _wait(predicate: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return None


def _ended_status(sfn: Any, arn: str) -> str | None:
    """The status of an execution that has ended; None while it runs or is not started yet.

    A drift record can name an execution another record reserved a moment ago (it coalesced onto it):
    until the reserving record calls StartExecution, Step Functions does not know it.
    """
    status = execution_status(sfn, arn)
    return None if status == "RUNNING" else status


def await_execution(sfn: Any, arn: str, timeout: float) -> str | None:
    """Wait for the execution to end (it may not have started yet); its final status, or None."""
    status: str | None = _wait(lambda: _ended_status(sfn, arn), timeout)
    return status


class _Act:
    def __init__(self, stack: LocalStack, out: Any) -> None:
        assert stack.deployment is not None
        self.stack, self.out = stack, out
        self.ec2 = stack.client("ec2")
        self.sfn = stack.client("stepfunctions")
        table = stack.boto_session().resource("dynamodb", endpoint_url=stack.aws.endpoint_url)
        self.store = DriftStore(table.Table(stack.deployment.outputs["TableName"]))
        self.began = time.monotonic()

    def say(self, *lines: str) -> None:
        stamp = f"[{time.monotonic() - self.began:6.1f}s]"
        emit_lines(self.out, [f"{stamp} {line}" for line in lines])

    def watch(self, key: str, what: str, repaired: Callable[[], bool]) -> bool:
        """Wait for the drift record of the change just made and its repair; narrate both."""
        known = {(r.detected_at, r.event_id) for r in self.store.list_drift(key, limit=100)}
        self.say(f"waiting for the change to be reported (CloudTrail is late: {what}) ...")
        record: DriftRecord | None = _wait(
            lambda: next(
                (
                    r
                    for r in self.store.list_drift(key, limit=100)
                    if (r.detected_at, r.event_id) not in known
                ),
                None,
            ),
            DETECT_TIMEOUT_S,
        )
        if record is None:
            self.say("NOT DETECTED within the time allowed")
            return False
        via = "the scheduled scan" if record.source == "scan" else f"a CloudTrail {record.event_name} event"
        self.say(
            f"detected through {via}: {record.summary}",
            *[f"    found: {f}" for f in record.findings],
            f"    who: {record.actor or 'unknown (scan)'}; drift mode {record.mode}; outcome {record.outcome}",
            *[f"    done: {a}" for a in record.actions],
        )
        arn = record.execution_arn
        run_ok = True
        if arn and ":execution:" in arn:
            name = arn.rsplit(":", 1)[-1]
            status = await_execution(self.sfn, arn, REPAIR_TIMEOUT_S)
            run_ok = status == "SUCCEEDED"
            if status is None:
                self.say(f"reconcile {name} did not end within {REPAIR_TIMEOUT_S:.0f} s")
            else:
                self.say(f"reconcile {name} ended {status}")
            if status not in (None, "SUCCEEDED"):
                cause = self.sfn.describe_execution(executionArn=arn).get("cause") or "no cause"
                self.say(f"    cause: {cause}")
        ok = bool(_wait(repaired, REPAIR_TIMEOUT_S)) and run_ok
        self.say("repaired: the resource is as the spec wants it again" if ok else "NOT REPAIRED")
        return ok


def _endpoint_ok(ec2: Any, endpoint_id: str) -> bool:
    found = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]
    return bool(found["PrivateDnsEnabled"]) and found["State"] == "available"


def _has_ingress(ec2: Any, group_id: str, lo: int, hi: int) -> bool:
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return any(p.get("FromPort") == lo and p.get("ToPort") == hi for p in group["IpPermissions"])


def run_drift_demo(stack: LocalStack, out: Any) -> bool:
    """Break the applied sample workspace three ways and narrate detection and repair; True when healthy."""
    spec: WorkspaceSpec = parse_spec(yaml.safe_load(Path(stack.info.sample_spec).read_text(encoding="utf-8")))
    act = _Act(stack, out)
    key = spec.workspace_key
    observed = act.store.get_observed(key) or {}
    resources = observed.get("resources") or {}
    endpoint = str((resources.get("endpoints") or {}).get("workspace", {}).get("id", ""))
    emit_lines(
        out, ["", heading("Drift: a careless human changes things; the application puts them back"), ""]
    )
    if not endpoint:
        act.say(f"workspace {key} was not reconciled: nothing to break")
        return False
    results: list[bool] = []

    act.say(f"human: aws ec2 modify-vpc-endpoint --vpc-endpoint-id {endpoint} --no-private-dns-enabled")
    act.ec2.modify_vpc_endpoint(VpcEndpointId=endpoint, PrivateDnsEnabled=False)
    results.append(act.watch(key, "about 5 minutes on AWS", lambda: _endpoint_ok(act.ec2, endpoint)))

    group = spec.network.endpoint_security_group_id
    cidr = act.ec2.describe_vpcs(VpcIds=[spec.network.vpc_id])["Vpcs"][0]["CidrBlock"]
    lo, hi = port_ranges(default_catalog().endpoint_sg_ingress_tcp_ports)[0]
    act.say(
        f"human: aws ec2 revoke-security-group-ingress --group-id {group} --protocol tcp --port {lo} --cidr {cidr}"
    )
    act.ec2.revoke_security_group_ingress(
        GroupId=group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": lo, "ToPort": hi, "IpRanges": [{"CidrIp": cidr}]}],
    )
    results.append(act.watch(key, "about 5 minutes on AWS", lambda: _has_ingress(act.ec2, group, lo, hi)))

    dns = resources.get("dns") or {}
    dot = next(
        (
            a
            for a in dns.get("associations") or []
            if isinstance(a, dict) and a.get("domain") == "." and a.get("vpc_id") == spec.network.vpc_id
        ),
        None,
    )
    if spec.dns is not None and spec.dns.custom_dns is not None and dot is not None:
        r53r = stack.client("route53resolver")
        rule_id, vpc_id = str(dot["resolver_rule_id"]), str(dot["vpc_id"])
        act.say(
            f"human: aws route53resolver disassociate-resolver-rule --resolver-rule-id {rule_id} --vpc-id {vpc_id}"
        )
        r53r.disassociate_resolver_rule(ResolverRuleId=rule_id, VPCId=vpc_id)

        def associated() -> bool:
            found = r53r.list_resolver_rule_associations(
                Filters=[
                    {"Name": "VPCId", "Values": [vpc_id]},
                    {"Name": "ResolverRuleId", "Values": [rule_id]},
                ]
            )["ResolverRuleAssociations"]
            return any(a["Status"] == "COMPLETE" for a in found)

        results.append(act.watch(key, "about 5 minutes on AWS", associated))
    else:
        act.say('the spec has no custom DNS: no "." rule to disassociate')

    healthy = all(results)
    act.say(
        f"drift demo: {sum(results)} of {len(results)} changes detected and repaired; "
        + ("the workspace is healthy again" if healthy else "SOMETHING WAS NOT REPAIRED")
    )
    return healthy
