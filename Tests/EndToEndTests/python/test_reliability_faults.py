"""Reliability under faults (issue #6): a viewer whose network vanishes without
a FIN, and a session file rewritten 1 000 times in 10 s, sometimes invalid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Viewer
from security_support import wait_until
from viewer_servers import ViewerProcess

PING = ("--ping-interval-s", "1", "--ping-timeout-s", "2")

# A Python client in its own process: completes the handshake, then reads and
# answers pings until it is stopped.
RAW_CLIENT = """
import sys
sys.path.insert(0, sys.argv[2])
from raw_ws import RawWebSocket
ws = RawWebSocket("127.0.0.1", int(sys.argv[1]))
print("ready", flush=True)
while True:
    ws.recv(timeout=3600)
"""


def client_count(host) -> int:
    return host.status()["clientCount"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("client", ["statecast-viewer", "python-raw-client"])
def test_viewer_vanishing_without_fin_is_hung_up_within_the_ping_timeout(
    start_host, connect, session_file, client, measure
):
    host = start_host(session_file, "--no-watch", "--debounce-ms", "0", "--client-poll-ms", "100", *PING, stdin=True)
    healthy = connect(host)  # websockets answers the host's pings by itself
    healthy.next()
    if client == "statecast-viewer":
        process = ViewerProcess(host.url, "--format", "json-lines", "--no-jitter")
        proc = process.proc
    else:
        proc = subprocess.Popen([sys.executable, "-c", RAW_CLIENT, str(host.port), str(Path(__file__).parent)],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    try:
        host.wait_for_status(lambda s: s["clientCount"] == 2)
        time.sleep(2.5)  # both answer the host's pings: still connected after longer than the timeout
        assert client_count(host) == 2

        proc.send_signal(signal.SIGSTOP)  # the kernel keeps the socket open: no FIN, no RST, no pong
        stopped = time.monotonic()
        host.wait_for_status(lambda s: s["clientCount"] == 1, timeout=30, interval=0.02)
        took = time.monotonic() - stopped
        measure(f"{client}: stopped with SIGSTOP, hung up after {took:.2f} s (ping interval 1 s, timeout 2 s)")
        # Silent for 2 s (it may have answered a ping up to 1 s before the stop). The upper
        # bound only tells the 2 s timeout from the 60 s default: load makes it later, not earlier.
        assert 0.9 <= took <= 15, f"hung up {took:.2f} s after the client stopped (timeout 2 s)"

        # Updates still reach the healthy viewer.
        host.send_line({"config": {"speed": 5}})
        assert healthy.next(timeout=5).payload == {"speed": 5}
        assert not healthy.closed.is_set()

        if client == "statecast-viewer":
            # Woken up, the viewer finds its connection gone and comes back.
            proc.send_signal(signal.SIGCONT)
            host.wait_for_status(lambda s: s["clientCount"] == 2, timeout=15)
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait(10)


# ---------------------------------------------------------------------------
# The session file rewritten 1 000 times in 10 s
# ---------------------------------------------------------------------------

INVALID_CONTENTS: list[bytes] = [
    b"",
    b"{",
    b'{"name": "half", "data": {"a": [1, 2',
    b"[1, 2, 3]\n",
    b'{"name": 5, "data": {}, "config": {}, "metadata": {}}\n',
    b'{"name": "x", "data": {}, "config": [], "metadata": {}}\n',
    b'{"name": "x", "data": {}, "config": {}, "metadata": {}} trailing\n',
    b'{"name": "x", "data": NaN, "config": {}, "metadata": {}}\n',
    b'{"name": "\xff\xfe", "data": {}, "config": {}, "metadata": {}}\n',
    b'{"name": "x", "data": ' + b"[" * 600 + b"]" * 600 + b', "config": {}, "metadata": {}}\n',
    b"\x00\x01\x02 binary",
]


def valid_session(i: int) -> dict[str, Any]:
    # data changes every 5th version (a session_update), config every time (a config_update).
    return {"name": "rewrite", "data": {"block": i // 5, "pad": "p" * (i % 13)}, "config": {"i": i, "even": i % 2 == 0},
            "metadata": {"by": "test"}}


def write_rename(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_in_place(path: Path, data: bytes) -> None:
    # Truncate, then two writes: a reader in between sees a partial file.
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        f.write(data[len(data) // 2 :])


def is_session(value: Any) -> bool:
    return (isinstance(value, dict) and set(value) == {"name", "data", "config", "metadata"}
            and isinstance(value["name"], str) and isinstance(value["config"], dict)
            and isinstance(value["metadata"], dict))


@pytest.mark.timeout(90)
def test_session_file_rewritten_1000_times_in_10_s_never_crashes_nor_publishes_invalid_state(
    start_host, connect, real_viewer, tmp_path, measure
):
    path = tmp_path / "session.json"
    path.write_text(json.dumps(valid_session(0)))
    host = start_host(path, "--debounce-ms", "0", "--client-poll-ms", "100")
    viewers = [connect(host), connect(host)]
    for v in viewers:
        assert v.next().payload == valid_session(0)
    ours = real_viewer(host)

    valid_texts: dict[str, dict[str, Any]] = {}
    writes, invalid_writes, last_valid = 1000, 0, valid_session(0)
    started = time.monotonic()
    for n in range(writes):
        if n % 7 == 3:
            data = INVALID_CONTENTS[(n // 7) % len(INVALID_CONTENTS)]
            invalid_writes += 1
        else:
            last_valid = valid_session(n)
            data = json.dumps(last_valid, indent=1 if n % 2 else None).encode()
            valid_texts[json.dumps(last_valid, sort_keys=True)] = last_valid
        (write_rename if n % 3 else write_in_place)(path, data)
        # 1 000 writes spread over 10 s.
        pause = started + (n + 1) * 0.01 - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        assert host.poll() is None, f"host died after write {n}"
    elapsed = time.monotonic() - started
    assert n == writes - 1 and not (n % 7 == 3), "the storm must end with a valid write"

    # The host ends serving the last valid content.
    for v in viewers:
        wait_until(lambda: v.state == last_valid, 15, "the viewer to hold the last valid content")
    assert connect(host).next().payload == last_valid
    assert ours.wait_converged() == last_valid  # statecast-viewer too

    # Every envelope decoded to a valid session or config change, and every state a
    # viewer held was one of the valid files written: nothing partial, nothing invalid.
    initial = json.dumps(valid_session(0), sort_keys=True)
    for k, v in enumerate(viewers):
        assert v.error is None and not v.closed.is_set()
        state = None
        seqs = []
        for env in v.received:
            seqs.append(env.seq)
            assert env.type in ("session_update", "config_update"), env.raw[:200]
            if env.type == "session_update":
                assert is_session(env.payload), env.raw[:200]
            else:
                assert isinstance(env.payload, dict) and env.payload, env.raw[:200]
            state = Viewer.apply(state, env.body)
            key = json.dumps(state, sort_keys=True)
            assert key == initial or key in valid_texts, f"viewer {k} held a state never written as a valid file: {key[:300]}"
        assert seqs == sorted(set(seqs))
    warnings = [line for line in host.stderr_lines if "still serving the last good state" in line]
    measure(f"{writes} rewrites ({invalid_writes} invalid; 1/3 in place, 2/3 by rename) in {elapsed:.1f} s: "
            f"viewers got {[len(v.received) for v in viewers]} envelopes, host warned {len(warnings)} times")
    assert warnings, "the host never warned about an invalid file"
    assert all(str(path) in line and "warning:" in line for line in warnings)

    # An invalid file after that changes nothing.
    for v in viewers:
        v.pending()  # drop what the storm queued; only new envelopes count below
    since = len(host.stderr_lines)
    write_in_place(path, b'{"name": "broken"')
    host.wait_for_stderr("still serving the last good state", since=since)
    assert connect(host).next().payload == last_valid
    # The marker: the next valid save is the next thing each viewer gets.
    marker = {**last_valid, "metadata": {"marker": True}}
    write_rename(path, json.dumps(marker).encode())
    for v in viewers:
        env = v.next(timeout=15)
        assert env.type == "session_update" and env.payload == marker, env.raw[:300]
    assert host.poll() is None
