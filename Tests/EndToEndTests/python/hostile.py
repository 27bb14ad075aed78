"""Raw-socket attacks on a host, for the bad-input suite (issue #6).

Every attack takes the host's port, does something a polite client never
does, and returns what the host did as a short string for the results table:

* `HTTP 400` — the host answered the request with that status,
* `close 1002` — the host sent a Close frame with that code (then dropped TCP),
* `dropped (EOF)` / `dropped (RST)` — the host closed the TCP connection without a word,
* `open` — after a while the connection still works (the host ignored the input),
* or a sentence for the composite attacks (floods, resets).

Built on raw_ws (handshake, masking, frame parsing); all I/O is bounded by timeouts.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from raw_ws import (OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, ConnectionEnded, RawWebSocket,
                    encode_frame, mask_payload)  # noqa: F401 (OP_* re-exported for the tests)

HOST = "127.0.0.1"
IO_TIMEOUT = 10.0


# ---------------------------------------------------------------------------
# Bytes on the wire
# ---------------------------------------------------------------------------


def valid_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_request(
    port: int,
    *,
    method: str = "GET",
    path: str = "/",
    version_line: str = "HTTP/1.1",
    headers: dict[str, str] | None = None,
    omit: tuple[str, ...] = (),
    extra: list[str] | None = None,
    body: bytes = b"",
) -> bytes:
    """An RFC 6455 opening handshake, with any header replaced (`headers`),
    left out (`omit`, lower-case names) or added (`extra`, raw lines)."""
    fields = {
        "Host": f"{HOST}:{port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": valid_key(),
        "Sec-WebSocket-Version": "13",
    }
    fields.update(headers or {})
    lines = [f"{method} {path} {version_line}".rstrip()]
    lines += [f"{name}: {value}" for name, value in fields.items() if name.lower() not in omit]
    lines += extra or []
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    declared_length: int | None = None,
) -> bytes:
    """A client frame with full control (see raw_ws.encode_frame)."""
    return encode_frame(opcode, payload, fin=fin, rsv=rsv, mask=mask, declared_length=declared_length)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


# ---------------------------------------------------------------------------
# Watching what the host does
# ---------------------------------------------------------------------------


def tcp_connect(port: int, timeout: float = IO_TIMEOUT) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


@dataclass
class HTTPAnswer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def read_http(sock: socket.socket, timeout: float = IO_TIMEOUT) -> HTTPAnswer | str:
    """The host's HTTP response head (and what body came with it), or how the
    connection ended: "dropped (EOF)", "dropped (RST)", "no answer"."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\r\n\r\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "no answer"
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return "no answer"
        except ConnectionResetError:
            return "dropped (RST)" if not data else f"partial answer then RST: {data[:60]!r}"
        if not chunk:
            return "dropped (EOF)" if not data else f"partial answer then EOF: {data[:60]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    assert len(parts) >= 2 and parts[0] in ("HTTP/1.1", "HTTP/1.0") and parts[1].isdigit(), \
        f"malformed status line {status_line!r}"
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return HTTPAnswer(int(parts[1]), headers, body)


def http_outcome(sock: socket.socket, timeout: float = IO_TIMEOUT) -> str:
    answer = read_http(sock, timeout)
    return answer if isinstance(answer, str) else f"HTTP {answer.status}"


def _parse_frame(buf: bytearray) -> tuple[int, bool, bytes, int] | None:
    """(opcode, fin, payload, bytes used) of the first complete frame in `buf`, or None."""
    if len(buf) < 2:
        return None
    n, used = buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        (n,), used = struct.unpack("!H", buf[2:4]), 4
    elif n == 127:
        if len(buf) < 10:
            return None
        (n,), used = struct.unpack("!Q", buf[2:10]), 10
    key = None
    if buf[1] & 0x80:
        if len(buf) < used + 4:
            return None
        key, used = bytes(buf[used : used + 4]), used + 4
    if len(buf) < used + n:
        return None
    payload = bytes(buf[used : used + n])
    if key is not None:
        payload = mask_payload(payload, key)
    return buf[0] & 0x0F, bool(buf[0] & 0x80), payload, used + n


def read_frame(ws: RawWebSocket, timeout: float) -> tuple[int, bool, bytes]:
    """The next frame; unlike RawWebSocket.recv_frame, a timeout mid-frame loses nothing."""
    deadline = time.monotonic() + timeout
    while True:
        parsed = _parse_frame(ws._buf)
        if parsed is not None:
            opcode, fin, payload, used = parsed
            del ws._buf[:used]
            return opcode, fin, payload
        ws._fill(deadline)


# The payload of the ping sent after an attack: its pong proves the host has read
# (and chosen to survive) everything before it, so "open" never rests on a sleep.
MARKER = b"statecast-marker"


