"""The forwarder configurations as the real DNS servers read them: named-checkconf (bind9-utils), dnsmasq --test
(dnsmasq-base), unbound-checkconf (unbound), and a real dnsmasq forwarding through the generated snippet to a
stand-in for the inbound endpoint.

Every process listens on 127.0.0.1 on a port of its own, never on 53. A missing tool fails the test in CI (CI
installs the packages, .ci/run) and skips it elsewhere, naming the Debian package.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from dbx_privatelink.dns.forwarders import header, render

DOMAINS = ["cloud.databricks.com", "acme.privatelink.example"]
IPS = ["10.20.1.10", "10.20.2.10"]
WORKSPACE_NAME = "dbc-a1b2c3d4-e5f6.cloud.databricks.com."
WORKSPACE_IP = "10.20.3.44"
COMMENT = header("acme-analytics", "rslvr-in-0123456789abcdef0", datetime(2026, 11, 21, 20, 3, tzinfo=UTC))
TOOL_TIMEOUT = 20


def tool(name: str, package: str) -> str:
    """The tool's path; in CI a missing tool fails (the packages are part of CI), elsewhere it skips."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{name} is missing: CI must install the Debian package {package} (see .ci/run)")
    pytest.skip(f"{name} is not installed: apt-get install --no-install-recommends {package}")


def check(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False)


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (dnsmasq binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port on 127.0.0.1")


# --- the configuration checkers ---------------------------------------------------------------------------


def test_named_checkconf_accepts_the_bind_snippet_in_a_named_conf(tmp_path: Path) -> None:
    checkconf = tool("named-checkconf", "bind9-utils")
    # Given a named.conf with options and the generated zones
    conf = tmp_path / "named.conf"
    snippet = render("bind", DOMAINS, IPS, comment=COMMENT)
    conf.write_text(f'options {{ directory "{tmp_path}"; }};\n{snippet}')
    # When named-checkconf reads it
    result = check([checkconf, str(conf)])
    # Then it is valid
    assert result.returncode == 0, result.stdout + result.stderr
    # and the checker does fail on a broken one (the test can fail)
    conf.write_text(
        f'options {{ directory "{tmp_path}"; }};\n{snippet.replace("forward only;", "forward only")}'
    )
    assert check([checkconf, str(conf)]).returncode != 0


def test_dnsmasq_test_accepts_the_dnsmasq_snippet(tmp_path: Path) -> None:
    dnsmasq = tool("dnsmasq", "dnsmasq-base")
    conf = tmp_path / "forwarders.conf"
    conf.write_text(render("dnsmasq", DOMAINS, IPS, comment=COMMENT))
    result = check([dnsmasq, "--test", f"--conf-file={conf}"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "syntax check OK" in result.stdout + result.stderr
    conf.write_text("server=/cloud.databricks.com/10.20.1.10#port\n")
    assert check([dnsmasq, "--test", f"--conf-file={conf}"]).returncode != 0


def unbound_conf(tmp_path: Path, snippet: str) -> str:
    # Runs as any user, root included: no chroot, no privilege drop, everything in the temporary directory.
    return (
        "server:\n"
        f'    directory: "{tmp_path}"\n'
        '    chroot: ""\n'
        '    username: ""\n'
        f'    pidfile: "{tmp_path}/unbound.pid"\n'
        "    interface: 127.0.0.1\n"
        f"    port: {free_port()}\n"
        "    do-daemonize: no\n"
        f"{snippet}"
    )


def test_unbound_checkconf_accepts_the_unbound_snippet_after_a_server_clause(tmp_path: Path) -> None:
    checkconf = tool("unbound-checkconf", "unbound")
    conf = tmp_path / "unbound.conf"
    snippet = render("unbound", DOMAINS, IPS, comment=COMMENT)
    conf.write_text(unbound_conf(tmp_path, snippet))
    result = check([checkconf, str(conf)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no errors" in result.stdout
    conf.write_text(unbound_conf(tmp_path, snippet.replace("forward-addr:", "forward-adr:", 1)))
    assert check([checkconf, str(conf)]).returncode != 0


# --- a real dnsmasq forwarding through the snippet --------------------------------------------------------


@dataclass
class StandInEndpoint:
    """A one-socket DNS server on 127.0.0.1 standing in for the inbound endpoint: it knows the workspace name
    (A -> a private IP) and refuses everything else; it records every name it was asked."""

    sock: socket.socket
    asked: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(wire)
            question = query.question[0]
            self.asked.append(question.name.to_text())
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            if question.name.to_text().lower() == WORKSPACE_NAME and question.rdtype == dns.rdatatype.A:
                response.answer.append(dns.rrset.from_text(WORKSPACE_NAME, 60, "IN", "A", WORKSPACE_IP))
            else:
                response.set_rcode(dns.rcode.REFUSED)
            self.sock.sendto(response.to_wire(), peer)


@pytest.fixture
def stand_in() -> Iterator[StandInEndpoint]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    server = StandInEndpoint(sock)
    thread = threading.Thread(target=server.serve, name="stand-in-inbound-endpoint", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        thread.join(timeout=5)
        sock.close()


def ask(name: str, port: int, *, timeout: float = 2.0) -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=timeout)


def test_a_real_dnsmasq_configured_with_the_snippet_forwards_the_domain_to_the_endpoint(
    tmp_path: Path, stand_in: StandInEndpoint
) -> None:
    dnsmasq = tool("dnsmasq", "dnsmasq-base")
    # Given the snippet rendered for the stand-in endpoint's address and port
    conf = tmp_path / "forwarders.conf"
    conf.write_text(render("dnsmasq", DOMAINS, ["127.0.0.1"], port=stand_in.port, comment=COMMENT))
    # and a real dnsmasq reading only that snippet, on a port of its own
    port = free_port()
    argv = [
        dnsmasq,
        "--no-daemon",
        "--no-resolv",
        "--no-hosts",
        "--listen-address=127.0.0.1",
        f"--port={port}",
        "--bind-interfaces",
        f"--conf-file={conf}",
        f"--pid-file={tmp_path}/dnsmasq.pid",
        "--cache-size=0",
        "--log-queries",
        "--log-facility=-",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # When the workspace name is asked of dnsmasq (retried until it listens, for at most 10 s)
        deadline, answer = time.monotonic() + 10, None
        while answer is None and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"dnsmasq exited {proc.returncode}: {proc.communicate(timeout=5)[0]}")
            try:
                answer = ask(WORKSPACE_NAME, port, timeout=0.5)
            except (TimeoutError, dns.exception.Timeout, ConnectionRefusedError):
                time.sleep(0.1)
        assert answer is not None, "dnsmasq did not answer within 10 s"
        # Then the answer is the stand-in endpoint's, reached through the snippet's server= line
        assert answer.rcode() == dns.rcode.NOERROR
        assert [rr.address for rrset in answer.answer for rr in rrset] == [WORKSPACE_IP]
        assert stand_in.asked.count(WORKSPACE_NAME) >= 1
        # and a name outside the forwarded domains never reaches the endpoint
        asked_before = list(stand_in.asked)
        other = ask("www.example.org.", port)
        assert other.answer == []
        assert stand_in.asked == asked_before
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()
