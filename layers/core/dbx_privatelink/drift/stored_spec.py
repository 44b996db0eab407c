"""What a drift repair reads of a workspace's stored spec: its region and network section. The spec was
validated in full when it was applied; the network section, which the repair reads throughout, is validated
again here and the rest ignored, so that DetectDrift and the scan do not create the whole spec's models for
it."""

from pydantic import BaseModel, ConfigDict, ValidationError

from dbx_privatelink.errors import SpecInvalidError
from dbx_privatelink.spec_sections import NetworkSection


class StoredNetwork(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    region: str
    network: NetworkSection


def stored_network(document: dict[str, object]) -> StoredNetwork:
    """The region and network section of a stored spec; SpecInvalidError names every bad field."""
    try:
        return StoredNetwork.model_validate(document)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise SpecInvalidError("Invalid workspace spec:\n- " + "\n- ".join(lines)) from None
