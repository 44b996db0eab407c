"""Bad input is refused before any AWS call, exit status 2, naming the field and the fix: a key given twice,
a spec too large for a run's state, allowed_cidrs wider than /16. And the spec's JSON Schema, published for
editors, is the model's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from unit.test_cli_main import EXAMPLE, ROOT, CallLog, run

from dbx_privatelink.spec import WorkspaceSpec, parse_spec
from dbx_privatelink_cli.documents import parse_document
from dbx_privatelink_cli.schema import schema_text

SCHEMA_FILE = ROOT / "schema" / "workspace-spec.schema.json"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def _refused(argv: list[str]) -> str:
    """Runs the command with a session that fails on any AWS call; returns stderr once it exited 2."""
    log = CallLog()
    code, _out, err = run(argv, log)
    assert (code, log.calls) == (2, []), err
    return err


@pytest.mark.parametrize("command", ["apply", "plan"])
def test_a_key_given_twice_in_yaml_is_refused_with_its_path_and_lines(tmp_path: Path, command: str) -> None:
    # Given the example with a second vpc_id pasted in under network (the one YAML would keep)
    lines = EXAMPLE.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  vpc_id:")) + 1
    lines.insert(at, "  vpc_id: vpc-0123456789abcdef0")
    path = tmp_path / "twice.yaml"
    path.write_text("\n".join(lines) + "\n")
    # When it is applied or planned
    err = _refused([command, str(path)])
    # Then the field and both lines are named, and the fix
    assert f"{path}: network.vpc_id: given twice (lines {at} and {at + 1})" in err, err
    assert "keep one of them" in err


def test_a_key_given_twice_in_json_is_refused_with_its_path_and_lines(tmp_path: Path) -> None:
    # Given the example as JSON, with workspace_key given again at the end of the top-level object
    text = json.dumps(yaml.safe_load(EXAMPLE.read_text()), indent=2)
    text = text[: text.rindex("}")].rstrip() + ',\n  "workspace_key": "other-workspace"\n}\n'
    path = tmp_path / "twice.json"
    path.write_text(text)
    # When it is applied
    err = _refused(["apply", str(path), "--output", "json"])
    # Then the field and both lines are named
    assert f"workspace_key: given twice (lines 2 and {len(text.splitlines()) - 1})" in err, err


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("a:\n  b: [{c: 1, c: 2}]\n", "a.b[0].c"),
        ('{"a": {"b": [{"c": 1}, {"c": 1, "d": 2, "c": 3}]}}', "a.b[1].c"),
        ('{"a": {"c": 1},\n"c":\t1, "c": 2}', "c"),  # a tab: no YAML, so the key without its lines
    ],
)
def test_repeated_keys_are_found_at_any_depth(text: str, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field.replace('[', r'\[').replace(']', r'\]')}: given twice"):
        parse_document(text, is_json=text.startswith("{"))


def test_merged_keys_and_equal_keys_in_different_mappings_are_no_duplicates() -> None:
    # Given an anchor merged into a mapping that overrides one of its keys, and one key in two mappings
    text = "base: &base {a: 1, b: 2}\nmine:\n  <<: *base\n  b: 3\nother: {a: 1}\n"
    # Then the document is read as YAML reads it
    assert parse_document(text, is_json=False)["mine"] == {"a": 1, "b": 3}


def test_a_spec_over_the_step_functions_input_limit_exits_2_naming_the_field(tmp_path: Path) -> None:
    # Given a spec with 2,000 custom tags: over 256 KiB as execution input
    document = yaml.safe_load(EXAMPLE.read_text())
    document["databricks"]["workspace"]["custom_tags"] = {f"team-{i:04}": "x" * 120 for i in range(2000)}
    path = tmp_path / "large.yaml"
    path.write_text(yaml.safe_dump(document))
    size = len(parse_spec(document).execution_input().encode())
    assert size > 256 * 1024
    # When it is applied
    err = _refused(["apply", str(path)])
    # Then the size, the limit and the field (the tags, not one of them) are named
    assert f"- databricks.workspace.custom_tags: makes the spec too large: {size:,} bytes" in err, err
    assert "over Step Functions' execution input limit of 262,144 bytes (256 KiB)" in err, err
    assert "shorten databricks.workspace.custom_tags\n" in err, err


@pytest.mark.parametrize(
    ("section", "extra"),
    [
        ("custom_dns", {}),
        (
            "inbound",
            {
                "vpc_id": "vpc-0a1b2c3d4e5f60718",
                "subnet_ids": ["subnet-0aa11bb22cc33dd44", "subnet-0ee55ff66aa77bb88"],
                "domains": ["corp.example.com"],
            },
        ),
    ],
)
def test_allowed_cidrs_of_the_whole_internet_exit_2(
    tmp_path: Path, section: str, extra: dict[str, Any]
) -> None:
    # Given a dns section letting 0.0.0.0/0 in, without dns.allow_wide_cidrs
    document = yaml.safe_load(EXAMPLE.read_text())
    custom = {
        "dns_vpc_id": "vpc-0d0d0d0d0d0d0d0d0",
        "resolver_subnet_ids": ["subnet-0d0d0d0d0d0d0d0d1", "subnet-0d0d0d0d0d0d0d0d2"],
        "corporate_dns_ips": ["10.10.0.53"],
    }
    document["dns"] = {
        section: {**(custom if section == "custom_dns" else extra), "allowed_cidrs": ["0.0.0.0/0"]}
    }
    path = tmp_path / "open.yaml"
    path.write_text(yaml.safe_dump(document))
    # When it is applied
    err = _refused(["apply", str(path)])
    # Then the field and the opt-in are named
    assert f"- dns.{section}.allowed_cidrs: 0.0.0.0/0 is wider than /16" in err, err
    assert "dns.allow_wide_cidrs: true" in err


def test_schema_prints_the_models_json_schema_and_writes_it_to_a_file(tmp_path: Path) -> None:
    # When the schema is printed, and written to a file
    code, out, _err = run(["schema"])
    target = tmp_path / "spec.schema.json"
    written, _out, err = run(["schema", "--output", str(target)])
    # Then both are the model's schema, in the 2020-12 dialect pydantic generates
    assert (code, written) == (0, 0)
    printed = json.loads(out)
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {k: v for k, v in printed.items() if not k.startswith("$") or k == "$defs"} == (
        WorkspaceSpec.model_json_schema()
    )
    assert target.read_text() == out and str(target) in err


def test_schema_to_an_unwritable_place_exits_2(tmp_path: Path) -> None:
    code, _out, err = run(["schema", "--output", str(tmp_path / "missing" / "spec.schema.json")])
    assert code == 2 and "cannot write the schema" in err


def test_the_published_schema_is_the_models() -> None:
    assert SCHEMA_FILE.read_text() == schema_text(), "the model changed: run `make schema`"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_editors_accept_the_examples_and_flag_a_typo(path: Path) -> None:
    # Given the published schema, as an editor finds it from the example's first line
    modeline = path.read_text().splitlines()[0]
    assert modeline.startswith("# yaml-language-server: $schema=")
    assert (path.parent / modeline.split("=", 1)[1]).resolve() == SCHEMA_FILE
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    document = yaml.safe_load(path.read_text())
    # Then every example is valid, and a misspelt field and a malformed id are flagged where they are
    assert list(validator.iter_errors(document)) == []
    document["network"]["vpc_idd"] = document["network"].pop("vpc_id")
    document["region"] = "tokyo"
    flagged = {(".".join(map(str, e.absolute_path)), e.validator) for e in validator.iter_errors(document)}
    assert {("network", "additionalProperties"), ("network", "required"), ("region", "pattern")} <= flagged
