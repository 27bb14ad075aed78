"""Options from the environment, `serve --print-config`, and `--log-format
json` (issue 17), with real `statecast-host` processes: exit codes, first
lines, and what reaches stderr.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from conftest import HostProcess, launch, stop_all


def clean_environment(**extra: str) -> dict[str, str]:
    """The test's environment without STATECAST_* (the test runner sets STATECAST_BIN_DIR)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATECAST_")}
    env.update(extra)
    return env


def print_config(host_bin: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(host_bin), *args, "--print-config"], capture_output=True, text=True, timeout=30,
                          env=clean_environment(**env), stdin=subprocess.DEVNULL)


def settings(output: str) -> dict[str, tuple[str, str]]:
    found = {}
    for line in output.splitlines():
        match = re.match(r"^(\S+)\s+= (.*)  \((.*)\)$", line)
        assert match, f"not a setting line: {line!r}"
        found[match[1]] = (match[2], match[3])
    return found


def test_print_config_shows_defaults_environment_and_command_line_with_precedence(host_bin):
    result = print_config(host_bin, "serve", "--debounce-ms", "0",
                          STATECAST_PORT="9000", STATECAST_DEBOUNCE_MS="5000", STATECAST_STDIN="1")
    assert result.returncode == 0, result
    shown = settings(result.stdout)
    assert shown["port"] == ("9000", "STATECAST_PORT")
    assert shown["debounce-ms"] == ("0", "command line")  # the command line wins
    assert shown["stdin"] == ("on", "STATECAST_STDIN")
    assert shown["bind"] == ("0.0.0.0", "default")


def test_print_config_lists_every_option_of_serve_and_relay(host_bin):
    for command in ("serve", "relay"):
        help_text = subprocess.run([str(host_bin), command, "--help"], capture_output=True, text=True, timeout=30).stdout
        options = set(re.findall(r"--([a-z0-9-]+)", help_text)) - {"help", "version", "print-config", "generate-completion-script"}
        shown = settings(print_config(host_bin, command).stdout)
        assert options <= set(shown), f"{command}: not in --print-config: {sorted(options - set(shown))}"


def test_print_config_never_shows_the_token(host_bin, tmp_path):
    from_env = print_config(host_bin, "serve", STATECAST_TOKEN="hunter2-env")
    from_flag = print_config(host_bin, "serve", "--token", "hunter2-flag")
    for result in (from_env, from_flag):
        assert result.returncode == 0, result
        assert "hunter2" not in result.stdout + result.stderr
    assert settings(from_env.stdout)["token"][1] == "STATECAST_TOKEN"
    assert settings(from_flag.stdout)["token"] == ("(set)", "command line")


def test_a_host_configured_only_from_the_environment_serves(host_bin, session_file):
    hosts: list[HostProcess] = []
    env = clean_environment(STATECAST_PORT="0", STATECAST_BIND="127.0.0.1", STATECAST_TOKEN="from-env")
    old = os.environ.copy()
    try:
        os.environ.clear()
        os.environ.update(env)
        host = launch([str(host_bin), "serve", str(session_file)], hosts)
    finally:
        os.environ.clear()
        os.environ.update(old)
    try:
        # STATECAST_BIND and STATECAST_PORT took effect: not the default 0.0.0.0:9876.
        assert host.port != 9876 and any(re.match(r'^Serving ".*" on 127\.0\.0\.1:\d+$', l) for l in host.lines), host.lines
        with pytest.raises(InvalidStatus):
            ws_connect(host.url, open_timeout=10).close()
        with ws_connect(host.url + "?token=from-env", open_timeout=10) as viewer:
            assert json.loads(viewer.recv(timeout=10))["type"] == "session_update"
    finally:
        stop_all(hosts)


def test_a_bad_value_from_the_environment_exits_64(host_bin):
    result = subprocess.run([str(host_bin), "serve"], capture_output=True, text=True, timeout=30,
                            env=clean_environment(STATECAST_PORT="nine"), stdin=subprocess.DEVNULL)
    assert result.returncode == 64, result
    assert "nine" in result.stderr and "--port" in result.stderr, result.stderr


def run_logged_host(host_bin: Path, session_file: Path, level: str) -> tuple[list[str], HostProcess]:
    hosts: list[HostProcess] = []
    host = launch([str(host_bin), "serve", str(session_file), "--bind", "127.0.0.1", "--port", "0",
                   "--log-format", "json", "--log-level", level, "--token", "s3cr3t-value"], hosts)
    try:
        with pytest.raises(InvalidStatus):
            ws_connect(host.url + "?token=wrong-guess", open_timeout=10).close()
        with ws_connect(host.url + "?token=s3cr3t-value", open_timeout=10) as viewer:
            viewer.recv(timeout=10)
    finally:
        stop_all(hosts)
    return host.stderr_lines, host


@pytest.mark.parametrize("level", ["debug", "trace"])
def test_json_logs_are_one_object_per_line_without_the_token(level, host_bin, session_file):
    lines, _ = run_logged_host(host_bin, session_file, level)
    assert lines, "the host logged nothing at debug"
    records = []
    for line in lines:
        record = json.loads(line)  # every line is one JSON object
        assert {"time", "level", "label", "message"} <= set(record), record
        records.append(record)
    text = "\n".join(lines)
    assert "s3cr3t-value" not in text and "wrong-guess" not in text, text
    assert any(r["message"] == "refused an upgrade" and r.get("status") == "401" for r in records), text
    lws = [r for r in records if "lws-level" in r]
    if level == "trace":
        assert lws, "libwebsockets' own lines should show at trace"
    else:
        assert not lws, f"libwebsockets' chatter below trace: {lws[:3]}"
