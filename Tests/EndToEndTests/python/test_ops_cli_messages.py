"""What the viewer CLI does when the command line is almost right (issue 17):
a refused or missing token names where the token came from; the http://
address a host prints for browsers, and a bare HOST:PORT, work and the viewer
says which ws:// URL it used; a host name that does not resolve is told once;
--once honours --format; --output is checked before connecting. Real host and
viewer processes, exact exit codes and stderr lines.
"""

from __future__ import annotations

import json

import pytest

from security_support import cli_viewer, env_without_token
from viewer_servers import ViewerProcess, free_port

TOKEN = "ops2-right-token"
WRONG = "ops2-wrong-token"


def test_viewer_without_a_token_says_how_to_give_one(start_host, session_file):
    host = start_host(session_file, "--no-watch", "--token", TOKEN)
    result = cli_viewer(host.url, "--once", env=env_without_token())
    assert result.returncode == 3, result
    assert result.stderr.splitlines()[-1] == (
        "statecast-viewer: the host needs a token (HTTP 401): pass --token, --token-file or STATECAST_TOKEN"), result.stderr


@pytest.mark.parametrize("source", ["flag", "file", "env", "url"])
def test_a_refused_token_names_where_it_came_from(start_host, session_file, tmp_path, source):
    host = start_host(session_file, "--no-watch", "--token", TOKEN)
    env = env_without_token()
    token_file = tmp_path / "token"
    token_file.write_text(WRONG + "\n")
    url, args, named = {
        "flag": (host.url, ["--token", WRONG], "--token"),
        "file": (host.url, ["--token-file", str(token_file)], f"the token file {token_file} (--token-file)"),
        "env": (host.url, [], "STATECAST_TOKEN"),
        "url": (f"{host.url}?token={WRONG}", [], "the URL's ?token="),
    }[source]
    if source == "env":
        env["STATECAST_TOKEN"] = WRONG
    result = cli_viewer(url, *args, "--once", env=env)
    assert result.returncode == 3, result
    assert result.stderr.splitlines()[-1] == (
        f"statecast-viewer: the host refused the token (HTTP 401); it came from {named}: "
        "check it against the one the host prints"), result.stderr
    assert WRONG not in result.stderr


# --- the URL a user has at hand ---------------------------------------------------

def test_the_browser_address_and_a_bare_host_port_work_and_say_which_url_was_used(start_host, session_file, session):
    host = start_host(session_file, "--no-watch")
    for given in (f"http://127.0.0.1:{host.port}/", f"127.0.0.1:{host.port}"):
        result = cli_viewer(given, "--once", env=env_without_token())
        assert result.returncode == 0, result
        assert json.loads(result.stdout) == session
        assert result.stderr.splitlines()[0] == f"statecast-viewer: using ws://127.0.0.1:{host.port}/ for {given}", result.stderr


def test_a_url_without_a_port_says_it_used_80_and_that_hosts_use_9876():
    result = cli_viewer("ws://127.0.0.1", "--once", "--once-timeout-s", "1", env=env_without_token())
    assert result.returncode == 1, result
    assert result.stderr.splitlines()[0] == ("statecast-viewer: using ws://127.0.0.1:80/: the URL has no port, so 80; "
                                             "StateCast hosts listen on 9876 unless started with --port"), result.stderr


def test_a_host_name_that_does_not_resolve_is_told_once_then_retried():
    viewer = ViewerProcess(f"ws://locahost:{free_port()}/", "--format", "quiet", "--no-jitter")
    try:
        viewer.wait_for_stderr("reconnecting in 3 s (attempt 2)", 30)
        lines = viewer.stderr_lines()
        told = [line for line in lines if "could not resolve" in line]
        assert told == ["statecast-viewer: could not resolve locahost; check the host name in the URL; "
                        "reconnecting in 2 s (attempt 1)"], lines
        assert "statecast-viewer: still failing; reconnecting in 3 s (attempt 2)" in lines, lines
        viewer.interrupt()
        assert viewer.wait(20) == 0
    finally:
        viewer.kill()


# --- --once and --output ----------------------------------------------------------

def test_once_with_json_lines_prints_one_line_of_the_streams_shape(start_host, session_file, session):
    host = start_host(session_file, "--no-watch")
    streamed = ViewerProcess(host.url, "--format", "json-lines")
    try:
        first = json.loads(streamed.wait_for_stdout(lambda line: line.strip() != "", 20, "the stream's first line"))
    finally:
        streamed.kill()
    result = cli_viewer(host.url, "--once", "--format", "json-lines", env=env_without_token())
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    line = json.loads(lines[0])
    assert set(line) == set(first) and line["state"] == session, (line, first)


def test_output_in_a_missing_folder_fails_before_connecting(tmp_path):
    target = tmp_path / "no-such-folder" / "state.json"
    result = cli_viewer(f"ws://127.0.0.1:{free_port()}/", "--output", str(target), env=env_without_token())
    assert result.returncode == 2, result
    assert result.stderr.splitlines() == [
        f"statecast-viewer: the folder {target.parent} of --output {target} cannot be used "
        "(No such file or directory); create it or give another path"], result.stderr
    assert result.stdout == ""


def test_output_naming_a_folder_fails_before_connecting(tmp_path):
    result = cli_viewer(f"ws://127.0.0.1:{free_port()}/", "-o", str(tmp_path), env=env_without_token())
    assert result.returncode == 2, result
    assert result.stderr.splitlines() == [
        f"statecast-viewer: --output {tmp_path} is a folder; give a file name, for example {tmp_path}/state.json"]
