"""Delete rule associations: a door into dbx_privatelink.decommission.dns.delete_rule_associations."""

from dbx_privatelink.decommission.dns import delete_rule_associations
from dbx_privatelink.decommission.models import DeletionInput
from dbx_privatelink.handler import step

handler = step(DeletionInput, delete_rule_associations, needs=("shared",))
