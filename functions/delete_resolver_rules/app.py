"""Delete resolver rules: a door into dbx_privatelink.decommission.dns.delete_resolver_rules."""

from dbx_privatelink.decommission.dns import delete_resolver_rules
from dbx_privatelink.decommission.models import DeletionInput
from dbx_privatelink.handler import step

handler = step(DeletionInput, delete_resolver_rules, needs=("shared",))