def websocket_outcome(ws: RawWebSocket, quiet: float = 10.0) -> str:
    """Reads frames (skipping the updates the host sends to every viewer) until a
    Close frame, the end of the connection, the pong to our MARKER ping ("open":
    the host read the attack and kept going), or `quiet` seconds without any of
    them ("open", for attacks that leave the host waiting for more bytes). A Close
    must be followed by the host dropping TCP, with no frame in between."""
    deadline = time.monotonic() + quiet
    while True:
        wait = deadline - time.monotonic()
        if wait <= 0:
            return "open"
        try:
            opcode, _fin, payload = read_frame(ws, wait)
        except TimeoutError:
            return "open"
        except ConnectionEnded as e:
            return "dropped (RST)" if "reset" in str(e) else "dropped (EOF)"
        if opcode == OP_PONG and payload == MARKER:
            return "open"
        if opcode == OP_CLOSE:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            # After its Close, the host must send nothing but may wait for ours; answer, then expect EOF.
            try:
                ws.sock.sendall(frame(OP_CLOSE, payload[:2]))
            except OSError:
                pass
            try:
                extra = read_frame(ws, 15)  # generous: a loaded host may take a while to drop TCP
                return f"close {code}, then a frame with opcode {extra[0]:#x} (RFC 6455 §5.5.1 violation)"
            except ConnectionEnded:
                pass
            except TimeoutError:
                return f"close {code} but TCP left open"
            return f"close {code}" if code is not None else "close (no code)"


def still_works(ws: RawWebSocket) -> bool:
    """A connection the host ignored still completes a closing handshake."""
    return ws.close(1000) == 1000


# ---------------------------------------------------------------------------
# Attacks
# ---------------------------------------------------------------------------


def send_http(port: int, data: bytes, *, then_shutdown: bool = False, timeout: float = IO_TIMEOUT) -> str:
    sock = tcp_connect(port)
    try:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return "dropped while sending"
        if then_shutdown:
            sock.shutdown(socket.SHUT_WR)
        return http_outcome(sock, timeout)
    finally:
        sock.close()


def send_http_full(port: int, data: bytes, timeout: float = IO_TIMEOUT) -> HTTPAnswer | str:
    sock = tcp_connect(port)
    try:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return "dropped while sending"
        return read_http(sock, timeout)
    finally:
        sock.close()


def send_frames(port: int, *frames: bytes, quiet: float = 10.0, polite_close: bool = True) -> str:
    """Opens a WebSocket, sends `frames` and a MARKER ping in one write, reports what
    the host did. If the host ignored them, checks the connection still closes cleanly."""
    ws = RawWebSocket(HOST, port, timeout=IO_TIMEOUT)
    try:
        try:
            ws.sock.sendall(b"".join(frames) + frame(OP_PING, MARKER))
        except (BrokenPipeError, ConnectionResetError):
            pass
        outcome = websocket_outcome(ws, quiet=quiet)
        if outcome == "open" and polite_close:
            outcome += " (then closes 1000 cleanly)" if still_works(ws) else " (but no clean close afterwards)"
        return outcome
    finally:
        ws.abort()


def send_big_frame(port: int, size: int) -> str:
    """One text frame of `size` bytes, sent while reading (the host may close mid-way)."""
    ws = RawWebSocket(HOST, port, timeout=IO_TIMEOUT)
    errors: list[BaseException] = []

    def push() -> None:
        try:
            ws.sock.sendall(frame(OP_TEXT, b"a" * size))
        except OSError as e:
            errors.append(e)

    sender = threading.Thread(target=push, daemon=True)
    sender.start()
    try:
        return websocket_outcome(ws)
    finally:
        ws.abort()
        sender.join(timeout=10)


def control_flood(port: int, opcode: int, count: int) -> str:
    """`count` control frames in one burst while another thread reads; reports
    how many pongs came back and whether the connection still works."""
    ws = RawWebSocket(HOST, port, timeout=IO_TIMEOUT)
    pongs = 0
    ended: list[str] = []
    stop = threading.Event()

    marked = threading.Event()

    def read() -> None:
        nonlocal pongs
        while not stop.is_set():
            try:
                op, _fin, payload = read_frame(ws, 0.5)
            except TimeoutError:
                continue
            except ConnectionEnded as e:
                ended.append(str(e))
                return
            if op == OP_PONG and payload == MARKER:
                marked.set()
                return
            if op == OP_PONG:
                pongs += 1
            elif op == OP_CLOSE:
                ended.append("close")
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    one = frame(opcode, b"")
    try:
        ws.sock.sendall(one * count)
        # libwebsockets keeps one pong pending and drops the pings that arrive meanwhile,
        # so the marker is sent again until its pong comes: then the flood has been read.
        deadline = time.monotonic() + 30
        while reader.is_alive() and time.monotonic() < deadline:
            ws.sock.sendall(frame(OP_PING, MARKER))
            reader.join(timeout=1.0)
    except OSError as e:
        ended.append(f"send failed: {e}")
    stop.set()
    reader.join(timeout=5)
    try:
        if ended:
            return f"connection ended ({ended[0]}) after {pongs} pongs"
        if not marked.is_set():
            return f"no pong to the marker ping within 30 s ({pongs} pongs before)"
        what = "ping" if opcode == OP_PING else "pong"
        if not still_works(ws):
            return f"open, but no clean close afterwards ({pongs} pongs for {count} {what}s)"
        return f"open, closes 1000 cleanly ({pongs} pongs for {count} {what}s)"
    finally:
        ws.abort()


