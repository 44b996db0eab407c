"""Preflight refuses a region Databricks offers no PrivateLink endpoint services in, naming the regions the
deployment's catalog has, before any AWS call and before it would advise deploying the stack there; and what
apply refuses locally, for a run started without the CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from dbx_privatelink.catalog import default_catalog
from dbx_privatelink.errors import PreflightFailedError
from dbx_privatelink.models.spec_step import SpecStep
from dbx_privatelink.reconcile.preflight import preflight
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.store import StoreClient
from dbx_privatelink.wiring import Deps, Settings
from tests.tables import app_table

ROOT = Path(__file__).resolve().parents[2]


class _EmptyAccount:
    """A Databricks account with nothing in it that preflight asks about: every list is empty, every
    object looked up exists."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: []


STACK_REGION = "us-east-1"


def _no_aws() -> Any:
    session = boto3.session.Session(
        region_name=STACK_REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )

    def refuse(model: Any, **_: Any) -> None:
        raise AssertionError(f"unexpected AWS call {model.name}")

    session.events.register("before-call", refuse)
    return session


def _step(region: str) -> SpecStep:
    document = copy.deepcopy(yaml.safe_load((ROOT / "examples" / "us-east-1.yaml").read_text()))
    document["region"] = region
    return SpecStep(spec=parse_spec(document), execution_name="e-1")


def _deps(endpoint_services_json: str = "") -> Deps:
    settings = Settings(
        region=STACK_REGION, owner_tag="dbx-privatelink", endpoint_services_json=endpoint_services_json
    )
    return Deps(settings=settings, session=_no_aws())


def test_a_region_without_databricks_privatelink_is_refused_listing_the_supported_ones() -> None:
    # Given a spec for af-south-1, which the catalog lacks, and a stack in us-east-1
    # When preflight runs
    with pytest.raises(PreflightFailedError) as info:
        preflight(_step("af-south-1"), _deps())
    # Then the region is named with every supported one, and no advice to deploy the stack there
    message = str(info.value)
    assert message.startswith("region: Databricks offers no PrivateLink endpoint services in af-south-1"), (
        message
    )
    assert f"choose one of {', '.join(sorted(default_catalog().regions))}" in message
    assert "EndpointServicesJson" in message and "deploy the stack" not in message


def test_a_region_the_stack_adds_to_the_catalog_passes_the_region_check() -> None:
    # Given a deployment whose EndpointServicesJson adds af-south-1
    services = default_catalog().regions["us-east-1"].model_dump()
    deps = _deps(json.dumps({"regions": {"af-south-1": services}}))
    # When preflight runs for a spec there, with the stack in us-east-1
    with pytest.raises(PreflightFailedError) as info:
        preflight(_step("af-south-1"), deps)
    # Then the region is supported, and the only problem is where the stack runs
    assert "deploy the stack in af-south-1" in str(info.value)


def test_a_run_started_without_the_cli_is_refused_for_what_apply_refuses() -> None:
    # Given a spec whose inbound endpoint would admit DNS from 0.0.0.0/0, started without the CLI
    document = copy.deepcopy(yaml.safe_load((ROOT / "examples" / "us-east-1.yaml").read_text()))
    document["dns"] = {
        "inbound": {
            "vpc_id": document["network"]["vpc_id"],
            "subnet_ids": document["network"]["workspace_subnet_ids"],
            "allowed_cidrs": ["0.0.0.0/0"],
            "domains": ["corp.example.com"],
        }
    }
    with mock_aws():
        deps = Deps(
            settings=Settings(region=STACK_REGION, owner_tag="dbx-privatelink"),
            session=boto3.Session(region_name=STACK_REGION),
        )
        deps.__dict__["databricks"] = lambda _account: _EmptyAccount()
        deps.__dict__["store"] = StoreClient(
            boto3.resource("dynamodb", region_name=STACK_REGION).Table(
                app_table(boto3.Session(region_name=STACK_REGION))
            )
        )
        # When preflight runs (on an account without the spec's VPCs: their problems are listed too)
        with pytest.raises(PreflightFailedError) as info:
            preflight(SpecStep(spec=parse_spec(document), execution_name="e-1"), deps)
    # Then the field and the fix are among the problems, and nothing was changed
    message = str(info.value)
    assert "nothing was changed" in message
    assert "\n- dns.inbound.allowed_cidrs: 0.0.0.0/0 is wider than /16;" in message, message
