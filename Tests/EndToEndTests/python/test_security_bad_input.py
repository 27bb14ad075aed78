"""The bad-input suite (issue #6): malformed traffic of many kinds against one
running host, while a well-behaved `websockets` viewer stays connected for
the whole module and must receive every update.

A feeder thread writes `{"config":{"tick":N}}` to the host's stdin every
20 ms (--debounce-ms 0, so every line is one config_update). After each case
the host must still answer /status and the viewer must still be receiving;
the last test checks that the viewer got every tick with consecutive seqs
and the final state, that the slowloris and half-open connections started
with the module were dropped after the handshake timeout (10 s), and prints
the table of what the host did with each case.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

import hostile as h
from conftest import BASE_SESSION, STARTUP_TIMEOUT, HostProcess, Viewer

TICK_INTERVAL = 0.02
HANDSHAKE_TIMEOUT = 10.0  # the host's default (docs/SECURITY.md)


@dataclass
class Case:
    id: str
    what: str
    attack: Callable[[int], str]
    expect: tuple[str, ...]  # acceptable outcomes (exact, or a prefix ending in "…")

    def accepts(self, outcome: str) -> bool:
        return any(outcome == e or (e.endswith("…") and outcome.startswith(e[:-1])) for e in self.expect)


# "tick" is a config key from the start, so our viewers accept every tick's config_update.
START = {**BASE_SESSION, "config": {**BASE_SESSION["config"], "tick": -1}}


class Suite:
    def __init__(self, host: HostProcess, viewer: Viewer) -> None:
        self.host = host
        self.viewer = viewer
        self.results: list[tuple[str, str, str, bool]] = []
        self.ticks_sent = 0
        self._stop = threading.Event()
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        self.slowloris = h.Slowloris(host.port)
        self.half_open = h.HalfOpen(host.port)

    def start(self) -> None:
        self._feeder.start()
        self.slowloris.start()
        self.half_open.start()

    def _feed(self) -> None:
        while not self._stop.is_set():
            try:
                self.host.send_line({"config": {"tick": self.ticks_sent}})
            except OSError:
                return  # the host is gone; the tests report it
            self.ticks_sent += 1
            time.sleep(TICK_INTERVAL)

    def stop_feeding(self) -> int:
        self._stop.set()
        self._feeder.join(timeout=10)
        return self.ticks_sent

    def latest_tick(self) -> int:
        state = self.viewer.state or {}
        return state.get("config", {}).get("tick", -1)


@pytest.fixture(scope="module")
def suite(host_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    session_file = tmp_path_factory.mktemp("bad-input") / "session.json"
    session_file.write_text(json.dumps(START))
    argv = [str(host_bin), "serve", "--bind", "127.0.0.1", "--port", "0", "--stdin", str(session_file), "--no-watch",
            "--debounce-ms", "0", "--client-poll-ms", "100"]
    host = HostProcess(argv, stdin=True, cwd=None)
    try:
        host._wait_serving(STARTUP_TIMEOUT)
        viewer = Viewer(host.url)
        assert viewer.next().payload == START
        s = Suite(host, viewer)
        s.start()
        yield s
    finally:
        host.stop()
        print(host.describe())


# ---------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------

DROPPED = ("dropped (EOF)", "dropped (RST)")
# A request that is not HTTP or not one the host serves: a complete 4xx response
# (libwebsockets answers 403 to methods it does not know) or a dropped connection.
REFUSED = ("HTTP 4…",) + DROPPED
# RFC 6455 §7.1.7: "fail the WebSocket connection": a Close 1002, or just dropping TCP
# (libwebsockets drops at once on control frames with a 16/64-bit length).
PROTOCOL_ERROR = ("close 1002",) + DROPPED
# docs/SECURITY.md promises 1007 (LWS_SERVER_OPTION_VALIDATE_UTF8), not a dropped connection.
INVALID_UTF8 = ("close 1007",)


def http_case(id: str, what: str, data: Callable[[int], bytes], expect: tuple[str, ...], **kwargs: Any) -> Case:
    return Case(id, what, lambda port: h.send_http(port, data(port), **kwargs), expect)


def frames_case(id: str, what: str, frames: Callable[[], list[bytes]], expect: tuple[str, ...], **kwargs: Any) -> Case:
    return Case(id, what, lambda port: h.send_frames(port, *frames(), **kwargs), expect)


def version_426(port: int, version: str | None) -> str:
    request = h.upgrade_request(port, omit=("sec-websocket-version",)) if version is None else \
        h.upgrade_request(port, headers={"Sec-WebSocket-Version": version})
    answer = h.send_http_full(port, request)
    if isinstance(answer, str):
        return answer
    if answer.status == 426 and answer.headers.get("sec-websocket-version") != "13":
        return "HTTP 426 without Sec-WebSocket-Version: 13"
    return f"HTTP {answer.status}"


def traversal(port: int) -> str:
    answer = h.send_http_full(port, f"GET /../../../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    if isinstance(answer, str):
        return answer
    return f"HTTP {answer.status}" + (" LEAKED /etc/passwd" if b"root:" in answer.body else "")


def tls_client_hello() -> bytes:
    """A real TLS ClientHello, as a browser sends to an https:// URL."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


