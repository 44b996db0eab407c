"""HTTP for the emulator: a werkzeug WSGI app that speaks like accounts.cloud.databricks.com.

It authenticates, applies injected faults, calls the backend, turns ApiError into the real error body and
status, and counts every request by operation. Admin routes under /_emulator/ are neither authenticated,
faulted nor counted.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from dbx_privatelink_local.databricks.auth import basic_credentials
from dbx_privatelink_local.databricks.errors import ApiError, OAuthError, malformed, not_found
from dbx_privatelink_local.databricks.faults import Fault
from dbx_privatelink_local.databricks.request_log import DROPPED, CallRecord

if TYPE_CHECKING:
    from dbx_privatelink_local.databricks.emulator import DatabricksEmulator

log = logging.getLogger(__name__)

ACCOUNTS = "/api/2.0/accounts/<account_id>"
ADMIN_PREFIX = "/_emulator/"


class DropConnection(ConnectionError):
    """Raised by the app to make the server close the socket without writing a response."""


def _rules() -> list[Rule]:
    def r(path: str, endpoint: str, methods: Iterable[str]) -> Rule:
        return Rule(path, endpoint=endpoint, methods=list(methods))

    rules = [
        r("/.well-known/databricks-config", "host_metadata", ["GET"]),
        r("/oidc/accounts/<account_id>/.well-known/oauth-authorization-server", "oidc_discovery", ["GET"]),
        r("/oidc/.well-known/oauth-authorization-server", "oidc_discovery", ["GET"]),
        r("/oidc/accounts/<account_id>/v1/token", "token", ["POST"]),
        r("/oidc/v1/token", "token", ["POST"]),
        r("/_emulator/state", "admin_state", ["GET"]),
        r("/_emulator/reset", "admin_reset", ["POST"]),
        r("/_emulator/faults", "admin_faults", ["GET", "POST", "DELETE"]),
        r("/_emulator/faults/<fault_id>", "admin_fault", ["DELETE"]),
        r("/_emulator/calls", "admin_calls", ["GET", "DELETE"]),
        r("/_emulator/seed/credentials", "admin_seed_credentials", ["POST"]),
        r("/_emulator/seed/storage-configurations", "admin_seed_storage", ["POST"]),
    ]
    for collection, id_name in (
        ("credentials", "credentials_id"),
        ("storage-configurations", "storage_configuration_id"),
        ("vpc-endpoints", "vpc_endpoint_id"),
        ("private-access-settings", "private_access_settings_id"),
        ("networks", "network_id"),
        ("workspaces", "workspace_id"),
    ):
        item_methods = ["GET", "DELETE"]
        if collection == "private-access-settings":
            item_methods.append("PUT")
        if collection == "workspaces":
            item_methods.append("PATCH")
        rules.append(r(f"{ACCOUNTS}/{collection}", f"{collection}:collection", ["GET", "POST"]))
        rules.append(r(f"{ACCOUNTS}/{collection}/<{id_name}>", f"{collection}:item", item_methods))
    return rules


def _template(rule: Rule | None, path: str) -> str:
    if rule is None:
        return "(unmatched)"
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def _api_error(err: ApiError, headers: dict[str, str] | None = None) -> Response:
    if err.bare_status is not None:
        return Response(b"", status=err.bare_status, headers=headers)
    return _json_response(err.status, err.body(), headers)


def _json_body(request: Request) -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise malformed(f"Could not parse request object: {exc}") from exc
    if not isinstance(body, dict):
        raise malformed("Could not parse request object: expected a JSON object")
    return body


class AccountApiApp:
    """The WSGI callable served by EmulatorServer (or any WSGI server)."""

    def __init__(self, emulator: DatabricksEmulator) -> None:
        self.emulator = emulator
        self.url_map = Map(_rules(), strict_slashes=False)
        self._resources: dict[str, tuple[Callable[..., Any], ...]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self._dispatch(request)
        return response(environ, start_response)

    # --- dispatch -----------------------------------------------------------------------------

    def _dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        rule: Rule | None = None
        try:
            rule, matched = adapter.match(return_rule=True)
            args = dict(matched)
        except NotFound:
            return self._finish(
                request,
                None,
                ApiError("ENDPOINT_NOT_FOUND", f"No API found for '{request.method} {request.path}'"),
            )
        except MethodNotAllowed:
            return self._finish(
                request,
                None,
                ApiError("METHOD_NOT_ALLOWED", f"{request.method} is not allowed on {request.path}"),
            )
        endpoint = str(rule.endpoint)
        if endpoint.startswith("admin_"):
            return self._admin(endpoint, request, args)

        fault = self.emulator.faults.take(request.method, request.path)
        if fault is not None and fault.kind not in ("latency", "commit_then_drop", "commit_then_error"):
            return self._finish(request, rule, self._fault_response(fault), fault)
        if fault is not None and fault.kind == "latency":
            self.emulator.sleep(fault.latency_s)

        result = self._handle(endpoint, request, args)

        if fault is not None and fault.kind == "commit_then_drop":
            self._record(request, rule, DROPPED, fault)
            raise DropConnection("fault injection: connection dropped after the write")
        if fault is not None and fault.kind == "commit_then_error":
            return self._finish(request, rule, self._fault_response(fault), fault)
        return self._finish(request, rule, result, fault)

    def _fault_response(self, fault: Fault) -> Response:
        if fault.kind == "throttle":
            err = ApiError("REQUEST_LIMIT_EXCEEDED", "Too many requests. Please wait a moment and try again.")
            return _api_error(err, {"Retry-After": str(fault.retry_after_s)})
        status = fault.status or (503 if fault.kind in ("unavailable", "commit_then_error") else 500)
        if status == 503:
            err = ApiError("TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable.")
            return _api_error(err, {"Retry-After": str(fault.retry_after_s)})
        return _json_response(status, ApiError("INTERNAL_ERROR", "Internal error (injected).").body())

    def _finish(
        self, request: Request, rule: Rule | None, result: Response | ApiError, fault: Fault | None = None
    ) -> Response:
        response = _api_error(result) if isinstance(result, ApiError) else result
        self._record(request, rule, response.status_code, fault)
        return response

    def _record(self, request: Request, rule: Rule | None, status: int, fault: Fault | None) -> None:
        self.emulator.calls.record(
            CallRecord(
                method=request.method,
                template=_template(rule, request.path),
                path=request.path,
                status=status,
                fault=fault.kind if fault else None,
                at=time.time(),
                user_agent=request.headers.get("User-Agent", ""),
            )
        )

    def _handle(self, endpoint: str, request: Request, args: dict[str, Any]) -> Response | ApiError:
        try:
            if endpoint == "host_metadata":
                return _json_response(200, self._host_metadata(request))
            if endpoint == "oidc_discovery":
                return _json_response(200, self._discovery(request, args.get("account_id")))
            if endpoint == "token":
                return self._token(request, args.get("account_id"))
            account_id = args.pop("account_id")
            token = self.emulator.tokens.authenticate(request.headers.get("Authorization"))
            if account_id != token.account_id:
                raise ApiError(
                    "PERMISSION_DENIED",
                    f"Service principal {token.client_id} has no access to account {account_id}",
                )
            collection, kind = endpoint.split(":")
            return self._resource(collection, kind, request, args)
        except ApiError as err:
            return err

    # --- OAuth --------------------------------------------------------------------------------

    def _host_metadata(self, request: Request) -> dict[str, Any]:
        host = request.host_url.rstrip("/")
        return {
            "oidc_endpoint": f"{host}/oidc/accounts/{self.emulator.account_id}",
            "account_id": self.emulator.account_id,
            "cloud": "aws",
        }

    def _discovery(self, request: Request, account_id: str | None) -> dict[str, Any]:
        host = request.host_url.rstrip("/")
        base = f"{host}/oidc/accounts/{account_id}" if account_id else f"{host}/oidc"
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/v1/authorize",
            "token_endpoint": f"{base}/v1/token",
            "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["all-apis", "offline_access"],
        }

    def _token(self, request: Request, account_id: str | None) -> Response:
        creds = basic_credentials(request.headers.get("Authorization"))
        client_id, secret = (
            creds if creds else (request.form.get("client_id"), request.form.get("client_secret"))
        )
        try:
            body = self.emulator.tokens.issue(
                client_id=client_id,
                client_secret=secret,
                grant_type=request.form.get("grant_type"),
                scope=request.form.get("scope"),
                account_id=account_id,
            )
        except OAuthError as err:
            return _json_response(err.status, err.body())
        return _json_response(200, body, {"Cache-Control": "no-store"})

    # --- resources ----------------------------------------------------------------------------

    def _resource(self, collection: str, kind: str, request: Request, args: dict[str, Any]) -> Response:
        b = self.emulator.backend
        method = request.method
        if collection == "workspaces" and kind == "item":
            raw = args["workspace_id"]
            if not str(raw).isdigit():
                raise not_found(f"Workspace {raw} does not exist")
            args["workspace_id"] = int(raw)
        ops: dict[tuple[str, str], Callable[[], Any]] = {}
        if collection == "credentials":
            ops = {
                ("collection", "GET"): b.list_credentials,
                ("collection", "POST"): lambda: b.create_credentials(_json_body(request)),
                ("item", "GET"): lambda: b.get_credentials(args["credentials_id"]),
                ("item", "DELETE"): lambda: b.delete_credentials(args["credentials_id"]),
            }
        elif collection == "storage-configurations":
            ops = {
                ("collection", "GET"): b.list_storage_configurations,
                ("collection", "POST"): lambda: b.create_storage_configuration(_json_body(request)),
                ("item", "GET"): lambda: b.get_storage_configuration(args["storage_configuration_id"]),
                ("item", "DELETE"): lambda: b.delete_storage_configuration(args["storage_configuration_id"]),
            }
        elif collection == "vpc-endpoints":
            ops = {
                ("collection", "GET"): b.list_vpc_endpoints,
                ("collection", "POST"): lambda: b.create_vpc_endpoint(_json_body(request)),
                ("item", "GET"): lambda: b.get_vpc_endpoint(args["vpc_endpoint_id"]),
                ("item", "DELETE"): lambda: b.delete_vpc_endpoint(args["vpc_endpoint_id"]),
            }
        elif collection == "private-access-settings":
            pas_id = args.get("private_access_settings_id", "")
            ops = {
                ("collection", "GET"): b.list_private_access_settings,
                ("collection", "POST"): lambda: b.create_private_access_settings(_json_body(request)),
                ("item", "GET"): lambda: b.get_private_access_settings(pas_id),
                ("item", "PUT"): lambda: b.replace_private_access_settings(pas_id, _json_body(request)),
                ("item", "DELETE"): lambda: b.delete_private_access_settings(pas_id),
            }
        elif collection == "networks":
            ops = {
                ("collection", "GET"): b.list_networks,
                ("collection", "POST"): lambda: b.create_network(_json_body(request)),
                ("item", "GET"): lambda: b.get_network(args["network_id"]),
                ("item", "DELETE"): lambda: b.delete_network(args["network_id"]),
            }
        elif collection == "workspaces":
            ws_id = args.get("workspace_id", 0)
            ops = {
                ("collection", "GET"): b.list_workspaces,
                ("collection", "POST"): lambda: b.create_workspace(_json_body(request)),
                ("item", "GET"): lambda: b.get_workspace(ws_id),
                ("item", "PATCH"): lambda: b.update_workspace(
                    ws_id, _json_body(request), request.args.get("update_mask")
                ),
                ("item", "DELETE"): lambda: b.delete_workspace(ws_id),
            }
        return _json_response(200, ops[(kind, method)]())

    # --- admin --------------------------------------------------------------------------------

    def _admin(self, endpoint: str, request: Request, args: dict[str, Any]) -> Response:
        emu = self.emulator
        try:
            if endpoint == "admin_state":
                return _json_response(200, emu.state())
            if endpoint == "admin_reset":
                body = _json_body(request)
                emu.reset(revoke_tokens=bool(body.get("revoke_tokens", False)))
                return _json_response(200, {})
            if endpoint == "admin_faults":
                if request.method == "GET":
                    return _json_response(200, [f.to_json() for f in emu.faults.list()])
                if request.method == "DELETE":
                    emu.faults.clear()
                    return _json_response(200, {})
                try:
                    fault = emu.faults.add_from_json(_json_body(request))
                except (TypeError, ValueError, AttributeError, re.error) as exc:
                    return _json_response(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": str(exc)})
                return _json_response(200, fault.to_json())
            if endpoint == "admin_fault":
                if not emu.faults.remove(args["fault_id"]):
                    raise not_found(f"Fault {args['fault_id']} does not exist")
                return _json_response(200, {})
            if endpoint == "admin_calls":
                if request.method == "DELETE":
                    emu.calls.clear()
                    return _json_response(200, {})
                return _json_response(200, emu.calls.to_json())
            body = _json_body(request)
            if endpoint == "admin_seed_credentials":
                return _json_response(
                    200, emu.backend.create_credentials(body, credentials_id=body.get("credentials_id"))
                )
            return _json_response(
                200,
                emu.backend.create_storage_configuration(
                    body, storage_configuration_id=body.get("storage_configuration_id")
                ),
            )
        except ApiError as err:
            return _api_error(err)
