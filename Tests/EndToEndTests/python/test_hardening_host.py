"""Hardening, round two, host side (issue 13, items 1-8): each test reproduces
one finding of the audit against a real `statecast-host` over real sockets on
127.0.0.1, and fails on the code before the fix (docs/SECURITY.md, "Round two")."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import termios
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import hostile as h
from conftest import BASE_SESSION, HostProcess, launch
from raw_ws import RawWebSocket, encode_frame
from security_support import first_envelope, make_pki, refusal_status
from test_relay_redis import RedisServer, redis_server, start_relay  # noqa: F401 (fixtures)

TOKEN = "s3cret-token"
SERVING_ANY_RE = re.compile(r'^Serving "(?P<name>.*)" on (?P<addr>\S+):(?P<port>\d+)$')


def serve_argv(host_bin: Path, *args: str) -> list[str]:
    return [str(host_bin), "serve", "--port", "0", *args]


def http_request(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> h.HTTPAnswer | str:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Length: 0",
             *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return h.send_http_full(port, ("\r\n".join(lines) + "\r\n\r\n").encode())


# ---------------------------------------------------------------------------
# 1. Listen address
# ---------------------------------------------------------------------------


def test_bind_to_a_host_name_listens_on_its_address(host_bin, session_file, tmp_path):
    # Before: lws was handed "localhost", bound nothing, and the host said "Serving".
    hosts: list[HostProcess] = []
    process = HostProcess(serve_argv(host_bin, "--bind", "localhost", str(session_file)), stdin=False, cwd=None)
    hosts.append(process)
    try:
        match = process.wait_for_line(SERVING_ANY_RE.pattern, timeout=30)
        assert match["addr"] == "localhost"
        port = int(match["port"])
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        process.port = port
        assert process.status()["running"] is True
    finally:
        for p in hosts:
            p.stop()


@pytest.mark.parametrize("address", ["192.0.2.1", "no-such-host.invalid"])
def test_bind_to_an_address_that_cannot_be_bound_fails_at_start(run_host, session_file, address):
    # 192.0.2.1 (TEST-NET-1) is on no interface; before, lws deferred the
    # listener and retried every 30 s through a dangling pointer.
    result = run_host("serve", "--bind", address, "--port", "0", str(session_file), timeout=30)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Serving" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("statecast-host: error:")]
    assert len(lines) == 1 and address in lines[0] and "--bind" in lines[0], result.stderr


# ---------------------------------------------------------------------------
# 2. Seqs read from Redis
# ---------------------------------------------------------------------------


def redis_command(server: RedisServer, *args: str) -> bytes:
    """One RESP command; returns the raw reply."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(payload)
        return sock.recv(65536)


HOSTILE_SEQ = 9223372036854775807


def hostile_state(name: str = "hostile") -> str:
    session = dict(BASE_SESSION, name=name)
    return json.dumps({"type": "session_update", "seq": HOSTILE_SEQ, "epoch": "ffffffffffffffff", "payload": session})


