"""Ensure resolver endpoints: a door into dbx_privatelink.reconcile.dns.ensure_resolver_endpoints."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.dns_spec import DnsSpecStep
from dbx_privatelink.reconcile.dns import ensure_resolver_endpoints

handler = step(DnsSpecStep, ensure_resolver_endpoints, needs=("shared",))
