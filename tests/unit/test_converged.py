"""The convergence check's own parts: when it does not even look (spec changed, last run failed), what a
converged run records of the DNS branch, and the Databricks reads one preflight makes once."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbx_privatelink.databricks.models import Network, Workspace
from dbx_privatelink.reconcile.converged import converged, read_once
from dbx_privatelink.reconcile.preflight import Assessment
from dbx_privatelink.spec import WorkspaceSpec, parse_spec
from dbx_privatelink.wiring import Deps, Settings
from tests.unit.test_cli_progress import history, render

ROOT = Path(__file__).resolve().parents[2]


def _spec() -> WorkspaceSpec:
    return parse_spec(yaml.safe_load((ROOT / "examples" / "us-east-1.yaml").read_text()))


class _Untouchable:
    """Adapters the check must not reach: it decides from the record first."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"read {name} although the record already answered")


def _deps() -> Deps:
    return Deps(settings=Settings(region="us-east-1", owner_tag="stack"), session=_Untouchable())


@pytest.mark.parametrize(
    ("observed", "reason"),
    [
        ({}, "the spec differs from the one the last successful run applied"),
        ({"spec_hash": "0123456789abcdef", "health": "HEALTHY"}, "the spec differs"),
        ({"health": "FAILED", "last_run": {"outcome": "FAILED"}}, "the last run did not succeed"),
        ({"health": "HEALTHY", "last_run": {"outcome": "FAILED"}}, "the last run did not succeed"),
    ],
)
def test_a_changed_spec_or_a_failed_last_run_takes_the_full_path_without_a_read(
    observed: dict[str, Any], reason: str
) -> None:
    # Given a workspace whose record does not say "this spec, applied successfully"
    spec = _spec()
    if "health" in observed and "spec_hash" not in observed:
        observed = {**observed, "spec_hash": spec.spec_hash()}
    found = Assessment(endpoints=[], problems=[], private_dns_name="", warnings=[], listing={})
    # When preflight asks whether it converged
    decision = converged(spec, found, observed, _Untouchable(), _deps())  # type: ignore[arg-type]
    # Then it did not, says why, and read nothing
    assert decision.result is None
    assert decision.reason.startswith(reason)


class _CountingAccount:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.network = Network.model_validate(
            {"network_id": "n-1", "network_name": "ws-network", "vpc_id": "vpc-0123456789abcdef0"}
        )

    def get_workspace(self, workspace_id: int) -> Workspace:
        self.calls.append(f"get_workspace {workspace_id}")
        return Workspace.model_validate({"workspace_id": workspace_id, "workspace_name": "ws"})

    def list_networks(self) -> list[Network]:
        self.calls.append("list_networks")
        return [self.network]

    def get_network(self, network_id: str) -> Network:
        self.calls.append(f"get_network {network_id}")
        return self.network

    def get_private_access_settings(self, pas_id: str) -> str:
        self.calls.append(f"get_private_access_settings {pas_id}")
        return pas_id


def test_one_preflight_reads_the_workspace_and_the_networks_once() -> None:
    # Given the Databricks client of one preflight
    account = _CountingAccount()
    client = read_once(account)  # type: ignore[arg-type]
    # When its checks and the convergence check ask for the same objects
    assert client.get_workspace(7).workspace_id == client.get_workspace(7).workspace_id == 7
    assert client.list_networks() == client.list_networks()
    assert client.get_network("n-1") is account.network
    client.get_private_access_settings("p-1")
    client.get_private_access_settings("p-1")
    # Then each workspace and the listing are read once, a listed network not again; other reads pass through
    assert account.calls == [
        "get_workspace 7",
        "list_networks",
        "get_private_access_settings p-1",
        "get_private_access_settings p-1",
    ]
    # And a network not in the listing is read by id
    client.get_network("n-2")
    assert account.calls[-1] == "get_network n-2"


def test_the_progress_view_says_when_preflight_found_nothing_to_change() -> None:
    # Given a recorded run whose preflight found the workspace converged
    events = copy.deepcopy(history("success"))
    done = next(
        e
        for e in events
        if e["type"] == "LambdaFunctionSucceeded"
        and "private_dns_name" in e["lambdaFunctionSucceededEventDetails"]["output"]
    )
    output = json.loads(done["lambdaFunctionSucceededEventDetails"]["output"])
    done["lambdaFunctionSucceededEventDetails"]["output"] = json.dumps(
        {**output, "converged": {"privatelink": {}}}
    )
    # When apply --wait shows it
    _, text = render(events)
    # Then the Preflight line says the reconcile branches are skipped, not which endpoints are planned
    [line] = [line for line in text.splitlines() if "done  Preflight" in line]
    assert "nothing to change since the last run" in line and "endpoints planned" not in line
