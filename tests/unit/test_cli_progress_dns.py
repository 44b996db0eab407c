"""The progress view shows VerifyDns's proof: each name and the addresses it resolved to."""

from __future__ import annotations

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