def reset_storm(port: int, count: int) -> str:
    """`count` connections of each kind dropped with RST: right after connect,
    mid-request, and after a completed handshake."""
    for _ in range(count):
        reset(tcp_connect(port))
    for _ in range(count):
        sock = tcp_connect(port)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        reset(sock)
    for _ in range(count):
        ws = RawWebSocket(HOST, port, timeout=IO_TIMEOUT)
        reset(ws.sock)
    return f"{3 * count} connections reset"


def connection_storm(port: int, count: int) -> str:
    """`count` connections opened at once, each sending nothing, then closed."""
    socks = [tcp_connect(port) for _ in range(count)]
    for s in socks:
        s.close()
    return f"{count} idle connections opened and closed"


def pipelined_upgrades(port: int) -> str:
    """Two upgrade requests in one write: after the 101, the second request's
    bytes arrive where the host expects frames."""
    sock = tcp_connect(port)
    try:
        sock.sendall(upgrade_request(port) + upgrade_request(port))
        answer = read_http(sock)
        if isinstance(answer, str):
            return answer
        if answer.status != 101:
            return f"HTTP {answer.status}"
        ws = RawWebSocket.__new__(RawWebSocket)
        ws.sock, ws._buf, ws.response_headers = sock, bytearray(answer.body), answer.headers
        return f"HTTP 101, then {websocket_outcome(ws)}"
    finally:
        sock.close()


class Slowloris(threading.Thread):
    """Sends a request one byte per `interval` seconds and records when the host
    hangs up (seconds after connecting), or None if it never did within `limit`
    or answered instead (then `how` says what it answered)."""

    def __init__(self, port: int, interval: float = 1.0, limit: float = 40.0) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.interval = interval
        self.limit = limit
        self.dropped_after: float | None = None
        self.bytes_sent = 0
        self.how = ""
        self.sock = tcp_connect(port)
        self.started_at = time.monotonic()
        self._halt = threading.Event()

    def run(self) -> None:
        data = upgrade_request(self.port, extra=[f"X-Slow-{i}: {'x' * 20}" for i in range(200)])
        try:
            while time.monotonic() - self.started_at < self.limit and not self._halt.is_set():
                try:
                    self.sock.sendall(data[self.bytes_sent : self.bytes_sent + 1])
                    self.bytes_sent += 1
                except OSError as e:
                    self.how = f"send failed ({e.__class__.__name__})"
                    self.dropped_after = time.monotonic() - self.started_at
                    return
                # A hang-up shows as EOF/RST on a read.
                self.sock.settimeout(self.interval)
                try:
                    chunk = self.sock.recv(4096)
                except socket.timeout:
                    continue
                except OSError as e:
                    self.how = f"{e.__class__.__name__}"
                    self.dropped_after = time.monotonic() - self.started_at
                    return
                if chunk:  # an answer is not a hang-up: dropped_after stays None
                    self.how = f"answered {chunk[:40]!r}"
                    return
                self.how = "EOF"
                self.dropped_after = time.monotonic() - self.started_at
                return
        finally:
            self.sock.close()

    def stop(self) -> None:
        self._halt.set()


class HalfOpen(threading.Thread):
    """Connects and never sends; records when the host hangs up."""

    def __init__(self, port: int, limit: float = 40.0) -> None:
        super().__init__(daemon=True)
        self.limit = limit
        self.sock = tcp_connect(port)
        self.started_at = time.monotonic()
        self.dropped_after: float | None = None
        self.how = ""

    def run(self) -> None:
        self.sock.settimeout(self.limit)
        try:
            chunk = self.sock.recv(4096)
            if chunk:  # an answer is not a hang-up: dropped_after stays None
                self.how = f"answered {chunk[:40]!r}"
            else:
                self.how = "EOF"
                self.dropped_after = time.monotonic() - self.started_at
        except socket.timeout:
            pass
        except OSError as e:
            self.how = e.__class__.__name__
            self.dropped_after = time.monotonic() - self.started_at
        finally:
            self.sock.close()

