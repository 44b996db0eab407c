"""The emulator on a real loopback socket: a threaded werkzeug server on its own thread."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from dbx_privatelink_local.databricks.emulator import DatabricksEmulator
from dbx_privatelink_local.databricks.routes import DropConnection

log = logging.getLogger(__name__)


class _RequestHandler(WSGIRequestHandler):
    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        if isinstance(error, DropConnection):
            # Without this the handler would wait for another request on a socket the client still
            # holds open, and the client would wait for a response: both hang.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s -> %s", self.command, self.path, code)


class EmulatorServer:
    """Serves an emulator on http://host:port (port 0 picks a free one)."""

    def __init__(self, emulator: DatabricksEmulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator
        self.host = host
        self.port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator server is not running")
        return f"http://{self.host}:{self._server.port}"

    def start(self) -> str:
        """Start serving; returns the base URL."""
        if self._server is not None:
            return self.url
        server = make_server(
            self.host, self.port, self.emulator.wsgi_app(), threaded=True, request_handler=_RequestHandler
        )
        self._server = server
        # A short poll keeps stop() quick: shutdown() waits for the serve loop's next poll.
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="databricks-emulator",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
