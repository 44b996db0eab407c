"""DNS on the local stack: each emulated VPC's Route 53 Resolver and the corporate DNS servers as real DNS
servers on 127.0.0.1, answering from the emulated AWS state with the domain's `explain()`."""

from dbx_privatelink_local.dns.corporate import CORPORATE_ZONE, CorporateZone
from dbx_privatelink_local.dns.local_dns import LocalDns, attach_local_dns
from dbx_privatelink_local.dns.server import DnsServer

__all__ = ["CORPORATE_ZONE", "CorporateZone", "DnsServer", "LocalDns", "attach_local_dns"]
