"""Deploy a SAM template into moto the way `sam deploy` would, so the local stack is built from template.yaml.

`deploy_template()`:
1. reads the template (short-form tags included) and inlines each state machine's DefinitionUri file;
2. zips each function's CodeUri and each layer's ContentUri into a moto S3 bucket (`sam package`);
3. runs the SAM transform offline (samtranslator), with managed-policy ARNs from moto's copy of the AWS
   managed policies;
4. leaves out the resource types moto's CloudFormation cannot create (AWS::Scheduler::Schedule,
   AWS::Lambda::EventInvokeConfig, ...), listing each in `Deployment.skipped` with its properties resolved
   against the stack, so the local stack can deliver schedules itself;
5. creates the stack in moto (delete + create when it exists) and waits for CREATE_COMPLETE;
6. registers every function's source directory, layers and handler with the in-process Lambda runtime.

moto gaps closed here, on moto's AWS::StepFunctions::StateMachine CloudFormation model (patched by
`install_cloudformation_patches()`, idempotent):
- DefinitionSubstitutions are applied (moto ignores them): each ${Name} is replaced by the resolved value;
- the definition is then validated as CreateStateMachine validates it on AWS: a ${...} left unresolved or a
  Task Resource that is not an ARN fails the deploy with InvalidDefinition;
- the state machine is created in the backend that runs executions (moto keeps a separate backend for
  its ASL interpreter, and CloudFormation would otherwise create machines the interpreter never sees).
A resource whose Condition is false is left out of the stack as on AWS (moto keeps it as a None that
DescribeStackResource then fails on with HTTP 500). A table's TimeToLiveSpecification (which moto's table
model ignores) is applied with UpdateTimeToLive once
the stack exists, so DescribeTimeToLive answers as on AWS. Alarms, the Lambda on-failure destination and
topic or queue policies are among the types left out (nothing evaluates or enforces them locally); log
groups and the dashboard are created.
Unlike AWS, where CreateStack succeeds and the stack then rolls back, a failing resource makes moto's
CreateStack call itself fail; `deploy_template()` reports both the same way (DeployError) and removes the
half-created stack.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import re
import time
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.awslambda.models import LayerVersion
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.parsing import resource_class_from_type
from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.parser.api import InvalidDefinition
from moto.stepfunctions.responses import get_backend as stepfunctions_backend
from moto.stepfunctions.utils import cfn_to_api_tags
from samtranslator.translator.transform import transform

from dbx_privatelink_local import yaml_cfn
from dbx_privatelink_local.lambda_runtime import (
    InProcessLambdaRuntime,
    install_environment_overlay,
    run_with_environment,
)

DEFAULT_REGION = "us-east-1"
DEFAULT_ARTIFACT_BUCKET = "dbx-privatelink-local-artifacts"
_LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

# A Task's Resource must be an ARN: arn:aws:states:::lambda:invoke, arn:aws:lambda:<r>:<acct>:function:x ...
_TASK_RESOURCE_ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:\S+$")
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")
# Directory contents `sam build` would never ship.
_NOT_PACKAGED = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git"}


class DeployError(RuntimeError):
    """The template could not be deployed; the message says which resource and why, as CloudFormation would."""


@dataclass(frozen=True)
class DeployedFunction:
    """A deployed Lambda function and where its code lives locally."""

    logical_id: str
    function_name: str
    handler: str
    code_dir: Path
    layer_dirs: tuple[Path, ...]


@dataclass(frozen=True)
class SkippedResource:
    """A resource moto's CloudFormation cannot create, left out of the stack."""

    logical_id: str
    type: str
    properties: dict[str, Any]  # intrinsic functions resolved against the stack where possible
    note: str


