"""Small WebSocket servers for the viewer's end-to-end tests, written with the
Python `websockets` package (no StateCast code on the server side), and a
helper that runs the built `statecast-viewer` binary.

Every server binds 127.0.0.1 on a free port and runs its asyncio loop in a
background thread, so tests stay plain synchronous pytest functions. All
waits are bounded.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import pathlib
import queue
import signal
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Optional

from websockets.asyncio.server import ServerConnection, serve
from loopback_listener import LoopbackListener

REPO = pathlib.Path(__file__).resolve().parents[3]


def viewer_binary() -> pathlib.Path:
    """The built viewer: $STATECAST_BIN_DIR/statecast-viewer, default <repo>/.build/debug."""
    directory = pathlib.Path(os.environ.get("STATECAST_BIN_DIR") or REPO / ".build" / "debug")
    path = directory / "statecast-viewer"
    if not path.exists():
        raise RuntimeError(f"{path} does not exist; build it with `swift build --product statecast-viewer` "
                           "or point STATECAST_BIN_DIR at the build directory")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Polls `predicate` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --- envelopes (SPEC §2) ---------------------------------------------------

def session_update(session: dict, seq: Optional[int] = None, epoch: Optional[str] = None) -> str:
    envelope: dict = {"type": "session_update"}
    if seq is not None:
        envelope["seq"] = seq
    if epoch is not None:
        envelope["epoch"] = epoch
    envelope["payload"] = session
    return json.dumps(envelope, separators=(",", ":"))


def config_update(changes: dict, seq: Optional[int] = None) -> str:
    envelope: dict = {"type": "config_update"}
    if seq is not None:
        envelope["seq"] = seq
    envelope["payload"] = changes
    return json.dumps(envelope, separators=(",", ":"))


def session(name: str = "demo", config: Optional[dict] = None, data: Any = None, metadata: Optional[dict] = None) -> dict:
    return {"name": name, "data": {} if data is None else data, "config": config or {}, "metadata": metadata or {}}


# --- a websockets server in a background thread ------------------------------

@dataclass
class Connection:
    """What the server saw of one viewer connection."""
    index: int
    opened_at: float
    closed_at: Optional[float] = None
    close_code: Optional[int] = None      # the code the viewer sent in its close frame, if any
    received: list = field(default_factory=list)


Handler = Callable[[ServerConnection, Connection], Awaitable[None]]


class ServerThread:
    """Serves `handler(ws, record)` for every connection on 127.0.0.1.

    The handler plays the host; when it returns, the server waits for the
    viewer to go away (recording its close code) unless the handler already
    closed or dropped the connection.
    """

    def __init__(self, handler: Handler, port: int = 0, process_request=None):
        self.handler = handler
        self.requested_port = port
        self.process_request = process_request
        self.connections: list[Connection] = []
        self.requests = 0
        self.request_headers: list = []        # the handshake headers of every request
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop: Optional[asyncio.Event] = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test server did not start")
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self._loop and self._stop and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def snapshot(self) -> list[Connection]:
        with self._lock:
            return list(self.connections)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        def count_request(connection, request):
            with self._lock:
                self.requests += 1
                self.request_headers.append(request.headers)
            if self.process_request:
                return self.process_request(connection, request)
            return None

        async with serve(self._serve, "127.0.0.1", self.requested_port, process_request=count_request,
                         max_size=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    async def _serve(self, ws: ServerConnection) -> None:
        with self._lock:
            record = Connection(index=len(self.connections), opened_at=time.monotonic())
            self.connections.append(record)
        reader = asyncio.create_task(self._read(ws, record))
        try:
            await self.handler(ws, record)
            await ws.wait_closed()
        finally:
            reader.cancel()
            record.closed_at = time.monotonic()
            if ws.protocol.close_rcvd is not None:
                record.close_code = ws.protocol.close_rcvd.code

    @staticmethod
    async def _read(ws: ServerConnection, record: Connection) -> None:
        try:
            async for message in ws:
                record.received.append(message)   # the host ignores these (SPEC §2)
        except Exception:
            pass


def refuse_with(status: HTTPStatus):
    """A process_request hook that refuses every upgrade with `status` (as a host refuses a bad token)."""
    def hook(connection, request):
        return connection.respond(status, f"{status.phrase}\n")
    return hook


# --- the hosts the tests play ---------------------------------------------------

INTEROP_STATE = session("interop", config={"speed": 1, "mode": "wave", "enabled": True},
                        data={"points": [1, 2, 3]}, metadata={"owner": "python"})


def interop_host(with_seq: bool, updates: int = 20) -> Handler:
    """A plain host speaking SPEC §2: one full state, then `updates` config_updates."""
    async def handler(ws: ServerConnection, record: Connection) -> None:
        seq = 1 if with_seq else None
        await ws.send(session_update(INTEROP_STATE, seq))
        for i in range(1, updates + 1):
            await asyncio.sleep(0.01)
            await ws.send(config_update({"speed": i * 0.5, "mode": f"m{i}"}, (i + 1) if with_seq else None))
    return handler


HOSTILE_FINAL_CONFIG = {"speed": 2.5, "mode": "done", "enabled": False, "extra": None}


def hostile_host() -> Handler:
    """Sends everything a viewer must survive, then one last valid change as a marker.

    Whatever the viewer does, its state must end as HOSTILE_FINAL_CONFIG:
    only whitelisted keys with the expected types survive.
    """
    async def handler(ws: ServerConnection, record: Connection) -> None:
        sends: list = [
            config_update({"speed": 99}),                                  # before any full state: ignored
            session_update(session("hostile", config={"speed": 1, "mode": "wave", "enabled": True, "extra": None}), 1),
            config_update({"evil": "rm -rf /", "speed": 1.5}, 2),        # unknown key dropped, speed applied
            config_update({"speed": "fast"}, 3),                          # wrong type
            config_update({"mode": 3, "enabled": "yes"}, 4),              # wrong types
            config_update({"speed": None}, 5),                            # null is not a number
            config_update({"speed": [1, 2]}, 6),
            b"\x00\x01\x02binary",                                         # binary frame
            json.dumps({"type": "config_update", "payload": {"speed": 77}}).encode(),  # binary, even if JSON
            "{not json",                                                    # malformed
            "",
            "null",
            "[1,2,3]",
            '{"type":42,"payload":{}}',
            '{"type":"config_update","payload":[1,2]}',
            '{"type":"config_update","seq":"seven","payload":{"speed":70}}',
            '{"type":"session_update","payload":{"config":{"speed":1000}}}',  # no name: invalid
            json.dumps({"type": "hack", "payload": {"speed": 1000}}),     # unknown type
            json.dumps({"type": "session_delete", "seq": 9}),
            json.dumps({"payload": {"speed": 1000}}),                      # no type
            '{"type":"config_update","payload":{"speed":' + "[" * 600 + "]" * 600 + "}}",  # deep nesting
            config_update({"enabled": False, "intruder": {"x": 1}, "speed": 2.5}, 10),
            ["{\"type\":\"config_update\",", "\"seq\":11,", "\"payload\":{\"extra\":\"fragmented\"}}"],  # fragmented
            config_update({"extra": None}, 12),                            # extra was null: any value accepted
        ]
        for message in sends:
            await ws.send(message)
        await ws.send(config_update({"mode": "done"}, 13))                 # the marker: last change
    return handler


def dropping_host(states: list[dict]) -> Handler:
    """Connection i gets full state states[i]. The first closes with 1001, the
    second drops the TCP connection without a close frame, later ones stay open."""
    async def handler(ws: ServerConnection, record: Connection) -> None:
        index = min(record.index, len(states) - 1)
        await ws.send(session_update(states[index], record.index + 1))
        await asyncio.sleep(0.3)
        if record.index == 0:
            await ws.close(code=1001, reason="going away")
        elif record.index == 1:
            ws.transport.abort()                                          # TCP reset, no close frame (1006)
    return handler


def resuming_host(state: dict, epoch: str) -> Handler:
    """docs/PROTOCOL.md §4: the first connection gets the full state (seq 100)
    and one change (seq 101), then is closed with 1001; a viewer that comes
    back with ?since=101&epoch=EPOCH gets only a config_update (seq 102)."""
    async def handler(ws: ServerConnection, record: Connection) -> None:
        path = ws.request.path
        record.received.append(("path", path))
        if f"since=101&epoch={epoch}" in path:
            await ws.send(config_update({"speed": 3}, 102))
            return
        await ws.send(session_update(state, 100, epoch))
        await ws.send(config_update({"speed": 2}, 101))
        await asyncio.sleep(0.3)
        await ws.close(code=1001)
    return handler


def keep_open_host(state: dict) -> Handler:
    async def handler(ws: ServerConnection, record: Connection) -> None:
        await ws.send(session_update(state, 1))
    return handler


# --- a host that completes the handshake and then falls silent ------------------

class SilentHost(LoopbackListener):
    """A raw TCP WebSocket host: answers the handshake, sends one full state,
    then never reads or writes again (as a host that was SIGSTOPped). Used
    to check that the viewer's pings notice it."""

    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, state: dict):
        super().__init__(backlog=8)
        self.state = state
        self.accepted: list[float] = []
        self._sockets: list[socket.socket] = []

    def _close_clients(self) -> None:
        for s in self._sockets:
            s.close()

    def _handle(self, client: socket.socket) -> None:
        self._sockets.append(client)
        self.accepted.append(time.monotonic())
        client.settimeout(5)
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = client.recv(4096)
            if not chunk:
                break
            request += chunk
        key = ""
        for line in request.decode("latin-1").split("\r\n"):
            if line.lower().startswith("sec-websocket-key:"):
                key = line.split(":", 1)[1].strip()
        accept = base64.b64encode(hashlib.sha1((key + self.GUID).encode()).digest()).decode()
        client.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        payload = session_update(self.state, 1).encode()
        header = bytes([0x81]) + (bytes([len(payload)]) if len(payload) < 126
                                  else bytes([126]) + struct.pack("!H", len(payload)))
        client.sendall(header + payload)
        # Then silence: no reads (pings pile up unanswered), no writes.


