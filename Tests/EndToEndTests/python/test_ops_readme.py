"""README's "Try it" commands, run in order as a new user would (issue 17):
`scripts/demo` (which builds both CLIs), then each command of the block in a
second "terminal" while the demo serves. Only the port is changed (a free one
instead of 9876, passed to `scripts/demo` as its README says extra arguments
are), and the build configuration: the demo builds in debug mode
(STATECAST_DEMO_CONFIGURATION=debug, reusing scripts/test's debug build in
seconds instead of a ten-minute release build), so `.build/release/` in the
commands reads `.build/debug/`. A command that keeps running (a live view) is
stopped after its first output.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import REPO_ROOT, SERVING_RE
from viewer_servers import free_port, wait_until

DEMO_TIMEOUT = 600  # the debug build is normally there already; building it from scratch takes minutes


def try_it_commands() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Try it", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README's Try it section has no ```sh block"
    return [line.split("  #", 1)[0].strip() for line in block[1].splitlines() if line.strip()]


def first_output(command: str, timeout: float = 20) -> tuple[int | None, str]:
    """Runs `command` in the repo with bash; returns (exit code or None if still running, stdout)
    once it printed a line or exited."""
    proc = subprocess.Popen(["bash", "-c", command], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        code = proc.poll()
        if code is None and not line:
            code = proc.wait(timeout)
        return code, line
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)


@pytest.mark.timeout(DEMO_TIMEOUT + 120)
def test_every_try_it_command_works_in_order():
    commands = try_it_commands()
    assert commands[0] == "scripts/demo", commands
    port = free_port()
    demo = subprocess.Popen(["bash", "-c", f"scripts/demo --port {port}"], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, start_new_session=True,
                            env={**os.environ, "STATECAST_DEMO_CONFIGURATION": "debug"})
    lines: list[str] = []
    try:
        deadline = time.monotonic() + DEMO_TIMEOUT
        while time.monotonic() < deadline:
            line = demo.stdout.readline() if demo.stdout else ""
            if not line:
                pytest.fail("scripts/demo ended before serving:\n" + "".join(lines[-40:]))
            lines.append(line)
            if SERVING_RE.match(line.strip()):
                break
        assert any("statecast-viewer ws://localhost:PORT/" in l for l in lines), lines[-10:]
        for command in commands[1:]:
            code, output = first_output(command.replace("9876", str(port)).replace(".build/release/", ".build/debug/"))
            assert code in (None, 0), f"{command!r} exited {code}: {output}"
            assert output.strip(), f"{command!r} printed nothing"
            if "statecast-viewer" in command:
                assert json.loads(output)["state"]["name"], output
            elif "websockets" in command:
                assert "Connected to" in output or "session_update" in output, output
            elif "/status" in command:
                status = json.loads(output)
                assert status["running"] is True and status["port"] == port, status
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)
            demo.wait(30)