@dataclass
class Deployment:
    """What `sam deploy` leaves behind, as the local stack needs it."""

    stack_name: str
    stack_id: str
    region: str
    outputs: dict[str, str]
    physical_ids: dict[str, str]  # by CloudFormation logical id; SAM layer ids also under their SAM name
    functions: dict[str, DeployedFunction]  # by function name
    skipped: list[SkippedResource] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def function_by_logical_id(self, logical_id: str) -> DeployedFunction:
        for function in self.functions.values():
            if function.logical_id == logical_id:
                return function
        raise KeyError(logical_id)

    def schedules(self) -> list[SkippedResource]:
        """The EventBridge Scheduler schedules the local stack must deliver itself."""
        return [s for s in self.skipped if s.type == "AWS::Scheduler::Schedule"]


# --- CloudFormation: the state machine model -------------------------------------------------------


def _invalid_definition(logical_id: str, reason: str) -> ValidationError:
    return ValidationError(
        message=(
            f"Resource handler returned message: \"Invalid State Machine Definition: '{reason}'\" "
            f"(Service: Sfn, Status Code: 400, Error Code: InvalidDefinition) for resource {logical_id}"
        )
    )


def _task_resources(states: Mapping[str, Any], path: str) -> Iterable[tuple[str, Any]]:
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        here = f"{path}/{name}"
        if state.get("Type") == "Task":
            yield f"{here}/Resource", state.get("Resource")
        for index, branch in enumerate(state.get("Branches") or []):
            yield from _task_resources(branch.get("States", {}), f"{here}/Branches[{index}]/States")
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from _task_resources(state[key].get("States", {}), f"{here}/{key}/States")


def substitute_definition(definition: str, substitutions: Mapping[str, Any], logical_id: str) -> str:
    """Apply DefinitionSubstitutions as AWS does and validate the result as CreateStateMachine would."""
    for key, value in substitutions.items():
        definition = definition.replace("${" + key + "}", str(value))
    leftover = sorted(set(_PLACEHOLDER.findall(definition)))
    if leftover:
        raise _invalid_definition(
            logical_id,
            f"SCHEMA_VALIDATION_FAILED: unresolved placeholder(s) {', '.join(leftover)}: "
            "no DefinitionSubstitutions entry of that name",
        )
    try:
        document = json.loads(definition)
    except json.JSONDecodeError as exc:
        raise _invalid_definition(logical_id, f"INVALID_JSON_DESCRIPTION: {exc}") from exc
    for where, resource in _task_resources(document.get("States", {}), "/States"):
        if not isinstance(resource, str) or not _TASK_RESOURCE_ARN.match(resource):
            raise _invalid_definition(
                logical_id, f"SCHEMA_VALIDATION_FAILED: Value is not a valid resource ARN at {where}"
            )
    return definition


def _definition_from_properties(properties: Mapping[str, Any], logical_id: str) -> str:
    if "Definition" in properties:
        definition = json.dumps(properties["Definition"])
    else:
        definition = str(properties.get("DefinitionString", ""))
    return substitute_definition(definition, properties.get("DefinitionSubstitutions") or {}, logical_id)


def _create_state_machine(
    resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, logical_id: str
) -> StateMachine:
    properties = cloudformation_json["Properties"]
    name = properties.get("StateMachineName", resource_name)
    definition = _definition_from_properties(properties, logical_id)
    tags = cfn_to_api_tags(properties.get("Tags", []) or [])
    try:
        return stepfunctions_backend(account_id, region_name).create_state_machine(
            name,
            definition,
            properties.get("RoleArn", ""),
            tags=tags,
            sm_type=properties.get("StateMachineType"),
        )
    except InvalidDefinition as exc:
        raise _invalid_definition(logical_id, str(exc)) from exc


