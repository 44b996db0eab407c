"""Enable private dns: a door into dbx_privatelink.reconcile.endpoints.enable_private_dns."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.endpoint_steps import EnablePrivateDnsInput
from dbx_privatelink.reconcile.endpoints import enable_private_dns

handler = step(EnablePrivateDnsInput, enable_private_dns, needs=("shared",))
