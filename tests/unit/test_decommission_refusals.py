"""In-use deletes, as Databricks refuses them and as the decommission reads the refusal: INVALID_STATE with
its message, or (as seen in the wild) HTTP 409 with an empty body; either is "not yet", never done."""

from __future__ import annotations

import pytest
from werkzeug.test import Client

from dbx_privatelink.decommission.databricks_objects import refused_as_in_use
from dbx_privatelink.errors import (
    DatabricksAlreadyExistsError,
    DatabricksConflictError,
    DatabricksNotFoundError,
    DatabricksRequestError,
)
from dbx_privatelink_local.databricks import ApiError
from dbx_privatelink_local.databricks.routes import AccountApiApp
from tests.unit import test_databricks_emulator_backend as _backend
from tests.unit.test_databricks_emulator_backend import ACCOUNT, World, _running_workspace_on_network

world = _backend.world  # the emulator with a manual clock, by name in this module


def test_an_in_use_delete_is_refused_as_invalid_state_or_as_a_bare_409(world: World) -> None:
    _, net, _ = _running_workspace_on_network(world)
    with pytest.raises(ApiError) as documented:
        world.backend.delete_network(net["network_id"])
    assert (documented.value.error_code, documented.value.status) == ("INVALID_STATE", 400)
    world.backend.in_use_refusal = "bare-409"
    with pytest.raises(ApiError) as bare:
        world.backend.delete_network(net["network_id"])
    assert bare.value.status == 409 and bare.value.bare_status == 409
    # And a reset restores the documented answer
    world.backend.reset()
    assert world.backend.in_use_refusal == "INVALID_STATE"


def test_the_bare_409_goes_over_http_with_nothing_in_the_body(world: World) -> None:
    _, net, _ = _running_workspace_on_network(world)
    world.backend.in_use_refusal = "bare-409"
    token = world.emulator.tokens.issue(
        client_id="sp",
        client_secret="secret",
        grant_type="client_credentials",
        scope="all-apis",
        account_id=ACCOUNT,
    )["access_token"]
    response = Client(AccountApiApp(world.emulator)).delete(
        f"/api/2.0/accounts/{ACCOUNT}/networks/{net['network_id']}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 409 and response.data == b""
    assert net["network_id"] in world.backend.networks


@pytest.mark.parametrize(
    ("error", "in_use"),
    [
        (DatabricksRequestError("x", error_code="INVALID_STATE", status=400), True),
        (DatabricksConflictError("x", error_code=None, status=409), True),
        (DatabricksAlreadyExistsError("x", error_code="RESOURCE_ALREADY_EXISTS", status=409), False),
        (DatabricksRequestError("x", error_code="INVALID_PARAMETER_VALUE", status=400), False),
        (DatabricksNotFoundError("x", error_code="RESOURCE_DOES_NOT_EXIST", status=404), False),
    ],
)
def test_the_decommission_waits_on_in_use_refusals_and_on_nothing_else(
    error: DatabricksRequestError, in_use: bool
) -> None:
    assert refused_as_in_use(error) is in_use
