"""Access control against a real host (issue #6): tokens, origins, capacity.

Refusals are checked with the strict `websockets` client: it must see a
proper HTTP/1.1 401/403/503 (InvalidStatus), not a malformed response.
"""

from __future__ import annotations

import json
import re

import pytest

from security_support import cli_viewer, env_without_token, first_envelope, http_get, refusal_status, wait_until

TOKEN = "tok-3f9a1c7e5b2d4a6f"
WRONG = "tok-wrong-0000000000"


def test_token_in_header_or_query_is_admitted_and_missing_or_wrong_gets_401(start_host, session_file, session):
    host = start_host(session_file, "--no-watch", "--token", TOKEN)
    host.wait_for_line(r"must present the token")
    assert TOKEN not in "\n".join(host.lines)

    by_header = first_envelope(host.url, additional_headers={"Authorization": f"Bearer {TOKEN}"})
    assert by_header["type"] == "session_update" and by_header["payload"] == session
    by_query = first_envelope(f"{host.url}?token={TOKEN}")
    assert by_query["payload"] == session
    # Percent-encoding in the query is decoded (browsers encode reserved characters).
    assert first_envelope(f"{host.url}?token={TOKEN.replace('-', '%2D')}")["payload"] == session

    assert refusal_status(host.url) == 401
    assert refusal_status(f"{host.url}?token={WRONG}") == 401
    assert refusal_status(host.url, additional_headers={"Authorization": f"Bearer {WRONG}"}) == 401
    assert refusal_status(host.url, additional_headers={"Authorization": f"Basic {TOKEN}"}) == 401
    assert refusal_status(f"{host.url}?token={TOKEN[:-1]}") == 401  # a prefix is not the token
    assert refusal_status(f"{host.url}?token={TOKEN}x") == 401
    assert refusal_status(f"{host.url}?token=") == 401

    # No refused connection became a viewer.
    code, body = http_get(f"{host.http_url}/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert code == 200 and json.loads(body)["clientCount"] == 0


def test_status_without_token_says_only_running_and_events_need_the_token(start_host, session_file):
    host = start_host(session_file, "--no-watch", "--token", TOKEN)
    for path in ("/status", f"/status?token={WRONG}"):
        code, body = http_get(host.http_url + path)
        assert (code, json.loads(body)) == (200, {"running": True}), path
    for headers, path in (({"Authorization": f"Bearer {TOKEN}"}, "/status"), ({}, f"/status?token={TOKEN}")):
        code, body = http_get(host.http_url + path, headers=headers)
        status = json.loads(body)
        assert code == 200 and status["running"] is True and status["port"] == host.port
        assert {"clientCount", "seq", "uptimeSeconds"} <= set(status)
    assert http_get(f"{host.http_url}/events")[0] == 401
    assert http_get(f"{host.http_url}/events?token={WRONG}")[0] == 401


def test_token_file_and_environment(start_host, session_file, session, tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}  \nsecond line is ignored\n")
    host = start_host(session_file, "--no-watch", "--token-file", token_file)
    assert first_envelope(f"{host.url}?token={TOKEN}")["payload"] == session
    assert refusal_status(host.url) == 401

    monkeypatch.setenv("STATECAST_TOKEN", "from-the-environment")
    host = start_host(session_file, "--no-watch")
    assert first_envelope(host.url, additional_headers={"Authorization": "Bearer from-the-environment"})["payload"] == session
    assert refusal_status(f"{host.url}?token={TOKEN}") == 401


@pytest.mark.timeout(90)
def test_token_never_reaches_the_logs_even_at_debug_level(start_host, connect, session_file):
    host = start_host(session_file, "--no-watch", "--token", TOKEN, "--log-level", "debug", "--client-poll-ms", "50",
                      stdin=True)
    # Admitted and refused upgrades, HTTP requests, 404s, with the token in the query and the header.
    first_envelope(f"{host.url}?token={TOKEN}")
    first_envelope(f"{host.url}?since=1&token={TOKEN}&epoch=x")
    first_envelope(f"{host.url}", additional_headers={"Authorization": f"Bearer {TOKEN}"})
    for url in (f"{host.url}?token={WRONG}", f"{host.url}?a=1&token={WRONG}&b=2", f"{host.url}nowhere?token={WRONG}"):
        assert refusal_status(url) == 401
    for path in (f"/status?token={TOKEN}", f"/events?token={WRONG}", f"/missing?token={TOKEN}",
                 f"/?token={TOKEN}", f"/statecast.js?token={TOKEN}"):
        http_get(host.http_url + path)
    viewer = connect(f"{host.url}?token={TOKEN}&since=5")
    viewer.next()
    host.send_line({"config": {"speed": 9}})
    assert viewer.next().payload == {"speed": 9}
    host.wait_for_line(r"1 viewer connected")
    host.stop()
    host.wait(10)

    logged = "\n".join(host.lines + host.stderr_lines)
    assert host.stderr_lines, "expected debug output on stderr"
    assert TOKEN not in logged
    assert WRONG not in logged
    # Whatever logs a URL shows the token redacted.
    for line in host.stderr_lines:
        for value in re.findall(r"token=([^&\s\"']*)", line):
            assert value == "REDACTED", line


def test_allow_origin_admits_listed_origins_and_native_viewers_and_refuses_others_with_403(
    start_host, connect, session_file, session
):
    host = start_host(session_file, "--no-watch", "--allow-origin", "https://app.example",
                      "--allow-origin", "http://localhost:3000", stdin=True)
    assert first_envelope(host.url, origin="https://app.example")["payload"] == session
    assert first_envelope(host.url, origin="HTTPS://APP.EXAMPLE")["payload"] == session  # origins are case-insensitive
    assert first_envelope(host.url, origin="http://localhost:3000")["payload"] == session
    assert first_envelope(host.url)["payload"] == session  # no Origin: a native viewer
    for origin in ("https://evil.example", "https://app.example.evil", "http://app.example", "null",
                   "http://localhost:3001"):
        assert refusal_status(host.url, origin=origin) == 403, origin
    # An origin check comes on top of the token: both must pass.
    guarded = start_host(session_file, "--no-watch", "--allow-origin", "https://app.example", "--token", TOKEN)
    assert refusal_status(f"{guarded.url}?token={TOKEN}", origin="https://evil.example") == 403
    assert refusal_status(guarded.url, origin="https://app.example") == 401
    assert first_envelope(f"{guarded.url}?token={TOKEN}", origin="https://app.example")["payload"] == session


def test_max_clients_refuses_the_next_with_503_while_the_others_keep_receiving(start_host, connect, session_file):
    host = start_host(session_file, "--no-watch", "--max-clients", "2", "--debounce-ms", "0",
                      "--client-poll-ms", "50", stdin=True)
    first, second = connect(host), connect(host)
    first.next(), second.next()
    host.wait_for_status(lambda s: s["clientCount"] == 2)

    for i in range(5):
        assert refusal_status(host.url) == 503
        host.send_line({"config": {"speed": 10 + i}})
        for viewer in (first, second):
            env = viewer.next(timeout=5)
            assert env.type == "config_update" and env.payload == {"speed": 10 + i}
    assert host.status()["clientCount"] == 2
    # HTTP still answers when full.
    assert http_get(f"{host.http_url}/status")[0] == 200

    # A place frees up: the next viewer is admitted.
    second.close()
    host.wait_for_status(lambda s: s["clientCount"] == 1)
    third = connect(host)
    assert third.next().payload["config"]["speed"] == 14
    assert refusal_status(host.url) == 503
    assert not first.closed.is_set()


def test_viewer_cli_with_wrong_token_exits_3_with_one_sentence(start_host, session_file, session):
    host = start_host(session_file, "--no-watch", "--token", TOKEN)
    env = env_without_token()
    result = cli_viewer(host.url, "--token", WRONG, "--format", "json-lines", timeout=30, env=env)
    assert result.returncode == 3, result
    assert result.stdout == ""
    assert "statecast-viewer: the host refused the token (HTTP 401); " in result.stderr, result.stderr
    # No endless retry: one attempt.
    assert result.stderr.count("connecting to") == 1, result.stderr
    assert WRONG not in result.stderr

    # No token at all: the same.
    result = cli_viewer(host.url, "--once", env=env)
    assert result.returncode == 3 and "the host needs a token (HTTP 401)" in result.stderr, result

    # The right token, as an option and from STATECAST_TOKEN.
    result = cli_viewer(host.url, "--token", TOKEN, "--once", env=env)
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == session
    result = cli_viewer(host.url, "--once", env={**env, "STATECAST_TOKEN": TOKEN})
    assert result.returncode == 0 and json.loads(result.stdout) == session, result
