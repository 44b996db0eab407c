"""What one HTTP request to the emulated AWS is: service, region, caller key, operation and parameters.

The middleware needs this before moto sees the request (fault injection, rate limiting) and after it
answered (CloudTrail). Everything is derived the way AWS derives it: the SigV4 credential scope names the
service and region, the protocol names the operation (Action parameter, X-Amz-Target header, or the
HTTP method and path of a REST operation).
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.datastructures import Headers, MultiDict

log = logging.getLogger(__name__)

# SigV4 signing names that differ from botocore's service model names.
_SIGNING_TO_SERVICE = {"states": "stepfunctions", "execute-api": "apigateway"}

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


@dataclass
class AwsCall:
    """One request to the emulated AWS, as a service would see it."""

    service: str  # botocore service model name: ec2, route53resolver, route53, events, stepfunctions ...
    region: str
    access_key_id: str
    method: str
    path: str
    query_string: str
    headers: Headers
    body: bytes
    source_ip: str
    environ: dict[str, Any] = field(repr=False)

    @property
    def user_agent(self) -> str:
        return self.headers.get("User-Agent", "")

    @cached_property
    def protocol(self) -> str:
        """The wire protocol of this request: ec2, query, json, rest-json or rest-xml."""
        model = self.service_model
        if model is None:
            return "unknown"
        protocols = model.metadata.get("protocols") or [model.metadata.get("protocol")]
        content_type = self.headers.get("Content-Type", "")
        if "json" in protocols and "x-amz-json" in content_type:
            return "json"
        if "query" in protocols and "x-www-form-urlencoded" in content_type:
            return "query"
        return str(protocols[0])

    @cached_property
    def service_model(self) -> Any:
        from moto.core.utils import get_service_model

        try:
            return get_service_model(self.service)
        except Exception:
            return None

    @cached_property
    def form(self) -> MultiDict[str, str]:
        """Query-string and form parameters (the whole request for the ec2 and query protocols)."""
        values: MultiDict[str, str] = MultiDict(parse_qsl(self.query_string, keep_blank_values=True))
        if "x-www-form-urlencoded" in self.headers.get("Content-Type", ""):
            for key, value in parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True):
                values.add(key, value)
        return values

    @cached_property
    def _route(self) -> tuple[str | None, dict[str, Any]]:
        if self.protocol in ("ec2", "query"):
            return self.form.get("Action"), {}
        if self.protocol == "json":
            target = self.headers.get("X-Amz-Target", "")
            return (target.split(".")[-1] or None), {}
        if self.protocol in ("rest-json", "rest-xml"):
            from moto.core.request import Request
            from moto.core.routing import get_service_router

            try:
                operation, uri_params = get_service_router(self.service).match(Request(self._fresh_environ()))
                return operation.name, dict(uri_params)
            except Exception:
                return None, {}
        return None, {}

    @property
    def action(self) -> str | None:
        """The operation name (CreateVpcEndpoint, DeleteResolverRule, ChangeResourceRecordSets ...)."""
        return self._route[0]

    @cached_property
    def parameters(self) -> dict[str, Any]:
        """The request parsed against the botocore input shape, keyed by member name."""
        from moto.core.parse import PROTOCOL_PARSERS

        operation = self.operation_model
        parser_cls = PROTOCOL_PARSERS.get(self.protocol)
        if operation is None or parser_cls is None:
            return {}
        try:
            parsed = parser_cls(operation).parse(
                {
                    "method": self.method,
                    "values": self.form,
                    "headers": self.headers,
                    "body": self.body,
                    "url_path": self.path,
                    "url_params": self._route[1],
                }
            )
        except Exception:
            log.debug("could not parse %s %s", self.service, self.action, exc_info=True)
            return {}
        return dict(parsed)

    @cached_property
    def operation_model(self) -> Any:
        if self.service_model is None or self.action is None:
            return None
        try:
            return self.service_model.operation_model(self.action)
        except Exception:
            return None

    def _fresh_environ(self) -> dict[str, Any]:
        environ = dict(self.environ)
        environ["wsgi.input"] = io.BytesIO(self.body)
        return environ


def buffer_body(environ: dict[str, Any]) -> bytes:
    """Read the request body once and put a fresh stream back, so moto can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    body = stream.read(length) if stream is not None and length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def parse_call(environ: dict[str, Any], body: bytes) -> AwsCall | None:
    """The AwsCall of a SigV4-signed request, or None (moto's own API, unsigned requests)."""
    path = environ.get("PATH_INFO", "") or "/"
    if path.startswith("/moto-api"):
        return None
    headers = Headers(
        [(k[5:].replace("_", "-").title(), v) for k, v in environ.items() if k.startswith("HTTP_")]
    )
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    match = _CREDENTIAL.search(headers.get("Authorization", ""))
    if match is None:
        return None
    access_key, region, signing_name = match.groups()
    return AwsCall(
        service=_SIGNING_TO_SERVICE.get(signing_name, signing_name),
        region=region,
        access_key_id=access_key,
        method=environ.get("REQUEST_METHOD", "GET"),
        path=path,
        query_string=environ.get("QUERY_STRING", ""),
        headers=headers,
        body=body,
        source_ip=environ.get("REMOTE_ADDR", "127.0.0.1"),
        environ=environ,
    )


def caller_account(call: AwsCall) -> str:
    """The account moto attributes the call to (same precedence as moto's BaseResponse)."""
    import os

    from moto.iam.models import get_account_id_from

    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    header = call.headers.get("X-Moto-Account-Id")
    if header:
        return header
    return str(get_account_id_from(call.access_key_id))
