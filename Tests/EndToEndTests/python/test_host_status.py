"""GET /status, the viewer-count line, and connection churn."""

from __future__ import annotations

import json

import pytest
from websockets.sync.client import connect as ws_connect

from raw_ws import RawWebSocket

POLL = ("--client-poll-ms", "100")


def test_status_describes_the_host(start_host, session_file):
    host = start_host(session_file, "--no-watch")
    st = host.status()
    assert st["running"] is True
    assert st["port"] == host.port
    assert st["clientCount"] == 0
    assert isinstance(st["seq"], int)
    assert isinstance(st["uptimeSeconds"], (int, float)) and st["uptimeSeconds"] >= 0
    assert isinstance(st["localIp"], str) and st["localIp"]


def test_other_http_paths_are_404(start_host, session_file):
    host = start_host(session_file, "--no-watch")
    for path in ("/nope", "/index.html", "/status.json"):
        code, _ = host.http_get(path)
        assert code == 404, f"GET {path} answered {code}"
    assert host.status()["running"] is True


def test_client_count_follows_viewers_coming_and_going(start_host, connect, session_file):
    host = start_host(session_file, "--no-watch", *POLL)
    host.wait_for_line(r"^Viewers can connect to:$")
    host.wait_for_line(r"^\s+ws://[^\s]+:%d/$" % host.port)

    since = len(host.lines)
    viewers = [connect(host) for _ in range(3)]
    for v in viewers:
        v.next()
    host.wait_for_status(lambda s: s["clientCount"] == 3)
    host.wait_for_line(r"^3 viewers connected$", since=since)

    since = len(host.lines)
    viewers[0].close()
    viewers[1].close()
    host.wait_for_status(lambda s: s["clientCount"] == 1)
    host.wait_for_line(r"^1 viewer connected$", since=since)

    since = len(host.lines)
    viewers[2].close()
    host.wait_for_status(lambda s: s["clientCount"] == 0)
    host.wait_for_line(r"^0 viewers connected$", since=since)


@pytest.mark.timeout(150)
def test_connect_disconnect_churn_returns_to_zero_without_growing(start_host, connect, session_file, measure):
    host = start_host(session_file, "--no-watch", *POLL)

    def cycle(i: int) -> None:
        if i % 2 == 0:
            # A polite client: handshake, read the newcomer's state, closing handshake.
            with ws_connect(host.url, proxy=None, open_timeout=10, close_timeout=5, ping_interval=None) as ws:
                env = json.loads(ws.recv(timeout=10))
                assert env["type"] == "session_update"
        else:
            # A rude one: handshake, then drop the TCP connection unread.
            RawWebSocket("127.0.0.1", host.port).abort()

    for i in range(100):  # warm-up: allocator pools, lazily created state
        cycle(i)
    host.wait_for_status(lambda s: s["clientCount"] == 0, timeout=30)
    baseline = host.rss_kb()

    for i in range(2000):
        cycle(i)

    host.wait_for_status(lambda s: s["clientCount"] == 0, timeout=30)
    growth = host.rss_kb() - baseline
    measure(f"RSS {baseline / 1024:.1f} MB after warm-up, {growth / 1024:+.2f} MB after 2000 connect/disconnect cycles")
    assert growth < 10 * 1024, f"RSS grew by {growth} KiB over 2000 cycles"

    # Still serving.
    viewer = connect(host)
    assert viewer.next().type == "session_update"
