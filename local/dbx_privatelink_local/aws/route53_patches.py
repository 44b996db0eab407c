"""Route 53 as AWS answers it where moto differs: hosted zone ids, and changes that take time to propagate.

moto makes hosted zone ids of 22 random letters and digits; AWS's start with "Z" (Z1RWWTK7Y8UDDQ), which
the drift detector relies on to tell a zone id from other ids in an event. Patched: "Z" and 21 of moto's.

moto answers every Route 53 change (AssociateVPCWithHostedZone, DisassociateVPCFromHostedZone) with one fixed
change id, already INSYNC. On AWS each change has its own id and stays PENDING until every Route 53 location
applies it ("generally within 60 seconds"; GetChange). Patched: those calls answer a new change id, PENDING,
and GetChange answers INSYNC once `PROPAGATION_S` emulated seconds have passed (scaled by the stack's time
factor). Longer than the local resolvers' state cache (0.5 s at the default scale), so a change reported
INSYNC is also what the loopback resolvers answer with.

Installed once per process from aws/server.install_patches() (idempotent).
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from dbx_privatelink_local.timescale import TIME_SCALE

PROPAGATION_S = 60.0
_LOCK = threading.Lock()
_INSTALLED = False
_SUBMITTED: dict[str, float] = {}  # change id -> monotonic time it was made


def change_status(change_id: str, now: float | None = None) -> str:
    """PENDING while the change propagates, INSYNC after (and for ids this stack never issued)."""
    with _LOCK:
        submitted = _SUBMITTED.get(change_id)
    if submitted is None:
        return "INSYNC"
    elapsed = (time.monotonic() if now is None else now) - submitted
    return "PENDING" if elapsed < TIME_SCALE.scaled(PROPAGATION_S) else "INSYNC"


def _pending_change(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def call(self: Any) -> Any:
        answer = original(self)
        change_id = f"/change/C{uuid.uuid4().hex[:20].upper()}"
        with _LOCK:
            _SUBMITTED[change_id] = time.monotonic()
        answer.result["ChangeInfo"].update(Id=change_id, Status="PENDING")
        return answer

    return call


def _get_change(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def call(self: Any) -> Any:
        answer = original(self)
        info = answer.result["ChangeInfo"]
        change_id = str(info["Id"])
        info["Status"] = change_status(change_id if change_id.startswith("/") else f"/change/{change_id}")
        return answer

    return call


def _zone_id_with_z(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def generate(self: Any, *args: Any, **kwargs: Any) -> str:
        return "Z" + str(original(self, *args, **kwargs))[1:]

    return generate


def install() -> None:
    """Install the Route 53 patches (idempotent, once per process)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        from moto.route53.models import HostedZoneIdentifier
        from moto.route53.responses import Route53

        HostedZoneIdentifier.generate = _zone_id_with_z(HostedZoneIdentifier.generate)  # type: ignore[method-assign]

        for name in ("associate_vpc_with_hosted_zone", "disassociate_vpc_from_hosted_zone"):
            setattr(Route53, name, _pending_change(getattr(Route53, name)))
        Route53.get_change = _get_change(Route53.get_change)  # type: ignore[method-assign]
        _INSTALLED = True
