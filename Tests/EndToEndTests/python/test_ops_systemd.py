"""The systemd units in deploy/ (issue 17): `systemd-analyze verify` accepts
them without a single warning, `systemd-analyze security --offline` rates them
hardened, and the host unit's ExecStart= really starts a host that enforces the
token it reads from its credential file.

The units name /usr/local/bin/statecast-host (what `scripts/install` puts
there); the tests point a copy at the built binary.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from conftest import BASE_SESSION, REPO_ROOT, HostProcess, launch, stop_all
from viewer_servers import free_port

DEPLOY = REPO_ROOT / "deploy"
UNITS = ["statecast-host.service", "statecast-relay@.service"]
INSTALLED_BIN = "/usr/local/bin/statecast-host"
# systemd-analyze security: 0 is fully locked down, 10 wide open; "OK" is below 4.
MAX_EXPOSURE = 2.0


def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.fail("systemd-analyze is not installed; scripts/setup installs it (apt-get install systemd)")
    return tool


def unit_copies(tmp_path: Path, binary: Path) -> Path:
    """The units with ExecStart= pointing at `binary` (verify checks that it exists)."""
    folder = tmp_path / "units"
    folder.mkdir()
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        assert INSTALLED_BIN in text, f"{name} should run {INSTALLED_BIN}"
        (folder / name).write_text(text.replace(INSTALLED_BIN, str(binary)))
    return folder


def verify(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    # --man=no: the man pages exist only once installed (test_ops_install checks them with it).
    return subprocess.run([systemd_analyze(), "verify", "--man=no", *map(str, paths)],
                          capture_output=True, text=True, timeout=60)


def test_both_units_verify_without_a_warning(tmp_path, host_bin):
    folder = unit_copies(tmp_path, host_bin)
    result = verify([folder / "statecast-host.service", folder / "statecast-relay@show.service"])
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_verify_catches_a_misspelt_setting(tmp_path, host_bin):
    """The check above can fail: a typo in a unit is reported on stderr."""
    folder = unit_copies(tmp_path, host_bin)
    unit = folder / "statecast-host.service"
    unit.write_text(unit.read_text().replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
    result = verify([unit])
    assert "Unknown key 'NoNewPrivilege'" in result.stderr, result.stderr


@pytest.mark.parametrize("name", UNITS)
def test_units_are_hardened(name, tmp_path, host_bin):
    folder = unit_copies(tmp_path, host_bin)
    text = (folder / name).read_text()
    for setting in ("DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadOnlyPaths=/etc/statecast",
                    "CapabilityBoundingSet=\n"):
        assert setting in text, f"{name} lacks {setting.strip()}"
    result = subprocess.run([systemd_analyze(), "security", "--offline=yes", f"--threshold={int(MAX_EXPOSURE * 10)}",
                             str(folder / name)], capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match[1]) <= MAX_EXPOSURE, result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


def exec_start(unit: Path, substitutions: dict[str, str]) -> list[str]:
    """The unit's ExecStart= as argv, with systemd specifiers and ${VARS} replaced."""
    line = next(l for l in unit.read_text().splitlines() if l.startswith("ExecStart="))
    command = line.removeprefix("ExecStart=")
    for key, value in substitutions.items():
        command = command.replace(key, value)
    assert "%" not in command and "$" not in command, f"unsubstituted specifier in {command}"
    return shlex.split(command)


def test_the_host_units_command_line_serves_and_enforces_the_credential_token(tmp_path, host_bin):
    folder = unit_copies(tmp_path, host_bin)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "token").write_text("unit-secret\n")
    session = tmp_path / "session.json"
    session.write_text(json.dumps(BASE_SESSION))
    argv = exec_start(folder / "statecast-host.service", {"%d": str(credentials), "/etc/statecast/session.json": str(session)})
    hosts: list[HostProcess] = []
    try:
        host = launch([*argv, "--bind", "127.0.0.1", "--port", "0"], hosts)
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(host.url, open_timeout=10).close()
        assert refused.value.response.status_code == 401
        with ws_connect(host.url + "?token=unit-secret", open_timeout=10) as viewer:
            first = json.loads(viewer.recv(timeout=10))
        assert first["payload"]["name"] == BASE_SESSION["name"]
    finally:
        stop_all(hosts)


def test_the_relay_template_runs_its_instance_channel(tmp_path, host_bin):
    """`%i` is the channel and ${REDIS}/${PORT} come from the env file: the command
    line parses, and with Redis away the relay exits 1 (so Restart=on-failure retries)
    naming the URL."""
    folder = unit_copies(tmp_path, host_bin)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "token").write_text("unit-secret\n")
    unused = f"redis://127.0.0.1:{free_port()}"
    argv = exec_start(folder / "statecast-relay@.service",
                      {"%d": str(credentials), "%i": "show", "${REDIS}": unused, "${PORT}": "0"})
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    # Nothing listens there: exit 1 (retried by Restart=on-failure), naming the URL.
    assert result.returncode == 1, result
    assert unused in result.stderr, result.stderr
