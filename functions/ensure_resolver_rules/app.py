"""Ensure resolver rules: a door into dbx_privatelink.reconcile.dns.ensure_resolver_rules."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.dns_steps import EnsureResolverRulesInput
from dbx_privatelink.reconcile.dns import ensure_resolver_rules

handler = step(EnsureResolverRulesInput, ensure_resolver_rules, needs=("shared",))
