"""A small DNS server on loopback: UDP and TCP on the same port, one thread per request, dnspython for the
messages. What it answers is a function of the query (`Answerer`)."""

from __future__ import annotations

import logging
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode

log = logging.getLogger(__name__)

Answerer = Callable[[dns.message.Message], dns.message.Message]

LOOPBACK = "127.0.0.1"
_BIND_ATTEMPTS = 20
_CLASSIC_UDP_SIZE = 512


def error_response(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA
    response.set_rcode(rcode)
    return response


def _reply(answer: Answerer, data: bytes, *, udp: bool) -> bytes | None:
    """The wire reply to one wire query; None when the query cannot even be parsed into a reply."""
    try:
        query = dns.message.from_wire(data)
    except dns.exception.DNSException:
        if len(data) < 12:
            return None
        # FORMERR with the query's id, as servers answer unparsable queries.
        flags = dns.flags.QR | (struct.unpack("!H", data[2:4])[0] & dns.flags.RD)
        return data[:2] + struct.pack("!HHHHH", flags | dns.rcode.FORMERR, 0, 0, 0, 0)
    try:
        response = answer(query)
    except Exception:  # a failed state read must not kill the server: the client sees SERVFAIL
        log.exception("DNS query failed: %s", query.question)
        response = error_response(query, dns.rcode.SERVFAIL)
    if not udp:
        return response.to_wire()
    limit = max(query.payload if query.edns >= 0 else _CLASSIC_UDP_SIZE, _CLASSIC_UDP_SIZE)
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        truncated = dns.message.make_response(query)
        truncated.flags |= dns.flags.TC | dns.flags.RA
        truncated.set_rcode(response.rcode())
        return truncated.to_wire()


class _Udp(socketserver.ThreadingUDPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, address: tuple[str, int], answer: Answerer) -> None:
        self.answer = answer
        super().__init__(address, _UdpHandler)


class _Tcp(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], answer: Answerer) -> None:
        self.answer = answer
        super().__init__(address, _TcpHandler)


class _UdpHandler(socketserver.BaseRequestHandler):
    server: _Udp

    def handle(self) -> None:
        data, sock = self.request
        reply = _reply(self.server.answer, data, udp=True)
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _TcpHandler(socketserver.BaseRequestHandler):
    server: _Tcp

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(5.0)
        try:
            while True:
                header = _read(conn, 2)
                if header is None:
                    return
                data = _read(conn, struct.unpack("!H", header)[0])
                if data is None:
                    return
                reply = _reply(self.server.answer, data, udp=False)
                if reply is None:
                    return
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            return


def _read(conn: socket.socket, size: int) -> bytes | None:
    chunks = b""
    while len(chunks) < size:
        chunk = conn.recv(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return chunks


class DnsServer:
    """One DNS server on 127.0.0.1: UDP and TCP on one port (picked free unless given)."""

    def __init__(self, name: str, answer: Answerer, *, host: str = LOOPBACK, port: int = 0) -> None:
        self.name = name
        self.host = host
        self._answer = answer
        self._wanted_port = port
        self._udp: _Udp | None = None
        self._tcp: _Tcp | None = None
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        if self._udp is None:
            raise RuntimeError(f"DNS server {self.name} is not started")
        return int(self._udp.server_address[1])

    @property
    def address(self) -> str:
        """host:port, as the address map writes it."""
        return f"{self.host}:{self.port}"

    def start(self) -> DnsServer:
        if self._udp is not None:
            return self
        last: OSError | None = None
        for _ in range(_BIND_ATTEMPTS):
            udp = _Udp((self.host, self._wanted_port), self._answer)
            try:
                tcp = _Tcp((self.host, udp.server_address[1]), self._answer)
            except OSError as exc:  # the TCP side of a free UDP port is taken: pick another port
                udp.server_close()
                last = exc
                if self._wanted_port:
                    break
                continue
            self._udp, self._tcp = udp, tcp
            break
        if self._udp is None or self._tcp is None:
            raise OSError(f"DNS server {self.name}: no free UDP+TCP port on {self.host} ({last})")
        for server in (self._udp, self._tcp):
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"dns-{self.name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        servers: list[Any] = [s for s in (self._udp, self._tcp) if s is not None]
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=2.0)
        self._threads.clear()
        self._udp = self._tcp = None
