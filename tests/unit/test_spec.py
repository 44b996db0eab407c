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


STANDBY = {
    "workspace_subnet_ids": ["subnet-0aa11bb22cc33dd55", "subnet-0ee55ff66aa77bb99"],
    "workspace_security_group_ids": ["sg-0c0ffee0c0ffee003"],
}


def _with_standby(**overrides: list[str]) -> dict[str, Any]:
    doc = copy.deepcopy(_example())
    doc["network"]["standby"] = {**STANDBY, **overrides}
    return doc


def test_standby_set_is_optional_and_listed_after_the_primary_set() -> None:
    assert parse_spec(_example()).network.standby is None
    network = parse_spec(_with_standby()).network
    assert [(s.spec_field, list(s.subnet_ids)) for s in network.workspace_sets()] == [
        ("network", _example()["network"]["workspace_subnet_ids"]),
        ("network.standby", STANDBY["workspace_subnet_ids"]),
    ]
    assert network.all_workspace_security_group_ids() == ["sg-0c0ffee0c0ffee001", "sg-0c0ffee0c0ffee003"]


@pytest.mark.parametrize(
    ("overrides", "field", "fix"),
    [
        (
            {"workspace_subnet_ids": ["subnet-0aa11bb22cc33dd44", "subnet-0ee55ff66aa77bb99"]},
            "standby.workspace_subnet_ids ['subnet-0aa11bb22cc33dd44'] are also in workspace_subnet_ids",
            "subnets of its own",
        ),
        (
            {"workspace_security_group_ids": ["sg-0c0ffee0c0ffee001"]},
            "standby.workspace_security_group_ids ['sg-0c0ffee0c0ffee001'] are also in",
            "groups of its own",
        ),
        (
            {"workspace_subnet_ids": ["subnet-0cc99dd00ee11ff22", "subnet-0ee55ff66aa77bb99"]},
            "standby.workspace_subnet_ids ['subnet-0cc99dd00ee11ff22'] are also endpoint_subnet_ids",
            "own subnet",
        ),
        (
            {"workspace_subnet_ids": ["subnet-0aa11bb22cc33dd55", "subnet-0aa11bb22cc33dd55"]},
            "network.standby.workspace_subnet_ids",
            "list each id once",
        ),
        (
            {"workspace_subnet_ids": ["subnet-0aa11bb22cc33dd55"]},
            "network.standby.workspace_subnet_ids",
            "at least 2",
        ),
        ({"workspace_security_group_ids": []}, "network.standby.workspace_security_group_ids", "at least 1"),
        (
            {"workspace_security_group_ids": [f"sg-0c0ffee0c0ffee1{i:02d}" for i in range(6)]},
            "network.standby.workspace_security_group_ids",
            "at most 5",
        ),
        (
            {"workspace_subnet_ids": ["subnet-XYZ", "subnet-0aa11bb22cc33dd55"]},
            "network.standby",
            "subnet-0a1b2c",
        ),
    ],
)
def test_invalid_standby_sets_name_the_field_and_the_fix(
    overrides: dict[str, Any], field: str, fix: str
) -> None:
    with pytest.raises(SpecInvalidError) as info:
        parse_spec(_with_standby(**overrides))
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


def test_each_set_takes_its_own_five_groups() -> None:
    # The AWS service endpoints carry the endpoint group, not the workspace sets' groups: the sets' groups
    # no longer add up on one interface.
    doc = _with_standby(workspace_security_group_ids=[f"sg-000000000000001{i}" for i in range(1, 5)])
    doc["network"]["workspace_security_group_ids"] = [f"sg-000000000000000{i}" for i in range(1, 3)]
    assert parse_spec(doc).network.all_workspace_security_group_ids()[-1] == "sg-0000000000000014"
    doc["network"]["workspace_security_group_ids"] = [f"sg-000000000000000{i}" for i in range(1, 7)]
    with pytest.raises(SpecInvalidError, match="workspace_security_group_ids"):
        parse_spec(doc)