def _sm_create_from_cloudformation_json(
    cls: type[StateMachine],
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> StateMachine:
    """Replaces StateMachine.create_from_cloudformation_json, which ignores DefinitionSubstitutions and
    always uses the non-executing backend."""
    logical_id = str(kwargs.get("LogicalId", resource_name))
    return _create_state_machine(resource_name, cloudformation_json, account_id, region_name, logical_id)


def _sm_delete_from_cloudformation_json(
    cls: type[StateMachine], resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
) -> None:
    """Replaces StateMachine.delete_from_cloudformation_json (same backend reason as creation)."""
    stepfunctions_backend(account_id, region_name).delete_state_machine(resource_name)


def _sm_update_from_cloudformation_json(
    cls: type[StateMachine],
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
) -> StateMachine:
    """Replaces StateMachine.update_from_cloudformation_json (substitutions and backend, as creation)."""
    properties = cloudformation_json.get("Properties", {})
    logical_id = str(getattr(original_resource, "logical_resource_id", original_resource.name))
    name = properties.get("StateMachineName", original_resource.name)
    if name != original_resource.name:
        created = _create_state_machine(name, cloudformation_json, account_id, region_name, logical_id)
        stepfunctions_backend(account_id, region_name).delete_state_machine(original_resource.arn)
        return created
    definition = _definition_from_properties(properties, logical_id)
    return stepfunctions_backend(account_id, region_name).update_state_machine(
        original_resource.arn, definition=definition, role_arn=properties.get("RoleArn")
    )


def _layer_version_physical_resource_id(self: LayerVersion) -> str:
    """Added to moto's LayerVersion, which has no physical id: Ref then gave the model object itself
    (an Output read "<moto.awslambda.models.LayerVersion object ...>"). AWS answers the version ARN."""
    return str(self.arn)


def install_cloudformation_patches() -> None:
    """Patch moto's CloudFormation state machine and layer version models (idempotent)."""
    LayerVersion.physical_resource_id = property(_layer_version_physical_resource_id)  # type: ignore[attr-defined]
    StateMachine.create_from_cloudformation_json = classmethod(_sm_create_from_cloudformation_json)  # type: ignore[method-assign,assignment,arg-type]
    StateMachine.delete_from_cloudformation_json = classmethod(_sm_delete_from_cloudformation_json)  # type: ignore[method-assign,assignment]
    StateMachine.update_from_cloudformation_json = classmethod(_sm_update_from_cloudformation_json)  # type: ignore[method-assign,assignment]


# --- the SAM transform -----------------------------------------------------------------------------


class MotoManagedPolicyLoader:
    """Managed policy name -> ARN, from moto's copy of the AWS managed policies (no IAM call)."""

    def load(self) -> dict[str, str]:
        from moto.iam.aws_managed_policies import aws_managed_policies_data

        policies: dict[str, Any] = json.loads(aws_managed_policies_data)
        return {name: f"arn:aws:iam::aws:policy{p.get('Path', '/')}{name}" for name, p in policies.items()}


def zip_directory(directory: Path) -> bytes:
    """A deployment package of `directory`, as `sam package` zips a CodeUri (no caches, stable bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory)
            if path.is_file() and not _NOT_PACKAGED.intersection(relative.parts) and path.suffix != ".pyc":
                # A fixed timestamp keeps the archive (and its key) stable across deploys of the same code.
                info = zipfile.ZipInfo(str(relative), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _local_dir(base: Path, uri: Any, what: str) -> Path | None:
    if not isinstance(uri, str) or uri.startswith("s3://"):
        return None
    directory = (base / uri).resolve()
    if not directory.is_dir():
        raise DeployError(f"{what}: {uri} is not a directory next to the template")
    return directory


class _Packager:
    """`sam package`: uploads local code directories and records which key came from which directory."""

    def __init__(self, s3: Any, bucket: str, stack_name: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.stack_name = stack_name
        self.dirs_by_key: dict[str, Path] = {}

    def upload(self, logical_id: str, directory: Path) -> dict[str, str]:
        body = zip_directory(directory)
        key = f"{self.stack_name}/{logical_id}-{hashlib.sha256(body).hexdigest()[:16]}.zip"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        self.dirs_by_key[key] = directory
        return {"Bucket": self.bucket, "Key": key}


def _package(template: dict[str, Any], base: Path, packager: _Packager) -> None:
    global_function = ((template.get("Globals") or {}).get("Function")) or {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        kind = resource.get("Type")
        properties = resource.setdefault("Properties", {})
        if kind == "AWS::Serverless::Function":
            if "InlineCode" in properties or properties.get("PackageType") == "Image":
                continue
            directory = _local_dir(
                base, properties.get("CodeUri", global_function.get("CodeUri")), logical_id
            )
            if directory is not None:
                properties["CodeUri"] = packager.upload(logical_id, directory)
        elif kind == "AWS::Serverless::LayerVersion":
            directory = _local_dir(base, properties.get("ContentUri"), logical_id)
            if directory is not None:
                properties["ContentUri"] = packager.upload(logical_id, directory)
        elif kind == "AWS::Serverless::StateMachine" and isinstance(properties.get("DefinitionUri"), str):
            uri = properties.pop("DefinitionUri")
            path = (base / uri).resolve()
            if not path.is_file():
                raise DeployError(f"{logical_id}: DefinitionUri {uri} is not a file next to the template")
            properties["Definition"] = yaml_cfn.loads(path.read_text(encoding="utf-8"))
        elif kind == "AWS::Lambda::Function" and isinstance((properties.get("Code")), str):
            directory = _local_dir(base, properties["Code"], logical_id)
            if directory is not None:
                location = packager.upload(logical_id, directory)
                properties["Code"] = {"S3Bucket": location["Bucket"], "S3Key": location["Key"]}
        elif kind == "AWS::Lambda::LayerVersion" and isinstance(properties.get("Content"), str):
            directory = _local_dir(base, properties["Content"], logical_id)
            if directory is not None:
                location = packager.upload(logical_id, directory)
                properties["Content"] = {"S3Bucket": location["Bucket"], "S3Key": location["Key"]}


def sam_transform(template: dict[str, Any], parameters: Mapping[str, str], region: str) -> dict[str, Any]:
    """The SAM transform, offline. samtranslator reads the region from boto3's default session, which
    reads the environment: the per-invocation overlay gives it one for this call only."""
    install_environment_overlay()
    if template.get("Transform") is None:
        return template
    return run_with_environment(  # type: ignore[no-any-return]
        {"AWS_DEFAULT_REGION": region, "AWS_REGION": region},
        lambda: transform(copy.deepcopy(template), dict(parameters), MotoManagedPolicyLoader()),
    )


# --- unsupported resources -------------------------------------------------------------------------


def _references(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else str(target).split(".")[0])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"][0] if isinstance(value["Fn::Sub"], list) else value["Fn::Sub"]
            found.update(m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", str(text)))
        for item in value.values():
            found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def _drop_unsupported(template: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    resources: dict[str, Any] = template.get("Resources") or {}
    dropped = {
        logical_id: resource
        for logical_id, resource in resources.items()
        if resource_class_from_type(resource.get("Type", "")) is None
    }
    notes: list[str] = []
    for logical_id in dropped:
        del resources[logical_id]
    for logical_id, resource in resources.items():
        depends = resource.get("DependsOn")
        if isinstance(depends, str):
            depends = [depends]
        if depends:
            kept = [d for d in depends if d not in dropped]
            if kept:
                resource["DependsOn"] = kept
            else:
                resource.pop("DependsOn")
        broken = _references(resource.get("Properties", {})) & dropped.keys()
        if broken:
            raise DeployError(
                f"{logical_id} references {', '.join(sorted(broken))}, of a type the local stack cannot create"
            )
    outputs: dict[str, Any] = template.get("Outputs") or {}
    for name in [n for n, o in outputs.items() if _references(o) & dropped.keys()]:
        notes.append(f"output {name} left out: it refers to a resource the local stack does not create")
        del outputs[name]
    return dropped, notes


# --- deploying -------------------------------------------------------------------------------------


def _clients(endpoint_url: str, region: str) -> tuple[Any, Any, Any, Any]:
    session = boto3.session.Session(region_name=region, **_LOCAL_CREDENTIALS)
    config = Config(retries={"max_attempts": 1, "mode": "standard"})
    return (
        session.client("cloudformation", endpoint_url=endpoint_url, config=config),
        session.client("s3", endpoint_url=endpoint_url, config=config),
        session.client("lambda", endpoint_url=endpoint_url, config=config),
        session.client("sts", endpoint_url=endpoint_url, config=config),
    )


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**kwargs)


def _stack_exists(cfn: Any, stack_name: str) -> bool:
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError:
        return False
    return any(s["StackStatus"] != "DELETE_COMPLETE" for s in stacks)


def _wait_for_stack(cfn: Any, stack_name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stack: dict[str, Any] = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        if time.monotonic() > deadline:
            raise DeployError(f"stack {stack_name} still {stack['StackStatus']} after {timeout:.0f} s")
        time.sleep(0.05)


def _delete_stack_quietly(cfn: Any, stack_name: str) -> None:
    with contextlib.suppress(ClientError):
        cfn.delete_stack(StackName=stack_name)


def _resolve_skipped(
    dropped: Mapping[str, dict[str, Any]], stack_id: str, region: str, account_id: str
) -> list[SkippedResource]:
    from moto.cloudformation.models import cloudformation_backends
    from moto.cloudformation.parsing import clean_json

    stack = cloudformation_backends[account_id][region].stacks.get(stack_id)
    skipped = []
    for logical_id, resource in dropped.items():
        kind = resource.get("Type", "")
        properties = resource.get("Properties", {})
        try:
            resolved = clean_json(copy.deepcopy(properties), stack.resource_map) if stack else properties
        except Exception:  # moto cannot resolve every intrinsic; the raw form is still informative
            resolved = properties
        note = (
            "not created: the local stack delivers schedules itself"
            if kind == "AWS::Scheduler::Schedule"
            else "not created: moto's CloudFormation does not support this type"
        )
        skipped.append(SkippedResource(logical_id, kind, resolved, note))
    return skipped


def deploy_template(
    template_path: Path,
    stack_name: str,
    parameters: Mapping[str, str] | None,
    endpoint_url: str,
    runtime: InProcessLambdaRuntime | None,
    *,
    region: str = DEFAULT_REGION,
    artifact_bucket: str = DEFAULT_ARTIFACT_BUCKET,
    timeout: float = 60.0,
) -> Deployment:
    """Deploy a SAM (or plain CloudFormation) template into moto and register its functions."""
    install_cloudformation_patches()
    template_path = Path(template_path).resolve()
    parameters = dict(parameters or {})
    cfn, s3, lambda_client, sts = _clients(endpoint_url, region)
    account_id = sts.get_caller_identity()["Account"]

    template = yaml_cfn.load(template_path)
    _ensure_bucket(s3, artifact_bucket, region)
    packager = _Packager(s3, artifact_bucket, stack_name)
    _package(template, template_path.parent, packager)
    try:
        translated = sam_transform(template, parameters, region)
    except Exception as exc:
        raise DeployError(f"SAM transform failed: {exc}") from exc
    dropped, notes = _drop_unsupported(translated)

    if _stack_exists(cfn, stack_name):
        # moto's stack update does not replace every resource type faithfully; a fresh stack does.
        cfn.delete_stack(StackName=stack_name)
        notes.append(f"stack {stack_name} existed: deleted and created again")
    declared = translated.get("Parameters") or {}
    try:
        cfn.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(translated),
            Parameters=[
                {"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items() if k in declared
            ],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except ClientError as exc:
        _delete_stack_quietly(cfn, stack_name)
        raise DeployError(
            f"stack {stack_name}: CREATE_FAILED: {exc.response['Error'].get('Message', exc)}"
        ) from exc
    stack = _wait_for_stack(cfn, stack_name, timeout)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        _delete_stack_quietly(cfn, stack_name)
        raise DeployError(f"stack {stack_name}: {stack['StackStatus']}: {stack.get('StackStatusReason', '')}")

    _leave_out_false_conditions(stack["StackId"], region, account_id)
    physical_ids: dict[str, str] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for summary in page["StackResourceSummaries"]:
            physical_ids[summary["LogicalResourceId"]] = summary["PhysicalResourceId"]
    _alias_sam_layers(template, translated, physical_ids)
    _apply_time_to_live(translated, physical_ids, endpoint_url, region)

    functions = _functions(translated, packager, physical_ids, lambda_client, notes)
    if runtime is not None:
        for function in functions.values():
            runtime.register(function.function_name, function.code_dir, function.layer_dirs)
    return Deployment(
        stack_name=stack_name,
        stack_id=stack["StackId"],
        region=region,
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        physical_ids=physical_ids,
        functions=functions,
        skipped=_resolve_skipped(dropped, stack["StackId"], region, account_id),
        notes=notes,
    )


def _leave_out_false_conditions(stack_id: str, region: str, account_id: str) -> None:
    """Forget the resources whose Condition is false, as CloudFormation never lists them."""
    from moto.cloudformation.models import cloudformation_backends

    resource_map = cloudformation_backends[account_id][region].stacks[stack_id].resource_map
    definitions = resource_map._resource_json_map
    for logical_id, definition in list(definitions.items()):
        condition = definition.get("Condition")
        if condition and not resource_map.lazy_condition_map[condition]:
            del definitions[logical_id]


def _apply_time_to_live(
    translated: dict[str, Any], physical_ids: Mapping[str, str], endpoint_url: str, region: str
) -> None:
    """UpdateTimeToLive for each table whose TimeToLiveSpecification is enabled (moto's model ignores it)."""
    dynamodb = None
    for logical_id, resource in (translated.get("Resources") or {}).items():
        spec = (resource.get("Properties") or {}).get("TimeToLiveSpecification") or {}
        if resource.get("Type") != "AWS::DynamoDB::Table" or not spec.get("Enabled"):
            continue
        if dynamodb is None:
            session = boto3.session.Session(region_name=region, **_LOCAL_CREDENTIALS)
            dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)
        dynamodb.update_time_to_live(
            TableName=physical_ids[logical_id],
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec["AttributeName"]},
        )


