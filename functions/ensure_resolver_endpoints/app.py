"""Ensure resolver endpoints: a door into dbx_privatelink.reconcile.dns.ensure_resolver_endpoints."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.spec_step import SpecStep
from dbx_privatelink.reconcile.dns import ensure_resolver_endpoints

handler = step(SpecStep, ensure_resolver_endpoints, needs=("shared",))
