"""The command line as websocat and curl users type it (issue 17): `-V` and
`--version` on both CLIs (a clean libwebsockets version, no stray dash), and
the short flags (`-p`, `-t` on the host; `-o`, `-q`, `-t`, `-f`, `-k` on the
viewer), run as real processes with their exact exit codes and first lines.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from conftest import BASE_SESSION, HostProcess, launch, stop_all
from viewer_servers import ViewerProcess, free_port, viewer_binary, wait_until

VERSION_LINE = r"^{program} \d+\.\d+\.\d+ \(libwebsockets \d+\.\d+\.\d+\)$"


def run(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("flag", ["-V", "--version"])
@pytest.mark.parametrize("program", ["statecast-host", "statecast-viewer"])
def test_version_flags_print_one_clean_line_and_exit_0(program, flag, bin_dir):
    result = run(bin_dir / program, flag)
    assert result.returncode == 0, result
    assert re.match(VERSION_LINE.format(program=program), result.stdout.strip()), result.stdout
    assert result.stdout.count("\n") == 1 and result.stderr == "", result


def test_host_short_flags_port_and_token(host_bin, session_file):
    hosts: list[HostProcess] = []
    try:
        host = launch([str(host_bin), "serve", str(session_file), "--bind", "127.0.0.1", "-p", "0", "-t", "sh0rt"], hosts)
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(host.url, open_timeout=10).close()
        assert refused.value.response.status_code == 401
        with ws_connect(host.url + "?token=sh0rt", open_timeout=10) as viewer:
            assert json.loads(viewer.recv(timeout=10))["payload"] == BASE_SESSION
    finally:
        stop_all(hosts)


def test_viewer_short_flags_output_quiet_token(start_host, session_file, tmp_path):
    host = start_host(session_file, "--token", "sh0rt")
    state = tmp_path / "state.json"
    viewer = ViewerProcess(host.url, "-t", "sh0rt", "-o", str(state), "-q")
    try:
        wait_until(lambda: state.exists() and json.loads(state.read_text()) == BASE_SESSION, 20, "-o FILE holding the state")
        # The file holds the applied state, so anything -q failed to hide was printed by now.
        assert viewer.stdout_lines() == [], viewer.stdout_lines()
    finally:
        viewer.kill()


def test_viewer_short_format_flag_prints_json_lines(start_host, session_file):
    host = start_host(session_file)
    viewer = ViewerProcess(host.url, "-f", "json-lines")
    try:
        line = viewer.wait_for_stdout(lambda l: l.startswith("{"), 20, "a JSON line")
        assert json.loads(line)["state"] == BASE_SESSION
    finally:
        viewer.kill()


def test_quiet_and_another_format_contradict(bin_dir):
    result = run(bin_dir / "statecast-viewer", "ws://127.0.0.1:9/", "-q", "-f", "json-lines")
    assert result.returncode == 64, result
    assert "-q/--quiet and --format json-lines contradict each other" in result.stderr.splitlines()[0], result.stderr


def test_viewer_k_is_insecure(bin_dir):
    result = subprocess.run([str(viewer_binary()), "wss://127.0.0.1:9/", "-k", "--once", "--once-timeout-s", "1"],
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.stderr.splitlines()[0].startswith("statecast-viewer: warning: --insecure"), result.stderr


def test_status_local_ip_is_the_bound_address(host_bin, session_file):
    """`--bind 127.0.0.2` (a loopback address no machine prefers as its LAN address)."""
    hosts: list[HostProcess] = []
    try:
        host = launch([str(host_bin), "serve", str(session_file), "--bind", "127.0.0.2", "--port", "0"], hosts)
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                f"http://127.0.0.2:{host.port}/status", timeout=10) as answer:
            status = json.loads(answer.read())
        assert status["localIp"] == "127.0.0.2", status
    finally:
        stop_all(hosts)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_once_ended_by_a_signal_before_any_state_exits_128_plus_the_signal(sig, code):
    """Nothing listens on the port, so no state can come; the viewer's first
    "connecting to" line shows it is running before the signal is sent."""
    viewer = ViewerProcess(f"ws://127.0.0.1:{free_port()}/", "--once", "--once-timeout-s", "60")
    try:
        viewer.wait_for_stderr("connecting to", 20)
        viewer.proc.send_signal(sig)
        assert viewer.proc.wait(20) == code
    finally:
        viewer.kill()


SERVE_GROUPS = {
    "SESSION INPUT": ["--debounce-ms", "--max-wait-ms", "--stdin", "--no-watch"],
    "SERVING": ["--port", "--bind", "--client-poll-ms", "--echo-path"],
    "LIMITS": ["--ping-interval-s", "--ping-timeout-s", "--max-viewer-buffer-kb", "--sse-keepalive-s", "--max-message-kb",
               "--max-clients"],
    "SECURITY": ["--token", "--token-file", "--allow-origin", "--tls-cert", "--tls-key"],
    "LOGGING": ["--log-level", "--log-format"],
    "REDIS": ["--redis", "--channel"],
}


def help_sections(text: str) -> dict[str, list[str]]:
    """The help's sections (an upper-case heading line) and the long flags each lists, in order."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        heading = re.fullmatch(r"([A-Z][A-Z ]+):", line)
        if heading:
            current = sections.setdefault(heading[1], [])
        elif current is not None and (flag := re.match(r"^  (?:-\w, )?(--[a-z0-9-]+)", line)):
            current.append(flag[1])
    return sections


def test_serve_help_groups_its_flags_and_shows_examples_and_exit_codes(host_bin):
    result = run(host_bin, "serve", "--help")
    assert result.returncode == 0, result
    sections = help_sections(result.stdout)
    for title, flags in SERVE_GROUPS.items():
        assert sections.get(title) == flags, (title, sections)
    assert sections["OPTIONS"] == ["--qr", "--print-config", "--version", "--help"], sections
    examples = result.stdout.split("Examples:", 1)[1].split("\n\n", 1)[0]
    assert len(re.findall(r"^  statecast-host serve|^  .*\| statecast-host serve", examples, re.M)) == 3, examples
    assert re.search(r"Exit status: 0 stopped by Ctrl-C/SIGTERM; 1 could not serve .*2 unusable session file.*"
                     r"64 a bad option or value\.", " ".join(result.stdout.split())), result.stdout


def test_relay_help_groups_its_flags_the_same_way(host_bin):
    sections = help_sections(run(host_bin, "relay", "--help").stdout)
    for title, flags in SERVE_GROUPS.items():
        if title != "SESSION INPUT":
            assert sections.get(title) == flags, (title, sections)
