"""Check resolver endpoints: a door into dbx_privatelink.reconcile.dns.check_resolver_endpoints."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.dns_checks import CheckResolverEndpointsInput
from dbx_privatelink.reconcile.dns import check_resolver_endpoints

handler = step(CheckResolverEndpointsInput, check_resolver_endpoints, needs=("shared",))
