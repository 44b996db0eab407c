"""Check rule associations: a door into dbx_privatelink.reconcile.dns.check_rule_associations."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.dns_checks import CheckRuleAssociationsInput
from dbx_privatelink.reconcile.dns import check_rule_associations

handler = step(CheckRuleAssociationsInput, check_rule_associations, needs=("shared",))