CASES: list[Case] = [
    # --- not HTTP at all, or broken HTTP -------------------------------------------------------
    http_case("garbage", "1 KiB of binary garbage instead of HTTP",
              lambda p: bytes((i * 7919) % 251 for i in range(1024)) + b"\r\n\r\n", REFUSED),
    http_case("tls-hello", "a TLS ClientHello on the plain port", lambda p: tls_client_hello(), REFUSED),
    http_case("http09", "HTTP/0.9 request line (no version)", lambda p: b"GET /\r\n\r\n",
              REFUSED + ("HTTP 200",)),  # lws takes it as HTTP/1.0 and serves the page
    http_case("truncated", "headers cut off mid-line, then FIN",
              lambda p: h.upgrade_request(p)[:60], REFUSED, then_shutdown=True),
    http_case("huge-header", "one 64 KiB header line",
              lambda p: h.upgrade_request(p, extra=["X-Big: " + "b" * 65536]), REFUSED),
    http_case("many-headers", "2 000 headers",
              lambda p: h.upgrade_request(p, extra=[f"X-H{i}: v" for i in range(2000)]),
              REFUSED),
    http_case("absurd-path", "an 8 KiB path of ../ and %00",
              lambda p: h.upgrade_request(p, path="/" + "../%00" * 1400), REFUSED),
    Case("traversal", "GET /../../etc/passwd (plain HTTP)", traversal, REFUSED),
    http_case("nul-in-header", "NUL bytes inside a header value",
              lambda p: h.upgrade_request(p, extra=["X-Nul: a\x00b\x00c"]), REFUSED + ("HTTP 101",)),
    http_case("huge-method", "a 4 KiB method name",
              lambda p: h.upgrade_request(p, method="A" * 4096), REFUSED),
    # --- upgrade requests RFC 6455 says to refuse -------------------------------------------------
    http_case("key-short", "Sec-WebSocket-Key 'abc'",
              lambda p: h.upgrade_request(p, headers={"Sec-WebSocket-Key": "abc"}), ("HTTP 400",)),
    http_case("key-not-base64", "Sec-WebSocket-Key of 24 characters, not base64",
              lambda p: h.upgrade_request(p, headers={"Sec-WebSocket-Key": "!!!!!!!!!!!!!!!!!!!!!!=="}), ("HTTP 400",)),
    http_case("key-20-bytes", "Sec-WebSocket-Key of 20 bytes in base64",
              lambda p: h.upgrade_request(p, headers={"Sec-WebSocket-Key": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}), ("HTTP 400",)),
    http_case("key-missing", "no Sec-WebSocket-Key",
              lambda p: h.upgrade_request(p, omit=("sec-websocket-key",)), ("HTTP 400",)),
    Case("version-8", "Sec-WebSocket-Version: 8", lambda p: version_426(p, "8"), ("HTTP 426",)),
    Case("version-missing", "no Sec-WebSocket-Version", lambda p: version_426(p, None), ("HTTP 426",)),
    http_case("post-upgrade", "POST with upgrade headers", lambda p: h.upgrade_request(p, method="POST"), ("HTTP 405",)),
    http_case("no-upgrade-header", "Connection: Upgrade without an Upgrade header",
              lambda p: h.upgrade_request(p, omit=("upgrade",)), ("HTTP 200",)),
    http_case("upgrade-h2c", "Upgrade: h2c instead of websocket",
              lambda p: h.upgrade_request(p, headers={"Upgrade": "h2c"}), REFUSED + ("HTTP 200",)),
    http_case("http10-upgrade", "an upgrade over HTTP/1.0",
              lambda p: h.upgrade_request(p, version_line="HTTP/1.0"), REFUSED + ("HTTP 101",)),
    Case("pipelined", "two upgrade requests in one write", h.pipelined_upgrades, ("HTTP 101, then close 1002",)),
    # --- frames a client must not send -------------------------------------------------------------
    frames_case("unmasked", "an unmasked text frame (lws 4.1.6 cannot see the mask bit; docs/SECURITY.md)",
                lambda: [h.frame(h.OP_TEXT, b"hello", mask=False)],
                ("open (then closes 1000 cleanly)", "close 1002")),
    frames_case("rsv1", "RSV1 set, no extension", lambda: [h.frame(h.OP_TEXT, b"x", rsv=4)], PROTOCOL_ERROR),
    frames_case("rsv2", "RSV2 set", lambda: [h.frame(h.OP_TEXT, b"x", rsv=2)], PROTOCOL_ERROR),
    frames_case("rsv3", "RSV3 set on a ping", lambda: [h.frame(h.OP_PING, b"x", rsv=1)], PROTOCOL_ERROR),
    *[frames_case(f"opcode-{op}", f"reserved opcode {op}", lambda op=op: [h.frame(op, b"x")], PROTOCOL_ERROR)
      for op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15)],
    frames_case("ping-fragmented", "a ping with FIN clear", lambda: [h.frame(h.OP_PING, b"x", fin=False)],
                PROTOCOL_ERROR),
    frames_case("ping-126", "a ping with 126 bytes of payload", lambda: [h.frame(h.OP_PING, b"p" * 126)],
                PROTOCOL_ERROR),
    frames_case("close-126", "a close with 126 bytes of payload",
                lambda: [h.frame(h.OP_CLOSE, h.close_payload(1000, b"r" * 124))], PROTOCOL_ERROR),
    frames_case("utf8-invalid", "text frame with bytes FF FE", lambda: [h.frame(h.OP_TEXT, b"ok \xff\xfe")],
                INVALID_UTF8),
    frames_case("utf8-split", "invalid UTF-8 across two fragments",
                lambda: [h.frame(h.OP_TEXT, b"\xe2\x82", fin=False), h.frame(h.OP_CONTINUATION, b"\x28")],
                INVALID_UTF8),
    frames_case("utf8-surrogate", "text with an encoded surrogate (ED A0 80)",
                lambda: [h.frame(h.OP_TEXT, b"\xed\xa0\x80")], INVALID_UTF8),
    frames_case("len-2^63-1", "64-bit length 2^63-1 (then 16 bytes)",
                lambda: [h.frame(h.OP_BINARY, b"z" * 16, declared_length=(1 << 63) - 1)], ("close 1009",) + PROTOCOL_ERROR),
    frames_case("len-msb", "64-bit length with the MSB set (2^63)",
                lambda: [h.frame(h.OP_BINARY, b"z" * 16, declared_length=1 << 63)], PROTOCOL_ERROR + ("close 1009",)),
    frames_case("len-all-ones", "64-bit length 2^64-1",
                lambda: [h.frame(h.OP_TEXT, b"z" * 16, declared_length=(1 << 64) - 1)], PROTOCOL_ERROR + ("close 1009",)),
    frames_case("len-nonminimal", "length 5 in the 64-bit form",
                lambda: [h.frame(h.OP_TEXT, b"hello", declared_length=5)],
                PROTOCOL_ERROR + ("open (then closes 1000 cleanly)",)),
    frames_case("continuation-first", "a continuation frame with no message started",
                lambda: [h.frame(h.OP_CONTINUATION, b"x")], PROTOCOL_ERROR),
    frames_case("data-inside-fragments", "a new text frame inside a fragmented message",
                lambda: [h.frame(h.OP_TEXT, b"a", fin=False), h.frame(h.OP_TEXT, b"b")], PROTOCOL_ERROR),
    frames_case("ping-inside-fragments", "a ping between fragments (allowed)",
                lambda: [h.frame(h.OP_TEXT, b"a", fin=False), h.frame(h.OP_PING, b"p"),
                         h.frame(h.OP_CONTINUATION, b"b")], ("open (then closes 1000 cleanly)",)),
    Case("1mib-frame", "one 1 MiB text frame (limit 64 KiB)", lambda p: h.send_big_frame(p, 1 << 20), ("close 1009",)),
    frames_case("64kib-plus-1", "65 537 bytes in 65 fragments",
                lambda: [h.frame(h.OP_BINARY, b"f" * 1024, fin=False)]
                + [h.frame(h.OP_CONTINUATION, b"f" * 1024, fin=False) for _ in range(63)]
                + [h.frame(h.OP_CONTINUATION, b"f" * 1025)], ("close 1009",)),
    frames_case("64kib-exact", "exactly 64 KiB (at the limit: allowed)",
                lambda: [h.frame(h.OP_BINARY, b"e" * 65536)], ("open (then closes 1000 cleanly)",)),
    frames_case("empty-fragments", "a message of 5 000 empty fragments",
                lambda: [h.frame(h.OP_TEXT, b"", fin=False)]
                + [h.frame(h.OP_CONTINUATION, b"", fin=False) for _ in range(5000)]
                + [h.frame(h.OP_CONTINUATION, b"")], ("open (then closes 1000 cleanly)",)),
    Case("ping-flood", "10 000 pings in one burst", lambda p: h.control_flood(p, h.OP_PING, 10_000),
         ("open, closes 1000 cleanly…",)),
    Case("pong-flood", "10 000 unsolicited pongs", lambda p: h.control_flood(p, h.OP_PONG, 10_000),
         ("open, closes 1000 cleanly (0 pongs for 10000 pongs)",)),
    *[frames_case(f"close-{code}", f"close with code {code}",
                  lambda code=code: [h.frame(h.OP_CLOSE, h.close_payload(code))], ("close 1002",))
      for code in (0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535)],
    frames_case("close-3000", "close with code 3000 (valid, registered range)",
                lambda: [h.frame(h.OP_CLOSE, h.close_payload(3000))], ("close 3000", "close 1000")),
    frames_case("close-1-byte", "close with a 1-byte payload", lambda: [h.frame(h.OP_CLOSE, b"\x03")], PROTOCOL_ERROR),
    frames_case("close-bad-utf8", "close 1000 with an invalid UTF-8 reason",
                lambda: [h.frame(h.OP_CLOSE, h.close_payload(1000, b"\xff\xfe"))],
                # The peer already sent its Close: RFC 6455 §7.1.7 lets the host just drop TCP.
                ("close 1007", "close 1002") + DROPPED),
    frames_case("data-after-close", "a text frame after our close 1000",
                lambda: [h.frame(h.OP_CLOSE, h.close_payload(1000)), h.frame(h.OP_TEXT, b"late")], ("close 1000",)),
    # --- connection-level abuse -------------------------------------------------------------------------
    Case("rst-storm", "150 connections reset with SO_LINGER 0 (50 idle, 50 mid-request, 50 upgraded)",
         lambda p: h.reset_storm(p, 50), ("150 connections reset",)),
    Case("conn-storm", "300 idle connections opened at once, then closed",
         lambda p: h.connection_storm(p, 300), ("300 idle connections opened and closed",)),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(suite: Suite, case: Case) -> None:
    before = suite.latest_tick()
    outcome = case.attack(suite.host.port)
    ok = case.accepts(outcome)
    suite.results.append((case.id, case.what, outcome, ok))

    # The host is alive, answers HTTP, and the well-behaved viewer keeps receiving.
    assert suite.host.poll() is None, f"host died during {case.id}\n{suite.host.describe()}"
    status = suite.host.status()
    assert status["running"] is True
    deadline = time.monotonic() + 10
    while suite.latest_tick() < before + 3:
        assert not suite.viewer.closed.is_set(), f"the well-behaved viewer was closed ({suite.viewer.close_code})"
        assert time.monotonic() < deadline, f"the well-behaved viewer stopped receiving during {case.id}"
        time.sleep(0.01)
    assert ok, f"{case.id}: the host did {outcome!r}; expected one of {case.expect}"


