"""Viewers that misbehave: oversized frames, chatter, a viewer that stops reading."""

from __future__ import annotations

import json
import threading
import time

import pytest

from raw_ws import OP_TEXT, ConnectionEnded, RawWebSocket

POLL = ("--client-poll-ms", "100")


def test_viewer_sending_one_mib_frame_is_closed_1009_and_others_keep_receiving(
    start_host, connect, session_file
):
    host = start_host(session_file, "--no-watch", *POLL, stdin=True)
    bystander = connect(host)
    bystander.next()

    raw = RawWebSocket("127.0.0.1", host.port)
    first = raw.recv()
    assert first.kind == "text" and json.loads(first.text)["type"] == "session_update"
    host.wait_for_status(lambda s: s["clientCount"] == 2)

    send_error: list[BaseException] = []

    def send_big() -> None:
        try:
            raw.send_frame(OP_TEXT, b"a" * (1 << 20))
        except OSError as e:  # the host may hang up before taking it all
            send_error.append(e)

    sender = threading.Thread(target=send_big, daemon=True)
    sender.start()
    try:
        while True:
            msg = raw.recv(timeout=10)
            if msg.kind == "close":
                break
    except ConnectionEnded as e:
        pytest.fail(f"host dropped the connection without a close frame ({e}); expected close code 1009")
    assert msg.close_code == 1009, msg
    sender.join(timeout=10)
    raw.abort()

    host.wait_for_status(lambda s: s["clientCount"] == 1)
    host.send_line({"config": {"speed": 2}})
    env = bystander.next(timeout=5)
    assert env.type == "config_update" and env.payload == {"speed": 2}
    assert not bystander.closed.is_set()


def test_messages_from_viewers_are_ignored(start_host, connect, session_file, session):
    host = start_host(session_file, "--no-watch", *POLL, stdin=True)
    chatty = connect(host)
    chatty.next()
    for message in ("hello", b"\x00\x01\x02", '{"type":"session_update","seq":1,"payload":{}}', "x" * 60000):
        chatty.send(message)
    host.send_line({"config": {"speed": 2}})
    env = chatty.next(timeout=5)
    assert env.type == "config_update" and env.payload == {"speed": 2}
    assert connect(host).next().payload == {**session, "config": {**session["config"], "speed": 2}}
    assert host.status()["clientCount"] in (1, 2)


@pytest.mark.timeout(240)
def test_stalled_viewer_does_not_grow_host_memory_and_catches_up_with_a_session_update(
    start_host, connect, session_file, session, measure
):
    updates = 5000
    blob_size = 10_000
    rss_bound_kb = 64 * 1024

    host = start_host(
        session_file,
        "--no-watch",
        "--debounce-ms", "0",
        "--ping-interval-s", "300",  # the stalled viewer must not be hung up on for silence
        "--ping-timeout-s", "600",
        *POLL,
        stdin=True,
    )
    readers = [connect(host, compression=None) for _ in range(2)]
    for r in readers:
        r.next()
    # A small receive buffer so the host's output to it backs up after a few KiB.
    stalled = RawWebSocket("127.0.0.1", host.port, rcvbuf=4096)
    host.wait_for_status(lambda s: s["clientCount"] == 3)

    # Every 10th line changes data (-> session_update), the others config (-> config_update),
    # each ~10 KB; the last one is a config line.
    lines = []
    expected = session
    for i in range(updates):
        blob = f"{i:06d}" + "x" * (blob_size - 6)
        if i % 10 == 0:
            line = {"data": {"i": i, "blob": blob}}
            expected = {**expected, "data": line["data"]}
        else:
            line = {"config": {"i": i, "blob": blob}}
            expected = {**expected, "config": {**expected["config"], **line["config"]}}
        lines.append(line)
    assert "config" in lines[-1]

    with host.peak_rss() as rss:
        t0 = time.monotonic()
        for start in range(0, updates, 50):
            host.send_lines(lines[start : start + 50])
        deadline = time.monotonic() + 150
        while any(r.state != expected for r in readers):
            assert time.monotonic() < deadline, "reading viewers did not reach the final state"
            for r in readers:
                assert not r.closed.is_set(), f"reading viewer closed with code {r.close_code}"
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        time.sleep(0.5)  # let RSS settle after the burst
    baseline, peak = rss["baseline"], rss["peak"]

    for i, r in enumerate(readers):
        seqs = [e.seq for e in r.received]
        assert seqs == sorted(set(seqs)), f"reader {i}: seqs not strictly increasing"
    received = [len(r.received) - 1 for r in readers]

    growth = peak - baseline
    measure(
        f"{updates} updates of ~10 KB in {elapsed:.1f} s; readers got {received} envelopes; "
        f"host RSS baseline {baseline / 1024:.1f} MB, peak {peak / 1024:.1f} MB (+{growth / 1024:.1f} MB) "
        f"with one stalled viewer"
    )
    assert growth < rss_bound_kb, f"host RSS grew by {growth / 1024:.1f} MB with a stalled viewer (bound 64 MB)"
    assert host.poll() is None

    # The stalled viewer reads again: whatever was queued, then a fresh full state.
    state = None
    seqs = []
    texts = 0
    caught_up = False
    deadline = time.monotonic() + 60
    while not caught_up:
        msg = stalled.recv(timeout=max(0.1, deadline - time.monotonic()))
        assert msg.kind == "text", f"stalled viewer got {msg}"
        texts += 1
        body = json.loads(msg.text)
        seqs.append(body["seq"])
        if body["type"] == "session_update":
            state = body["payload"]
            caught_up = state == expected
        elif body["type"] == "config_update":
            state = {**state, "config": {**state["config"], **body["payload"]}}
    assert seqs == sorted(set(seqs)), "stalled viewer: seqs not strictly increasing"
    measure(f"stalled viewer read {texts} envelopes before a session_update with the latest state")
    stalled.abort()
