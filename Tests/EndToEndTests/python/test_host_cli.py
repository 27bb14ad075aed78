"""statecast-host as a command: version, start-up errors, signals."""

from __future__ import annotations

import re
import signal
import socket

import pytest

# A session file that is invalid at line 3: `"config"` follows `}` without a comma.
# Column of the offending `"`: 20 (1-based). Parsers differ on whether they
# point at the token, the whitespace before it or the character after the last
# good one, so the tests accept 18...21.
INVALID_SESSION = """{
  "name": "broken",
  "data": {"x": 1} "config": {},
  "metadata": {}
}
"""
INVALID_LINE = 3
INVALID_COLUMNS = range(18, 22)


def location_re(path: object) -> str:
    """FILE:LINE:COLUMN for `path` (as given or resolved) with LINE and COLUMN captured."""
    names = {str(path)}
    try:
        from pathlib import Path

        names.add(str(Path(str(path)).resolve()))
    except OSError:
        pass
    alternatives = "|".join(re.escape(n) for n in sorted(names))
    return rf"(?:{alternatives}):(\d+):(\d+)"


def test_version_names_statecast_and_libwebsockets(run_host):
    result = run_host("--version")
    assert result.returncode == 0, result.stderr
    first = result.stdout.strip().splitlines()[0]
    assert re.fullmatch(r"statecast-host \d+\.\d+\.\d+\S* \(libwebsockets 4\.\d+\.\d+[^)]*\)", first), first


def test_invalid_session_file_at_start_exits_2_naming_file_line_column(run_host, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(INVALID_SESSION)
    result = run_host("serve", path, "--bind", "127.0.0.1", "--port", "0")
    assert result.returncode == 2, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    m = re.search(location_re(path), result.stderr)
    assert m, f"stderr does not name {path}:LINE:COLUMN:\n{result.stderr}"
    assert int(m[1]) == INVALID_LINE
    assert int(m[2]) in INVALID_COLUMNS, f"column {m[2]}"
    assert "Serving" not in result.stdout
    # One clear sentence, no stack trace or crash report.
    assert len(result.stderr.strip().splitlines()) <= 3, result.stderr
    assert "Fatal error" not in result.stderr


def test_missing_session_file_at_start_fails_naming_the_file(run_host, tmp_path):
    path = tmp_path / "does-not-exist.json"
    result = run_host("serve", path, "--bind", "127.0.0.1", "--port", "0")
    assert result.returncode != 0
    assert str(path) in result.stderr or path.name in result.stderr, result.stderr
    assert "Serving" not in result.stdout


def test_busy_port_fails_naming_port_and_flag(start_host, run_host, session_file):
    first = start_host(session_file, "--no-watch")
    result = run_host("serve", session_file, "--no-watch", "--bind", "127.0.0.1", "--port", str(first.port))
    assert result.returncode != 0, f"second host started on busy port {first.port}:\n{result.stdout}"
    assert str(first.port) in result.stderr, result.stderr
    assert "--port" in result.stderr, result.stderr
    assert "Fatal error" not in result.stderr
    # The first host is unaffected.
    assert first.status()["running"] is True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_closes_viewers_with_1001_exits_0_and_frees_port(start_host, connect, session_file, sig):
    host = start_host(session_file, "--no-watch")
    viewers = [connect(host) for _ in range(3)]
    for v in viewers:
        assert v.next().type == "session_update"

    host.send_signal(sig)

    for v in viewers:
        assert v.wait_closed(timeout=10) == 1001
    assert host.wait(timeout=10) == 0, host.describe()

    # The port is released: a new listener can bind it (SO_REUSEADDR only
    # ignores TIME_WAIT leftovers of closed connections, not a live listener).
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", host.port))
        s.listen()
