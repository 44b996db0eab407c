"""On-prem conditional forwarders: each dialect's text, the header, and the inputs refused before rendering.
(The real tools check the same text in tests/integration/test_forwarders_tools.py.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dbx_privatelink.dns.forwarders import FORMATS, ForwarderInputError, header, render

DOMAINS = ["acme.cloud.databricks.com", "acme.privatelink.example"]
IPS = ["10.20.1.10", "10.20.2.10"]


def test_bind_is_one_forward_only_zone_per_domain_with_every_ip_and_port() -> None:
    text = render("bind", DOMAINS, IPS)
    assert text == (
        'zone "acme.cloud.databricks.com" {\n'
        "    type forward;\n"
        "    forward only;\n"
        "    forwarders { 10.20.1.10 port 53; 10.20.2.10 port 53; };\n"
        "};\n"
        'zone "acme.privatelink.example" {\n'
        "    type forward;\n"
        "    forward only;\n"
        "    forwarders { 10.20.1.10 port 53; 10.20.2.10 port 53; };\n"
        "};\n"
    )


def test_dnsmasq_is_one_server_line_per_domain_and_ip() -> None:
    assert render("dnsmasq", DOMAINS, IPS, port=5353).splitlines() == [
        "server=/acme.cloud.databricks.com/10.20.1.10#5353",
        "server=/acme.cloud.databricks.com/10.20.2.10#5353",
        "server=/acme.privatelink.example/10.20.1.10#5353",
        "server=/acme.privatelink.example/10.20.2.10#5353",
    ]


def test_unbound_is_one_forward_zone_per_domain_without_fallback_to_recursion() -> None:
    assert render("unbound", DOMAINS[:1], IPS).splitlines() == [
        "forward-zone:",
        '    name: "acme.cloud.databricks.com."',
        "    forward-addr: 10.20.1.10@53",
        "    forward-addr: 10.20.2.10@53",
        "    forward-first: no",
    ]


def test_windows_is_one_powershell_line_per_domain_with_the_replication_scope() -> None:
    assert render("windows", DOMAINS, IPS).splitlines() == [
        'Add-DnsServerConditionalForwarderZone -Name "acme.cloud.databricks.com" '
        "-MasterServers 10.20.1.10,10.20.2.10 -ReplicationScope Forest",
        'Add-DnsServerConditionalForwarderZone -Name "acme.privatelink.example" '
        "-MasterServers 10.20.1.10,10.20.2.10 -ReplicationScope Forest",
    ]
    # a DNS server that is not a domain controller holds file-backed zones: no replication scope
    standalone = render("windows", DOMAINS[:1], IPS, replication_scope=None)
    assert standalone.rstrip().endswith("-MasterServers 10.20.1.10,10.20.2.10")
    assert "-ReplicationScope Domain" in render("windows", DOMAINS[:1], IPS, replication_scope="Domain")


def test_windows_refuses_another_port_than_53() -> None:
    with pytest.raises(ForwarderInputError, match="only reach port 53"):
        render("windows", DOMAINS, IPS, port=5353)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_header_says_what_generated_it_for_which_workspace_and_endpoint_and_when(fmt: str) -> None:
    # Given a header for a workspace and its inbound endpoint
    when = datetime(2026, 11, 21, 20, 3, tzinfo=UTC)
    comment = header("acme-analytics", "rslvr-in-0123456789abcdef0", when)
    # When a configuration is rendered with it
    lines = render(fmt, DOMAINS, IPS, comment=comment).splitlines()  # type: ignore[arg-type]
    # Then it opens with "#" comment lines (a comment in all four dialects) naming all of it
    head = [line for line in lines if line.startswith("#")]
    assert lines[: len(head)] == head
    text = "\n".join(head)
    assert "dbx-privatelink forwarders" in text
    assert "acme-analytics" in text
    assert "rslvr-in-0123456789abcdef0" in text
    assert "2026-11-21T20:03:00+00:00" in text


def test_a_newline_in_the_comment_cannot_inject_a_directive() -> None:
    text = render("dnsmasq", DOMAINS[:1], IPS[:1], comment="workspace x\nserver=/evil/192.0.2.1")
    assert "\nserver=/evil" not in text
    assert "# server=/evil/192.0.2.1" in text


def test_domains_are_normalised_and_listed_once_ips_once_in_the_given_order() -> None:
    text = render("dnsmasq", ["ACME.Example.", "acme.example"], ["10.0.0.2", "10.0.0.1", "10.0.0.2"])
    assert text.splitlines() == ["server=/acme.example/10.0.0.2#53", "server=/acme.example/10.0.0.1#53"]


@pytest.mark.parametrize(
    ("domains", "ips", "message"),
    [
        ([], IPS, "no domains"),
        (["bad_name.example"], IPS, "not an RFC 1123 domain name"),
        (["-lead.example"], IPS, "not an RFC 1123 domain name"),
        ([("a" * 64) + ".example"], IPS, "at most 63 characters"),
        (["."], IPS, "every query"),
        (['x.example" { type master; }; zone "y'], IPS, "not an RFC 1123 domain name"),
        (DOMAINS, [], "0 IP addresses"),
        (DOMAINS, [f"10.0.0.{i}" for i in range(1, 8)], "7 IP addresses: an inbound endpoint has 1 to 6"),
        (DOMAINS, ["10.0.0.256"], "'10.0.0.256' is not an IPv4 address"),
        (DOMAINS, ["fd00::53"], "is not an IPv4 address"),
        (DOMAINS, ["10.0.0.1; 1.2.3.4"], "is not an IPv4 address"),
    ],
)
def test_invalid_inputs_are_refused_with_the_value_named(
    domains: list[str], ips: list[str], message: str
) -> None:
    with pytest.raises(ForwarderInputError, match=message.replace(".", r"\.").replace("(", r"\(")):
        render("bind", domains, ips)


@pytest.mark.parametrize("port", [0, 65536, -1, True])
def test_the_port_must_be_a_port(port: int) -> None:
    with pytest.raises(ForwarderInputError, match="1 to 65535"):
        render("unbound", DOMAINS, IPS, port=port)


def test_an_unknown_format_or_scope_is_refused() -> None:
    with pytest.raises(ForwarderInputError, match="choose one of bind, dnsmasq, unbound, windows"):
        render("powerdns", DOMAINS, IPS)  # type: ignore[arg-type]
    with pytest.raises(ForwarderInputError, match="Forest, Domain, Legacy or none"):
        render("windows", DOMAINS, IPS, replication_scope="Site")  # type: ignore[arg-type]
