"""The workspace spec: the examples are valid, and every error names the field and the fix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbx_privatelink.errors import SpecInvalidError
from dbx_privatelink.spec import WorkspaceSpec, execution_name, parse_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def _example() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "examples" / "ap-northeast-1.yaml").read_text())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid(path: Path) -> None:
    spec = parse_spec(yaml.safe_load(path.read_text()))
    assert isinstance(spec, WorkspaceSpec)


def test_execution_input_may_wrap_the_spec() -> None:
    assert parse_spec({"spec": _example()}).workspace_key == "privatelink-test"


@pytest.mark.parametrize(
    ("mutate", "field", "fix"),
    [
        (
            lambda d: d["network"].update(workspace_subnet_ids=["subnet-0aa11bb22cc33dd44"]),
            "network.workspace_subnet_ids",
            "at least 2",
        ),
        (lambda d: d["network"].update(vpc_id="vpc-XYZ"), "network.vpc_id", "vpc-0a1b2c3d4e5f60718"),
        (lambda d: d.update(region="tokyo"), "region", "us-east-1"),
        (lambda d: d["databricks"].update(account_id="acme"), "databricks.account_id", "UUID"),
        (lambda d: d.update(workspace_key="Bad Key"), "workspace_key", "lowercase"),
        (lambda d: d["network"].update(colour="blue"), "network.colour", "remove it"),
        (lambda d: d["databricks"]["workspace"].pop("name"), "databricks.workspace", "existing_workspace_id"),
        (
            lambda d: d["endpoints"].update(aws_services=["s3", "dynamodb"]),
            "endpoints.aws_services",
            "kinesis-streams",
        ),
        (lambda d: d["private_access"].update(level="ANY"), "private_access.level", "ACCOUNT or ENDPOINT"),
        (
            lambda d: d["network"].update(endpoint_subnet_ids=["subnet-0aa11bb22cc33dd44"]),
            "network",
            "own subnet",
        ),
        (
            lambda d: d.update(private_access={"public_access_enabled": False, "level": "ENDPOINT"}),
            "private_access",
            "front_end",
        ),
        (lambda d: d.pop("network"), "network", "add it"),
    ],
)
def test_invalid_specs_name_the_field_and_the_fix(mutate: Any, field: str, fix: str) -> None:
    doc = copy.deepcopy(_example())
    mutate(doc)
    with pytest.raises(SpecInvalidError) as info:
        parse_spec(doc)
    message = str(info.value)
    assert field in message and fix in message, message


def test_hash_follows_content_not_formatting() -> None:
    a = parse_spec(_example())
    doc = _example()
    doc["network"]["workspace_subnet_ids"] = list(doc["network"]["workspace_subnet_ids"])
    assert parse_spec(doc).spec_hash() == a.spec_hash()
    doc["private_access"]["public_access_enabled"] = False
    assert parse_spec(doc).spec_hash() != a.spec_hash()


def test_execution_names_are_legal_and_bounded() -> None:
    name = execution_name("privatelink-test", 12, "20261121T200102Z")
    assert name == "privatelink-test-g12-20261121T200102Z"
    assert len(execution_name("x" * 40, 1, "y" * 60)) <= 80