def _alias_sam_layers(sam: dict[str, Any], translated: dict[str, Any], physical_ids: dict[str, str]) -> None:
    # SAM renames a LayerVersion to <LogicalId><hash>; callers know it by its SAM name.
    for logical_id, resource in (sam.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::LayerVersion" or logical_id in physical_ids:
            continue
        for candidate, generated in (translated.get("Resources") or {}).items():
            if (
                generated.get("Type") == "AWS::Lambda::LayerVersion"
                and candidate.startswith(logical_id)
                and re.fullmatch(r"[0-9a-f]{10}", candidate[len(logical_id) :])
                and candidate in physical_ids
            ):
                physical_ids[logical_id] = physical_ids[candidate]


def _functions(
    translated: dict[str, Any],
    packager: _Packager,
    physical_ids: Mapping[str, str],
    lambda_client: Any,
    notes: list[str],
) -> dict[str, DeployedFunction]:
    resources: dict[str, Any] = translated.get("Resources") or {}
    layer_dirs_by_logical: dict[str, Path] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") == "AWS::Lambda::LayerVersion":
            key = (resource.get("Properties", {}).get("Content") or {}).get("S3Key")
            if key in packager.dirs_by_key:
                layer_dirs_by_logical[logical_id] = packager.dirs_by_key[key]
    functions: dict[str, DeployedFunction] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function" or logical_id not in physical_ids:
            continue
        properties = resource.get("Properties", {})
        key = (properties.get("Code") or {}).get("S3Key")
        if key not in packager.dirs_by_key:
            notes.append(f"function {logical_id} has no local code directory: it cannot be invoked locally")
            continue
        layer_dirs: list[Path] = []
        for layer in properties.get("Layers", []) or []:
            ref = layer.get("Ref") if isinstance(layer, dict) else None
            if ref in layer_dirs_by_logical:
                layer_dirs.append(layer_dirs_by_logical[ref])
            else:
                notes.append(
                    f"function {logical_id}: layer {layer!r} has no local source and is not importable"
                )
        name = physical_ids[logical_id]
        configuration = lambda_client.get_function_configuration(FunctionName=name)
        functions[name] = DeployedFunction(
            logical_id=logical_id,
            function_name=name,
            handler=str(configuration.get("Handler", "")),
            code_dir=packager.dirs_by_key[key],
            layer_dirs=tuple(layer_dirs),
        )
    return functions
