"""The viewer against a hostile server: it survives everything and keeps only
what the whitelist allows (issue #4)."""

import json

import pytest

from viewer_servers import HOSTILE_FINAL_CONFIG, ServerThread, hostile_host, wait_until


def test_hostile_messages_leave_only_whitelisted_state(viewers, tmp_path):
    output = tmp_path / "state.json"
    with ServerThread(hostile_host()) as server:
        viewer = viewers(server.url, "--format", "json-lines", "--output", str(output), "--no-jitter",
                         "--log-level", "debug")
        viewer.wait_for_stdout(lambda line: '"seq":13' in line, 15, "the marker change (seq 13)")

        # The state file holds exactly the whitelisted state.
        state = wait_until(lambda: output.exists() and json.loads(output.read_text()), 5, "the output file")
        wait_until(lambda: json.loads(output.read_text())["config"] == HOSTILE_FINAL_CONFIG, 5,
                   f"the final config in {output}")
        state = json.loads(output.read_text())
        assert state == {"name": "hostile", "data": {}, "config": HOSTILE_FINAL_CONFIG, "metadata": {}}

        # Only the valid, whitelisted changes were reported, in order.
        lines = viewer.json_lines()
        assert [line["seq"] for line in lines] == [1, 2, 10, 11, 12, 13]
        assert [line["changed"] for line in lines] == [
            ["name", "data", "config", "metadata"], ["speed"], ["enabled", "speed"], ["extra"], ["extra"], ["mode"],
        ]
        for line in lines:
            assert set(line["state"]["config"]) <= set(HOSTILE_FINAL_CONFIG)
        assert lines[-1]["state"] == state

        # Still alive and connected after all of it.
        assert viewer.proc.poll() is None
        assert any("connected to" in line for line in viewer.stderr_lines())
        viewer.interrupt()
        assert viewer.wait(10) == 0
    errors = viewer.stderr_lines()
    assert not any("Fatal" in line or "fatal" in line for line in errors)
    # Every hostile message was counted where it belongs.
    summary = next(line for line in errors if "messages:" in line)
    assert ("messages: 25 received, 6 applied, 19 dropped (binary 2, malformed 10, unknown type 2, "
            "config_update before state 1, nothing accepted 4, oversized 0); config keys rejected: 7") in summary, summary
    # Drops are logged at debug level.
    assert sum("message dropped" in line for line in errors) == 19
    assert sum("rejected:" in line for line in errors) == 7
