"""The progress view shows VerifyDns's proof (each name and the addresses it resolved to), and its final table
the DNS resources."""

from __future__ import annotations

from dbx_privatelink_cli.apply import resource_rows
from dbx_privatelink_cli.progress import _SUMMARIES


def test_verified_names_are_shown_with_their_answers() -> None:
    line = _SUMMARIES["VerifyDns"](
        {
            "status": "verified",
            "resolver": "10.0.0.2",
            "names": [
                {
                    "name": "nvirginia.privatelink.cloud.databricks.com",
                    "answers": ["10.0.3.17"],
                    "status": "NOERROR",
                    "ok": True,
                },
                {
                    "name": "git.corp.example.internal",
                    "answers": ["10.10.0.80"],
                    "status": "NOERROR",
                    "ok": True,
                    "answered_by": "10.10.0.53:53",
                },
            ],
        }
    )
    assert "10.0.0.2" in line
    assert "nvirginia.privatelink.cloud.databricks.com -> 10.0.3.17" in line
    assert "git.corp.example.internal -> 10.10.0.80 (via 10.10.0.53:53)" in line


def test_a_skipped_verification_says_why() -> None:
    assert (
        _SUMMARIES["VerifyDns"]({"status": "skipped", "reason": "no VerifierSubnetIds"})
        == "skipped: no VerifierSubnetIds"
    )


def test_the_final_table_lists_the_dns_resources() -> None:
    # Given a run's summary with custom DNS and a private hosted zone, as RecordAndRelease returns it
    summary = {
        "endpoints": {"workspace": {"id": "vpce-0a1b2c3d4e5f60718", "action": "created"}},
        "registrations": {},
        "dns": {
            "resolver_endpoints": [
                {
                    "role": "outbound",
                    "resolver_endpoint_id": "rslvr-out-0a1b2c3d4e5f6a7b8",
                    "vpc_id": "vpc-0d0d0d0d0d0d0d0d0",
                    "status": "OPERATIONAL",
                    "ips": ["10.30.0.10", "10.30.0.140"],
                    "action": "created",
                }
            ],
            "rules": [
                {
                    "role": "forward-all",
                    "resolver_rule_id": "rslvr-rr-0a1b2c3d4e5f6a7b8",
                    "domain": ".",
                    "rule_type": "FORWARD",
                    "target_ips": ["10.10.0.53", "10.10.0.54"],
                    "action": "created",
                }
            ],
            "associations": [
                {
                    "resolver_rule_association_id": "rslvr-rrassoc-0a1b2c3d4e5f6a7b8",
                    "resolver_rule_id": "rslvr-rr-0a1b2c3d4e5f6a7b8",
                    "vpc_id": "vpc-0a1b2c3d4e5f60718",
                    "domain": ".",
                    "status": "COMPLETE",
                    "action": "created",
                }
            ],
            "zone_associations": [
                {
                    "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
                    "zone_name": "corp.example.internal.",
                    "vpc_id": "vpc-0a1b2c3d4e5f60718",
                    "action": "found",
                }
            ],
        },
    }
    # When apply turns it into its final table's rows
    rows = resource_rows(summary)
    # Then every DNS resource has a row: kind, name, id, state, action
    assert rows[1:] == [
        [
            "resolver endpoint",
            "outbound in vpc-0d0d0d0d0d0d0d0d0",
            "rslvr-out-0a1b2c3d4e5f6a7b8",
            "OPERATIONAL, 10.30.0.10, 10.30.0.140",
            "created",
        ],
        [
            "resolver rule",
            "forward-all .",
            "rslvr-rr-0a1b2c3d4e5f6a7b8",
            "FORWARD to 10.10.0.53, 10.10.0.54",
            "created",
        ],
        [
            "rule association",
            ". -> vpc-0a1b2c3d4e5f60718",
            "rslvr-rrassoc-0a1b2c3d4e5f6a7b8",
            "COMPLETE",
            "created",
        ],
        [
            "zone association",
            "corp.example.internal. -> vpc-0a1b2c3d4e5f60718",
            "Z0123456789ABCDEFGHIJ|vpc-0a1b2c3d4e5f60718",
            "",
            "found",
        ],
    ]


def test_the_orphan_sweep_names_the_accounts_it_could_not_sweep() -> None:
    # Given a sweep that found nothing in one account and could not read another
    result = {"orphans": [], "failed": ["acct-b: AccessDenied on ListNetworks"]}

    # When its line is drawn
    line = _SUMMARIES["SweepOrphans"](result)

    # Then it does not read as a clean sweep
    assert line == "none; 1 account(s) not swept: acct-b: AccessDenied on ListNetworks"
    assert _SUMMARIES["SweepOrphans"]({"orphans": []}) == "none"
