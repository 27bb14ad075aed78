"""Viewers of every kind, each behind its own `TcpProxy`, each recording every
state it applied:

- `PythonViewer`   python-websockets, a client nobody here wrote; it applies the
                   protocol itself with a whitelist DERIVED from the last full state,
                   as strictly as our viewers, and resumes with ?since=&epoch=
- `SseViewer`      Server-Sent Events over a plain socket; resumes with Last-Event-ID
                   or ?lastEventId=&epoch=
- `CliViewer`      `statecast-viewer --output FILE --format json-lines`; killed with SIGKILL
- `NodeViewer`     web/statecast.js under node (Tests/EndToEndTests/js/convergence-viewer.mjs)
- `AgentViewer`    ViewerClient in process (statecast-convergence-agent)

Every viewer keeps `history` (one `Seen` per applied state) and `resumes` (the
position a resuming connection asked for and what the host sent first).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect as ws_connect

from .jsonvalue import kind, short
from .proxy import TcpProxy
from .recorder import WS_OPTIONS

REPO = Path(__file__).resolve().parents[4]
NODE_SCRIPT = REPO / "Tests" / "EndToEndTests" / "js" / "convergence-viewer.mjs"


@dataclass
class Seen:
    """One state a viewer applied."""

    instance: int  # which client instance (a restart or kill makes a new one)
    epoch: str | None  # None when this kind of viewer does not tell
    seq: int | None
    type: str
    state: dict[str, Any]


@dataclass
class ResumeSeen:
    """A resuming connection: the position it asked for and the first envelope it got."""

    since: int
    epoch: str | None
    first_type: str
    first_seq: int | None
    first_epoch: str | None
    first_payload: Any


@dataclass
class Counts:
    sessions: int = 0  # client instances started
    reconnects: int = 0  # intentional reconnects and restarts asked for


class ViewerDriver:
    """What every kind of viewer offers the runner."""

    kind = "viewer"

    def __init__(self, name: str, proxy: TcpProxy, rng: random.Random) -> None:
        self.name = name
        self.proxy = proxy
        self.rng = rng
        self.history: list[Seen] = []
        self.resumes: list[ResumeSeen] = []
        self.notes: list[str] = []
        self.instance = 0
        self.counts = Counts()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.proxy.port}/"

    def _seen(self, seen: Seen) -> None:
        with self._lock:
            self.history.append(seen)

    def current(self) -> dict[str, Any] | None:
        """The state the viewer holds now (None before its first state)."""
        with self._lock:
            return self.history[-1].state if self.history and self.history[-1].instance == self.instance else None

    def start(self) -> None:
        raise NotImplementedError

    def reconnect(self) -> None:
        """Reconnects on purpose (resuming where the kind can) or restarts the client."""
        raise NotImplementedError

    def kill(self) -> None:
        """Ends the client abruptly and starts a new one (a fresh state)."""
        self.reconnect()

    def close(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name} ({self.kind})"

    def diagnostics(self) -> str:
        """What the viewer itself said (a process's exit status and stderr), for failure reports."""
        return ""


# ---------------------------------------------------------------------------
# python-websockets with its own strict apply
# ---------------------------------------------------------------------------


class StrictState:
    """The protocol applied by the rules of docs/PROTOCOL.md §3 with a derived
    whitelist: config_update merges only keys the last full state had, with the
    same kind (every number is `number`; a null value accepts anything)."""

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None
        self.schema: dict[str, str] = {}
        self.seq: int | None = None
        self.epoch: str | None = None
        self.rejected: list[str] = []

    def apply(self, body: dict[str, Any]) -> bool:
        if body.get("type") == "session_update":
            self.state = body["payload"]  # fresh from json.loads; states are never changed in place
            self.schema = {key: kind(value) for key, value in self.state["config"].items()}
            self.seq = body.get("seq")
            self.epoch = body.get("epoch")
            return True
        if body.get("type") == "config_update" and self.state is not None:
            accepted = {}
            for key, value in body["payload"].items():
                expected = self.schema.get(key)
                if expected is None or (expected != "null" and expected != kind(value)):
                    self.rejected.append(f"seq {body.get('seq')}: {key!r} = {short(value, 80)} (whitelist: {expected})")
                else:
                    accepted[key] = value
            if not accepted:
                return False
            self.state = {**self.state, "config": {**self.state["config"], **accepted}}
            if body.get("seq") is not None:
                self.seq = body["seq"]
            return True
        return False


class ThreadedViewer(ViewerDriver):
    """A viewer on a thread of the test: one connection at a time, reconnecting
    by itself after a loss (after 0.1–0.3 s) and at once after `reconnect()`."""

    def __init__(self, name: str, proxy: TcpProxy, rng: random.Random) -> None:
        super().__init__(name, proxy, rng)
        self._intentional = threading.Event()
        self._fresh = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.counts.sessions += 1
        self._thread = threading.Thread(target=self._run, daemon=True, name=self.name)
        self._thread.start()

    def forget(self) -> None:
        """Drops the state held, as a new client would start (called on the viewer's thread)."""
        raise NotImplementedError

    def connection(self) -> None:
        """Opens one connection and reads it until it ends (raising or returning)."""
        raise NotImplementedError

    def interrupt(self) -> None:
        """Ends the current connection from another thread."""
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._fresh.is_set():
                self._fresh.clear()
                with self._lock:
                    self.instance += 1
                self.forget()
            try:
                self.connection()
            except (OSError, ValueError, InvalidHandshake, TimeoutError, ConnectionClosed):
                pass
            if self._intentional.is_set():
                self._intentional.clear()
                continue  # reconnect at once, resuming
            time.sleep(0.1 + 0.2 * random.random())

    def reconnect(self) -> None:
        self.counts.reconnects += 1
        self._intentional.set()
        self.interrupt()

    def kill(self) -> None:
        """Drops the connection and starts again as a new client: no state, no resume."""
        self.counts.sessions += 1
        self._fresh.set()
        self.reconnect()

    def close(self) -> None:
        self._stop.set()
        self.interrupt()
        if self._thread is not None:
            self._thread.join(timeout=5)


class PythonViewer(ThreadedViewer):
    kind = "python-websockets"

    def __init__(self, name: str, proxy: TcpProxy, rng: random.Random) -> None:
        super().__init__(name, proxy, rng)
        self.strict = StrictState()
        self._ws: Any = None

    def _resume_url(self) -> tuple[str, int | None, str | None]:
        s = self.strict
        if s.state is None or s.seq is None:
            return self.url, None, None
        query = {"since": str(s.seq)}
        if s.epoch:
            query["epoch"] = s.epoch
        return self.url + "?" + urllib.parse.urlencode(query), s.seq, s.epoch

    def connection(self) -> None:
        url, since, epoch = self._resume_url()
        with ws_connect(url, **WS_OPTIONS) as ws:
            self._ws = ws
            first = True
            for message in ws:
                body = json.loads(message)
                if first and since is not None:
                    self.resumes.append(ResumeSeen(since, epoch, body.get("type"), body.get("seq"),
                                                   body.get("epoch"), body.get("payload")))
                first = False
                if self.strict.apply(body):
                    self._seen(Seen(self.instance, self.strict.epoch, self.strict.seq, body["type"], self.strict.state))

    def interrupt(self) -> None:
        if self._ws is not None:
            self._ws.close()

    def forget(self) -> None:
        self.strict = StrictState()


# ---------------------------------------------------------------------------
# Server-Sent Events on a plain socket
# ---------------------------------------------------------------------------


def parse_event_id(text: str) -> tuple[str | None, int | None]:
    """(epoch, seq) from an SSE id: `EPOCH:SEQ` (docs/PROTOCOL.md §5), or a bare `SEQ` (epoch None)."""
    epoch, _, seq = text.rpartition(":")
    return (epoch or None, int(seq)) if seq.isdigit() else (None, None)


class SseViewer(ThreadedViewer):
    kind = "sse"

    def __init__(self, name: str, proxy: TcpProxy, rng: random.Random) -> None:
        super().__init__(name, proxy, rng)
        self.state: dict[str, Any] | None = None
        self.last_id: str | None = None
        self._sock: socket.socket | None = None

    def _request(self) -> bytes:
        path = "/events"
        headers = ["Host: 127.0.0.1", "Accept: text/event-stream"]
        if self.last_id is not None:
            epoch, _ = parse_event_id(self.last_id)
            if self.rng.random() < 0.5:
                headers.append(f"Last-Event-ID: {self.last_id}")
            else:
                query = {"lastEventId": self.last_id}
                if epoch:
                    query["epoch"] = epoch
                path += "?" + urllib.parse.urlencode(query)
        return (f"GET {path} HTTP/1.1\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode()

    def connection(self) -> None:
        resume_from = self.last_id
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=5) as sock:
            sock.settimeout(None)
            self._sock = sock
            sock.sendall(self._request())
            self._read(sock, resume_from)

    def interrupt(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def forget(self) -> None:
        self.state = None
        self.last_id = None

    def _read(self, sock: socket.socket, resume_from: str | None) -> None:
        buffer = b""
        head_done = False
        first = True
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return
            buffer += chunk
            if not head_done:
                if b"\r\n\r\n" not in buffer:
                    continue
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                status = head.split(b"\r\n", 1)[0]
                if b" 200 " not in status + b" ":
                    self.notes.append(f"SSE answered {status!r}")
                    return
                if b"chunked" in head.lower():
                    self.notes.append("SSE response is chunked; this client reads raw streams only")
                    return
                head_done = True
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                fields: dict[str, str] = {}
                for line in block.decode().split("\n"):
                    if not line or line.startswith(":") or ":" not in line:
                        continue
                    key, value = line.split(":", 1)
                    fields[key] = value[1:] if value.startswith(" ") else value
                if "event" not in fields or "data" not in fields:
                    continue
                payload = json.loads(fields["data"])
                event_id = fields.get("id")
                epoch, seq = parse_event_id(event_id) if event_id else (None, None)
                if first and resume_from is not None:
                    since_epoch, since = parse_event_id(resume_from)
                    if since is not None:
                        self.resumes.append(ResumeSeen(since, since_epoch, fields["event"], seq, epoch, payload))
                first = False
                if fields["event"] == "session_update":
                    self.state = payload
                elif fields["event"] == "config_update" and self.state is not None:
                    self.state = {**self.state, "config": {**self.state["config"], **payload}}
                else:
                    continue
                if event_id is not None:
                    self.last_id = event_id
                self._seen(Seen(self.instance, epoch, seq, fields["event"], self.state))


# ---------------------------------------------------------------------------
# Processes printing JSON lines: statecast-viewer, node + statecast.js, the Swift agent
# ---------------------------------------------------------------------------


class ProcessViewer(ViewerDriver):
    """A viewer process whose stdout is one JSON line per event."""

    def __init__(self, name: str, proxy: TcpProxy, rng: random.Random, workdir: Path, binary: Path | None = None) -> None:
        super().__init__(name, proxy, rng)
        self.workdir = workdir
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_tail: list[str] = []
        self._pending_resume: tuple[int, str | None] | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def on_line(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self.counts.sessions += 1
        self.instance += 1
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=self.workdir)
        proc = self.proc
        threading.Thread(target=self._pump_out, args=(proc,), daemon=True).start()
        threading.Thread(target=self._pump_err, args=(proc,), daemon=True).start()

    def _pump_out(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                self.notes.append(f"not a JSON line: {raw[:200]!r}")
                continue
            if proc is self.proc:
                self.on_line(event)

    def _pump_err(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            self.stderr_tail = (self.stderr_tail + [raw.decode(errors="replace").rstrip()])[-20:]

    def send(self, command: str) -> None:
        if self.proc is not None and self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self.proc.stdin.write(command.encode() + b"\n")
                self.proc.stdin.flush()
            except OSError:
                pass

    def kill(self) -> None:
        self.counts.reconnects += 1
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
        self.start()

    def reconnect(self) -> None:
        self.kill()

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def quit(self) -> None:
        """Asks the process to close its connection (1000) and exit."""
        self.send("quit")

    def close(self) -> None:
        if self.proc is None:
            return
        self.quit()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def diagnostics(self) -> str:
        tail = " | ".join(self.stderr_tail[-5:])
        return f"exit status {self.exited()}; stderr: {tail or '(nothing)'}"


class CliViewer(ProcessViewer):
    kind = "statecast-viewer"

    def __init__(self, name: str, proxy: TcpProxy, rng: random.Random, workdir: Path, binary: Path) -> None:
        super().__init__(name, proxy, rng, workdir, binary)
        self.output = workdir / f"{name}.json"

    def argv(self) -> list[str]:
        return [str(self.binary), self.url, "--format", "json-lines", "--output", str(self.output), "--no-jitter",
                "--log-level", "warning"]

    def on_line(self, event: dict[str, Any]) -> None:
        self._seen(Seen(self.instance, None, event.get("seq"), event.get("type", "?"), event["state"]))

    def quit(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # the CLI closes with 1000 and exits 0

    def current(self) -> dict[str, Any] | None:
        """What --output holds (the file the user reads)."""
        try:
            return json.loads(self.output.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def start(self) -> None:
        try:
            self.output.unlink()
        except FileNotFoundError:
            pass
        super().start()


class NodeViewer(ProcessViewer):
    kind = "statecast.js"

    def argv(self) -> list[str]:
        return ["node", "--experimental-websocket", "--no-warnings", str(NODE_SCRIPT), self.url]

    def on_line(self, event: dict[str, Any]) -> None:
        what = event.get("event")
        if what == "connecting":
            query = urllib.parse.parse_qs(urllib.parse.urlparse(event["url"]).query)
            since = query.get("since", [None])[0]
            self._pending_resume = (int(since), query.get("epoch", [None])[0]) if since is not None else None
        elif what == "state":
            if self._pending_resume is not None:
                since, epoch = self._pending_resume
                payload = event["state"] if event["type"] == "session_update" else None
                self.resumes.append(ResumeSeen(since, epoch, event["type"], event.get("seq"),
                                               event.get("epoch") if event["type"] == "session_update" else None,
                                               payload))
                self._pending_resume = None
            self._seen(Seen(self.instance, event.get("epoch"), event.get("seq"), event["type"], event["state"]))
        elif what == "drop":
            self.notes.append(event.get("reason", ""))
        elif what == "status":
            self.notes.append(f"status {event.get('state')}")
        elif what == "alive":
            self.notes.append(f"alive, {event.get('state')}, seq {event.get('seq')}")

    def reconnect(self) -> None:
        self.counts.reconnects += 1
        self.send("reconnect")


class AgentViewer(ProcessViewer):
    kind = "ViewerClient"

    def argv(self) -> list[str]:
        return [str(self.binary), self.url]

    def on_line(self, event: dict[str, Any]) -> None:
        if event.get("event") == "state":
            self._seen(Seen(self.instance, None, event.get("seq"), event["type"], event["state"]))
        elif event.get("event") == "restarted":
            with self._lock:
                self.instance += 1

    def reconnect(self) -> None:
        """A new ViewerClient in the same process (a fresh state), or half the time a new process."""
        if self.rng.random() < 0.5:
            self.counts.reconnects += 1
            self.counts.sessions += 1
            self.send("restart")
        else:
            self.kill()


