"""The viewer against plain Python `websockets` servers speaking SPEC §2, and
its command-line behaviour: --once, --output, SIGINT, 401/403, bad URLs."""

import json
import socket
import time
from http import HTTPStatus

import pytest

from viewer_servers import (INTEROP_STATE, ServerThread, free_port, interop_host, keep_open_host,
                            refuse_with, wait_until)


def expected_final(updates: int) -> dict:
    state = json.loads(json.dumps(INTEROP_STATE))
    state["config"].update({"speed": updates * 0.5, "mode": f"m{updates}"})
    return state


@pytest.mark.parametrize("with_seq", [True, False], ids=["with-seq", "without-seq"])
def test_viewer_mirrors_a_plain_websockets_host(viewers, tmp_path, with_seq):
    output = tmp_path / "state.json"
    with ServerThread(interop_host(with_seq, updates=20)) as server:
        viewer = viewers(server.url, "--format", "json-lines", "--output", str(output))
        wait_until(lambda: len(viewer.json_lines()) >= 21, 15, "21 json lines")
        lines = viewer.json_lines()
        assert len(lines) == 21
        assert lines[0]["type"] == "session_update"
        assert lines[0]["state"] == INTEROP_STATE
        assert all(line["type"] == "config_update" and line["changed"] == ["speed", "mode"] for line in lines[1:])
        assert [line["seq"] for line in lines] == (list(range(1, 22)) if with_seq else [None] * 21)
        # A native viewer sends no Origin (hosts that restrict browser origins must still admit it).
        headers = server.request_headers[0]
        assert "Origin" not in headers
        assert headers["Host"] == f"127.0.0.1:{server.port}"
        assert lines[-1]["state"] == expected_final(20)
        wait_until(lambda: output.exists() and json.loads(output.read_text()) == expected_final(20), 5,
                   "the output file to hold the final state")
        viewer.interrupt()
        assert viewer.wait(10) == 0


def test_once_prints_the_first_full_state_and_exits_0(viewers):
    with ServerThread(keep_open_host(INTEROP_STATE)) as server:
        viewer = viewers(server.url, "--once")
        assert viewer.wait(15) == 0
        assert json.loads("\n".join(viewer.stdout_lines())) == INTEROP_STATE
        # It closed properly: the host saw close 1000.
        wait_until(lambda: server.snapshot() and server.snapshot()[0].close_code == 1000, 5, "close code 1000")


def test_once_times_out_with_a_clear_message(viewers):
    port = free_port()                       # nobody listens here
    started = time.monotonic()
    viewer = viewers(f"ws://127.0.0.1:{port}", "--once", "--once-timeout-s", "1.5")
    code = viewer.wait(15)
    assert code == 1
    assert 1.0 < time.monotonic() - started < 10
    errors = [line for line in viewer.stderr_lines() if "no state arrived" in line]
    assert len(errors) == 1 and "within 1.5 s" in errors[0] and "refused" in errors[0]
    assert viewer.stdout_lines() == []


def test_sigint_closes_with_1000_and_exits_0(viewers):
    with ServerThread(keep_open_host(INTEROP_STATE)) as server:
        viewer = viewers(server.url, "--format", "quiet")
        viewer.wait_for_stderr("connected to", 10)
        viewer.interrupt()
        assert viewer.wait(10) == 0
        wait_until(lambda: server.snapshot()[0].close_code is not None, 5, "the viewer's close frame")
        assert server.snapshot()[0].close_code == 1000
        assert len(server.snapshot()) == 1     # and it did not come back
        time.sleep(2.5)
        assert len(server.snapshot()) == 1


def test_sigint_during_a_pending_handshake_exits_at_once(viewers):
    # A listening socket that never accepts: TCP connects, the handshake never answers
    # (like a SIGSTOPped host).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        viewer = viewers(f"ws://127.0.0.1:{listener.getsockname()[1]}", "--format", "quiet")
        viewer.wait_for_stderr("connecting to", 10)
        time.sleep(0.5)
        started = time.monotonic()
        viewer.interrupt()
        assert viewer.wait(10) == 0
        assert time.monotonic() - started < 8  # not waiting for the handshake, which never ends
        assert viewer.stderr_lines()[-1].endswith("disconnected")