# --- the viewer under test ------------------------------------------------------

class ViewerProcess:
    """Runs `statecast-viewer ARGS…` and collects its stdout and stderr lines."""

    def __init__(self, *args: str):
        self.args = [str(viewer_binary()), *args]
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.stdout: list[str] = []
        self.stderr: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, False), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, True), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _pump(self, stream, is_stderr: bool) -> None:
        for line in stream:
            with self._lock:
                if is_stderr:
                    self.stderr.append((time.monotonic(), line.rstrip("\n")))
                else:
                    self.stdout.append(line.rstrip("\n"))

    def stdout_lines(self) -> list[str]:
        with self._lock:
            return list(self.stdout)

    def stderr_lines(self) -> list[str]:
        with self._lock:
            return [line for _, line in self.stderr]

    def stderr_timed(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self.stderr)

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout_lines() if line.strip()]

    def wait_for_stdout(self, predicate: Callable[[str], bool], timeout: float, what: str) -> str:
        return wait_until(lambda: next((l for l in self.stdout_lines() if predicate(l)), None), timeout,
                          f"{what}; stdout so far: {self.stdout_lines()[-5:]}, stderr: {self.stderr_lines()[-5:]}")

    def wait_for_stderr(self, text: str, timeout: float, count: int = 1) -> list[str]:
        def found():
            hits = [l for l in self.stderr_lines() if text in l]
            return hits if len(hits) >= count else None
        return wait_until(found, timeout, f"{count}× {text!r} on stderr; stderr so far: {self.stderr_lines()}")

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