def test_relay_refuses_a_huge_seq_in_redis_at_start(host_bin, redis_server):
    redis_command(redis_server, "SET", "statecast:evil:state", hostile_state())
    result = subprocess.run([str(host_bin), "relay", "--redis", redis_server.url, "--channel", "evil",
                             "--bind", "127.0.0.1", "--port", "0"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert f"seq {HOSTILE_SEQ} is outside" in result.stderr, result.stderr


def test_relay_keeps_serving_its_last_good_state_after_a_huge_seq(start_host, start_relay, session_file, session,
                                                                   redis_server, connect):
    publisher = start_host(session_file, "--redis", redis_server.url, "--channel", "lobby", "--debounce-ms", "0",
                           stdin=True)
    relay = start_relay(redis_server, "lobby")
    viewer = connect(relay)
    assert viewer.next().payload == session

    # Something other than StateCast writes a state with seq 2^63 - 1 and announces it.
    redis_command(redis_server, "SET", "statecast:lobby:state", hostile_state())
    redis_command(redis_server, "PUBLISH", "statecast:lobby", hostile_state())
    relay.wait_for_stderr(rf"seq {HOSTILE_SEQ}, outside")

    # The relay still serves the last good state, to old and new viewers alike.
    assert relay.poll() is None, relay.describe()
    assert connect(relay).next().payload == session
    publisher.send_line({"config": {"speed": 9}})
    assert viewer.next().payload == {"speed": 9}


# ---------------------------------------------------------------------------
# 3. Echo endpoint
# ---------------------------------------------------------------------------


def test_echo_client_that_never_reads_cannot_grow_host_memory(start_host, session_file, measure):
    host = start_host(session_file, "--echo-path", "/echo", "--max-viewer-buffer-kb", "256", "--no-watch")
    ws = RawWebSocket("127.0.0.1", host.port, "/echo", rcvbuf=4096)
    ws.sock.setblocking(False)
    frame = encode_frame(0x2, b"x" * 1000)
    pending = bytearray()
    sent = 0
    last_progress = time.monotonic()
    deadline = time.monotonic() + 30
    with host.peak_rss() as rss:
        # Send whole frames as fast as the host takes them, never reading.
        while time.monotonic() < deadline and sent < 48 << 20:
            if not pending:
                pending = bytearray(frame * 64)
            try:
                n = ws.sock.send(pending)
            except BlockingIOError:
                n = 0
            if n:
                del pending[:n]
                sent += n
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > 2:
                break  # the host stopped reading: backpressure, as wanted
            else:
                time.sleep(0.005)
    stalled = time.monotonic() - last_progress > 2
    growth_mib = (rss["peak"] - rss["baseline"]) / 1024
    measure(f"echo client sent {sent / 2**20:.1f} MiB without reading; host RSS grew {growth_mib:.1f} MiB; "
            f"host stopped reading: {stalled}")
    # Before: every message read was queued (400 MiB unread -> +420 MiB RSS).
    assert stalled and sent < 16 << 20, f"the host kept reading ({sent >> 20} MiB) from a client that reads nothing"
    assert growth_mib < 12, f"host RSS grew {growth_mib:.1f} MiB"
    ws.abort()
    assert host.status()["running"] is True


def test_echo_connections_count_toward_max_clients(start_host, session_file):
    host = start_host(session_file, "--echo-path", "/echo", "--max-clients", "1", "--no-watch")
    with RawWebSocket("127.0.0.1", host.port, "/echo"):
        assert refusal_status(f"ws://127.0.0.1:{host.port}/echo") == 503
        assert refusal_status(host.url) == 503


def test_echo_clients_get_the_heartbeat(start_host, session_file):
    host = start_host(session_file, "--echo-path", "/echo", "--ping-interval-s", "1", "--ping-timeout-s", "3",
                      "--no-watch")
    ws = RawWebSocket("127.0.0.1", host.port, "/echo")
    # A ping arrives after a second of silence...
    opcode, _, payload = h.read_frame(ws, timeout=10)
    assert opcode == 0x9, (opcode, payload)
    # ...and a client that never answers is hung up on.
    deadline = time.monotonic() + 15
    ended = False
    while time.monotonic() < deadline and not ended:
        try:
            h.read_frame(ws, timeout=deadline - time.monotonic())
        except Exception:  # noqa: BLE001 - EOF, reset or timeout all end the wait
            ended = True
    assert ended and time.monotonic() < deadline, "the host never hung up on a silent echo client"


# ---------------------------------------------------------------------------
# 4. Token parsing
# ---------------------------------------------------------------------------


@pytest.fixture
def token_host(start_host, session_file) -> HostProcess:
    return start_host(session_file, "--token", TOKEN, "--no-watch")


def test_query_token_is_percent_decoded_once(token_host, session):
    encoded_twice = "%2573" + TOKEN[1:]  # %25 -> "%", then %73 -> "s" on a second decode
    assert refusal_status(f"{token_host.url}?token={encoded_twice}") == 401


def test_query_token_after_a_long_argument_is_found(token_host, session):
    url = f"{token_host.url}?pad={'x' * 300}&token={urllib.parse.quote(TOKEN)}"
    assert first_envelope(url)["payload"] == session
    events = f"{token_host.http_url}/status?pad={'y' * 1000}&token={TOKEN}"
    assert "clientCount" in json.loads(urllib.request.urlopen(events, timeout=5).read())


# ---------------------------------------------------------------------------
# 5. Refusals over HTTP/2
# ---------------------------------------------------------------------------


def curl_h2(url: str, *args: str) -> tuple[str, str, str]:
    """(status, HTTP version, headers) of one curl --http2 request (TLS, certificate not checked)."""
    result = subprocess.run(["curl", "--http2", "-sk", "--max-time", "10", "-D", "-", "-o", "/dev/null",
                             "-w", "\n%{http_code} %{http_version}", *args, url],
                            capture_output=True, text=True, timeout=30)
    *head, last = result.stdout.strip().splitlines()
    status, version = last.split()
    return status, version, "\n".join(head).lower()


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("openssl") is None, reason="curl and openssl needed")
def test_refusals_over_http2_carry_their_status(start_host, session_file, tmp_path):
    pki = make_pki(tmp_path / "pki")
    host = start_host(session_file, "--no-watch", "--token", TOKEN, "--tls-cert", pki.host_cert,
                      "--tls-key", pki.host_key)
    base = f"https://127.0.0.1:{host.port}"
    status, version, _ = curl_h2(f"{base}/status")
    assert (status, version) == ("200", "2")  # the connection really is HTTP/2
    status, version, headers = curl_h2(f"{base}/events")
    assert (status, version) == ("401", "2"), headers  # before: an empty reply ("000")
    assert "www-authenticate: bearer" in headers
    status, version, headers = curl_h2(f"{base}/status", "-X", "POST")
    assert (status, version) == ("405", "2") and "allow: get" in headers


# ---------------------------------------------------------------------------
# 6. Frames declaring huge lengths
# ---------------------------------------------------------------------------


def declared_frame_header(length: int) -> bytes:
    """A masked binary frame header declaring `length` bytes, without any payload."""
    return bytes([0x82, 0x80 | 127]) + struct.pack("!Q", length) + os.urandom(4)


def wait_for_close_code(ws: RawWebSocket, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        opcode, _, payload = h.read_frame(ws, timeout=deadline - time.monotonic())
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
    return None


@pytest.mark.parametrize("payload_sent", [0, 10])
def test_frame_declaring_a_terabyte_is_closed_with_1009(start_host, session_file, measure, payload_sent):
    host = start_host(session_file, "--no-watch")
    ws = RawWebSocket("127.0.0.1", host.port)
    h.read_frame(ws, timeout=10)  # the initial state
    started = time.monotonic()
    ws.sock.sendall(declared_frame_header(1 << 40) + b"y" * payload_sent)
    # Before: with no payload, lws gave no callback and the connection hung
    # until the heartbeat (60 s by default).
    assert wait_for_close_code(ws, timeout=20) == 1009
    measure(f"1 TiB declared, {payload_sent} bytes sent: closed with 1009 after {time.monotonic() - started:.2f} s")


# ---------------------------------------------------------------------------
# 7. CLI values, broken pipes, encrypted keys
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("flag, value, extra", [
    ("--max-viewer-buffer-kb", "9223372036854775807", ()),
    ("--max-message-kb", "9223372036854775807", ()),
    ("--client-poll-ms", "9223372036854775807", ()),
    ("--ping-interval-s", "9223372036854775000", ("--ping-timeout-s", "9223372036854775001")),
    ("--ping-timeout-s", "9223372036854775807", ()),
    ("--sse-keepalive-s", "1e300", ()),
    ("--debounce-ms", "9223372036854775807", ()),
    ("--max-wait-ms", "9223372036854775807", ()),
])
def test_out_of_range_values_exit_with_the_usage_code(run_host, session_file, flag, value, extra):
    result = run_host("serve", "--bind", "127.0.0.1", "--port", "0", flag, value, *extra, str(session_file), timeout=30)
    assert result.returncode == 64, (result.returncode, result.stderr)
    assert flag in result.stderr and "must be from" in result.stderr, result.stderr
    assert "Serving" not in result.stdout


def test_closed_stdout_and_stderr_never_kill_the_host(host_bin, session_file, connect, session):
    # Like `statecast-host serve --qr | head -3`: the reader goes away.
    argv = serve_argv(host_bin, "--bind", "127.0.0.1", "--qr", "--stdin", "--debounce-ms", "0",
                      "--client-poll-ms", "10", str(session_file))
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = int(SERVING_ANY_RE.match(proc.stdout.readline().decode().strip())["port"])
        proc.stdout.readline()
        proc.stdout.readline()
        proc.stdout.close()
        proc.stderr.close()
        url = f"ws://127.0.0.1:{port}/"
        # Viewer count lines go to the closed stdout (the host polls every 10 ms).
        for _ in range(10):
            viewer = connect(url)
            assert viewer.next().payload == session
            time.sleep(0.1)
            viewer.close()
        # A bad stdin line is reported on the closed stderr; the next line
        # reaching a viewer proves the host got past that write.
        viewer = connect(url)
        assert viewer.next().payload == session
        proc.stdin.write(b"{not json\n" + json.dumps({"config": {"speed": 4}}).encode() + b"\n")
        proc.stdin.flush()
        assert viewer.next().payload == {"speed": 4}
        assert proc.poll() is None, f"the host died with status {proc.poll()}"
        proc.terminate()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is needed")
def test_encrypted_tls_key_fails_with_a_sentence_instead_of_prompting(host_bin, session_file, tmp_path):
    key, cert = tmp_path / "enc.key", tmp_path / "enc.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256",
                    "-pass", "pass:hunter2", "-out", str(key)], check=True, capture_output=True, timeout=30)
    subprocess.run(["openssl", "req", "-x509", "-key", str(key), "-passin", "pass:hunter2", "-subj", "/CN=localhost",
                    "-days", "1", "-out", str(cert)], check=True, capture_output=True, timeout=30)
    # A controlling terminal, so OpenSSL could prompt for the passphrase (and hang) if asked.
    primary, secondary = os.openpty()

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(serve_argv(host_bin, "--bind", "127.0.0.1", "--tls-cert", str(cert), "--tls-key", str(key),
                                       str(session_file)),
                            stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=take_terminal)
    os.close(secondary)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the host hung (waiting for a passphrase?) instead of failing")
    finally:
        os.close(primary)
    assert proc.returncode == 1, (proc.returncode, err)
    assert b"passphrase" in err and str(key).encode() in err, err


