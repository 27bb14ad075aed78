"""A WebSocket *host* on a bare TCP socket, for what a polite server library won't send.

The viewer hardening tests (issue 13, items 9-14) play a hostile or broken
host: text frames with invalid UTF-8 (Python `websockets` refuses to send
them), redirects instead of the 101, floods written straight to the socket.
Each accepted connection runs `script(connection)` in its own thread; the
script decides what to answer. Binds 127.0.0.1 on a free port. All waits are
bounded.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from hostile import _parse_frame as parse_frame
from loopback_listener import LoopbackListener
from raw_ws import GUID, OP_CLOSE, OP_PING, OP_PONG, encode_frame


@dataclass
class Request:
    """The viewer's opening handshake as the host read it."""
    path: str
    headers: dict[str, str]


@dataclass
class HostConnection:
    """One viewer connection: the request, then frames both ways."""
    sock: socket.socket
    request: Request
    index: int
    close_code: Optional[int] = None          # the code of the viewer's Close frame, once read
    ended: threading.Event = field(default_factory=threading.Event)
    _buf: bytearray = field(default_factory=bytearray)

    def accept(self) -> None:
        """Answers the handshake with 101."""
        key = self.request.headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        self.send_raw(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        """An unmasked frame, as a host sends it."""
        self.sock.sendall(encode_frame(opcode, payload, fin=fin, mask=False))

    def read_frame(self, timeout: float) -> Optional[tuple[int, bytes]]:
        """The next frame from the viewer (unmasked), answering pings; None on EOF or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._parse()
            if frame is not None:
                opcode, payload = frame
                if opcode == OP_PING:
                    self.send_frame(OP_PONG, payload)
                    continue
                if opcode == OP_CLOSE and self.close_code is None:
                    self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                return frame
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, OSError):
                return None
            if not chunk:
                return None
            self._buf += chunk

    def wait_for_close(self, timeout: float) -> Optional[int]:
        """Reads until the viewer's Close frame (returns its code) or EOF/timeout (None)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = self.read_frame(deadline - time.monotonic())
            if frame is None:
                return self.close_code
            if frame[0] == OP_CLOSE:
                return self.close_code
        return self.close_code

    def _parse(self) -> Optional[tuple[int, bytes]]:
        frame = parse_frame(self._buf)
        if frame is None:
            return None
        opcode, _, payload, used = frame
        del self._buf[:used]
        return opcode, payload


Script = Callable[[HostConnection], None]


class RawHost(LoopbackListener):
    """Runs `script(connection)` for every connection, each in its own thread.

    The script must call `connection.accept()` (or answer the request some
    other way). When it returns, the socket is closed.
    """

    def __init__(self, script: Script):
        super().__init__(backlog=16)
        self.script = script
        self.connections: list[HostConnection] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()

    def _close_clients(self) -> None:
        for connection in self.snapshot():
            connection.sock.close()

    def snapshot(self) -> list[HostConnection]:
        with self._lock:
            return list(self.connections)

    def _handle(self, client: socket.socket) -> None:
        threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(10)
        data = b""
        try:
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = client.recv(4096)
                if not chunk:
                    client.close()
                    return
                data += chunk
        except OSError:
            client.close()
            return
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        with self._lock:
            connection = HostConnection(client, Request(parts[1] if len(parts) > 1 else "", headers),
                                        len(self.connections))
            connection._buf += rest
            self.connections.append(connection)
        try:
            self.script(connection)
        except OSError:
            pass                               # the viewer went away: the script's business
        except BaseException as error:         # a broken script must fail the test, not vanish
            with self._lock:
                self.errors.append(error)
        finally:
            connection.ended.set()
            try:
                client.close()
            except OSError:
                pass
