"""A WebSocket client on a bare TCP socket, for what a polite client library won't do.

The end-to-end tests use it to

* complete the opening handshake and then stop reading (a stalled viewer), with
  a small receive buffer so the host's output backs up quickly;
* send frames a real client would refuse to send (a 1 MiB frame to a host that
  accepts 64 KiB);
* disconnect abruptly, without a closing handshake.

Only what those tests need is here: RFC 6455 client handshake, masked frames
out, unmasked frames in (with continuation frames joined), close frames
decoded into a code and a reason.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import time
from dataclasses import dataclass

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


class HandshakeError(Exception):
    """The server did not answer the opening handshake with a valid 101."""


class ConnectionEnded(Exception):
    """The TCP connection ended (EOF or reset) before a complete frame arrived."""


@dataclass
class Message:
    """One message received: `kind` is "text", "binary" or "close"."""

    kind: str
    text: str | None = None
    data: bytes | None = None
    close_code: int | None = None
    close_reason: str = ""


def mask_payload(payload: bytes, key: bytes) -> bytes:
    """XOR `payload` with the 4-byte masking `key` (fast enough for megabytes)."""
    n = len(payload)
    if n == 0:
        return b""
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def encode_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    mask: bool = True,
    rsv: int = 0,
    declared_length: int | None = None,
) -> bytes:
    """One frame as a client sends it (masked unless `mask` is False). For
    hostile tests: RSV bits (0-7), or a length field that does not match the
    payload (`declared_length`, always in the 64-bit form when given)."""
    first = (0x80 if fin else 0) | (rsv & 7) << 4 | opcode & 0x0F
    mask_bit = 0x80 if mask else 0
    n = len(payload)
    if declared_length is not None:
        header = struct.pack("!BBQ", first, mask_bit | 127, declared_length)
    elif n < 126:
        header = struct.pack("!BB", first, mask_bit | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, n)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + mask_payload(payload, key)


class RawWebSocket:
    """A client connection driven by hand. Not thread-safe except that one thread
    may send while another receives."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str = "/",
        *,
        rcvbuf: int | None = None,
        timeout: float = 10.0,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Must be set before connect() to limit the advertised window.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self._buf = bytearray()
        self.response_headers: dict[str, str] = {}
        self._handshake(host, port, path, extra_headers or {}, timeout)

    # -- handshake ---------------------------------------------------------

    def _handshake(self, host: str, port: int, path: str, extra: dict[str, str], timeout: float) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{k}: {v}" for k, v in extra.items()),
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self._buf:
            if len(self._buf) > 65536:
                raise HandshakeError("handshake response headers larger than 64 KiB")
            self._fill(deadline)
        head, _, rest = bytes(self._buf).partition(b"\r\n\r\n")
        self._buf = bytearray(rest)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or parts[1] != "101":
            raise HandshakeError(f"expected 101 Switching Protocols, got {status_line!r}")
        for line in header_lines:
            name, _, value = line.partition(":")
            self.response_headers[name.strip().lower()] = value.strip()
        expected = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if self.response_headers.get("sec-websocket-accept") != expected:
            raise HandshakeError(
                f"bad Sec-WebSocket-Accept {self.response_headers.get('sec-websocket-accept')!r}, expected {expected!r}"
            )

    # -- low-level reading -------------------------------------------------

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out waiting for data from the host")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 16)
        except socket.timeout as e:
            raise TimeoutError("timed out waiting for data from the host") from e
        except (ConnectionResetError, BrokenPipeError) as e:
            raise ConnectionEnded(f"connection reset: {e}") from e
        if not chunk:
            raise ConnectionEnded("connection closed by the host (EOF)")
        self._buf += chunk

    def _take(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            self._fill(deadline)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def recv_frame(self, timeout: float = 10.0) -> tuple[int, bool, bytes]:
        """The next frame as (opcode, fin, payload)."""
        deadline = time.monotonic() + timeout
        b0, b1 = self._take(2, deadline)
        fin = bool(b0 & 0x80)
        opcode = b0 & 0x0F
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._take(2, deadline))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._take(8, deadline))
        key = self._take(4, deadline) if b1 & 0x80 else None
        payload = self._take(n, deadline)
        if key is not None:
            payload = mask_payload(payload, key)
        return opcode, fin, payload

    def recv(self, timeout: float = 10.0, *, answer_pings: bool = True) -> Message:
        """The next message (text, binary or close), joining continuation frames.
        Pings are answered with a pong (unless `answer_pings` is False) and skipped."""
        deadline = time.monotonic() + timeout
        kind: str | None = None
        parts: list[bytes] = []
        while True:
            opcode, fin, payload = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if opcode == OP_PING:
                if answer_pings:
                    self.send_frame(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return Message("close", close_code=code, close_reason=payload[2:].decode("utf-8", "replace"))
            if opcode in (OP_TEXT, OP_BINARY):
                kind = "text" if opcode == OP_TEXT else "binary"
                parts = [payload]
            elif opcode == OP_CONTINUATION and kind is not None:
                parts.append(payload)
            else:
                raise AssertionError(f"unexpected frame opcode {opcode:#x}")
            if fin:
                body = b"".join(parts)
                if kind == "text":
                    return Message("text", text=body.decode("utf-8"))
                return Message("binary", data=body)

    # -- writing -------------------------------------------------------------

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        self.sock.sendall(encode_frame(opcode, payload, fin=fin))

    def send_text(self, text: str) -> None:
        self.send_frame(OP_TEXT, text.encode("utf-8"))

    def send_binary(self, data: bytes) -> None:
        self.send_frame(OP_BINARY, data)

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        self.send_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode("utf-8"))

    # -- ending --------------------------------------------------------------

    def abort(self) -> None:
        """Drop the TCP connection with no closing handshake."""
        try:
            self.sock.close()
        except OSError:
            pass

    def close(self, code: int = 1000, timeout: float = 5.0) -> int | None:
        """Closing handshake: send a close frame, wait for the host's, close the
        socket. Returns the host's close code (None if it sent none)."""
        try:
            self.send_close(code)
            deadline = time.monotonic() + timeout
            while True:
                msg = self.recv(max(0.0, deadline - time.monotonic()))
                if msg.kind == "close":
                    return msg.close_code
        except (TimeoutError, ConnectionEnded, OSError):
            return None
        finally:
            self.abort()

    def __enter__(self) -> "RawWebSocket":
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()
