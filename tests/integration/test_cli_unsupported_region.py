"""`apply` and `plan` refuse a spec for a region the stack's catalog has no Databricks PrivateLink endpoint
services for (exit 2, the regions it has listed) before any execution starts; a region the stack adds with
EndpointServicesJson is one it supports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from integration.test_cli_apply import machine, succeeding_machine
from integration.test_cli_stack import REGION, aws, deploy_stack, run_cli  # noqa: F401 (aws is a fixture)

from dbx_privatelink.catalog import default_catalog

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "us-east-1.yaml"
SUPPORTED = ", ".join(sorted(default_catalog().regions))


def _spec(directory: Path, key: str, region: str) -> Path:
    document = yaml.safe_load(EXAMPLE.read_text())
    document.update(workspace_key=key, region=region)
    path = directory / f"{key}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _executions(session: Any, arn: str) -> list[Any]:
    sfn = session.client("stepfunctions", region_name=REGION)
    return list(sfn.list_executions(stateMachineArn=arn)["executions"])


@pytest.mark.parametrize("command", ["apply", "plan"])
def test_a_spec_for_an_unsupported_region_exits_2_listing_the_supported_ones(
    aws: Any,  # noqa: F811
    tmp_path: Path,
    command: str,
) -> None:
    # Given the stack, with the shipped catalog only, and a spec for af-south-1
    arn = machine(aws, succeeding_machine())
    deploy_stack(aws, state_machine_arn=arn)
    path = _spec(tmp_path, "cape-town", "af-south-1")
    # When it is applied or planned
    code, _out, err = run_cli([command, str(path)], aws)
    # Then nothing started, and the field, the region and the supported ones are named
    assert code == 2, err
    assert _executions(aws, arn) == []
    assert f"{path}: region: Databricks offers no PrivateLink endpoint services in af-south-1" in err, err
    assert f"choose one of {SUPPORTED}" in err


def test_one_unsupported_region_in_a_fleet_starts_nothing(aws: Any, tmp_path: Path) -> None:  # noqa: F811
    # Given a directory with a spec for us-east-1 and one for af-south-1
    arn = machine(aws, succeeding_machine())
    deploy_stack(aws, state_machine_arn=arn)
    _spec(tmp_path, "virginia", "us-east-1")
    cape_town = _spec(tmp_path, "cape-town", "af-south-1")
    # When the directory is applied
    code, out, err = run_cli(["apply", str(tmp_path), "--output", "json"], aws)
    # Then no execution started, and the spec at fault is named
    assert code == 2, err
    assert _executions(aws, arn) == []
    assert json.loads(out)["error"] == "SpecInvalidError"
    assert f"{cape_town}: region: " in err and "virginia" not in err


def test_a_region_the_stack_adds_to_its_catalog_is_applied(aws: Any, tmp_path: Path) -> None:  # noqa: F811
    # Given a stack whose EndpointServicesJson adds af-south-1
    arn = machine(aws, succeeding_machine())
    services = default_catalog().regions["us-east-1"].model_dump()
    deploy_stack(
        aws, state_machine_arn=arn, EndpointServicesJson=json.dumps({"regions": {"af-south-1": services}})
    )
    # When a spec for af-south-1 is applied
    code, _out, err = run_cli(["apply", str(_spec(tmp_path, "cape-town", "af-south-1"))], aws)
    # Then its execution starts
    assert code == 0, err
    assert len(_executions(aws, arn)) == 1
