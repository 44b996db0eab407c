"""LocalDns: the Route 53 Resolver of every emulated VPC, and the corporate DNS servers, as real DNS servers
on 127.0.0.1.

    dns = LocalDns(stack).start()             # or LocalDns("http://127.0.0.1:PORT", "us-east-1")
    dns.address_map()   # {"10.0.0.2:53": "127.0.0.1:53001", "10.10.0.53:53": "127.0.0.1:53002", ...}
    host, port = dns.resolver_address(vpc_id).split(":")
    dns.stop()

Each VPC's server answers as that VPC's resolver (CIDR base + 2) would: `explain()` on the region's state
read live from the emulated AWS through the same adapter that reads AWS (cached for `cache_ttl` seconds,
0.5 by default; `invalidate()` forces a re-read, and the local stack invalidates on every successful
mutating EC2, Route 53 or Route 53 Resolver call before answering it and whenever the state of a VPC
endpoint, Resolver endpoint or rule association moves on by itself, so a change AWS reports done is what
the resolvers answer with; attached so, it keeps the state for 30 s). Queries a rule forwards to an outside server go to that server's loopback stand-in through the
address map; an emulated private address is never dialled, and a target without a stand-in counts as a
server that does not answer. Inbound endpoint IPs and other VPCs' resolver addresses are followed inside
`explain()` (and appear in the address map, mapped to the VPC's server, for clients that dial them).

Decisions, local only:
- Public names (a name no private zone, endpoint or forwarding rule answers, e.g.
  accounts.cloud.databricks.com asked without a "." rule) get NXDOMAIN: the local stack never reaches the
  internet. Endpoint-specific vpce names, which AWS publishes in public DNS, are answered from the state.
- A records are served; a query of another type gets the A query's status with no records (NODATA).
  Alias records come back as a CNAME chain. Answers from the state carry a TTL of 5 seconds.
- VPCs created after start get their server when `address_map()` or `resolver_address()` is next called.
  When two VPCs share a CIDR, the address map keeps the first by id for the shared resolver address.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import boto3
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from botocore.config import Config

from dbx_privatelink.aws.dns_state import DnsStateClient
from dbx_privatelink.dns.names import normalize
from dbx_privatelink.dns.resolution import DnsState, ResolutionPath, UpstreamAnswer, explain
from dbx_privatelink_local.aws.rate_limits import EMULATOR_ACCESS_KEY
from dbx_privatelink_local.dns import moto_patches
from dbx_privatelink_local.dns.corporate import CorporateZone
from dbx_privatelink_local.dns.server import LOOPBACK, DnsServer, error_response
from dbx_privatelink_local.seed import CORPORATE_DNS_IPS

log = logging.getLogger(__name__)

ANSWER_TTL = 5
# Credentials moto accepts (the same as the local stack's).
# The emulated resolvers' reads are the emulator's, not a client's: AWS's rate limits do not count them.
_LOCAL_KEYS = {"aws_access_key_id": EMULATOR_ACCESS_KEY, "aws_secret_access_key": "testing"}
# How long a query waits, at most, for another query's read of the state before looking again.
READ_WAIT_S = 1.0
# With every change told (calls and the endpoints' own state changes), the cache needs no short expiry.
ATTACHED_CACHE_TTL_S = 30.0
_BOTO = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=10)


class _StateCache:
    """The region's DNS state, re-read when older than `ttl` seconds. Queries that find it stale while a
    read of the same generation is under way wait for that read instead of making their own: a fleet's
    queries arrive together, and each read is several calls to the emulated AWS."""

    def __init__(self, read: Callable[[], DnsState], ttl: float) -> None:
        self._read = read
        self._ttl = ttl
        self._lock = threading.Lock()
        self._read_done = threading.Condition(self._lock)
        self._state: DnsState | None = None
        self._at = 0.0
        self._generation = 0  # moved on by invalidate(): a read that began before it is not kept
        self._reading: int | None = None  # the generation a read is under way for

    def get(self) -> DnsState:
        with self._lock:
            # Bounded: each wait ends with a read's end (a read fails with botocore's own timeouts).
            while True:
                if self._state is not None and time.monotonic() - self._at < self._ttl:
                    return self._state
                if self._reading != self._generation:
                    break
                self._read_done.wait(timeout=READ_WAIT_S)
            generation = self._reading = self._generation
        try:
            state = self._read()  # outside the lock: invalidate() must never wait for a read of AWS
        finally:
            with self._lock:
                if self._reading == generation:
                    self._reading = None
                self._read_done.notify_all()
        with self._lock:
            if generation == self._generation:
                self._state, self._at = state, time.monotonic()
            return state

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._state = None
            self._read_done.notify_all()


class LocalDns:
    """Loopback DNS servers for every VPC's Route 53 Resolver and the corporate DNS servers."""

    def __init__(
        self,
        stack_or_endpoint_url: Any,
        region: str | None = None,
        *,
        corporate_ips: Sequence[str] | None = None,
        corporate_zone: CorporateZone | None = None,
        cache_ttl: float = 0.5,
        upstream_timeout: float = 1.0,
        session: Any = None,
    ) -> None:
        if isinstance(stack_or_endpoint_url, str):
            endpoint_url = stack_or_endpoint_url
            if region is None:
                raise ValueError("LocalDns(endpoint_url, region): name the region")
        else:  # a LocalStack (duck-typed: stack.py imports this package)
            stack = stack_or_endpoint_url
            endpoint_url = stack.aws.endpoint_url
            region = region or stack.config.region
            environment = getattr(stack, "environment", None)
            if corporate_ips is None and environment is not None:
                corporate_ips = list(environment.corporate_dns_ips)
        self.endpoint_url = endpoint_url
        self.region: str = region
        self.corporate_ips = tuple(corporate_ips if corporate_ips is not None else CORPORATE_DNS_IPS)
        self.corporate_zone = corporate_zone or CorporateZone()
        self.upstream_timeout = upstream_timeout
        session = session or boto3.session.Session(region_name=region, **_LOCAL_KEYS)
        self._reader = DnsStateClient.from_session(session, region, endpoint_url=endpoint_url, config=_BOTO)
        self._cache_ttl = cache_ttl
        # What every resolver needs to exist and be addressed (VPCs, Resolver endpoints), and per VPC what a
        # query from it can reach: a fleet's region holds many VPCs, each answered from a read of its own.
        self._cache = _StateCache(lambda: self._reader.read([]), cache_ttl)
        self._vpc_caches: dict[str, _StateCache] = {}
        self._lock = threading.RLock()
        self._vpc_servers: dict[str, DnsServer] = {}
        self._corporate_servers: dict[str, DnsServer] = {}
        self._started = False

    # --- lifecycle ---

    def start(self) -> LocalDns:
        """Start the corporate servers and one resolver per VPC that exists now; idempotent."""
        with self._lock:
            if self._started:
                return self
            moto_patches.install()
            self._started = True
            try:
                for ip in self.corporate_ips:
                    self._corporate_servers[ip] = DnsServer(
                        f"corporate-{ip}", self.corporate_zone.answer
                    ).start()
                self._sync_servers(self._cache.get())
            except BaseException:
                self.stop()
                raise
        return self

    def stop(self) -> None:
        """Stop every server (bounded: each joins its threads for at most a few seconds)."""
        with self._lock:
            servers = [*self._vpc_servers.values(), *self._corporate_servers.values()]
            self._vpc_servers.clear()
            self._corporate_servers.clear()
            self._started = False
        # In parallel: each server's shutdown waits for its serve loop's next poll.
        stoppers = [threading.Thread(target=s.stop, name=f"stop-{s.name}", daemon=True) for s in servers]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join(timeout=5.0)

    def __enter__(self) -> LocalDns:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def invalidate(self) -> None:
        """Forget the cached state: the next query reads the emulated AWS again."""
        self._cache.invalidate()
        with self._lock:
            caches = list(self._vpc_caches.values())
        for cache in caches:
            cache.invalidate()

    def _state_of(self, vpc_id: str) -> DnsState:
        """What resolution from `vpc_id` can reach, cached per VPC."""
        with self._lock:
            cache = self._vpc_caches.get(vpc_id)
            if cache is None:
                cache = self._vpc_caches[vpc_id] = _StateCache(
                    lambda: self._reader.read([vpc_id]), self._cache_ttl
                )
        return cache.get()

    # --- addresses ---

    def address_map(self) -> dict[str, str]:
        """Emulated "ip:port" -> loopback "127.0.0.1:port": every VPC's resolver (CIDR base + 2), every
        inbound endpoint IP that speaks Do53 (to its VPC's resolver), every corporate server."""
        state = self._cache.get()
        with self._lock:
            self._require_started()
            self._sync_servers(state)
            mapping: dict[str, str] = {}
            for vpc in sorted(state.vpcs, key=lambda v: v.vpc_id):
                server = self._vpc_servers.get(vpc.vpc_id)
                if server is not None:
                    mapping.setdefault(f"{vpc.resolver_ip}:53", server.address)
            for endpoint in state.resolver_endpoints:
                server = self._vpc_servers.get(endpoint.vpc_id)
                if endpoint.direction == "INBOUND" and endpoint.speaks_do53 and server is not None:
                    for ip in endpoint.ips:
                        mapping.setdefault(f"{ip}:53", server.address)
            for ip, server in self._corporate_servers.items():
                mapping[f"{ip}:53"] = server.address
            return mapping

    def address_map_json(self) -> str:
        """The address map as the DNS_ADDRESS_MAP environment variable carries it."""
        return json.dumps(self.address_map(), sort_keys=True, separators=(",", ":"))

    def resolver_address(self, vpc_id: str) -> str:
        """ "127.0.0.1:port" of the loopback server answering as `vpc_id`'s Route 53 Resolver."""
        with self._lock:
            self._require_started()
            server = self._vpc_servers.get(vpc_id)
        if server is None:
            self._cache.invalidate()
            state = self._cache.get()
            with self._lock:
                self._sync_servers(state)
                server = self._vpc_servers.get(vpc_id)
        if server is None:
            raise KeyError(f"{vpc_id} is not a VPC of the emulated {self.region}")
        return server.address

    def corporate_address(self, ip: str) -> str:
        """ "127.0.0.1:port" of the stand-in for the corporate server `ip`."""
        with self._lock:
            return self._corporate_servers[ip].address

    # --- answering ---

    def explain(self, vpc_id: str, name: str) -> ResolutionPath:
        """The path a query takes from `vpc_id`, with forwarded queries really asked of the stand-ins."""
        return explain(self._state_of(vpc_id), vpc_id, name, upstream=self._ask)

    def _answer_as(self, vpc_id: str) -> Callable[[dns.message.Message], dns.message.Message]:
        def answer(query: dns.message.Message) -> dns.message.Message:
            if query.opcode() != dns.opcode.QUERY:
                return error_response(query, dns.rcode.NOTIMP)
            if len(query.question) != 1:
                return error_response(query, dns.rcode.FORMERR)
            question = query.question[0]
            if question.rdclass != dns.rdataclass.IN:
                return error_response(query, dns.rcode.REFUSED)
            return _response(query, self.explain(vpc_id, question.name.to_text()))

        return answer

    def _ask(self, ip: str, port: int, name: str) -> UpstreamAnswer:
        """Ask an outside target through the address map; never dial the emulated private address."""
        with self._lock:
            server = self._corporate_servers.get(ip) if port == 53 else None
        if server is None:
            return UpstreamAnswer(
                status="TIMEOUT",
                detail=f"no local server stands for {ip}:{port} (emulated private addresses are never dialled)",
            )
        query = dns.message.make_query(name if name.endswith(".") else name + ".", dns.rdatatype.A)
        try:
            reply = dns.query.udp(query, LOOPBACK, port=server.port, timeout=self.upstream_timeout)
            if reply.flags & dns.flags.TC:
                reply = dns.query.tcp(query, LOOPBACK, port=server.port, timeout=self.upstream_timeout)
        except (dns.exception.Timeout, OSError) as exc:
            return UpstreamAnswer(status="TIMEOUT", detail=f"{server.address}: {exc or 'timed out'}")
        rcode = reply.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            return UpstreamAnswer(status="NXDOMAIN", detail=f"asked {server.address}")
        if rcode != dns.rcode.NOERROR:
            status = "REFUSED" if rcode == dns.rcode.REFUSED else "SERVFAIL"
            return UpstreamAnswer(status=status, detail=f"{server.address}: {dns.rcode.to_text(rcode)}")
        addresses: list[str] = []
        cnames: list[tuple[str, str]] = []
        for rrset in reply.answer:
            for rdata in rrset:
                if rrset.rdtype == dns.rdatatype.A:
                    addresses.append(rdata.to_text())
                elif rrset.rdtype == dns.rdatatype.CNAME:
                    cnames.append((normalize(rrset.name.to_text()), normalize(rdata.to_text())))
        return UpstreamAnswer(
            status="NOERROR",
            addresses=tuple(addresses),
            cnames=tuple(cnames),
            detail=f"asked {server.address}",
        )

    # --- servers ---

    def _sync_servers(self, state: DnsState) -> None:
        """One server per VPC of the state (called with the lock held)."""
        if not self._started:
            return
        for vpc in state.vpcs:
            if vpc.vpc_id not in self._vpc_servers:
                self._vpc_servers[vpc.vpc_id] = DnsServer(
                    f"resolver-{vpc.vpc_id}", self._answer_as(vpc.vpc_id)
                ).start()
                log.debug(
                    "resolver of %s (%s) on %s",
                    vpc.vpc_id,
                    vpc.resolver_ip,
                    self._vpc_servers[vpc.vpc_id].address,
                )

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("LocalDns is not started")


