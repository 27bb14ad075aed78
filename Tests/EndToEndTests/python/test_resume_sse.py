"""Resume (`?since=&epoch=`) and Server-Sent Events against a real host (issue #7).

Clients nobody here wrote: `curl -N` for SSE and Python `websockets` for
WebSocket resume. 127.0.0.1 only.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from conftest import BASE_SESSION, require_tool
from sse_ids import event_seq, split_event_id


def recv_json(ws: Any, timeout: float = 10.0) -> tuple[dict[str, Any], int]:
    """Next text frame as (envelope, size in bytes)."""
    raw = ws.recv(timeout=timeout)
    text = raw if isinstance(raw, str) else raw.decode()
    return json.loads(text), len(text.encode())


class CurlEvents:
    """`curl -N URL` in the background, its output parsed into SSE events."""

    def __init__(self, url: str, *extra: str) -> None:
        require_tool("curl", "curl")
        self.proc = subprocess.Popen(["curl", "-sS", "-N", *extra, url], stdout=subprocess.PIPE, text=True, bufsize=1)
        self.events: list[tuple[float, dict[str, str]]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if not line:
                if fields:
                    self.events.append((time.monotonic(), fields))
                fields = {}
            elif line.startswith(":"):
                fields[":"] = line[1:].strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.lstrip(" ")

    def wait(self, predicate: Any, timeout: float = 10.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            while seen < len(self.events):
                event = self.events[seen][1]
                seen += 1
                if predicate(event):
                    return event
            time.sleep(0.02)
        raise AssertionError(f"no matching event in {timeout} s; got {[e for _, e in self.events]}")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=5)


@pytest.fixture
def curl_events() -> Any:
    started: list[CurlEvents] = []

    def start(url: str, *extra: str) -> CurlEvents:
        events = CurlEvents(url, *extra)
        started.append(events)
        return events

    yield start
    for events in started:
        events.close()


def test_resume_after_missed_config_updates_sends_only_those_keys(start_host, write_session, tmp_path):
    big = dict(BASE_SESSION, data={"blob": "x" * 20_000})
    host = start_host(write_session(tmp_path / "s.json", big), "--debounce-ms", "0", stdin=True)
    with ws_connect(host.url) as first:
        full, full_size = recv_json(first)
    seq, epoch = full["seq"], full["epoch"]
    host.send_line({"config": {"speed": 5}})
    host.send_line({"config": {"mode": "square"}})
    host.send_line({"config": {"speed": 6}})
    status = host.wait_for_status(lambda s: s["seq"] >= seq + 3)
    with ws_connect(f"{host.url}?since={seq}&epoch={epoch}") as back:
        resumed, resumed_size = recv_json(back)
    assert resumed == {"type": "config_update", "seq": status["seq"], "epoch": epoch, "payload": {"speed": 6, "mode": "square"}}
    assert resumed_size < full_size / 20
    # The resumed state equals the host's: apply it and compare with a newcomer's full state.
    state = full["payload"]
    state["config"].update(resumed["payload"])
    with ws_connect(host.url) as newcomer:
        current, _ = recv_json(newcomer)
    assert current["payload"] == state


def test_resume_across_a_host_restart_gets_the_full_state(start_host, session_file):
    host = start_host(session_file)
    port = host.port
    with ws_connect(host.url) as ws:
        full, _ = recv_json(ws)
    host.terminate()
    host.wait()
    again = start_host(session_file, "--port", str(port))
    with ws_connect(f"{again.url}?since={full['seq']}&epoch={full['epoch']}") as ws:
        envelope, _ = recv_json(ws)
    assert envelope["type"] == "session_update"
    assert envelope["epoch"] != full["epoch"]
    assert envelope["payload"] == BASE_SESSION


def test_resume_from_a_seq_older_than_the_history_gets_the_full_state(start_host, session_file):
    host = start_host(session_file, "--debounce-ms", "0", "--max-viewer-buffer-kb", "1", stdin=True)
    with ws_connect(host.url) as ws:
        full, _ = recv_json(ws)
    for step in range(100):
        host.send_line({"config": {"speed": step, "pad": "p" * 50}})
    host.wait_for_status(lambda s: s["seq"] >= full["seq"] + 100)
    with ws_connect(f"{host.url}?since={full['seq']}&epoch={full['epoch']}") as ws:
        envelope, _ = recv_json(ws)
    assert envelope["type"] == "session_update"
    assert envelope["payload"]["config"]["speed"] == 99


def test_an_up_to_date_viewer_gets_nothing_until_the_next_change(start_host, session_file):
    host = start_host(session_file, "--debounce-ms", "0", stdin=True)
    with ws_connect(host.url) as ws:
        full, _ = recv_json(ws)
    with ws_connect(f"{host.url}?since={full['seq']}&epoch={full['epoch']}") as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1.0)
        host.send_line({"config": {"speed": 3}})
        envelope, _ = recv_json(ws)
    assert envelope == {"type": "config_update", "seq": full["seq"] + 1, "epoch": full["epoch"], "payload": {"speed": 3}}


def test_curl_receives_the_initial_state_and_later_updates(start_host, session_file, curl_events):
    host = start_host(session_file, "--debounce-ms", "0", stdin=True)
    events = curl_events(f"{host.http_url}/events")
    assert events.wait(lambda e: "retry" in e) == {"retry": "2000"}
    first = events.wait(lambda e: e.get("event") == "session_update")
    assert json.loads(first["data"]) == BASE_SESSION
    host.wait_for_status(lambda s: s["clientCount"] == 1)
    host.send_line({"config": {"speed": 9}})
    update = events.wait(lambda e: e.get("event") == "config_update")
    assert json.loads(update["data"]) == {"speed": 9}
    assert split_event_id(update["id"]) == (split_event_id(first["id"])[0], event_seq(first["id"]) + 1)


def test_curl_resumes_with_last_event_id(start_host, session_file, curl_events):
    host = start_host(session_file, "--debounce-ms", "0", stdin=True)
    first = curl_events(f"{host.http_url}/events")
    initial = first.wait(lambda e: e.get("event") == "session_update")
    first.close()
    host.send_line({"config": {"speed": 11}})
    host.send_line({"config": {"enabled": False}})
    host.wait_for_status(lambda s: s["seq"] >= event_seq(initial["id"]) + 2)
    resumed = curl_events(f"{host.http_url}/events", "-H", f"Last-Event-ID: {initial['id']}")
    event = resumed.wait(lambda e: "event" in e)
    assert event["event"] == "config_update"
    assert json.loads(event["data"]) == {"speed": 11, "enabled": False}
    assert event_seq(event["id"]) == event_seq(initial["id"]) + 2


def test_sse_keepalives_arrive_at_the_configured_interval(start_host, session_file, curl_events):
    host = start_host(session_file, "--sse-keepalive-s", "0.5")
    events = curl_events(f"{host.http_url}/events")
    events.wait(lambda e: e.get("event") == "session_update")
    start = time.monotonic()
    deadline = start + 30
    stamps: list[float] = []
    while len(stamps) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
        stamps = [stamp for stamp, e in events.events if e.get(":") == "keepalive"]
    assert len(stamps) >= 2
    gap = stamps[1] - stamps[0]
    # Not faster than configured; the upper bounds only tell 0.5 s from the 30 s default.
    assert 0.25 <= gap <= 10.0, gap
    assert stamps[0] - start <= 10.0


def _read_sse(port: int, count: int, results: dict[int, dict[str, Any]], index: int, deadline: float) -> None:
    """A minimal SSE reader on a raw socket that applies events to a state."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    buffer = b""
    state: dict[str, Any] | None = None
    last_id = 0
    head_done = False
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
            if not head_done:
                if b"\r\n\r\n" not in buffer:
                    continue
                buffer = buffer.split(b"\r\n\r\n", 1)[1]
                head_done = True
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                fields = dict(line.split(": ", 1) for line in block.decode().split("\n") if ": " in line and not line.startswith(":"))
                if "event" not in fields:
                    continue
                payload = json.loads(fields["data"])
                if fields["event"] == "session_update":
                    state = payload
                elif state is not None:
                    state["config"].update(payload)
                last_id = event_seq(fields["id"])
                results[index] = {"state": state, "id": last_id}
            if results.get(index, {}).get("state", {}) and results[index]["state"]["config"].get("speed") == count:
                break
    finally:
        sock.close()


