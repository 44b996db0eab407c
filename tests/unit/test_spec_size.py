"""A spec fits a run: Step Functions caps an execution's input and every state at 256 KiB, a run's state
holds the spec up to three times and the DNS verification twice, so the spec and dns.verify have caps that
keep the largest state under it; a spec over its cap is refused naming the field that makes it large."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbx_privatelink.dns.spec import MAX_EXPECTED_IPS, MAX_VERIFY_NAMES
from dbx_privatelink.models.verify import NameVerification, VerifyDnsOutput
from dbx_privatelink.spec import MAX_SPEC_BYTES, STATE_DATA_LIMIT_BYTES, input_problems, parse_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "us-east-1.yaml"
# The results besides the DNS verification (endpoints, registrations, network, workspace, Resolver ids):
# a few KB in a recorded run (test below); this much is kept for them.
OTHER_RESULTS_BYTES = 32 * 1024
LONGEST_NAME = ".".join(["a" * 63] * 3 + ["b" * 61])  # 253 characters, the most RFC 1123 allows


def _with_tag_value(length: int, **dns: Any) -> dict[str, Any]:
    document = yaml.safe_load(EXAMPLE.read_text())
    document["databricks"]["workspace"]["custom_tags"] = {"notes": "x" * length}
    if dns:
        document["dns"] = dns
    return document


def _size(document: dict[str, Any]) -> int:
    return len(parse_spec(document).execution_input().encode())


def test_a_spec_may_take_exactly_its_cap_and_not_a_byte_more() -> None:
    # Given the example with a tag value that makes it exactly as large as a spec may be
    length = MAX_SPEC_BYTES - _size(_with_tag_value(0))
    at_cap, over = _with_tag_value(length), _with_tag_value(length + 1)
    assert _size(at_cap) == MAX_SPEC_BYTES
    # Then it is accepted, and one byte more is refused naming the field that makes it large
    assert input_problems(parse_spec(at_cap)) == []
    [problem] = input_problems(parse_spec(over))
    assert problem.startswith("databricks.workspace.custom_tags.notes: makes the spec too large: ")
    assert f"{MAX_SPEC_BYTES + 1:,} bytes as execution input" in problem
    assert "over Step Functions' execution input limit" not in problem  # under 256 KiB, over the spec's cap
    assert problem.endswith("shorten databricks.workspace.custom_tags.notes")


def test_the_examples_are_far_below_the_cap() -> None:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        assert _size(yaml.safe_load(path.read_text())) < MAX_SPEC_BYTES // 10, path


@pytest.mark.parametrize(
    ("verify", "refused"),
    [
        (
            [{"name": f"h{i}.corp.example.com"} for i in range(MAX_VERIFY_NAMES + 1)],
            "dns.verify: 51 names; at most 50 ",
        ),
        (
            [
                {
                    "name": "git.corp.example.com",
                    "expect_ips": [f"10.0.0.{i}" for i in range(MAX_EXPECTED_IPS + 1)],
                }
            ],
            "dns.verify[0].expect_ips: 9 addresses; at most 8 ",
        ),
    ],
)
def test_dns_verify_has_caps(verify: list[dict[str, Any]], refused: str) -> None:
    # Given one name more than dns.verify takes, or one address more than a name takes
    # When the spec is checked, then the field and the cap are named
    problems = input_problems(parse_spec(_with_tag_value(0, verify=verify)))
    assert len(problems) == 1 and problems[0].startswith(refused), problems


def test_a_run_at_the_caps_stays_under_the_state_data_limit() -> None:
    # Given a spec at its cap whose dns.verify lists the most names, each the longest, with the most addresses
    ips = [f"10.100.200.{i}" for i in range(MAX_EXPECTED_IPS)]
    verify = [{"name": f"{i:02}{LONGEST_NAME[2:]}", "expect_ips": ips} for i in range(MAX_VERIFY_NAMES)]
    length = MAX_SPEC_BYTES - _size(_with_tag_value(0, verify=verify))
    document = _with_tag_value(length, verify=verify)
    spec = parse_spec(document).model_dump(mode="json")
    assert _size(document) == MAX_SPEC_BYTES
    # And VerifyDns's report of those names and the workspace and relay names, at their longest
    verification = VerifyDnsOutput(
        status="verified",
        resolver="10.255.255.2",
        names=[
            NameVerification(
                name=LONGEST_NAME, expected=ips, answers=ips, status="NOERROR", ok=True, answered_by="r" * 200
            )
        ]
        * (MAX_VERIFY_NAMES + 2),
    ).model_dump(mode="json")
    # When the state holds all of it at once (RecordAndRelease's output: input, lease, result, summary)
    state = {
        "spec": spec,
        "lease": {"acquired": True, "generation": 1, "fencing_token": "x" * 80, "spec": spec},
        "verification": verification,
        "release": {
            "rerun": True,
            "rerun_count": 1,
            "spec": spec,
            "summary": {"dns": {"verification": verification}},
        },
    }
    # Then the other results still have their room under Step Functions' limit
    assert len(json.dumps(state).encode()) + OTHER_RESULTS_BYTES <= STATE_DATA_LIMIT_BYTES


def test_the_other_results_of_a_recorded_run_are_a_fraction_of_their_room() -> None:
    # Given the recorded history of a successful run
    events = json.loads((ROOT / "events" / "execution_history_success.json").read_text())["events"]
    spec_bytes = len(events[0]["executionStartedEventDetails"]["input"].encode())
    states = [
        len(e["stateExitedEventDetails"]["output"].encode()) for e in events if "stateExitedEventDetails" in e
    ]
    # Then its largest state, less three copies of the spec, is far below the room kept for results
    assert max(states) - 3 * spec_bytes < OTHER_RESULTS_BYTES // 4
