"""Verify dns: a door into dbx_privatelink.reconcile.verify.verify_dns."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.verify import VerifyDnsInput
from dbx_privatelink.reconcile.verify import verify_dns

handler = step(VerifyDnsInput, verify_dns, needs=())
