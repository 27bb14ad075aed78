"""Issue 13, viewer side (items 9-14): a hostile or broken host must never hurt
`statecast-viewer`. Each test plays such a host on a raw socket (raw_host.py)
and runs the real viewer binary against it."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import threading
import time

import pytest

from raw_host import HostConnection, RawHost
from raw_ws import OP_CLOSE, OP_CONTINUATION, OP_TEXT
from viewer_servers import ViewerProcess, config_update, session, session_update, viewer_binary, wait_until


def full_state(name: str = "demo", seq: int = 1, epoch: str | None = None, config: dict | None = None) -> bytes:
    return session_update(session(name, config=config or {"speed": 1}), seq, epoch).encode()


def on_first_connection(attack):
    """A host script: every connection gets a full state; the first then gets
    `attack(connection)`, the later ones (reconnects) are simply kept open."""
    def script(connection: HostConnection) -> None:
        connection.accept()
        connection.send_frame(OP_TEXT, full_state())
        if connection.index > 0:
            connection.wait_for_close(30)
            return
        attack(connection)
    return script


def first_connection_ended(host: RawHost, viewer: ViewerProcess, timeout: float) -> HostConnection:
    """Waits for the viewer's first state, then for the host script of the first connection to end."""
    viewer.wait_for_stdout(lambda line: '"seq":1' in line, 15, "the first state")
    first = wait_until(lambda: host.snapshot() and host.snapshot()[0], 5, "the connection")
    assert first.ended.wait(timeout), "the host script did not finish"
    return first


# --- item 9: invalid UTF-8 in text frames fails the connection with 1007 --------

BAD_UTF8 = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"   # Autobahn 6.3.1 (a surrogate)

INVALID_TEXT = {
    "one frame": [(OP_TEXT, BAD_UTF8, True)],
    "invalid in the second fragment": [(OP_TEXT, b'{"type":"x","p":"', False), (OP_CONTINUATION, b"\xff\xfe\"}", True)],
    "a sequence split over fragments, then broken": [(OP_TEXT, b'"\xe2\x82', False), (OP_CONTINUATION, b"(\"", True)],
    "ends inside a sequence": [(OP_TEXT, b'"abc\xe2\x82', True)],
}


@pytest.mark.parametrize("frames", INVALID_TEXT.values(), ids=INVALID_TEXT.keys())
def test_invalid_utf8_text_fails_the_connection_with_1007(viewers, frames):
    def attack(connection: HostConnection) -> None:
        for opcode, payload, fin in frames:
            connection.send_frame(opcode, payload, fin=fin)
        connection.wait_for_close(15)

    with RawHost(on_first_connection(attack)) as host:
        viewer = viewers(host.url, "--format", "json-lines", "--no-jitter")
        first = first_connection_ended(host, viewer, 20)
        assert first.close_code == 1007, f"the viewer closed with {first.close_code}, not 1007 (invalid payload)"
        # A broken frame is the connection's problem, not the viewer's: it reconnects.
        wait_until(lambda: len(host.snapshot()) >= 2, 15, "a reconnect after the 1007 close")
        assert viewer.proc.poll() is None
        assert not host.errors


def test_close_with_invalid_utf8_reason_is_not_echoed(viewers):
    """Autobahn 7.5.1: a Close whose reason is invalid UTF-8 fails the connection;
    the viewer must not answer with a clean Close echoing that reason."""
    seen: list = []

    def attack(connection: HostConnection) -> None:
        connection.send_frame(OP_CLOSE, b"\x03\xe8" + BAD_UTF8)
        while (frame := connection.read_frame(10)) is not None:
            seen.append(frame)

    with RawHost(on_first_connection(attack)) as host:
        viewer = viewers(host.url, "--format", "json-lines", "--no-jitter")
        first = first_connection_ended(host, viewer, 20)
        closes = [payload for opcode, payload in seen if opcode == OP_CLOSE]
        assert all(payload[:2] in (b"\x03\xef", b"\x03\xea") for payload in closes), (
            f"the viewer answered an invalid close reason with {closes!r} instead of failing the connection")
        wait_until(lambda: len(host.snapshot()) >= 2, 15, "a reconnect")


