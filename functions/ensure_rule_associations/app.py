"""Ensure rule associations: a door into dbx_privatelink.reconcile.dns.ensure_rule_associations."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.dns_steps import EnsureRuleAssociationsInput
from dbx_privatelink.reconcile.dns import ensure_rule_associations

handler = step(EnsureRuleAssociationsInput, ensure_rule_associations, needs=("shared",))
