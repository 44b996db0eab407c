"""The seeded corporate DNS servers (10.10.0.53 and 10.10.0.54 in the DNS VPC), stood in for on loopback.

Each is authoritative for one small corporate zone and answers it like a corporate server would. For any
other name it answers NXDOMAIN: a real corporate server would recurse to the internet, the local stack
never does (the same convention as public names asked of a VPC's resolver locally), so a name that only
the corporate servers know is the proof that a query was forwarded to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from dbx_privatelink.dns.names import normalize

CORPORATE_ZONE = "corp.example.internal"
CORPORATE_TTL = 300


@dataclass(frozen=True)
class CorporateZone:
    """A corporate zone: name -> (type, value). Only A and CNAME records are served."""

    name: str = CORPORATE_ZONE
    records: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {
            f"git.{CORPORATE_ZONE}": ("A", "10.10.0.80"),
            f"ldap.{CORPORATE_ZONE}": ("A", "10.10.0.81"),
            f"wiki.{CORPORATE_ZONE}": ("CNAME", f"git.{CORPORATE_ZONE}"),
        }
    )

    def contains(self, name: str) -> bool:
        zone = normalize(self.name)
        return name == zone or name.endswith("." + zone)

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        """The server's reply: authoritative inside the zone, NXDOMAIN (no recursion) outside it."""
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        name = normalize(question.name.to_text())
        if question.rdclass != dns.rdataclass.IN or not self.contains(name):
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        response.flags |= dns.flags.AA
        seen: set[str] = set()
        while name not in seen:
            seen.add(name)
            record = self.records.get(name)
            if record is None:
                if name == normalize(self.name) or any(n.endswith("." + name) for n in self.records):
                    break  # the name exists (apex or empty non-terminal): NODATA
                response.set_rcode(dns.rcode.NXDOMAIN if not response.answer else dns.rcode.NOERROR)
                break
            rtype, value = record
            if rtype == "CNAME":
                response.answer.append(
                    dns.rrset.from_text(name + ".", CORPORATE_TTL, "IN", "CNAME", normalize(value) + ".")
                )
                name = normalize(value)
                if not self.contains(name):
                    break
                continue
            if question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
                response.answer.append(dns.rrset.from_text(name + ".", CORPORATE_TTL, "IN", rtype, value))
            break
        if response.rcode() == dns.rcode.NXDOMAIN or not response.answer:
            response.authority.append(
                dns.rrset.from_text(
                    normalize(self.name) + ".",
                    CORPORATE_TTL,
                    "IN",
                    "SOA",
                    f"ns.{normalize(self.name)}. hostmaster.{normalize(self.name)}. 1 3600 600 86400 60",
                )
            )
        return response
