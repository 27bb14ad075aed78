"""The viewer reconnects after a close 1001, a dropped TCP connection, a
refused connection and a host that stops answering pings (issue #4).

The exact schedule (2 s, ×1.5, capped at 15 s) is pinned on an injected clock in
ReconnectBackoffTests; here the delays the viewer announces must be the
schedule's, and what the clock shows is only checked from below: a loaded
machine makes every step later, never earlier."""

import json
import time

import pytest

from viewer_servers import (INTEROP_STATE, ServerThread, SilentHost, dropping_host, free_port,
                            keep_open_host, resuming_host, session, wait_until)


def test_reconnects_after_close_1001_and_a_dropped_connection(viewers, tmp_path):
    states = [session(f"run-{i}", config={"run": i}) for i in range(3)]
    output = tmp_path / "state.json"
    with ServerThread(dropping_host(states)) as server:
        viewer = viewers(server.url, "--format", "json-lines", "--output", str(output), "--no-jitter")
        wait_until(lambda: len(server.snapshot()) >= 3, 20, "three connections")
        wait_until(lambda: output.exists() and json.loads(output.read_text())["name"] == "run-2", 5,
                   "the third host state in the output file")

        lines = viewer.json_lines()
        assert [line["state"]["name"] for line in lines if line["type"] == "session_update"] == ["run-0", "run-1", "run-2"]
        errors = viewer.stderr_lines()
        assert any("code 1001" in line and "reconnecting in 2 s (attempt 1)" in line for line in errors), errors
        assert any("no close frame" in line and "reconnecting in 2 s (attempt 1)" in line for line in errors), errors

        # Each reconnect came after ~2 s: the schedule restarts after every successful connection.
        connections = server.snapshot()
        for before, after in zip(connections, connections[1:]):
            gap = after.opened_at - before.closed_at
            assert gap > 1.7, f"reconnected {gap:.2f} s after the close, before the 2 s delay"
        viewer.interrupt()
        assert viewer.wait(10) == 0


def test_reconnect_resumes_with_since_and_epoch(viewers, tmp_path):
    output = tmp_path / "state.json"
    state = session("resume", config={"speed": 1, "mode": "a"})
    with ServerThread(resuming_host(state, "9f2c0b1e77a4d310")) as server:
        viewer = viewers(server.url + "/?token=t", "--format", "json-lines", "--output", str(output), "--no-jitter")
        viewer.wait_for_stdout(lambda line: '"seq":102' in line, 10, "the resumed change (seq 102)")
        paths = [c.received[0][1] for c in server.snapshot()]
        assert paths == ["/?token=t", "/?token=t&since=101&epoch=9f2c0b1e77a4d310"]
        assert [(line["seq"], line["type"]) for line in viewer.json_lines()] == [
            (100, "session_update"), (101, "config_update"), (102, "config_update")]
        wait_until(lambda: output.exists() and json.loads(output.read_text())["config"] == {"speed": 3, "mode": "a"},
                   5, "the resumed state in the output file")
        viewer.interrupt()
        assert viewer.wait(10) == 0


def test_refused_connections_follow_the_schedule_until_the_host_appears(viewers):
    port = free_port()
    viewer = viewers(f"ws://127.0.0.1:{port}", "--format", "json-lines", "--no-jitter")
    viewer.wait_for_stderr("reconnecting in 2 s (attempt 1)", 20)
    viewer.wait_for_stderr("reconnecting in 3 s (attempt 2)", 20)
    timed = viewer.stderr_timed()
    first = next(t for t, line in timed if "attempt 1" in line)
    second = next(t for t, line in timed if "attempt 2" in line)
    assert second - first > 1.7, f"second failure {second - first:.2f} s after the first, before the 2 s delay"
    assert "refused" in next(line for _, line in timed if "attempt 1" in line)

    with ServerThread(keep_open_host(INTEROP_STATE), port=port) as server:
        # The third attempt comes 3 s after the second failure.
        viewer.wait_for_stdout(lambda line: '"session_update"' in line, 20, "the state after the host came up")
        connected = next(t for t, line in viewer.stderr_timed() if "connected to" in line)
        assert connected - second > 2.5, f"connected {connected - second:.2f} s after the second failure, before 3 s"
        assert json.loads(viewer.stdout_lines()[0])["state"] == INTEROP_STATE
        viewer.interrupt()
        assert viewer.wait(10) == 0
        assert server.snapshot()[0].close_code == 1000


def test_a_silent_host_is_noticed_by_the_ping_timeout(viewers):
    with SilentHost(INTEROP_STATE) as host:
        viewer = viewers(host.url, "--format", "json-lines", "--no-jitter", "--ping-interval-s", "1",
                         "--ping-timeout-s", "2")
        viewer.wait_for_stdout(lambda line: '"session_update"' in line, 10, "the state")
        connected = next(t for t, line in viewer.stderr_timed() if "connected to" in line)
        lost = viewer.wait_for_stderr("stopped answering pings", 20)
        noticed = next(t for t, line in viewer.stderr_timed() if "stopped answering pings" in line)
        # Not before the 2 s timeout; well before the 60 s default it would fall back to.
        assert 1.5 < noticed - connected < 15, f"noticed after {noticed - connected:.2f} s (timeout 2 s)"
        assert "reconnecting in 2 s (attempt 1)" in lost[0]
        # It comes back (and the silent host accepts it again).
        wait_until(lambda: len(host.accepted) >= 2, 20, "a reconnect")
        viewer.interrupt()
        assert viewer.wait(10) == 0
