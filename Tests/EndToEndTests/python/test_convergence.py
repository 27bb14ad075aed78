"""Convergence (SPEC §2, issue 12): every viewer ends holding the host's state.

Real host, real viewers (statecast-viewer, curl, Python websockets, raw
sockets), 127.0.0.1 only. Covers the classification rule (a key added,
removed and added again, or a value changing JSON kind goes out as the full
state), positions as (epoch, seq) for WebSocket and SSE resume, SSE ids
carrying the epoch, and SSE liveness (a departed client frees its slot, a
client that stops reading is hung up).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from conftest import BASE_SESSION
from sse_ids import split_event_id
from test_resume_sse import curl_events  # noqa: F401  (the fixture, shared)
from viewer_servers import ViewerProcess, wait_until

# What issue 12 listed: a new key, a value of that key, a key removed and added
# again, a value changing its JSON kind, int → double (not a kind change), null.
CONFIG_STEPS: list[dict[str, Any]] = [
    {"newkey": "x"},
    {"newkey": "y"},
    {"speed": None},
    {"speed": 2},
    {"gain": 1},
    {"gain": "loud"},
    {"gain": 2.5},
    {"enabled": None},
    {"enabled": [1, 2]},
]


@pytest.fixture
def viewer_cli() -> Any:
    started: list[ViewerProcess] = []

    def start(*args: str) -> ViewerProcess:
        viewer = ViewerProcess(*args)
        started.append(viewer)
        return viewer

    yield start
    for viewer in started:
        viewer.kill()


def host_state(host: Any) -> dict[str, Any]:
    """The host's state as a newcomer gets it: a fresh client's first session_update."""
    with ws_connect(host.url, open_timeout=10) as ws:
        envelope = json.loads(ws.recv(timeout=10))
    assert envelope["type"] == "session_update"
    return envelope["payload"]


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def assert_viewer_converges(host: Any, viewer: ViewerProcess, output: Path, marker: str) -> None:
    """Waits until the host holds `marker` as config.mode, then until the viewer's
    --output file and its last json-line both equal the host's state."""
    expected = wait_until(lambda: (s := host_state(host))["config"].get("mode") == marker and s, 15,
                          f"the host to publish mode={marker}")
    wait_until(lambda: read_json(output) == expected, 15,
               f"--output to equal the host's state {expected!r}; it is {read_json(output)!r}; "
               f"stderr: {viewer.stderr_lines()[-5:]}")
    wait_until(lambda: viewer.json_lines() and viewer.json_lines()[-1]["state"] == expected, 15,
               f"the last json-line to be the host's state; it is {viewer.json_lines()[-1:]!r}")


def test_viewer_cli_converges_on_new_removed_and_retyped_keys_from_stdin(start_host, session_file, viewer_cli, tmp_path):
    host = start_host(session_file, "--debounce-ms", "0", stdin=True)
    output = tmp_path / "view.json"
    viewer = viewer_cli(host.url, "--output", str(output), "--format", "json-lines")
    host.wait_for_status(lambda s: s["clientCount"] == 1)
    for step in CONFIG_STEPS:
        host.send_line({"config": step})
    host.send_line({"config": {"mode": "done"}})
    assert_viewer_converges(host, viewer, output, "done")


def test_viewer_cli_converges_on_new_removed_and_retyped_keys_from_the_session_file(
        start_host, session_file, write_session, viewer_cli, tmp_path):
    host = start_host(session_file, "--debounce-ms", "0")
    output = tmp_path / "view.json"
    viewer = viewer_cli(host.url, "--output", str(output), "--format", "json-lines")
    host.wait_for_status(lambda s: s["clientCount"] == 1)
    session = json.loads(json.dumps(BASE_SESSION))
    for step in CONFIG_STEPS:
        before = host.status()["seq"]
        for key, value in step.items():
            if value is None:
                session["config"].pop(key, None)
            else:
                session["config"][key] = value
        write_session(session_file, session)
        host.wait_for_status(lambda s: s["seq"] > before)
    session["config"]["mode"] = "done"
    write_session(session_file, session)
    assert_viewer_converges(host, viewer, output, "done")
    assert read_json(output) == session


def test_an_explicit_schema_reports_a_rejected_key_once_at_the_default_level(start_host, session_file, viewer_cli):
    host = start_host(session_file, "--debounce-ms", "0", stdin=True)
    viewer = viewer_cli(host.url, "--field", "speed:number", "--format", "json-lines")
    host.wait_for_status(lambda s: s["clientCount"] == 1)
    host.send_line({"config": {"gain": 1}})       # a new key: a session_update, applied whole
    host.send_line({"config": {"gain": 2}})       # config_updates the schema rejects
    host.send_line({"config": {"gain": 3}})
    host.send_line({"config": {"speed": 7}})      # marker: accepted, so the rejections came before
    viewer.wait_for_stdout(lambda line: json.loads(line)["state"]["config"].get("speed") == 7, 15, "speed=7 applied")
    warnings = [line for line in viewer.stderr_lines() if '"gain"' in line]
    assert len(warnings) == 1, viewer.stderr_lines()
    assert "add \"gain\" to the schema" in warnings[0]


