"""Operations, read from template.yaml: log groups and their retention, state machine logging, alarms and the
topic they publish to, DetectDrift's on-failure destination, the table's TTL, the dashboard, and the
Databricks secret's parameters (full ARN, max age, KMS key)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from dbx_privatelink.drift_store import DriftStore
from dbx_privatelink.handler import _count, metrics
from dbx_privatelink.store import StoreClient
from dbx_privatelink.wiring import Settings
from dbx_privatelink_local import yaml_cfn
from dbx_privatelink_local.deployer import sam_transform

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = yaml_cfn.load(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
FUNCTIONS = sorted(k for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function")
STATE_MACHINES = sorted(k for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::StateMachine")
ALARMS = {k: v["Properties"] for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dbx-privatelink/service-principal-FsOjZP"


def _of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {k: v.get("Properties", {}) for k, v in RESOURCES.items() if v["Type"] == kind}


def _allowed(parameter: str, value: str) -> bool:
    """CloudFormation's AllowedPattern: the whole value must match."""
    return re.fullmatch(PARAMETERS[parameter]["AllowedPattern"], value) is not None


def _statements(properties: dict[str, Any]) -> list[dict[str, Any]]:
    return [st for p in properties.get("Policies", []) if "Statement" in p for st in p["Statement"]]


def _actions(statement: dict[str, Any]) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else list(statement["Action"])


def _reads_secret(function: str) -> bool:
    return any(
        "secretsmanager:GetSecretValue" in _actions(st)
        for st in _statements(RESOURCES[function]["Properties"])
    )


# --- logs --------------------------------------------------------------------------------------------


def test_every_function_has_a_log_group_with_the_retention_parameter() -> None:
    groups = _of_type("AWS::Logs::LogGroup")
    by_name = {json.dumps(g["LogGroupName"]): g for g in groups.values()}
    for function in FUNCTIONS:
        group = by_name.get(json.dumps({"Fn::Sub": f"/aws/lambda/${{{function}}}"}))
        assert group is not None, f"{function} has no log group /aws/lambda/<its name>"
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    retention = PARAMETERS["LogRetentionDays"]
    assert retention["Default"] in retention["AllowedValues"]


def test_every_state_machine_logs_errors_by_default_to_a_log_group_with_the_retention() -> None:
    assert PARAMETERS["StateMachineLogLevel"]["Default"] == "ERROR"
    groups = _of_type("AWS::Logs::LogGroup")
    for machine in STATE_MACHINES:
        properties = RESOURCES[machine]["Properties"]
        logging = properties["Logging"]
        assert logging["Level"] == {"Ref": "StateMachineLogLevel"}
        (destination,) = logging["Destinations"]
        group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
        assert groups[group]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        # Step Functions delivers logs with the role's log-delivery permissions (they take no resource)
        delivery = {a for st in _statements(properties) for a in _actions(st) if a.startswith("logs:")}
        assert {"logs:CreateLogDelivery", "logs:PutResourcePolicy", "logs:DescribeLogGroups"} <= delivery


# --- alarms ------------------------------------------------------------------------------------------


