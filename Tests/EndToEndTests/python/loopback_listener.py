"""A TCP listener on a free 127.0.0.1 port whose accept loop runs on its own
thread while it is used as a context manager: the scaffold the raw-socket fake
hosts (raw_host.RawHost, viewer_servers.SilentHost) share. A subclass handles
each accepted client in `_handle(client)` and closes what it kept in
`_close_clients()`."""

from __future__ import annotations

import socket
import threading


class LoopbackListener:
    def __init__(self, backlog: int = 16):
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(backlog)
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._running = True
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._running = False
        self._thread.join(5)
        self._server.close()
        self._close_clients()

    def _accept_loop(self) -> None:
        while self._running:
            try:
                client, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._handle(client)

    def _handle(self, client: socket.socket) -> None:
        raise NotImplementedError

    def _close_clients(self) -> None:
        raise NotImplementedError
