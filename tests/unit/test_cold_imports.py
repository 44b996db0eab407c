"""A function imports only what its step uses: the structure of a cold start, not its time.

Each case imports one functions/<step>/app.py in a fresh interpreter (the way Lambda loads it) and reads
sys.modules. Times are measured by bench/run.py --imports-only, never asserted here.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

import dbx_privatelink
from dbx_privatelink.models import databricks_steps, dns_spec, spec_names, spec_step
from dbx_privatelink.wiring import NEEDS
from dbx_privatelink_local import yaml_cfn

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "core"

# Imports app.py, then runs the optional `then` code, and prints what the watched modules look like.
_PROBE = textwrap.dedent(
    """
    import importlib.util, json, sys
    code, then = sys.argv[1], sys.argv[2]
    sys.path[:0] = [sys.argv[3], code]
    spec = importlib.util.spec_from_file_location("app", code + "/app.py")
    app = importlib.util.module_from_spec(spec)
    sys.modules["app"] = app
    spec.loader.exec_module(app)
    exec(then)
    parts = [m for name, m in sys.modules.items() if name.startswith("dbx_privatelink.models.")]
    print(json.dumps({
        "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("dns", "aws_xray_sdk", "boto3", "dbx_privatelink")),
        "built": sorted(n for part in parts for n, c in vars(part).items()
                        if isinstance(c, type) and getattr(c, "__pydantic_complete__", False)
                        and c.__module__ == part.__name__),
    }))
    """
)


# What template.yaml's Globals give every function a fixed value (POWERTOOLS_*, PYDANTIC_DISABLE_PLUGINS).
_TEMPLATE_CONSTANTS = yaml_cfn.function_constants(ROOT / "template.yaml")


def _probe(step: str, *, tracing: bool = True, then: str = "") -> dict[str, list[str]]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        **{var: "1" for variables in NEEDS.values() for var in variables},
        "AWS_REGION": "us-east-1",
        "OWNER_TAG": "dbx-privatelink",
        "PYTHONDONTWRITEBYTECODE": "1",
        "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true",
        # Lambda's own variable: outside Lambda Powertools' Tracer turns itself off and patches nothing.
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / step),
        **_TEMPLATE_CONSTANTS,
    }
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(ROOT / "functions" / step), then, str(LAYER)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    "step",
    [
        "acquire_lease",
        "ensure_endpoint",
        "ensure_resolver_rules",
        "check_zone_associations",
        "ensure_workspace",
    ],
)
def test_a_step_imports_neither_dnspython_nor_the_databricks_client_at_cold_start(step: str) -> None:
    # Given a function of a step that asks no DNS question at cold start
    # When its handler module is imported
    seen = _probe(step)
    # Then dnspython is not loaded, nor the Databricks client (a Databricks step loads it at its first call),
    # nor the ledger of shared resources (an adapter too: a step names shared keys without it)
    assert "dns" not in seen["modules"]
    assert "dbx_privatelink.aws.dns_query" not in seen["modules"]
    assert "dbx_privatelink.databricks.client" not in seen["modules"]
    assert "dbx_privatelink.ledger" not in seen["modules"]


def test_only_the_step_that_resolves_names_loads_dnspython_and_only_when_it_builds_its_query_adapter() -> (
    None
):
    # Given VerifyDns, the one step that queries DNS
    before = _probe("verify_dns")
    # When its handler builds the query adapter from the composition root
    after = _probe("verify_dns", then=_BUILD_DNS_QUERY)
    # Then dnspython comes with the adapter, not with the import
    assert "dns" not in before["modules"]
    assert "dns" in after["modules"] and "dbx_privatelink.aws.dns_query" in after["modules"]
    assert "dbx_privatelink.databricks.client" not in after["modules"]


# The composition root of a function, as the handler builds it: a fresh Deps with the function's settings.
_BUILD_DNS_QUERY = (
    "from dbx_privatelink.wiring import Deps, Settings\nDeps(settings=Settings.from_env(())).dns_query\n"
)
_BUILD_RESOLVER = (
    "import os\nos.environ['AWS_DEFAULT_REGION'] = 'us-east-1'\n"  # the adapter's clients need a region
    "from dbx_privatelink.wiring import Deps, Settings\n"
    "Deps(settings=Settings.from_env(())).resolver('us-east-1')\n"
)


def test_tracing_off_imports_no_xray_sdk_and_on_imports_it() -> None:
    # Given the template's Tracing parameter: PassThrough sets POWERTOOLS_TRACE_DISABLED=true
    off = _probe("acquire_lease", tracing=False)
    on = _probe("acquire_lease", tracing=True)
    # Then only a traced function loads the X-Ray SDK
    assert not any(m.startswith("aws_xray_sdk") for m in off["modules"])
    assert any(m.startswith("aws_xray_sdk") for m in on["modules"])
    # And it patches the two libraries the steps call out with, not every one the X-Ray SDK knows
    patched = {
        m.split(".")[2] for m in on["modules"] if m.startswith("aws_xray_sdk.ext.") and m.endswith(".patch")
    }
    assert patched == {"botocore", "requests"}


def test_a_function_building_its_input_model_never_looks_for_pydantic_plugins() -> None:
    # Given the template's environment (PYDANTIC_DISABLE_PLUGINS), when a function builds its input model
    probe = "import pydantic.plugin._loader as loader\nassert loader._plugins is None, loader._plugins"
    # Then pydantic never scanned the installed distributions' entry points for a plugin
    _probe("ensure_endpoint", then=probe)


def test_a_function_builds_its_input_model_at_cold_start_and_not_the_other_steps_models() -> None:
    # Given AcquireLease's function
    # When its handler module is imported
    seen = _probe("acquire_lease")
    # Then its input model is ready for the first event, and another step's models are left unbuilt
    assert "AcquireLeaseInput" in seen["built"]
    assert "VerifyDnsOutput" not in seen["built"]
    assert "EnsureWorkspaceInput" not in seen["built"]


@pytest.mark.parametrize(
    ("step", "loaded", "not_loaded"),
    [
        ("acquire_lease", {"lease"}, {"endpoints", "databricks", "dns", "record", "spec_step"}),
        (
            "ensure_endpoint",
            {"endpoints", "endpoint_steps"},
            {"lease", "databricks", "dns", "record", "spec_step"},
        ),
        # Recording a run loads the objects' results, not the inputs of the steps that made them
        (
            "record_failure",
            {"record", "databricks", "endpoints"},
            {"databricks_steps", "endpoint_steps", "dns_steps"},
        ),
        # A step that reads only the spec's names creates none of the spec's models
        (
            "check_workspace_running",
            {"databricks", "spec_names"},
            {"spec_step", "databricks_steps", "dns", "record", "lease"},
        ),
        ("retire_network", {"databricks", "spec_names"}, {"spec_step", "dns", "record", "lease"}),
        # A polling step loads the state it polls, not the spec (the DNS steps' inputs that carry it)
        ("check_zone_associations", {"dns"}, {"databricks", "record", "lease", "spec_step", "dns_steps"}),
        ("check_resolver_endpoints", {"dns"}, {"spec_step", "dns_steps", "endpoints", "verify"}),
        # A DNS step reads the spec's DNS section and names, not the whole spec
        ("ensure_resolver_endpoints", {"dns", "dns_spec"}, {"spec_step", "dns_steps", "endpoints", "verify"}),
        ("ensure_resolver_rules", {"dns", "dns_steps", "dns_spec"}, {"spec_step", "endpoints", "verify"}),
        ("ensure_zone_associations", {"dns", "dns_steps", "dns_spec"}, {"spec_step", "endpoints", "verify"}),
        ("verify_dns", {"verify", "endpoints", "dns_spec"}, {"spec_step", "dns_steps", "record"}),
        # Preflight reads the listed zones (reconcile.zone_checks) without the zone steps' models
        ("preflight", {"spec_step", "endpoints", "record"}, {"dns"}),
    ],
)
def test_a_function_loads_the_models_of_its_step_and_not_the_other_steps_models(
    step: str, loaded: set[str], not_loaded: set[str]
) -> None:
    # Given a function
    # When its handler module is imported
    parts = {
        m.removeprefix("dbx_privatelink.models.")
        for m in _probe(step)["modules"]
        if m.startswith("dbx_privatelink.models.")
    }
    # Then the part of the models its step uses is loaded, and the parts of unrelated steps are not
    assert loaded <= parts, parts
    assert not parts & not_loaded, parts


@pytest.mark.parametrize("step", ["release_shared_resources", "revoke_restored_rules"])
def test_a_decommission_step_that_asks_who_else_uses_what_loads_neither_the_plan_nor_the_reconcile(
    step: str,
) -> None:
    # Given a deleting decommission step that asks the other workspaces' specs what they still use
    # When its handler module is imported
    seen = set(_probe(step)["modules"])
    # Then it reads the specs (the spec model, the shared keys) without the plan's lookups or the reconcile
    assert {"dbx_privatelink.decommission.users", "dbx_privatelink.spec"} <= seen
    heavy = {
        "dbx_privatelink.decommission.plan",
        "dbx_privatelink.decommission.locate",
        "dbx_privatelink.decommission.lifecycle",
        "dbx_privatelink.decommission.begin",
        "dbx_privatelink.reconcile.preflight",
        "dbx_privatelink.reconcile.dns",
        "dbx_privatelink.store",
    }
    assert not seen & heavy, sorted(seen & heavy)


@pytest.mark.parametrize("step", ["finish_decommission", "record_decommission_failure"])
def test_a_decommission_step_that_records_the_outcome_does_not_load_the_spec(step: str) -> None:
    # Given a step that records how the decommission ended (the store's records, the ledger's claims)
    # When its handler module is imported
    seen = set(_probe(step)["modules"])
    # Then it has the store, and neither the spec's models nor the first step that reads them
    assert "dbx_privatelink.store" in seen
    assert not seen & {"dbx_privatelink.spec", "dbx_privatelink.decommission.begin"}, sorted(seen)


def test_the_first_decommission_step_reads_the_spec_and_marks_it_through_the_store_built_at_first_use() -> (
    None
):
    # Given BeginDecommission: it reads the stored spec, and marks the workspace and takes its lease in the store
    # When its handler module is imported
    seen = set(_probe("begin_decommission")["modules"])
    # Then it has the spec's models, and the store comes where the composition root builds it
    assert "dbx_privatelink.spec" in seen
    assert "dbx_privatelink.store" not in seen


def test_the_decommission_plan_finds_resources_without_loading_the_reconcile_that_made_them() -> None:
    # Given PlanDecommission: it finds every resource by the tags and names the reconcile gave them
    # When its handler module is imported
    seen = set(_probe("plan_decommission")["modules"])
    # Then it has the marks (reconcile.shared) and its lookups, not the reconcile steps or their models
    assert {"dbx_privatelink.reconcile.shared", "dbx_privatelink.decommission.locate"} <= seen
    reconcile = {
        "dbx_privatelink.reconcile.preflight",
        "dbx_privatelink.reconcile.dns",
        "dbx_privatelink.reconcile.endpoints",
        "dbx_privatelink.models.dns",
        "dbx_privatelink.models.record",
    }
    assert not seen & reconcile, sorted(seen & reconcile)


@pytest.mark.parametrize("step", ["ensure_resolver_rules", "ensure_rule_associations", "plan_decommission"])
def test_a_step_that_reads_resolver_state_loads_the_adapter_and_its_pacer_only_when_it_builds_it(
    step: str,
) -> None:
    # Given a step that judges Resolver endpoints, rules and security groups by what the adapter reads
    before = set(_probe(step)["modules"])
    # When its handler builds the Resolver adapter from the composition root
    after = set(_probe(step, then=_BUILD_RESOLVER)["modules"])
    # Then the import has the shapes the adapter returns, and the adapter and its pacer come with the build
    assert "dbx_privatelink.aws.resolver_types" in before
    assert not before & {"dbx_privatelink.aws.resolver", "dbx_privatelink.pacing"}, sorted(before)
    assert {"dbx_privatelink.aws.resolver", "dbx_privatelink.pacing"} <= after


def test_verify_dns_loads_the_resolution_explainer_only_for_a_name_that_failed() -> None:
    # Given VerifyDns: it asks each name, and explains from the live Resolver state only a name that failed
    # When its handler module is imported
    seen = set(_probe("verify_dns")["modules"])
    # Then it compares names without the explainer's models
    assert "dbx_privatelink.dns.names" in seen
    assert "dbx_privatelink.dns.resolution" not in seen


def test_a_step_that_neither_polls_nor_paces_loads_neither_the_polling_nor_the_pacer() -> None:
    # Given AcquireLease: one conditional write, no wait loop, no rate-limited call
    # When its handler module is imported (the settings read and checked, POLL_EXPECTED_SECONDS among them)
    seen = set(_probe("acquire_lease")["modules"])
    # Then the settings came from the rate budgets and the schedule names, not from the pacer or the polling
    assert {"dbx_privatelink.rates", "dbx_privatelink.wiring"} <= seen
    assert not seen & {"dbx_privatelink.pacing", "dbx_privatelink.reconcile.polling"}, sorted(seen)


def test_every_function_imports_boto3_at_cold_start_as_the_floor_does() -> None:
    # Given a function whose step calls AWS in its first invocation, as every step does
    # When its handler module is imported
    seen = _probe("acquire_lease")
    # Then boto3 is already loaded: deferring it would move it into the first invocation and out of the
    # import figures that bench/run.py compares with a floor that imports it
    assert "boto3" in seen["modules"]


def test_no_module_that_defines_pydantic_models_postpones_its_annotations() -> None:
    # Given every module of the layer, imported, and the modules its pydantic models are defined in
    for found in pkgutil.walk_packages(dbx_privatelink.__path__, "dbx_privatelink."):
        importlib.import_module(found.name)

    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    defining = {c.__module__ for c in subclasses(BaseModel) if c.__module__.startswith("dbx_privatelink.")}
    # When their sources are read
    postponing = sorted(
        name
        for name in defining
        if "from __future__ import annotations" in Path(sys.modules[name].__file__ or "").read_text()
    )
    # Then none postpones annotations: pydantic would compile and evaluate every field's annotation string
    # when the class is created (about a third of a model's creation time, paid at every cold start)
    assert len(defining) >= 20, sorted(defining)
    assert not postponing, postponing


def test_the_layer_defines_no_dataclass() -> None:
    # Given the layer's modules, every one of which some function loads at its cold start
    sources = sorted((LAYER / "dbx_privatelink").rglob("*.py"))
    # When their class decorators are read
    dataclasses = [
        f"{path.relative_to(LAYER)}:{line_number}"
        for path in sources
        for line_number, line in enumerate(path.read_text().splitlines(), start=1)
        if line.lstrip().startswith("@dataclass")
    ]
    # Then there are none: a dataclass compiles its methods when its class is created, about 1 ms a class at
    # every cold start (a NamedTuple or a plain class costs a fraction of that)
    assert len(sources) > 50
    assert not dataclasses, dataclasses


def test_no_model_makes_an_empty_default_with_a_factory() -> None:
    # Given every pydantic model of the layer
    for found in pkgutil.walk_packages(dbx_privatelink.__path__, "dbx_privatelink."):
        importlib.import_module(found.name)

    def subclasses(cls: type[BaseModel]) -> list[type[BaseModel]]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    models = [c for c in subclasses(BaseModel) if c.__module__.startswith("dbx_privatelink.")]
    # When their fields' defaults are read
    factories = sorted(
        f"{model.__module__}.{model.__qualname__}.{name}"
        for model in models
        for name, field in model.model_fields.items()
        if field.default_factory in (list, dict, tuple, set)
    )
    # Then an empty list, dict or tuple is the default value itself (pydantic copies an unhashable default for
    # each instance): a factory's signature is inspected whenever its model is built, and a builtin's is
    # parsed from its text (about 0.2 ms a field, at the cold start of every function whose input has it)
    assert sum(isinstance(f.default, list) for m in models for f in m.model_fields.values()) >= 20
    assert not factories, factories


@pytest.mark.parametrize(
    "model", ["RegisterEndpointsInput", "CheckWorkspaceRunningInput", "RetireNetworkInput"]
)
def test_a_step_that_reads_only_the_specs_names_does_not_validate_the_whole_spec(model: str) -> None:
    # Given the input model of a step that reads only the spec's account, workspace key and region, and
    # Preflight's, which reads the whole spec
    names_only = getattr(spec_names, model)
    whole = spec_step.SpecStep
    # When their validators are built, as the functions build them at cold start
    names_only.model_rebuild(force=True)
    whole.model_rebuild(force=True)
    # Then only the second holds the spec's nested models: the first reads a sample spec's names and ignores
    # the rest (the spec was validated in full where it entered the execution)
    assert "WorkspaceSpec" in repr(whole.__pydantic_core_schema__)
    assert "WorkspaceSpec" not in repr(names_only.__pydantic_core_schema__)
    spec = yaml.safe_load((ROOT / "examples" / "us-east-1.yaml").read_text())
    parsed = names_only.model_validate(
        {
            "spec": spec,
            "workspace": {"workspace_id": 1, "action": "created"},
            "poll": {},
            "network": {"network_id": "n", "action": "found"},
            "endpoints": [],
        }
    )
    assert parsed.spec.databricks.account_id == spec["databricks"]["account_id"]
    assert parsed.spec.workspace_key == spec["workspace_key"]


@pytest.mark.parametrize(
    "step",
    ["ensure_resolver_endpoints", "ensure_rule_associations", "ensure_zone_associations", "verify_dns"],
)
def test_a_dns_step_creates_the_dns_sections_models_and_not_the_whole_specs(step: str) -> None:
    # Given a DNS step: it reads the spec's DNS section, its names and two VPC ids
    # When its handler module is imported
    seen = set(_probe(step)["modules"])
    # Then it has the DNS section's models and not the spec's module, whose models it would create
    assert "dbx_privatelink.dns.spec" in seen
    assert "dbx_privatelink.spec" not in seen


def _dns_document() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "us-east-1.yaml").read_text())
    spec["front_end"] = {
        "vpc_id": "vpc-0f0f0f0f0f0f0f0f0",
        "subnet_ids": ["subnet-0f0f0f0f0f0f0f0f1"],
        "security_group_id": "sg-0f0f0f0f0f0f0f0f1",
    }
    spec["dns"] = {
        "custom_dns": {
            "dns_vpc_id": "vpc-0d0d0d0d0d0d0d0d0",
            "resolver_subnet_ids": ["subnet-0d0d0d0d0d0d0d0d1", "subnet-0d0d0d0d0d0d0d0d2"],
            "allowed_cidrs": ["10.0.0.0/22"],
            "corporate_dns_ips": ["10.10.0.53", "10.10.0.54"],
        }
    }
    return spec


def test_a_dns_step_reads_the_whole_spec_and_validates_its_dns_section() -> None:
    # Given the input model of the DNS steps, and a spec with custom DNS as AcquireLease passes it on
    view = dns_spec.DnsSpecStep
    spec = _dns_document()
    # When its validator is built and it reads that spec
    view.model_rebuild(force=True)
    parsed = view.model_validate({"spec": spec, "execution_name": "e-1"}).spec
    # Then it holds the DNS section's models and not the whole spec's, and reads what the DNS steps use
    schema = repr(view.__pydantic_core_schema__)
    assert "DnsSection" in schema
    assert "WorkspaceSpec" not in schema
    assert parsed.network.vpc_id == spec["network"]["vpc_id"]
    assert parsed.front_end is not None and parsed.front_end.vpc_id == "vpc-0f0f0f0f0f0f0f0f0"
    assert parsed.dns is not None and parsed.dns.custom_dns is not None
    assert [str(ip) for ip in parsed.dns.custom_dns.corporate_dns_ips] == ["10.10.0.53", "10.10.0.54"]
    # And a DNS section that breaks its own rules is still refused
    spec["dns"]["custom_dns"]["corporate_dns_ips"] = ["127.0.0.1"]
    with pytest.raises(ValidationError, match="loopback"):
        view.model_validate({"spec": spec})


@pytest.mark.parametrize("step", ["ensure_private_access_settings", "ensure_network", "ensure_workspace"])
def test_a_databricks_object_step_creates_the_sections_it_reads_and_not_the_whole_specs(step: str) -> None:
    # Given a step that makes a Databricks object from the spec's databricks, private_access and network
    # When its handler module is imported
    seen = set(_probe(step)["modules"])
    # Then it has those sections' models, and neither the spec's module nor the DNS section's
    assert "dbx_privatelink.spec_sections" in seen
    assert not seen & {"dbx_privatelink.spec", "dbx_privatelink.dns.spec"}, sorted(seen)


def test_a_databricks_object_step_reads_the_whole_spec_and_validates_the_sections_it_reads() -> None:
    # Given the input model of the network step, and a spec with a standby network and custom DNS
    view = databricks_steps.EnsureNetworkInput
    spec = _dns_document()
    spec["network"]["standby"] = {
        "workspace_subnet_ids": ["subnet-0c0c0c0c0c0c0c0c1", "subnet-0c0c0c0c0c0c0c0c2"],
        "workspace_security_group_ids": ["sg-0c0c0c0c0c0c0c0c1"],
    }
    # When its validator is built and it reads that spec
    view.model_rebuild(force=True)
    parsed = view.model_validate({"spec": spec, "registrations": []}).spec
    # Then it holds the sections it reads and not the whole spec's models or the DNS section's
    schema = repr(view.__pydantic_core_schema__)
    assert "NetworkSection" in schema and "DatabricksSection" in schema
    assert "WorkspaceSpec" not in schema and "DnsSection" not in schema
    assert [ws.spec_field for ws in parsed.network.workspace_sets()] == ["network", "network.standby"]
    assert parsed.databricks.account_id == spec["databricks"]["account_id"]
    # And a network section that breaks its own rules is still refused
    spec["network"]["standby"]["workspace_subnet_ids"] = spec["network"]["workspace_subnet_ids"]
    with pytest.raises(ValidationError, match="also in workspace_subnet_ids"):
        view.model_validate({"spec": spec, "registrations": []})


def test_detect_drift_maps_events_without_the_spec_the_preflight_or_the_scans_models() -> None:
    # Given DetectDrift: it maps an event to workspaces and, for one it remediates, restores the network
    # prerequisites that preflight checks, reading the stored spec's network section
    # When its handler module is imported
    seen = set(_probe("detect_drift")["modules"])
    # Then it has the repairs and the section they read, with preflight's predicates and not preflight, the
    # whole spec's models or the scan state machine's
    assert {"dbx_privatelink.drift.prerequisites", "dbx_privatelink.reconcile.group_rules"} <= seen
    assert "dbx_privatelink.spec_sections" in seen
    heavy = {"dbx_privatelink.spec", "dbx_privatelink.reconcile.preflight", "dbx_privatelink.drift.models"}
    assert not seen & heavy, sorted(seen & heavy)
    # And not the stores either: the composition root builds them (and loads their modules) at first use
    stores = {"dbx_privatelink.store", "dbx_privatelink.drift_store"}
    assert not seen & stores, sorted(seen & stores)


# Observes the DNS side of the spec in argv's JSON, recorded with nothing to read (the adapter is never asked).
_OBSERVE_DNS = (
    "import json\n"
    "from dbx_privatelink.drift.scan import observe_dns\n"
    "from dbx_privatelink.spec import parse_spec\n"
    "class Deps:\n"
    "    def resolver(self, region): return None\n"
    "assert observe_dns(parse_spec(json.loads(%r)), {'dns': {}}, Deps()) == []\n"
)


def test_the_scan_of_a_workspace_loads_its_dns_comparison_only_for_a_workspace_with_a_dns_section() -> None:
    # Given ScanWorkspace: it reads the stored spec, assesses it as preflight does and compares the live
    # state with what the reconcile left; the Resolver side only for a spec with a dns section
    with_dns = _dns_document()
    without_dns = {k: v for k, v in with_dns.items() if k != "dns"}
    # When its handler module is imported, and then it observes a workspace without and one with a dns section
    seen = set(_probe("scan_workspace")["modules"])
    plain = set(_probe("scan_workspace", then=_OBSERVE_DNS % json.dumps(without_dns))["modules"])
    custom = set(_probe("scan_workspace", then=_OBSERVE_DNS % json.dumps(with_dns))["modules"])
    # Then the import has the spec and preflight, and neither the steps' inputs nor the DNS comparison, nor the
    # stores, which the composition root builds at first use
    assert {
        "dbx_privatelink.spec",
        "dbx_privatelink.reconcile.preflight",
        "dbx_privatelink.drift.scan",
    } <= seen
    dns_side = {
        "dbx_privatelink.drift.scan_dns",
        "dbx_privatelink.reconcile.dns_rules",
        "dbx_privatelink.models.dns_endpoints",
    }
    later = dns_side | {
        f"dbx_privatelink.{part}"
        for part in (
            "models.record_steps",
            "models.lease",
            "models.dns_checks",
            "models.dns_steps",
            "models.spec_names",
            "drift.models",
            "store",
            "drift_store",
        )
    }
    assert not seen & later, sorted(seen & later)
    # And a workspace without a dns section is observed without the comparison, one with a dns section loads it,
    # and neither loads the DNS steps (reconcile/dns.py) or their other results (models/dns.py)
    assert not plain & dns_side, sorted(plain & dns_side)
    assert dns_side <= custom
    steps = {"dbx_privatelink.reconcile.dns", "dbx_privatelink.models.dns"}
    assert not custom & steps, sorted(custom & steps)


@pytest.mark.parametrize("step", ["plan_decommission", "release_shared_resources", "delete_endpoints"])
def test_a_decommission_step_between_the_first_and_the_last_does_not_create_the_runs_models(
    step: str,
) -> None:
    # Given a decommission step after BeginDecommission and before FinishDecommission
    # When its handler module is imported
    seen = set(_probe(step)["modules"])
    # Then it has the steps' shared models and not the run's (the request, the gathered results, the
    # summary) or the orphans' that only the run's summary lists
    assert "dbx_privatelink.decommission.models" in seen
    assert not seen & {"dbx_privatelink.decommission.run_models", "dbx_privatelink.drift.orphan_models"}, (
        sorted(seen)
    )


@pytest.mark.parametrize("step", ["record_failure", "record_and_release", "finish_decommission"])
def test_a_step_that_keeps_specs_leases_and_runs_does_not_create_drifts_records(step: str) -> None:
    # Given a step that reads and writes the store's specs, leases and runs, and no drift record
    # When its handler module is imported
    seen = set(_probe(step)["modules"])
    # Then it has the store and not drift's part of it
    assert "dbx_privatelink.store" in seen
    assert "dbx_privatelink.drift_store" not in seen


def test_recording_a_run_reads_the_specs_network_and_recording_a_failure_the_whole_spec() -> None:
    # Given RecordAndRelease (it indexes the network's ids under the workspace key) and RecordFailure (it
    # hashes the whole spec to tell a rejected spec from the desired one)
    # When their handler modules are imported
    success = set(_probe("record_and_release")["modules"])
    failure = set(_probe("record_failure")["modules"])
    # Then the first has the network section's models and not the whole spec's; the second has the spec
    assert "dbx_privatelink.spec_sections" in success
    assert not success & {"dbx_privatelink.spec", "dbx_privatelink.reconcile.record_failure"}, sorted(success)
    assert {"dbx_privatelink.spec", "dbx_privatelink.reconcile.record_failure"} <= failure