def test_every_alarm_publishes_to_the_alarm_topic_whose_key_cloudwatch_may_use() -> None:
    assert ALARMS
    for name, alarm in ALARMS.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
    topic = RESOURCES["AlarmTopic"]["Properties"]
    # The AWS-managed SNS key's policy cannot be changed to let CloudWatch use it
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmKey"}
    key_policy = RESOURCES["AlarmKey"]["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = [st for st in key_policy if st["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(_actions(cloudwatch[0]))
    assert RESOURCES["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"


def test_each_state_machine_has_an_alarm_on_failed_executions() -> None:
    failed = {
        a["Dimensions"][0]["Value"]["Ref"]
        for a in ALARMS.values()
        if a.get("Namespace") == "AWS/States" and a.get("MetricName") == "ExecutionsFailed"
    }
    assert failed == set(STATE_MACHINES)


def test_the_dead_letter_queue_depth_has_an_alarm() -> None:
    (alarm,) = [a for a in ALARMS.values() if a.get("Namespace") == "AWS/SQS"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["DriftDeadLetterQueue", "QueueName"]}
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_functions_errors_and_throttles_are_in_an_alarm(metric: str) -> None:
    covered: list[str] = []
    for name, alarm in ALARMS.items():
        stats = [m["MetricStat"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
        mine = [s for s in stats if s["Metric"]["MetricName"] == metric]
        if not mine:
            continue
        # A metric math alarm takes at most 10 metrics; the expression adds them up
        assert len(stats) == len(mine) <= 10, name
        assert [m["Expression"] for m in alarm["Metrics"] if "Expression" in m] == ["SUM(METRICS())"]
        for stat in mine:
            assert (stat["Metric"]["Namespace"], stat["Stat"]) == ("AWS/Lambda", "Sum")
            covered.append(stat["Metric"]["Dimensions"][0]["Value"]["Ref"])
    assert sorted(covered) == FUNCTIONS


# --- DetectDrift's failures, the table's TTL -----------------------------------------------------------


def test_detect_drift_failures_after_lambdas_retries_go_to_the_dead_letter_queue() -> None:
    config = RESOURCES["DetectDriftFunction"]["Properties"]["EventInvokeConfig"]
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["DriftDeadLetterQueue", "Arn"]}}
    assert config["MaximumRetryAttempts"] == 2


class _RecordingTable:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        self.items.append(kwargs["Item"])
        return {}


def test_time_to_live_is_on_for_the_attribute_the_store_writes_in_epoch_seconds() -> None:
    ttl = RESOURCES["Table"]["Properties"]["TimeToLiveSpecification"]
    assert ttl["Enabled"] is True
    # Given the items the store writes with an expiry: a lease and a handled drift event's claim
    table = _RecordingTable()
    now = 1_800_000_000
    assert StoreClient(table).acquire_lease("ws", "exec-1", "arn:exec-1", now).acquired
    assert DriftStore(table).claim_drift_event("ws", "event-1", now)
    # Then each carries the TTL attribute as a number of epoch seconds after now (DynamoDB ignores others)
    for item in table.items:
        expiry = item[ttl["AttributeName"]]
        assert isinstance(expiry, int) and expiry > now, item["sk"]


# --- the dashboard --------------------------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    body = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([^}]+)\}", body))
    for name in names:
        target = name.split(".")[0]
        assert target.startswith("AWS::") or target in RESOURCES, (
            f"the dashboard names {name}, not in the stack"
        )
    return dict(json.loads(re.sub(r"\$\{[^}]+\}", "x", body)))


def test_the_dashboard_shows_executions_per_state_machine_and_the_powertools_metrics() -> None:
    body = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for machine in STATE_MACHINES:
        for metric in ("ExecutionsSucceeded", "ExecutionsFailed"):
            assert f'"AWS/States", "{metric}", "StateMachineArn", "${{{machine}}}"' in body
    # The steps' metrics, in the namespace the functions publish to
    assert "{DbxPrivateLink,service}" in json.dumps(_dashboard()["widgets"])
    assert metrics.namespace == "DbxPrivateLink"
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "DbxPrivateLink"


def test_the_dashboards_runs_per_workspace_read_what_each_step_records() -> None:
    # Given the metric record of one reconcile run's last step
    _count("record_and_release", "ok", {"workspace_key": "ws-a", "execution": "ws-a-1"})
    record = metrics.serialize_metric_set()
    metrics.clear_metrics()
    # Then the log widget's query finds the fields it counts by in it
    (query,) = [w["properties"]["query"] for w in _dashboard()["widgets"] if w["type"] == "log"]
    for field in re.findall(r"\b(workspace_key|execution|step|outcome)\b", query):
        assert field in record, f"the dashboard counts by {field}, which the metric record lacks"
    assert (record["workspace_key"], record["step"], record["outcome"]) == (
        "ws-a",
        "record_and_release",
        "ok",
    )


# --- the Databricks secret --------------------------------------------------------------------------


def test_the_secret_parameter_takes_only_a_full_arn_as_the_iam_policy_needs_it() -> None:
    assert _allowed("DatabricksSecretArn", SECRET_ARN)
    assert _allowed("DatabricksSecretArn", SECRET_ARN.replace("arn:aws:", "arn:aws-us-gov:"))
    # Without the suffix Secrets Manager adds, the policy's Resource would match no secret
    assert not _allowed("DatabricksSecretArn", SECRET_ARN.removesuffix("-FsOjZP"))
    assert not _allowed("DatabricksSecretArn", "dbx-privatelink/service-principal-FsOjZP")
    assert not _allowed("DatabricksSecretArn", SECRET_ARN.replace(":123456789012:", "::"))


def test_the_secret_max_age_reaches_every_function_as_powertools_reads_it() -> None:
    parameter = PARAMETERS["DatabricksSecretMaxAgeSeconds"]
    assert parameter["Default"] == "300" and _allowed("DatabricksSecretMaxAgeSeconds", "0")
    assert not _allowed("DatabricksSecretMaxAgeSeconds", "-1")
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_PARAMETERS_MAX_AGE"] == {"Ref": "DatabricksSecretMaxAgeSeconds"}
    settings = Settings.from_env(
        (), {"AWS_REGION": "r", "OWNER_TAG": "o", "POWERTOOLS_PARAMETERS_MAX_AGE": "42"}
    )
    assert settings.secret_max_age_s == 42


def test_the_kms_key_parameter_is_empty_or_a_key_arn() -> None:
    assert PARAMETERS["DatabricksSecretKmsKeyArn"]["Default"] == ""
    assert _allowed("DatabricksSecretKmsKeyArn", "")
    assert _allowed(
        "DatabricksSecretKmsKeyArn",
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    )
    assert not _allowed("DatabricksSecretKmsKeyArn", "arn:aws:kms:eu-west-1:123456789012:alias/dbx")


def test_a_kms_key_grants_decrypt_through_secrets_manager_to_every_function_that_reads_the_secret() -> None:
    policy = RESOURCES["DatabricksSecretKmsPolicy"]
    assert policy["Condition"] == "HasSecretKmsKey"
    assert TEMPLATE["Conditions"]["HasSecretKmsKey"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "DatabricksSecretKmsKeyArn"}, ""]}]
    }
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Allow", "kms:Decrypt")
    assert statement["Resource"] == {"Ref": "DatabricksSecretKmsKeyArn"}
    assert statement["Condition"] == {
        "StringEquals": {"kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}}
    }
    roles = {r["Ref"] for r in policy["Properties"]["Roles"]}
    assert roles == {f"{f}Role" for f in FUNCTIONS if _reads_secret(f)}
    # And those are the roles the SAM transform makes for the functions
    transformed = sam_transform(
        _deployable(), {"DatabricksSecretArn": SECRET_ARN, "DatabricksSecretKmsKeyArn": "k"}, "us-east-1"
    )
    made = {k for k, v in transformed["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
    assert roles <= made


def _deployable() -> dict[str, Any]:
    """The template with code locations the transform accepts without packaging."""
    template = yaml_cfn.load(ROOT / "template.yaml")
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in properties:
                properties[key] = "s3://bucket/key.zip"
        if "DefinitionUri" in properties:
            properties["Definition"] = json.loads((ROOT / properties.pop("DefinitionUri")).read_text())
    return template


def test_the_fixed_function_variables_are_the_globals_literal_values() -> None:
    # Given the template's Globals, some of whose variables are literals and some intrinsics (a stack's
    # name, a parameter, a condition)
    # When the fixed ones are read, as the benchmark and the cold-import tests read them for a function
    fixed = yaml_cfn.function_constants(ROOT / "template.yaml")
    # Then they are exactly the literal values, PYDANTIC_DISABLE_PLUGINS among them
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert fixed == {k: v for k, v in variables.items() if isinstance(v, str)}
    assert fixed["PYDANTIC_DISABLE_PLUGINS"] == "__all__"
    assert "OWNER_TAG" not in fixed and "POWERTOOLS_TRACE_DISABLED" not in fixed