@pytest.mark.timeout(120)
def test_two_hundred_sse_and_two_hundred_websocket_viewers_all_converge(start_host, session_file):
    host = start_host(session_file, "--debounce-ms", "0", stdin=True)
    final = 30
    deadline = time.monotonic() + 60
    sse_results: dict[int, dict[str, Any]] = {}
    threads = [threading.Thread(target=_read_sse, args=(host.port, final, sse_results, i, deadline), daemon=True) for i in range(200)]
    for thread in threads:
        thread.start()
    sockets = [ws_connect(host.url, open_timeout=30) for _ in range(200)]
    ws_states: list[dict[str, Any]] = [json.loads(ws.recv(timeout=30))["payload"] for ws in sockets]
    host.wait_for_status(lambda s: s["clientCount"] == 400, timeout=30)
    for step in range(1, final + 1):
        host.send_line({"config": {"speed": step}})
    for index, ws in enumerate(sockets):
        while ws_states[index]["config"].get("speed") != final:
            envelope = json.loads(ws.recv(timeout=30))
            if envelope["type"] == "session_update":
                ws_states[index] = envelope["payload"]
            else:
                ws_states[index]["config"].update(envelope["payload"])
        ws.close()
    for thread in threads:
        thread.join(timeout=max(1.0, deadline - time.monotonic()))
    expected = json.loads(json.dumps(BASE_SESSION))
    expected["config"]["speed"] = final
    assert all(state == expected for state in ws_states)
    assert len(sse_results) == 200
    assert all(result["state"] == expected for result in sse_results.values())
