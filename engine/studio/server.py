"""Run the studio: bind 127.0.0.1, make the run's token, serve with uvicorn, open the page.

``StudioServer.run`` blocks (the command line); ``start``/``stop`` run it on a
background thread (tests and the screenshot script), stopping by itself on exit.
"""

from __future__ import annotations

import secrets
import socket
import threading
import webbrowser

import uvicorn

from .app import create_app
from .workspace import Workspace

__all__ = ["StudioServer"]


class StudioServer:
    """One studio run on ``127.0.0.1:port`` (0: a free port) with a fresh token."""

    def __init__(self, workspace: Workspace, *, port: int = 0) -> None:
        self.token = secrets.token_urlsafe(24)
        self.app = create_app(workspace, self.token)
        # Bound here, before serving, so a taken port fails at once and the URL is known.
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind(("127.0.0.1", port))
        except OSError:
            self.socket.close()
            raise
        self.port = int(self.socket.getsockname()[1])
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The page, with the token that lets it call the API."""
        return f"{self.base_url}/?token={self.token}"

    def run(self, *, open_browser: bool = False) -> None:
        """Serve until interrupted (Ctrl-C); open the page in a browser once the server is up."""
        if open_browser:
            threading.Thread(target=self._open_when_started, daemon=True).start()
        self.server.run(sockets=[self.socket])

    def _open_when_started(self) -> None:
        for _ in range(200):
            if self.server.started:
                webbrowser.open(self.url)
                return
            threading.Event().wait(0.05)

    def start(self) -> StudioServer:
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self._thread.start()
        for _ in range(400):
            if self.server.started:
                return self
            threading.Event().wait(0.025)
        raise RuntimeError("the studio server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.socket.close()

    def __enter__(self) -> StudioServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