def test_sse_ids_carry_the_epoch_and_another_runs_position_gets_the_full_state(start_host, session_file, curl_events):
    host = start_host(session_file, "--debounce-ms", "0", stdin=True)
    with ws_connect(host.url) as ws:
        full = json.loads(ws.recv(timeout=10))
    epoch, seq = full["epoch"], full["seq"]
    events = curl_events(f"{host.http_url}/events")
    first = events.wait(lambda e: e.get("event") == "session_update")
    assert split_event_id(first["id"]) == (epoch, seq)
    host.send_line({"config": {"speed": 9}})
    update = events.wait(lambda e: e.get("event") == "config_update")
    assert split_event_id(update["id"]) == (epoch, seq + 1)
    state = host_state(host)

    other = "0000000000000000"
    for url, extra in [
        (f"{host.http_url}/events?lastEventId={seq}&epoch={other}", ()),
        (f"{host.http_url}/events", ("-H", f"Last-Event-ID: {other}:{seq}")),
        (f"{host.http_url}/events", ("-H", f"Last-Event-ID: {seq}")),   # no epoch: may be any run's
    ]:
        resumed = curl_events(url, *extra)
        event = resumed.wait(lambda e: "event" in e)
        assert event["event"] == "session_update", (url, extra, event)
        assert json.loads(event["data"]) == state
        assert split_event_id(event["id"]) == (epoch, seq + 1)

    for url, extra in [
        (f"{host.http_url}/events?lastEventId={seq}&epoch={epoch}", ()),
        (f"{host.http_url}/events", ("-H", f"Last-Event-ID: {first['id']}")),
    ]:
        resumed = curl_events(url, *extra)
        event = resumed.wait(lambda e: "event" in e)
        assert (event["event"], json.loads(event["data"])) == ("config_update", {"speed": 9}), (url, extra)


def test_a_position_from_the_previous_run_gets_the_new_runs_full_state(start_host, write_session, tmp_path, curl_events):
    count = 1500
    first_run = start_host(write_session(tmp_path / "a.json", dict(BASE_SESSION, name="first run")), "--debounce-ms", "0", stdin=True)
    events = curl_events(f"{first_run.http_url}/events")
    events.wait(lambda e: e.get("event") == "session_update")
    first_run.send_lines([{"config": {"speed": i}} for i in range(count)])
    last = events.wait(lambda e: e.get("event") == "config_update" and json.loads(e["data"]) == {"speed": count - 1}, timeout=60)
    old_id = last["id"]
    old_epoch, old_seq = split_event_id(old_id)
    first_run.stop()

    second_run = start_host(write_session(tmp_path / "b.json", dict(BASE_SESSION, name="second run")), "--debounce-ms", "0", stdin=True)
    start_seq = second_run.status()["seq"]
    second_run.send_lines([{"config": {"speed": i}} for i in range(count)])
    second_run.wait_for_status(lambda s: s["seq"] >= start_seq + count, timeout=60)
    latest = second_run.status()["seq"]

    for extra in (("-H", f"Last-Event-ID: {old_id}"), ("-H", f"Last-Event-ID: {old_seq}")):
        resumed = curl_events(f"{second_run.http_url}/events", *extra)
        event = resumed.wait(lambda e: "event" in e)
        assert event["event"] == "session_update", extra
        assert json.loads(event["data"])["name"] == "second run"

    # ?since= without the epoch names no run: the full state, even for a seq this run has in its history.
    for query in (f"since={old_seq}", f"since={latest - 1}", f"since={old_seq}&epoch={old_epoch}"):
        with ws_connect(f"{second_run.url}?{query}") as ws:
            envelope = json.loads(ws.recv(timeout=10))
        assert envelope["type"] == "session_update", query
        assert envelope["payload"]["name"] == "second run"
        assert envelope["epoch"] != old_epoch


def test_a_departed_sse_client_frees_its_slot_at_once(start_host, session_file, measure):
    host = start_host(session_file, "--max-clients", "1")
    curl = subprocess.Popen(["curl", "-sS", "-N", f"{host.http_url}/events"], stdout=subprocess.DEVNULL)
    try:
        host.wait_for_status(lambda s: s["clientCount"] == 1)
    finally:
        curl.terminate()
        curl.wait(10)
    left = time.monotonic()
    # The host is idle: nothing is written to the departed client, so only reading its hang-up frees the slot.
    host.wait_for_status(lambda s: s["clientCount"] == 0, timeout=5)
    measure(f"departed SSE client: clientCount 0 within {time.monotonic() - left:.2f} s (status polled)")
    with ws_connect(host.url) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "session_update"


def test_an_sse_client_that_stops_reading_is_hung_up_and_readers_are_not(start_host, session_file, curl_events, measure):
    host = start_host(session_file, "--debounce-ms", "0", "--ping-interval-s", "1", "--ping-timeout-s", "3",
                      "--sse-keepalive-s", "0.5", stdin=True)
    stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", host.port))
    stalled.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    host.wait_for_status(lambda s: s["clientCount"] == 1)
    reader = curl_events(f"{host.http_url}/events")
    host.wait_for_status(lambda s: s["clientCount"] == 2)

    blob = "x" * 100_000
    step = 0
    started = time.monotonic()
    deadline = started + 30   # the ping timeout is 3 s; ten times that is generous
    while time.monotonic() < deadline and host.status()["clientCount"] == 2:
        host.send_line({"data": {"blob": blob, "step": step}})
        step += 1
        time.sleep(0.05)
    assert host.status()["clientCount"] == 1, "the stalled SSE client was never hung up"
    measure(f"stalled SSE client (ping timeout 3 s) hung up {time.monotonic() - started:.1f} s after updates began "
            f"({step} updates of 100 KB)")
    # The reader kept up and is still served.
    host.send_line({"data": {"blob": "", "step": "last"}})
    reader.wait(lambda e: e.get("event") == "session_update" and json.loads(e["data"])["data"].get("step") == "last", timeout=30)
    assert host.status()["clientCount"] == 1
    # The stalled socket was closed by the host: reading it to the end finds EOF.
    stalled.settimeout(10)
    while stalled.recv(1 << 20):
        pass
    stalled.close()
