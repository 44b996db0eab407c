"""Least privilege, read from template.yaml: each function its own role, only the actions it calls."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbx_privatelink.wiring import NEEDS

ROOT = Path(__file__).resolve().parents[2]
OWNER_TAG = "dbx-privatelink:owner"
# Mutating calls AWS can limit by the ownership tag: on the request (create) or on the resource (change).
TAG_SCOPED = {
    "ec2:CreateVpcEndpoint": "aws:RequestTag/",
    "ec2:CreateTags": "aws:RequestTag/",
    "ec2:ModifyVpcEndpoint": "aws:ResourceTag/",
    "ec2:DeleteVpcEndpoints": "aws:ResourceTag/",
    "route53resolver:UpdateResolverRule": "aws:ResourceTag/",
    "route53resolver:DeleteResolverRule": "aws:ResourceTag/",
    "route53resolver:DeleteResolverEndpoint": "aws:ResourceTag/",
    "route53resolver:CreateResolverEndpoint": "aws:RequestTag/",
    "route53resolver:CreateResolverRule": "aws:RequestTag/",
    "route53resolver:TagResource": "aws:RequestTag/",
    "route53resolver:AssociateResolverRule": "aws:ResourceTag/",
    "ec2:CreateSecurityGroup": "aws:RequestTag/",
    "ec2:AuthorizeSecurityGroupIngress": "aws:ResourceTag/",
    "ec2:RevokeSecurityGroupIngress": "aws:ResourceTag/",
    "ec2:AuthorizeSecurityGroupEgress": "aws:ResourceTag/",
    "ec2:RevokeSecurityGroupEgress": "aws:ResourceTag/",
}


class _Tagged:
    def __init__(self, tag: str, value: Any) -> None:
        self.tag, self.value = tag, value

    def __repr__(self) -> str:
        return f"{self.tag} {self.value}"


class _CfnLoader(yaml.SafeLoader):
    pass


def _construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> _Tagged:
    if isinstance(node, yaml.ScalarNode):
        return _Tagged(suffix, loader.construct_scalar(node))
    if isinstance(node, yaml.SequenceNode):
        return _Tagged(suffix, loader.construct_sequence(node))
    return _Tagged(suffix, loader.construct_mapping(node))  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _construct)
TEMPLATE = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)
FUNCTIONS = {k: v for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def _statements(fn: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for policy in fn["Properties"].get("Policies", []):
        assert isinstance(policy, dict) and "Statement" in policy, (
            "use inline statements, not managed policies"
        )
        out += policy["Statement"]
    return out


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _needs_of(code_uri: str) -> tuple[str, ...]:
    """The capabilities the handler declares in `step(..., needs=(...))`."""
    source = (ROOT / code_uri / "app.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "step":
            for kw in node.keywords:
                if kw.arg == "needs":
                    return tuple(ast.literal_eval(kw.value))
    return ()


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_has_its_own_role_without_wildcard_actions(name: str) -> None:
    props = FUNCTIONS[name]["Properties"]
    assert "Role" not in props, f"{name} shares a role"
    statements = _statements(FUNCTIONS[name])
    assert statements, f"{name} has no policy"
    for st in statements:
        for action in _actions(st):
            assert "*" not in action, f"{name} grants the wildcard action {action}"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_mutating_calls_are_limited_by_the_ownership_tag(name: str) -> None:
    for st in _statements(FUNCTIONS[name]):
        for action in _actions(st):
            prefix = TAG_SCOPED.get(action)
            if prefix is None:
                continue
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            # CreateVpcEndpoint also needs the VPC, subnets and groups it attaches to: those carry no tag.
            if all("vpc-endpoint" in repr(r) or "resolver" in repr(r) for r in resources):
                keys = list(st.get("Condition", {}).get("StringEquals", {}))
                assert f"{prefix}{OWNER_TAG}" in keys, (
                    f"{name}: {action} is not limited by {prefix}{OWNER_TAG}"
                )


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_secret_and_environment_match_what_the_handler_needs(name: str) -> None:
    props = FUNCTIONS[name]["Properties"]
    needs = _needs_of(props["CodeUri"])
    env = set(props.get("Environment", {}).get("Variables", {}))
    env |= set(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"])
    required = {var for need in ("base", *needs) for var in NEEDS[need]} - {"AWS_REGION"}
    assert required <= env, f"{name} lacks environment variables {sorted(required - env)}"
    reads_secret = any("secretsmanager:GetSecretValue" in _actions(st) for st in _statements(FUNCTIONS[name]))
    assert reads_secret == ("databricks" in needs), f"{name}: secret access must match its Databricks use"


def test_every_function_folder_is_deployed() -> None:
    folders = {p.parent.name for p in (ROOT / "functions").glob("*/app.py")}
    deployed = {re.sub(r"functions/(\w+)/?", r"\1", f["Properties"]["CodeUri"]) for f in FUNCTIONS.values()}
    assert folders == deployed


STATE_MACHINES = {
    k: v for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::StateMachine"
}


# What Step Functions needs to deliver execution logs; CloudWatch Logs' delivery actions take no resource.
LOG_DELIVERY = {
    "Effect": "Allow",
    "Action": [
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    ],
    "Resource": "*",
}


@pytest.mark.parametrize("name", sorted(STATE_MACHINES))
def test_a_state_machine_may_invoke_only_its_own_functions(name: str) -> None:
    props = STATE_MACHINES[name]["Properties"]
    substituted = {
        v["Fn::GetAtt"][0] for k, v in props["DefinitionSubstitutions"].items() if k.endswith("FunctionArn")
    }
    invoked = set()
    for policy in props["Policies"]:
        if policy.get("Statement") == [LOG_DELIVERY]:
            continue  # its execution logs (tests/unit/test_template_operations.py)
        assert set(policy) == {"LambdaInvokePolicy"}, f"{name} has a policy besides invoking its functions"
        invoked.add(policy["LambdaInvokePolicy"]["FunctionName"]["Ref"])
    assert invoked == substituted


def _scan_statements(function: str) -> dict[str, list[str]]:
    """Action -> the resources it is granted on, for one function."""
    granted: dict[str, list[str]] = {}
    for st in _statements(FUNCTIONS[function]):
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        for action in _actions(st):
            granted.setdefault(action, []).extend(repr(r) for r in resources)
    return granted


def test_the_scan_plan_reads_the_table_and_lists_only_the_scans_own_executions() -> None:
    granted = _scan_statements("ScanPlanFunction")
    assert set(granted) == {"dynamodb:Scan", "states:ListExecutions"}
    [machine] = granted["states:ListExecutions"]
    assert machine.endswith(":stateMachine:${AWS::StackName}-scan-fleet'}")
    assert STATE_MACHINES["ScanStateMachine"]["Properties"]["Name"] == {
        "Fn::Sub": "${AWS::StackName}-scan-fleet"
    }


def test_the_per_workspace_scan_does_not_scan_the_table() -> None:
    granted = _scan_statements("ScanWorkspaceFunction")
    assert "dynamodb:Scan" not in granted, "listing the fleet is the plan's job"
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "states:StartExecution"} <= set(granted)


def test_preflight_may_scan_the_ledger_for_what_the_resolver_endpoint_quota_holds() -> None:
    """Where a spec adds Resolver endpoints, preflight counts the endpoints the stack's workspaces hold (the
    ledger's entries: a scan) and reserves under the quota's lock (a conditional UpdateItem)."""
    granted = _scan_statements("PreflightFunction")
    assert {"dynamodb:Scan", "dynamodb:UpdateItem", "dynamodb:GetItem"} <= set(granted)


def test_the_functions_that_close_drift_records_may_query_and_delete_them() -> None:
    """An open drift record (DRIFTOPEN#) is listed with a Query and moved to the history with a PutItem and
    a conditional DeleteItem: by the scan (found gone) and by RecordAndRelease (its run SUCCEEDED)."""
    for name in ("ScanWorkspaceFunction", "RecordAndReleaseFunction"):
        granted = set(_scan_statements(name))
        assert {"dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"} <= granted, name
    # The detector gives an event's claim back (DeleteItem) when handling it failed, for the retry
    assert {"dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"} <= set(
        _scan_statements("DetectDriftFunction")
    )


def test_the_schedule_starts_the_scan_state_machine_with_a_role_that_may_only_start_it() -> None:
    """SAM turns the state machine's Schedule event into a rule and a role: read what it generates."""
    from dbx_privatelink_local import yaml_cfn
    from dbx_privatelink_local.deployer import sam_transform

    assert not any(
        e.get("Type") == "Schedule"
        for f in FUNCTIONS.values()
        for e in f["Properties"].get("Events", {}).values()
    ), "the scan is a state machine now: no function runs on a schedule"
    template = yaml_cfn.load(ROOT / "template.yaml")
    for resource in template["Resources"].values():  # as `sam package` leaves them
        for uri in ("CodeUri", "DefinitionUri", "ContentUri"):
            if uri in resource.get("Properties", {}):
                resource["Properties"][uri] = "s3://artifacts/package.zip"
    translated = sam_transform(template, {}, "us-east-1")["Resources"]
    [rule] = [
        r
        for r in translated.values()
        if r["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in r["Properties"]
    ]
    assert rule["Properties"]["ScheduleExpression"] == {"Fn::Sub": "rate(${ScanRateMinutes} minutes)"}
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "ScanStateMachine"}
    assert "DeadLetterConfig" in target and "RetryPolicy" in target
    role = translated[target["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
    principals = [s["Principal"]["Service"] for s in role["AssumeRolePolicyDocument"]["Statement"]]
    assert principals == [["events.amazonaws.com"]]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert statements == [
        {"Action": "states:StartExecution", "Effect": "Allow", "Resource": {"Ref": "ScanStateMachine"}}
    ]


def test_the_databricks_host_parameter_takes_https_or_a_loopback_emulator_only() -> None:
    template = TEMPLATE
    pattern = re.compile(template["Parameters"]["DatabricksHost"]["AllowedPattern"])
    assert pattern.match(template["Parameters"]["DatabricksHost"]["Default"])
    for good in ("https://accounts.cloud.databricks.com", "http://127.0.0.1:8443", "http://localhost:9000/"):
        assert pattern.match(good), good
    for bad in ("http://accounts.cloud.databricks.com", "http://10.0.0.5", "ftp://example.com"):
        assert not pattern.match(bad), bad


# --- least privilege: what each mutating grant may touch (issue 13) --------------------------------------

STACK = {"Ref": "AWS::StackName"}
ADOPT_TAG, REPAIR_TAG = "dbx-privatelink:adopt", "dbx-privatelink:repair"
# The tag keys the stack's roles may set on an existing (handed-over) resource: never adopt or repair.
OWN_TAG_KEYS = {OWNER_TAG, "dbx-privatelink:role", "dbx-privatelink:scope", "Name"}
READ_ONLY = re.compile(r"^[a-z0-9-]+:(Describe|List|Get|BatchGet|Query|Scan|ConditionCheck)")
# Mutating grants with no tag condition, and why each is safe: the request is authorised on every resource
# it names, and the resource it changes carries the stack's tag (or is made in the call with it).
UNCONDITIONED = {
    # CreateVpcEndpoint: the endpoint itself must be requested with the ownership tag
    ("EnsureEndpointFunction", "ec2:CreateVpcEndpoint"): {"vpc", "subnet", "security-group", "route-table"},
    # AddSecurityGroupIds: the endpoint must carry the ownership tag
    ("EnsureEndpointFunction", "ec2:ModifyVpcEndpoint"): {"security-group"},
    # CreateSecurityGroup: the group must be requested with the ownership tag
    ("EnsureResolverEndpointsFunction", "ec2:CreateSecurityGroup"): {"vpc"},
    # Route 53 Resolver's dependent actions, in the spec's DNS VPC (unknown to the template): ARN-bounded
    ("EnsureResolverEndpointsFunction", "ec2:CreateNetworkInterface"): {
        "network-interface",
        "subnet",
        "security-group",
    },
    ("EnsureResolverEndpointsFunction", "ec2:ModifyNetworkInterfaceAttribute"): {
        "network-interface",
        "security-group",
    },
    ("DeleteResolverEndpointsFunction", "ec2:DeleteNetworkInterface"): {"network-interface"},
    # VerifyDns's own interface: bounded by the subnet and group conditions of the other statements
    ("VerifyDnsFunction", "ec2:CreateNetworkInterface"): {"network-interface"},
    # Private hosted zones carry no tag IAM can read; the VPCs are the spec's
    ("EnsureZoneAssociationsFunction", "route53:AssociateVPCWithHostedZone"): {"hostedzone", "vpc"},
}


def _resource_type(resource: Any) -> str:
    """security-group for arn:...:security-group/*, "*" for "*", the referenced name for a Ref/GetAtt."""
    text = resource if isinstance(resource, str) else resource.get("Fn::Sub", "")
    if not isinstance(text, str) or not text:
        return "reference"
    if text == "*":
        return "*"
    return text.rsplit(":", 1)[-1].split("/", 1)[0]


def _conditions(st: dict[str, Any]) -> dict[str, Any]:
    return {k: v for block in st.get("Condition", {}).values() for k, v in block.items()}


def _mutating_grants() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(function, action, resource type, conditions) of every non-read grant on AWS resources."""
    grants = []
    for name in sorted(FUNCTIONS):
        for st in _statements(FUNCTIONS[name]):
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            for action in _actions(st):
                if READ_ONLY.match(action) or action.split(":")[0] in {
                    "dynamodb",
                    "states",
                    "sns",
                    "secretsmanager",
                }:
                    continue
                grants += [(name, action, _resource_type(r), _conditions(st)) for r in resources]
    return grants


def test_no_mutating_action_is_granted_on_every_resource() -> None:
    wide = [(n, a) for n, a, rtype, _ in _mutating_grants() if rtype == "*"]
    assert wide == [], f"mutating actions on '*': {wide}"


def test_every_mutating_grant_is_bound_by_a_tag_or_justified() -> None:
    """Each mutating grant names the stack's ownership tag, a handed-over or repair tag (all with the stack's
    name), or is one of the justified creates and dependent actions above."""
    unjustified = []
    for name, action, rtype, conditions in _mutating_grants():
        tagged = any(
            key.startswith(("aws:ResourceTag/", "aws:RequestTag/")) and value == STACK
            for key, value in conditions.items()
        )
        bound = {"ec2:SubnetID", "ec2:SecurityGroupID", "ec2:Subnet"} & set(conditions)
        if not (tagged or bound or rtype in UNCONDITIONED.get((name, action), set())):
            unjustified.append((name, action, rtype))
    assert unjustified == []


def test_tags_are_set_only_at_creation_or_on_a_resource_handed_over() -> None:
    """A role that could tag any existing resource as the stack's could then change or delete it: CreateTags
    needs ec2:CreateAction, or the adopt tag a human set; TagResource (Route 53 Resolver has no CreateAction)
    needs the adopt tag. Neither may set the adopt or repair tag on an existing resource."""
    seen = 0
    for name in sorted(FUNCTIONS):
        for st in _statements(FUNCTIONS[name]):
            actions = set(_actions(st))
            if not actions & {"ec2:CreateTags", "route53resolver:TagResource"}:
                continue
            seen += 1
            assert actions <= {"ec2:CreateTags", "route53resolver:TagResource"}, f"{name}: {actions}"
            conditions = _conditions(st)
            assert conditions.get(f"aws:RequestTag/{OWNER_TAG}") == STACK, name
            if "ec2:CreateAction" in conditions:
                assert actions == {"ec2:CreateTags"} and conditions["ec2:CreateAction"].startswith("Create")
                continue
            assert conditions.get(f"aws:ResourceTag/{ADOPT_TAG}") == STACK, (
                f"{name}: {actions} on any resource"
            )
            keys = st["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]
            assert set(keys) <= OWN_TAG_KEYS, f"{name} may set {set(keys) - OWN_TAG_KEYS}"
    assert seen >= 4  # EnsureEndpoint (2), EnsureResolverEndpoints, EnsureResolverRules, the groups


@pytest.mark.parametrize(
    "name", ["DetectDriftFunction", "ScanWorkspaceFunction", "RevokeRestoredRulesFunction"]
)
def test_drift_repairs_change_only_the_groups_and_vpcs_the_customer_tagged(name: str) -> None:
    repairs = {
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:ModifyVpcAttribute",
    }
    found = [st for st in _statements(FUNCTIONS[name]) if set(_actions(st)) & repairs]
    assert found, name
    for st in found:
        assert _conditions(st) == {f"aws:ResourceTag/{REPAIR_TAG}": STACK}, f"{name}: {_actions(st)}"


def test_verify_dns_makes_interfaces_only_in_the_verifier_subnets_and_groups() -> None:
    statements = _statements(FUNCTIONS["VerifyDnsFunction"])
    by_condition = {key: st for st in statements for key in _conditions(st) if key.startswith("ec2:")}
    assert by_condition["ec2:SubnetID"]["Condition"]["StringEquals"]["ec2:SubnetID"] == {
        "Ref": "VerifierSubnetIds"
    }
    assert by_condition["ec2:SecurityGroupID"]["Condition"]["StringEquals"]["ec2:SecurityGroupID"] == {
        "Ref": "VerifierSecurityGroupIds"
    }
    changes = by_condition["ec2:Subnet"]
    assert set(_actions(changes)) == {
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    }
    assert "VerifierSubnetIds" in repr(changes["Condition"]["ArnLike"]["ec2:Subnet"])


def _watched_actions() -> set[str]:
    """The IAM actions of the API calls DetectDrift's EventBridge rules watch."""
    watched = set()
    for event in FUNCTIONS["DetectDriftFunction"]["Properties"]["Events"].values():
        detail = event["Properties"]["Pattern"]["detail"]
        for source in detail["eventSource"]:
            prefix = source.split(".")[0]
            watched |= {f"{prefix}:{call}" for call in detail["eventName"]}
    return watched


def test_the_detector_knows_exactly_the_roles_that_may_make_a_watched_call() -> None:
    """Its OWN_ROLE_ARNS are the ARNs of the roles SAM makes for the functions allowed a call the drift
    rules watch: a missing one would have the application repair its own change; an extra one would let a
    change by that role go unrepaired."""
    watched = _watched_actions()
    making = {
        f"{name}Role"
        for name in FUNCTIONS
        for st in _statements(FUNCTIONS[name])
        if set(_actions(st)) & watched
    }
    joined = FUNCTIONS["DetectDriftFunction"]["Properties"]["Environment"]["Variables"]["OWN_ROLE_ARNS"]
    delimiter, arns = joined["Fn::Join"]
    assert delimiter == ","
    assert all(set(a) == {"Fn::GetAtt"} and a["Fn::GetAtt"][1] == "Arn" for a in arns)
    named = [a["Fn::GetAtt"][0] for a in arns]
    assert len(named) == len(set(named))
    assert set(named) == making
