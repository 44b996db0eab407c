"""The state machines honour the error taxonomy and the retry rules: a contract read from the ASL files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbx_privatelink.errors import RetryableError, error_classes

ROOT = Path(__file__).resolve().parents[2]
ASL_FILES = sorted((ROOT / "statemachine").glob("*.asl.json"))
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
STATES_ERRORS = {
    "States.ALL",
    "States.TaskFailed",
    "States.Timeout",
    "States.Runtime",
    "States.HeartbeatTimeout",
}


def _walk(states: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every state with its path and the States map it belongs to, through Parallel branches and Maps."""
    found = []
    for name, state in states.items():
        found.append((f"{path}{name}", state, states))
        for branch in state.get("Branches", []):
            found += _walk(branch["States"], f"{path}{name}/")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found += _walk(processor["States"], f"{path}{name}/")
    return found


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@pytest.fixture(params=ASL_FILES, ids=lambda p: p.name)
def asl(request: pytest.FixtureRequest) -> dict[str, Any]:
    return _load(request.param)


def test_there_are_state_machines() -> None:
    assert {p.name for p in ASL_FILES} >= {"reconcile_workspace.asl.json", "scan_fleet.asl.json"}


def test_every_error_name_is_a_real_error_class(asl: dict[str, Any]) -> None:
    known = set(error_classes()) | LAMBDA_SERVICE_ERRORS | STATES_ERRORS | {"Sandbox.Timedout"}
    for where, state, _ in _walk(asl["States"]):
        for rule in state.get("Retry", []) + state.get("Catch", []):
            unknown = set(rule["ErrorEquals"]) - known
            assert not unknown, f"{where} names errors that do not exist in errors.py: {sorted(unknown)}"


def test_every_next_target_exists(asl: dict[str, Any]) -> None:
    for where, state, siblings in _walk(asl["States"]):
        targets = [state.get("Next"), state.get("Default")]
        targets += [c.get("Next") for c in state.get("Choices", [])]
        targets += [c.get("Next") for c in state.get("Catch", [])]
        for target in filter(None, targets):
            assert target in siblings, f"{where} goes to {target}, which is not a state of its scope"


def test_every_lambda_task_retries_lambda_service_errors(asl: dict[str, Any]) -> None:
    for where, state, _ in _walk(asl["States"]):
        if state["Type"] != "Task":
            continue
        retried = {e for rule in state.get("Retry", []) for e in rule["ErrorEquals"]}
        missing = LAMBDA_SERVICE_ERRORS - retried
        assert not missing, f"{where} does not retry {sorted(missing)}"


def test_retries_name_only_retryable_errors_with_backoff(asl: dict[str, Any]) -> None:
    retryable = {name for name, cls in error_classes().items() if issubclass(cls, RetryableError)}
    for where, state, _ in _walk(asl["States"]):
        for rule in state.get("Retry", []):
            names = set(rule["ErrorEquals"])
            assert "States.ALL" not in names, f"{where} has a blanket States.ALL retry"
            assert names <= retryable | LAMBDA_SERVICE_ERRORS, (
                f"{where} retries terminal errors {names - retryable}"
            )
            assert rule.get("BackoffRate", 1) > 1 and rule.get("JitterStrategy") == "FULL", where
            assert "MaxDelaySeconds" in rule, f"{where} retry has no MaxDelaySeconds"


def test_terminal_errors_reach_the_failure_path(asl: dict[str, Any]) -> None:
    top = asl["States"]
    if "RecordFailure" not in top:
        pytest.skip("no failure path: a failed run has nothing to record (the scan's next tick starts over)")
    for name, state in top.items():
        if state["Type"] in ("Task", "Parallel", "Map") and name != "RecordFailure":
            catches = {e for c in state.get("Catch", []) for e in c["ErrorEquals"]}
            assert "States.ALL" in catches, f"{name} lets errors bypass RecordFailure"


def test_one_workspace_failing_never_stops_the_scan() -> None:
    """A Map fails as soon as one item fails (the reconcile's endpoint Maps want that; the scan does not):
    every Task inside the scan's Map catches everything itself."""
    scan = _load(ROOT / "statemachine" / "scan_fleet.asl.json")
    maps = [(where, state) for where, state, _ in _walk(scan["States"]) if state["Type"] == "Map"]
    assert maps, "the scan has no Map"
    for where, state in maps:
        processor = state.get("ItemProcessor") or state["Iterator"]
        for inner, task, _ in _walk(processor["States"], f"{where}/"):
            if task["Type"] in ("Task", "Parallel", "Map"):
                catches = {e for c in task.get("Catch", []) for e in c["ErrorEquals"]}
                assert "States.ALL" in catches, f"{inner} can fail the whole Map"


def test_every_placeholder_has_a_substitution() -> None:
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)
    machines = {
        r["Properties"]["DefinitionUri"]: r["Properties"].get("DefinitionSubstitutions", {})
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Serverless::StateMachine"
    }
    for path in ASL_FILES:
        placeholders = set(re.findall(r"\$\{(\w+)\}", path.read_text()))
        missing = placeholders - set(machines[f"statemachine/{path.name}"])
        assert not missing, f"{path.name}: no DefinitionSubstitutions for {sorted(missing)}"


def test_every_state_has_a_comment(asl: dict[str, Any]) -> None:
    for where, state, _ in _walk(asl["States"]):
        assert state.get("Comment"), f"{where} has no Comment"


def test_task_states_match_function_folders_and_template_substitutions() -> None:
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)
    machines = {
        r["Properties"]["DefinitionUri"]: r["Properties"].get("DefinitionSubstitutions", {})
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Serverless::StateMachine"
    }
    for path in ASL_FILES:
        subs = machines[f"statemachine/{path.name}"]
        for where, state, _ in _walk(_load(path)["States"]):
            if state["Type"] != "Task":
                continue
            placeholder = re.fullmatch(r"\$\{(\w+)FunctionArn\}", state["Resource"])
            assert placeholder, f"{where} resource {state['Resource']} is not a function substitution"
            assert f"{placeholder[1]}FunctionArn" in subs, f"{where}: template lacks the substitution"
            folder = re.sub(r"(?<!^)(?=[A-Z])", "_", placeholder[1]).lower()
            assert (ROOT / "functions" / folder / "app.py").exists(), (
                f"{where}: functions/{folder} is missing"
            )


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags read as plain data."""


for _tag in (
    "Ref",
    "GetAtt",
    "Sub",
    "Join",
    "If",
    "Equals",
    "Not",
    "Select",
    "Split",
    "FindInMap",
    "Condition",
):
    _CfnLoader.add_multi_constructor(f"!{_tag}", lambda loader, suffix, node: None)