# ---------------------------------------------------------------------------
# 8. Methods and subprotocols
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("method, path", [("POST", "/status"), ("DELETE", "/status"), ("PUT", "/status"),
                                          ("POST", "/events"), ("POST", "/"), ("POST", "/statecast.js")])
def test_other_methods_than_get_get_405_with_allow(start_host, session_file, method, path):
    host = start_host(session_file, "--no-watch")
    answer = http_request(host.port, method, path)
    assert isinstance(answer, h.HTTPAnswer), answer
    assert answer.status == 405 and answer.headers.get("allow") == "GET", (answer.status, answer.headers)
    # GET still works, and the host did not start an event stream for the POST.
    assert host.status()["clientCount"] == 0


def test_upgrade_naming_only_an_unknown_subprotocol_gets_400(start_host, session_file, session):
    host = start_host(session_file, "--no-watch")
    sock = h.tcp_connect(host.port)
    sock.sendall(h.upgrade_request(host.port, headers={"Sec-WebSocket-Protocol": "chat, superchat"}))
    answer = h.read_http(sock)
    sock.close()
    assert isinstance(answer, h.HTTPAnswer), answer  # before: dropped without a word
    assert answer.status == 400 and b'"statecast"' in answer.body, (answer.status, answer.body)
    # Naming statecast among others still upgrades, with statecast chosen.
    with RawWebSocket("127.0.0.1", host.port, extra_headers={"Sec-WebSocket-Protocol": "chat, statecast"}) as ws:
        assert ws.response_headers.get("sec-websocket-protocol") == "statecast"
        assert json.loads(ws.recv().text)["payload"] == session