@pytest.mark.parametrize("status", [HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN], ids=["401", "403"])
def test_refused_token_exits_3_without_retrying(viewers, status):
    with ServerThread(keep_open_host(INTEROP_STATE), process_request=refuse_with(status)) as server:
        viewer = viewers(server.url + "/?token=wrong", "--format", "json-lines")
        assert viewer.wait(15) == 3
        errors = viewer.stderr_lines()
        assert any(f"the host refused the token (HTTP {status.value})" in line for line in errors), errors
        assert server.requests == 1
        assert viewer.stdout_lines() == []


def test_other_http_refusals_are_retried(viewers):
    with ServerThread(keep_open_host(INTEROP_STATE), process_request=refuse_with(HTTPStatus.SERVICE_UNAVAILABLE)) as server:
        viewer = viewers(server.url, "--format", "quiet", "--no-jitter")
        viewer.wait_for_stderr("HTTP 503", 10)
        viewer.wait_for_stderr("reconnecting in 2 s (attempt 1)", 5)
        wait_until(lambda: server.requests >= 2, 6, "a second attempt")
        viewer.interrupt()
        assert viewer.wait(10) == 0


@pytest.mark.parametrize("url, problem", [
    ("ftp://127.0.0.1:9876", "uses the scheme"),
    ("localhost", "has no ws:// scheme and no port"),
    ("ws://127.0.0.1:99999", "from 1 to 65535"),
    ("ws://[::1:9876", "closing ]"),
])
def test_bad_url_is_one_sentence_and_exit_2(viewers, url, problem):
    viewer = viewers(url)
    assert viewer.wait(10) == 2
    errors = viewer.stderr_lines()
    assert len(errors) == 1, errors
    assert problem in errors[0] and "ws://" in errors[0]
    assert "Traceback" not in errors[0] and "Fatal" not in errors[0]


def test_bad_schema_flags_are_one_sentence_and_exit_2(viewers, tmp_path):
    schema = tmp_path / "schema.json"
    schema.write_text('{"speed": "velocity"}')
    viewer = viewers("ws://127.0.0.1:9", "--schema", str(schema))
    assert viewer.wait(10) == 2
    assert len(viewer.stderr_lines()) == 1 and "velocity" in viewer.stderr_lines()[0]

    viewer = viewers("ws://127.0.0.1:9", "--field", "speed")
    assert viewer.wait(10) == 2
    assert len(viewer.stderr_lines()) == 1 and "NAME:TYPE" in viewer.stderr_lines()[0]

    viewer = viewers("ws://127.0.0.1:9", "--ping-interval-s", "5", "--ping-timeout-s", "5")
    assert viewer.wait(10) == 2
    assert len(viewer.stderr_lines()) == 1 and "ping timeout" in viewer.stderr_lines()[0]


def test_explicit_field_whitelist(viewers, tmp_path):
    async def host(ws, record):
        from viewer_servers import config_update, session, session_update
        await ws.send(session_update(session("s", config={"speed": 1, "mode": "a"}), 1))
        await ws.send(config_update({"speed": 2, "mode": "b"}, 2))     # mode is not whitelisted
        await ws.send(config_update({"speed": 2.5}, 3))                 # not an integer
        await ws.send(config_update({"speed": 3}, 4))
    with ServerThread(host) as server:
        viewer = viewers(server.url, "--format", "json-lines", "--field", "speed:integer")
        viewer.wait_for_stdout(lambda line: '"seq":4' in line, 10, "seq 4")
        lines = viewer.json_lines()
        assert [(line["seq"], line["changed"]) for line in lines] == [(1, ["name", "data", "config", "metadata"]),
                                                                      (2, ["speed"]), (4, ["speed"])]
        assert lines[-1]["state"]["config"] == {"speed": 3, "mode": "a"}
        viewer.interrupt()
        assert viewer.wait(10) == 0
