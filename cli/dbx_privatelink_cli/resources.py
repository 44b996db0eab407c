"""The DNS half of a run's recorded resources (record.py's summary["dns"]) as rows: one reading for apply's
final table and for `status`, so both list the same Resolver endpoints, rules, associations and zones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DnsRow:
    """One recorded DNS resource. `kind` and `resource_id` are what the drift scan's observations name."""

    kind: str
    name: str
    resource_id: str
    state: str
    action: str


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _endpoints(dns: dict[str, Any]) -> list[DnsRow]:
    recorded = _dicts(dns.get("resolver_endpoints"))
    if not recorded:  # a summary without the branch's endpoint list: the ids it always has
        parts = [("outbound", dns.get("outbound_endpoint")), ("inbound", dns.get("inbound"))]
        parts += [("peered-outbound", p) for p in _dicts(dns.get("peered"))]
        recorded = [{"role": role, **p} for role, p in parts if isinstance(p, dict)]
    rows = []
    for e in recorded:
        where = f" in {e['vpc_id']}" if e.get("vpc_id") else ""
        ips = ", ".join(e.get("ips") or [])
        state = ", ".join(s for s in (str(e.get("status") or ""), ips) if s)
        rows.append(
            DnsRow(
                "resolver endpoint",
                f"{e.get('role', '')}{where}",
                str(e.get("resolver_endpoint_id", "")),
                state,
                str(e.get("action") or ""),
            )
        )
    return rows


def _rules(dns: dict[str, Any]) -> list[DnsRow]:
    rows = []
    for r in _dicts(dns.get("rules")):
        targets = ", ".join(r.get("target_ips") or [])
        rows.append(
            DnsRow(
                "resolver rule",
                f"{r.get('role', '')} {r.get('domain', '')}",
                str(r.get("resolver_rule_id", "")),
                f"{r.get('rule_type', '')}" + (f" to {targets}" if targets else ""),
                str(r.get("action") or ""),
            )
        )
    return rows


def association_id(association: dict[str, Any]) -> str:
    """A rule association's id as recorded (the rule and the VPC when the record has none)."""
    return str(
        association.get("resolver_rule_association_id")
        or f"{association.get('resolver_rule_id')}|{association.get('vpc_id')}"
    )


def dns_rows(dns: Any) -> list[DnsRow]:
    """Resolver endpoints, rules, rule associations and private hosted zone associations, in that order."""
    if not isinstance(dns, dict):
        return []
    rows = _endpoints(dns) + _rules(dns)
    rows += [
        DnsRow(
            "rule association",
            f"{a.get('domain', '')} -> {a.get('vpc_id', '')}",
            association_id(a),
            str(a.get("status") or ""),
            str(a.get("action") or ""),
        )
        for a in _dicts(dns.get("associations"))
    ]
    rows += [
        DnsRow(
            "zone association",
            f"{z.get('zone_name', '')} -> {z.get('vpc_id', '')}",
            f"{z.get('hosted_zone_id', '')}|{z.get('vpc_id', '')}",
            "",
            str(z.get("action") or ""),
        )
        for z in _dicts(dns.get("zone_associations"))
    ]
    return rows


def verification_lines(dns: Any) -> list[str]:
    """The last DNS verification: each name and what it resolved to, or why it was skipped."""
    verification = dns.get("verification") if isinstance(dns, dict) else None
    if not isinstance(verification, dict):
        return []
    if verification.get("status") != "verified":
        return [f"DNS verification: skipped: {verification.get('reason') or 'no reason given'}"]
    lines = [f"DNS verification (through {verification.get('resolver') or 'the VPC resolver'})"]
    for n in _dicts(verification.get("names")):
        answers = ", ".join(n.get("answers") or []) or str(n.get("status", "?"))
        via = f" (via {n['answered_by']})" if n.get("answered_by") else ""
        lines.append(f"  {'ok' if n.get('ok') else 'WRONG'}  {n.get('name', '')} -> {answers}{via}")
    return lines
