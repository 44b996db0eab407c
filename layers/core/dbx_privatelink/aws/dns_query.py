"""The adapter that sends DNS queries (dnspython): what `dig @<resolver> <name>` shows, as data.

An optional address map redirects a server address to another one: {"10.0.0.2:53": "127.0.0.1:5353"}. Only
the local stack sets it (environment variable DNS_ADDRESS_MAP), so its emulated private addresses are
never dialled; on AWS the variable is absent and the real address is used.
"""

from __future__ import annotations

import ipaddress
import json
from typing import NamedTuple

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from dbx_privatelink.dns.names import UNANSWERED


class AddressMapError(ValueError):
    """DNS_ADDRESS_MAP is not a JSON object of "ip:port" -> "loopback-ip:port"."""


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        raise AddressMapError(f"{text!r} is not ip:port")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError as exc:
        raise AddressMapError(f"{text!r} is not ip:port") from exc
    if not 0 < number < 65536:
        raise AddressMapError(f"{text!r}: port out of range")
    return host, number


def parse_address_map(text: str) -> dict[tuple[str, int], tuple[str, int]]:
    """Parse DNS_ADDRESS_MAP; redirections may only lead to loopback addresses (local emulators)."""
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise AddressMapError(f"DNS_ADDRESS_MAP is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise AddressMapError("DNS_ADDRESS_MAP must be a JSON object")
    parsed: dict[tuple[str, int], tuple[str, int]] = {}
    for source, target in raw.items():
        to = _host_port(str(target))
        if not ipaddress.ip_address(to[0]).is_loopback:
            raise AddressMapError(f"DNS_ADDRESS_MAP may only redirect to loopback addresses, not {target!r}")
        parsed[_host_port(str(source))] = to
    return parsed


REDIRECTED_TIMEOUT_S = 5.0


class DnsAnswer(NamedTuple):
    """One query's outcome: status NOERROR, NXDOMAIN, SERVFAIL, ... or TIMEOUT / UNREACHABLE."""

    name: str
    server: str
    status: str
    addresses: tuple[str, ...] = ()
    detail: str = ""

    def describe(self) -> str:
        if self.status == "NOERROR" and self.addresses:
            return ", ".join(self.addresses)
        if self.status == "NOERROR":
            return "NOERROR with no A record"
        return self.status + (f" ({self.detail})" if self.detail else "")


class DnsQueryClient:
    """Sends A queries to a given server, through the address map when one is set."""

    def __init__(
        self, address_map: dict[tuple[str, int], tuple[str, int]] | None = None, timeout_s: float = 2.0
    ) -> None:
        self.address_map: dict[tuple[str, int], tuple[str, int]] = address_map or {}
        self.timeout_s = timeout_s

    @classmethod
    def from_env_value(cls, text: str, timeout_s: float = 2.0) -> DnsQueryClient:
        """The client DNS_ADDRESS_MAP asks for. Redirected to the local stack's resolvers, a try waits longer:
        they answer from reads of the emulated API, which take seconds on a busy machine where a VPC's
        resolver takes milliseconds."""
        address_map = parse_address_map(text)
        return cls(address_map, max(timeout_s, REDIRECTED_TIMEOUT_S) if address_map else timeout_s)

    def redirected(self) -> bool:
        return bool(self.address_map)

    def resolve(self, server: str, name: str, port: int = 53, *, attempts: int = 1) -> DnsAnswer:
        """The A records of `name` as `server` answers them (UDP, TCP when truncated); a timeout, an
        unreachable server or SERVFAIL is asked again, up to `attempts` tries in all."""
        answer = self._resolve_once(server, name, port)
        for _ in range(attempts - 1):
            if answer.status not in UNANSWERED:
                break
            answer = self._resolve_once(server, name, port)
        return answer

    def _resolve_once(self, server: str, name: str, port: int) -> DnsAnswer:
        where, where_port = self.address_map.get((server, port), (server, port))
        query = dns.message.make_query(name, dns.rdatatype.A)
        try:
            response = dns.query.udp(query, where, port=where_port, timeout=self.timeout_s)
            if response.flags & dns.flags.TC:
                response = dns.query.tcp(query, where, port=where_port, timeout=self.timeout_s)
        except dns.exception.Timeout:
            return DnsAnswer(name, server, "TIMEOUT", detail=f"no answer within {self.timeout_s:g}s")
        except (OSError, dns.exception.DNSException) as exc:
            return DnsAnswer(name, server, "UNREACHABLE", detail=str(exc))
        status = dns.rcode.to_text(response.rcode())
        addresses = sorted(
            {item.address for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for item in rrset}
        )
        return DnsAnswer(name, server, status, tuple(addresses))
