"""`GET /metrics` (Prometheus text format 0.0.4, parsed with the official
`prometheus_client` parser), `/healthz` and `/readyz` (issue 17), against real
hosts and relays. Every metric is listed in docs/OPERATIONS.md; a test checks
that list against what a host and a relay expose.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from conftest import REPO_ROOT
from hostile import tcp_connect, upgrade_request
from test_relay_redis import publishing_host, redis_server, start_relay  # noqa: F401 (fixtures)
from viewer_servers import wait_until

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def scrape(server: Any, query: str = "") -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}; fails unless 200 and 0.0.4."""
    with _HTTP.open(f"{server.http_url}/metrics{query}", timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4"), answer.headers["Content-Type"]
        text = answer.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"no {name}{labels} in {sorted(k for k in samples if k[0] == name)}"
    return samples[key]


class EventStream:
    """A raw `GET /events` reader kept open (counted as an SSE viewer)."""

    def __init__(self, port: int) -> None:
        self.sock = tcp_connect(port)
        self.sock.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head[:80]

    def close(self) -> None:
        self.sock.close()


def test_metrics_count_viewers_by_kind_envelopes_bytes_and_debounce(start_host, session_file, connect):
    host = start_host(session_file, "--debounce-ms", "1000", stdin=True)
    viewer = connect(host)
    viewer.next()
    stream = EventStream(host.port)
    try:
        wait_until(lambda: host.status()["clientCount"] == 2, 10, "two viewers")
        before = scrape(host)
        assert value(before, "statecast_viewers", kind="websocket") == 1
        assert value(before, "statecast_viewers", kind="sse") == 1
        assert value(before, "statecast_full_states_total", reason="newcomer") == 2

        # Five changes in one write, inside one 1-second window: one config_update.
        host.send_lines([{"config": {"speed": n}} for n in range(2, 7)])
        assert viewer.next().payload == {"speed": 6}
        after = wait_until(lambda: (s := scrape(host)) and value(s, "statecast_envelopes_sent_total", type="config_update") == 2 and s,
                           10, "the config_update counted for both viewers")
        assert value(after, "statecast_debounce_changes_total") == 5
        assert value(after, "statecast_debounce_flushes_total", result="sent") == 1
        assert value(after, "statecast_bytes_sent_total", type="config_update") > 2 * len('{"speed":6}')
        assert value(after, "statecast_envelopes_sent_total", type="session_update") == 2
        assert value(after, "statecast_seq") == host.status()["seq"]
        assert value(after, "process_resident_memory_bytes") > 1_000_000
        assert value(after, "process_open_fds") >= 3
    finally:
        stream.close()


def test_refusals_are_counted_by_reason_and_metrics_need_the_token(start_host, session_file):
    host = start_host(session_file, "--token", "m3trics")
    code, _ = host.http_get("/metrics")
    assert code == 401
    for _ in range(3):
        with pytest.raises(InvalidStatus):
            ws_connect(host.url + "?token=wrong", open_timeout=10).close()
    code, _ = host.http_get("/events")
    assert code == 401
    samples = scrape(host, "?token=m3trics")
    assert value(samples, "statecast_handshakes_refused_total", reason="unauthorized") == 4
    assert value(samples, "statecast_handshakes_refused_total", reason="full") == 0


@pytest.mark.timeout(60)
def test_a_viewer_that_never_answers_pings_is_counted_as_a_heartbeat_hang_up(start_host, session_file):
    host = start_host(session_file, "--ping-interval-s", "1", "--ping-timeout-s", "2")
    silent = tcp_connect(host.port)
    try:
        silent.sendall(upgrade_request(host.port))
        assert silent.recv(4096).startswith(b"HTTP/1.1 101")
        # It reads nothing more and answers no ping: the sweep hangs up on it.
        wait_until(lambda: value(scrape(host), "statecast_viewers_dropped_total", reason="heartbeat") == 1,
                   30, "the heartbeat hang-up counted")
        assert host.status()["clientCount"] == 0
    finally:
        silent.close()


def http_json(server: Any, path: str) -> tuple[int, dict[str, Any]]:
    code, body = server.http_get(path)
    return code, json.loads(body)


def test_healthz_and_readyz_answer_without_the_token(start_host, session_file):
    host = start_host(session_file, "--token", "s3cret")
    assert http_json(host, "/healthz") == (200, {"status": "ok"})
    assert http_json(host, "/readyz") == (200, {"status": "ready"})


@pytest.mark.timeout(90)
def test_a_relay_is_not_ready_while_redis_is_away_and_says_so_in_metrics(
        start_host, start_relay, redis_server, session_file):
    host = publishing_host(start_host, session_file, redis_server, "watched")
    relay = start_relay(redis_server, "watched")
    assert http_json(relay, "/readyz") == (200, {"status": "ready"})
    samples = scrape(relay)
    assert value(samples, "statecast_relay_redis_up") == 1
    assert value(samples, "statecast_relay_lag_envelopes") == 0

    redis_server.kill()
    wait_until(lambda: http_json(relay, "/readyz")[0] == 503, 30, "/readyz 503 with Redis gone")
    code, body = http_json(relay, "/readyz")
    assert body["status"] == "not ready" and "Redis" in body["reason"], body
    assert http_json(relay, "/healthz") == (200, {"status": "ok"})  # alive all the same
    assert value(scrape(relay), "statecast_relay_redis_up") == 0

    redis_server.start()  # same port
    host.send_line({"config": {"speed": 42}})
    wait_until(lambda: http_json(relay, "/readyz")[0] == 200, 45, "/readyz 200 with Redis back")
    assert value(scrape(relay), "statecast_relay_redis_up") == 1


def test_operations_doc_lists_every_metric_a_host_and_a_relay_expose(start_host, start_relay, redis_server, session_file):
    host = publishing_host(start_host, session_file, redis_server, "listed")
    relay = start_relay(redis_server, "listed")
    names = {name for name, _ in scrape(host)} | {name for name, _ in scrape(relay)}
    documented = set(re.findall(r"^\| `([a-z_]+)`", (REPO_ROOT / "docs" / "OPERATIONS.md").read_text(), re.M))
    # Counters appear in a scrape under their family name plus _total.
    assert names <= documented, f"undocumented: {sorted(names - documented)}"
    assert documented <= names, f"documented but not exposed: {sorted(documented - names)}"