def test_zz_slow_and_silent_handshakes_dropped_and_viewer_got_every_update(suite: Suite, measure) -> None:
    # Slowloris and half-open connections: dropped after the handshake timeout.
    for name, attacker in (("slowloris", suite.slowloris), ("half-open", suite.half_open)):
        attacker.join(timeout=max(0.0, attacker.started_at + 45 - time.monotonic()))
        suite.results.append((name, "one header byte per second" if name == "slowloris" else "connect, never send",
                              f"dropped after {attacker.dropped_after:.1f} s ({attacker.how})"
                              if attacker.dropped_after is not None else "never dropped", True))
    for name, attacker in (("slowloris", suite.slowloris), ("half-open", suite.half_open)):
        assert attacker.dropped_after is not None, f"{name}: the host never dropped it ({attacker.how or 'no answer'})"
        # Not before the timeout; how much later depends on the machine's load (the attackers give up at 40 s).
        assert attacker.dropped_after >= HANDSHAKE_TIMEOUT - 1, \
            f"{name}: dropped after {attacker.dropped_after:.1f} s, before the {HANDSHAKE_TIMEOUT} s handshake timeout"

    # Every update reached the viewer connected throughout, in order.
    sent = suite.stop_feeding()
    viewer = suite.viewer
    deadline = time.monotonic() + 15
    while suite.latest_tick() != sent - 1:
        assert time.monotonic() < deadline, f"viewer at tick {suite.latest_tick()}, {sent} sent"
        time.sleep(0.02)
    assert not viewer.closed.is_set()
    envelopes = viewer.received
    seqs = [e.seq for e in envelopes]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seqs are not consecutive"
    assert [e.type for e in envelopes[1:]] == ["config_update"] * (len(envelopes) - 1)
    assert [e.payload["tick"] for e in envelopes[1:]] == list(range(sent))
    assert viewer.state == {**START, "config": {**START["config"], "tick": sent - 1}}
    assert suite.host.status()["clientCount"] == 1

    width = max(len(r[0]) for r in suite.results)
    what_width = max(len(r[1]) for r in suite.results)
    rows = [f"{'case':<{width}}  {'what was sent':<{what_width}}  what the host did"]
    rows += [f"{cid:<{width}}  {what:<{what_width}}  {outcome}{'' if ok else '   <-- UNEXPECTED'}"
             for cid, what, outcome, ok in suite.results]
    measure(f"{len(suite.results)} kinds of bad input; the viewer connected throughout got all {sent} updates "
            f"(seq {seqs[0]}…{seqs[-1]}, no gap)\n" + "\n".join(rows))
