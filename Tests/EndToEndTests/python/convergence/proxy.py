"""A TCP proxy in front of one viewer: `cut()` drops its connections (the
viewer sees the network fail and must reconnect by itself) and `stall()` stops
reading from the host (the host's output for that viewer backs up, as for a
viewer on a slow link, until it conflates). Real sockets on 127.0.0.1 only."""

from __future__ import annotations

import socket
import threading
from typing import Callable

# A small receive buffer towards the host so a stall backs up the host quickly.
UPSTREAM_RCVBUF = 16 * 1024


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.closed = False
        self.lock = threading.Lock()

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass


class TcpProxy:
    """Listens on a free loopback port and forwards each connection to
    `upstream_port()` (read at every connection, so a host restarted elsewhere
    is followed)."""

    def __init__(self, upstream_port: Callable[[], int]) -> None:
        self._upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._pairs: list[_Pair] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        self._stopped = False
        self.connections = 0
        self.cuts = 0
        self.stalls = 0
        threading.Thread(target=self._accept, daemon=True, name=f"proxy-{self.port}").start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UPSTREAM_RCVBUF)
            try:
                upstream.connect(("127.0.0.1", self._upstream_port()))
            except OSError:
                # Host down (restarting): the viewer sees a refused connection.
                upstream.close()
                client.close()
                continue
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.append(pair)
                self.connections += 1
            threading.Thread(target=self._pump, args=(pair, client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(pair, upstream, client, True), daemon=True).start()

    def _pump(self, pair: _Pair, source: socket.socket, target: socket.socket, from_host: bool) -> None:
        try:
            while True:
                if from_host:
                    self._flowing.wait()
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            pair.close()
            with self._lock:
                if pair in self._pairs:
                    self._pairs.remove(pair)

    def cut(self) -> None:
        """Drops every current connection (no close frame: the network failed)."""
        with self._lock:
            pairs = list(self._pairs)
            self.cuts += 1
        for pair in pairs:
            pair.close()

    def stall(self) -> None:
        """Stops reading from the host until `resume()`."""
        self.stalls += 1
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    @property
    def stalled(self) -> bool:
        return not self._flowing.is_set()

    def close(self) -> None:
        self._stopped = True
        self.resume()
        try:
            self._listener.close()
        except OSError:
            pass
        self.cut()