@pytest.mark.parametrize("code", [5000, 65535])
def test_close_with_an_undefined_code_is_answered_with_1002(viewers, code):
    """Autobahn 7.13.1/7.13.2: lws 4.1.6's client echoed codes >= 5000 back as they came."""
    def attack(connection: HostConnection) -> None:
        connection.send_frame(OP_CLOSE, code.to_bytes(2, "big") + b"bye")
        connection.wait_for_close(15)

    with RawHost(on_first_connection(attack)) as host:
        viewer = viewers(host.url, "--format", "json-lines", "--no-jitter")
        first = first_connection_ended(host, viewer, 20)
        assert first.close_code == 1002, f"the viewer answered close {code} with {first.close_code}, not 1002"
        viewer.wait_for_stderr(f"code {code}", 15)      # still reported as the host's code


# --- item 10: what a host can make the viewer hold is bounded ---------------------

def rss_kib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def test_a_flood_of_updates_to_a_big_state_keeps_viewer_memory_bounded():
    """A 20 000-key config, then 4 000 small config_updates as fast as the socket
    takes them, to a viewer whose stdout reader is slow. The old viewer queued
    one whole session per change (3 GiB in 5 s); now a slow consumer skips
    intermediate states, and still ends with the last one."""
    config = {f"key{i:05d}": i for i in range(20000)}
    done = threading.Event()
    sent = [0]

    def script(connection: HostConnection) -> None:
        connection.accept()
        connection.send_frame(OP_TEXT, full_state("big", 1, "e1", config))
        deadline = time.monotonic() + 5
        seq = 2
        # At most 4 000 updates (≈ 8 GB of sessions queued by the old viewer), so that
        # the viewer can apply them all and print the last one even on a loaded machine.
        while time.monotonic() < deadline and seq < 4000 and not done.is_set():
            batch = b"".join(
                bytes([0x81, len(payload)]) + payload
                for payload in (config_update({"key00000": seq + k}, seq + k).encode() for k in range(50)))
            connection.send_raw(batch)
            seq += 50
        sent[0] = seq - 1
        connection.send_frame(OP_TEXT, config_update({"key00001": -1}, seq).encode())   # the last change
        connection.wait_for_close(60)

    args = [str(viewer_binary()), "--format", "json-lines", "--no-jitter"]
    with RawHost(script) as host:
        proc = subprocess.Popen(args + [host.url], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        tail = bytearray()
        lines = [0]
        peak = [0]

        def slow_reader() -> None:
            while chunk := proc.stdout.read(1 << 16):
                lines[0] += chunk.count(b"\n")
                tail.extend(chunk)
                del tail[:-(1 << 20)]
                time.sleep(0.01)       # a consumer slower than the host

        reader = threading.Thread(target=slow_reader, daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 40         # inside pytest-timeout's 60 s
            while time.monotonic() < deadline:
                peak[0] = max(peak[0], rss_kib(proc.pid))
                if peak[0] > 1 << 20:           # 1 GiB: the old behaviour; stop before it hurts the machine
                    break
                if b'"key00001":-1' in tail[-(1 << 19):]:
                    break
                time.sleep(0.05)
            peak[0] = max(peak[0], rss_kib(proc.pid, "VmHWM"))
        finally:
            done.set()
            proc.kill()
            proc.wait(10)
            reader.join(10)
        print(f"viewer peak RSS {peak[0] // 1024} MiB; {sent[0]} updates sent, {lines[0]} lines printed")
        assert peak[0] < 300 * 1024, f"the viewer grew to {peak[0] // 1024} MiB"
        last = bytes(tail).rstrip(b"\n").rsplit(b"\n", 1)[-1]
        assert b'"key00001":-1' in last, "the last change was not printed last"
        assert lines[0] < sent[0], "the slow consumer was never behind (the test proved nothing)"


BIG_FRAMES = {
    # A frame announcing 1 TiB: the limit (16 MiB) counts what a frame declares, so the
    # viewer fails it at the first chunk lws hands over (its 64 KiB receive buffer)
    # instead of buffering 16 MiB and reading on, as the old viewer did.
    "1 TiB declared": (b"\x81\x7f" + (1 << 40).to_bytes(8, "big"), b" ", 1009, "over the viewer's limit"),
    # A 1 MiB text frame of invalid UTF-8: failed within the frame. lws 4.1.6's own UTF-8
    # check (LWS_SERVER_OPTION_VALIDATE_UTF8) crashed the viewer here once the host went on
    # sending: it left its receive buffer full and wrote the rest of the frame past it.
    "1 MiB of invalid UTF-8": (b"\x81\x7f" + (1 << 20).to_bytes(8, "big"), b"\xff", 1007, "not valid UTF-8"),
}


@pytest.mark.parametrize("header, filler, code, message", BIG_FRAMES.values(), ids=BIG_FRAMES.keys())
def test_a_big_bad_frame_is_failed_within_the_frame_and_the_viewer_survives(viewers, header, filler, code, message):
    def attack(connection: HostConnection) -> None:
        connection.send_raw(header + filler * (200 << 10))
        connection.wait_for_close(20)
        for _ in range(8):                          # the host goes on with the frame after the close
            connection.send_raw(filler * (100 << 10))
            time.sleep(0.05)
        connection.wait_for_close(5)

    with RawHost(on_first_connection(attack)) as host:
        viewer = viewers(host.url, "--format", "json-lines", "--no-jitter")
        first = first_connection_ended(host, viewer, 40)
        assert first.close_code == code, f"the viewer closed with {first.close_code}, not {code}"
        line = viewer.wait_for_stderr(message, 15)[0]
        assert str(code) in line, line
        # The marker: the viewer came back, alive, after all the host sent.
        wait_until(lambda: len(host.snapshot()) >= 2, 15, "a reconnect after the close")
        assert viewer.proc.poll() is None, "the viewer died"


# --- item 11: the live view strips terminal controls ----------------------------------

def test_live_view_strips_terminal_escapes_from_host_text():
    evil_name = "evil\x1b]0;pwned-title\x07\x1b]52;c;aGVsbG8=\x07name\u009b31m"
    config = {"key\x1b[2J\x1b]52;c;Zm9v\x07": "v\x1b]0;t\x07", "marker": "end-of-state"}

    def script(connection: HostConnection) -> None:
        connection.accept()
        connection.send_frame(OP_TEXT, session_update(session(evil_name, config=config), 1).encode())
        connection.wait_for_close(30)

    with RawHost(script) as host:
        leader, follower = pty.openpty()
        proc = subprocess.Popen([str(viewer_binary()), "--format", "live", host.url], stdin=subprocess.DEVNULL,
                                stdout=follower, stderr=subprocess.DEVNULL)
        os.close(follower)
        output = bytearray()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and b"end-of-state" not in output:
                ready, _, _ = select.select([leader], [], [], 0.2)
                if ready:
                    try:
                        output += os.read(leader, 65536)
                    except OSError:
                        break
        finally:
            proc.kill()
            proc.wait(10)
            os.close(leader)
    assert b"end-of-state" in output, f"the live view never drew the state: {bytes(output[-300:])!r}"
    assert b"evil" in output and b"pwned-title" in output      # the text is shown, its controls are not
    assert b"\x1b]" not in output, "an OSC sequence (title, clipboard) reached the terminal"
    assert b"\x07" not in output
    assert "\u009b".encode() not in output, "a C1 control (CSI) reached the terminal"
    assert b"\x1b[2J" not in output.replace(b"\x1b[H\x1b[2J", b""), "a host-chosen CSI reached the terminal"


# --- item 12: the token never shows ---------------------------------------------------

SECRET = "s3cret-Tok3n"


def accept_and_stay(connection: HostConnection) -> None:
    connection.accept()
    connection.send_frame(OP_TEXT, full_state())
    connection.wait_for_close(30)


def test_query_token_is_redacted_in_every_line(viewers):
    with RawHost(accept_and_stay) as host:
        viewer = viewers(f"{host.url}/live?token={SECRET}", "--format", "json-lines", "--log-level", "trace")
        viewer.wait_for_stdout(lambda line: '"seq":1' in line, 15, "the first state")
        viewer.wait_for_stderr("connected to", 10)
        assert f"token={SECRET}" in host.snapshot()[0].request.path     # the host still gets it
        viewer.interrupt()
        assert viewer.wait(10) == 0
    output = "\n".join(viewer.stderr_lines() + viewer.stdout_lines())
    assert SECRET not in output, [line for line in output.splitlines() if SECRET in line]
    assert "token=" in output                                           # redacted, not dropped silently


def test_token_file_sends_the_token_and_never_prints_it(viewers, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(SECRET + "\n")
    with RawHost(accept_and_stay) as host:
        viewer = viewers(host.url, "--token-file", str(token_file), "--format", "json-lines", "--log-level", "trace")
        viewer.wait_for_stdout(lambda line: '"seq":1' in line, 15, "the first state")
        assert host.snapshot()[0].request.headers.get("authorization") == f"Bearer {SECRET}"
        viewer.interrupt()
        assert viewer.wait(10) == 0
    assert SECRET not in "\n".join(viewer.stderr_lines() + viewer.stdout_lines())


def test_token_file_problems_and_help():
    binary = str(viewer_binary())
    missing = subprocess.run([binary, "ws://127.0.0.1:9", "--token-file", "/nonexistent/token"],
                             capture_output=True, text=True, timeout=20)
    assert missing.returncode == 2
    assert "/nonexistent/token" in missing.stderr and "--token-file" in missing.stderr
    both = subprocess.run([binary, "ws://127.0.0.1:9", "--token", "a", "--token-file", "/etc/hostname"],
                          capture_output=True, text=True, timeout=20)
    assert both.returncode in (2, 64) and "--token-file" in both.stderr
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=20).stdout
    assert "--token-file" in help_text
    assert "ps" in help_text.split("--token-file")[0].split("--token ")[-1], "--help does not warn that --token shows in ps"


# --- item 13: redirects are refusals, and the token stays home ------------------------

def test_redirect_is_a_refusal_and_the_token_is_not_sent_elsewhere(viewers):
    with RawHost(accept_and_stay) as elsewhere:
        def redirecting(connection: HostConnection) -> None:
            connection.send_raw((f"HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:{elsewhere.port}/steal\r\n"
                                 "Content-Length: 0\r\nConnection: close\r\n\r\n").encode())
            time.sleep(0.5)

        with RawHost(redirecting) as host:
            viewer = viewers(host.url, "--token", SECRET, "--format", "json-lines", "--no-jitter")
            viewer.wait_for_stderr("redirect", 15)
            # The marker: the viewer came back for a second attempt, so it had every chance to follow.
            wait_until(lambda: len(host.snapshot()) >= 2, 15, "a second attempt")
            assert elsewhere.snapshot() == [], "the viewer followed the redirect (with the token)"
            line = next(line for line in viewer.stderr_lines() if "redirect" in line)
            assert "302" in line and f"127.0.0.1:{elsewhere.port}" in line, line
            assert SECRET not in "\n".join(viewer.stderr_lines())


# --- item 14: a poisoned epoch cannot stop failover -------------------------------------

def test_a_huge_epoch_cannot_stop_the_viewer_reaching_a_healthy_host(viewers):
    def poisoning(connection: HostConnection) -> None:
        if connection.index > 0:
            return                                             # refuses by closing at once
        connection.accept()
        connection.send_frame(OP_TEXT, full_state("poison", 5, "E" * 6000))
        time.sleep(0.3)
        connection.send_frame(OP_CLOSE, b"\x03\xe9")            # 1001: go elsewhere
        connection.wait_for_close(5)

    def healthy(connection: HostConnection) -> None:
        connection.accept()
        connection.send_frame(OP_TEXT, full_state("healthy", 1, "good-epoch"))
        connection.wait_for_close(30)

    with RawHost(poisoning) as bad, RawHost(healthy) as good:
        viewer = viewers(bad.url, good.url, "--format", "json-lines", "--no-jitter", "--failover-delay-ms", "0")
        viewer.wait_for_stdout(lambda line: '"name":"poison"' in line, 15, "the poisoned state")
        viewer.wait_for_stdout(lambda line: '"name":"healthy"' in line, 30, "the healthy host's state")
        for connection in good.snapshot():
            assert len(connection.request.path) < 200, connection.request.path[:100]
            assert "EEEE" not in connection.request.path