def _response(query: dns.message.Message, path: ResolutionPath) -> dns.message.Message:
    """The DNS reply for a resolution path (PUBLIC is NXDOMAIN locally: see the module docstring)."""
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA
    question = query.question[0]
    if path.outcome in ("NXDOMAIN", "PUBLIC"):
        response.set_rcode(dns.rcode.NXDOMAIN)
    elif path.outcome in ("SERVFAIL", "FORWARDED"):  # FORWARDED: a target nobody could ask
        response.set_rcode(dns.rcode.SERVFAIL)
        return response
    owner = question.name
    for source, target in path.cnames:
        # Only the chain that starts at the question (explain lists it in order).
        if dns.name.from_text(source) != owner:
            continue
        response.answer.append(dns.rrset.from_text(owner, ANSWER_TTL, "IN", "CNAME", target + "."))
        owner = dns.name.from_text(target)
    if path.outcome == "ANSWER" and question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
        response.answer.append(dns.rrset.from_text_list(owner, ANSWER_TTL, "IN", "A", list(path.addresses)))
    return response


def attach_local_dns(stack: Any, **options: Any) -> LocalDns:
    """Start a LocalDns for a started LocalStack (its endpoint, region and seeded corporate servers), told
    of every mutating call the stack's AWS answers: a change AWS reports done is what it answers with."""
    options.setdefault("cache_ttl", ATTACHED_CACHE_TTL_S)
    local_dns = LocalDns(stack, **options).start()

    def invalidate(call: Any) -> None:
        if changes_dns(call.service, call.action):
            local_dns.invalidate()

    stack.aws.middleware.mutation_listeners.append(invalidate)
    stack.aws.endpoints.state_listeners.append(local_dns.invalidate)
    stack.aws.resolver.state_listeners.append(local_dns.invalidate)
    return local_dns


# EC2 calls that change what a VPC's resolver answers: VPCs and their CIDRs, interface endpoints and their
# private DNS. Security groups, subnets, tags ... do not (and a fleet makes many of them).
_EC2_DNS_ACTIONS = frozenset(
    {
        "CreateVpc",
        "DeleteVpc",
        "AssociateVpcCidrBlock",
        "DisassociateVpcCidrBlock",
        "ModifyVpcAttribute",
        "CreateVpcEndpoint",
        "ModifyVpcEndpoint",
        "DeleteVpcEndpoints",
    }
)


def changes_dns(service: str, action: str) -> bool:
    """Whether a successful mutating call can change an answer: every Route 53 and Route 53 Resolver
    change, and the EC2 ones that touch VPCs and interface endpoints."""
    return service in ("route53", "route53resolver") or (service == "ec2" and action in _EC2_DNS_ACTIONS)
