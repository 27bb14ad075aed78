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


BACKLOG_KB = 1024
# What a stalled viewer may cost the host beyond the backlog it is allowed:
# the shared full-state snapshot, one batch buffer, allocator slack.
RSS_SLACK_KB = 6 * 1024
# What a stalled viewer can have in flight outside the host's backlog: the
# kernel's send buffer on loopback (tcp_wmem max 4 MiB) and its own 4 KiB.
SOCKET_SLACK_BYTES = 4 * 1024 * 1024 + 64 * 1024


def read_until_caught_up(stalled, expected, deadline_s=60.0):
    """What a stalled viewer reads once it reads again, up to and including the
    first session_update equal to `expected`: a list of (seq, type, bytes)."""
    read = []
    deadline = time.monotonic() + deadline_s
    while True:
        msg = stalled.recv(timeout=max(0.1, deadline - time.monotonic()))
        assert msg.kind == "text", f"stalled viewer got {msg}"
        body = json.loads(msg.text)
        read.append((body["seq"], body["type"], len(msg.text.encode())))
        if body["type"] == "session_update" and body["payload"] == expected:
            return read


def assert_conflated(read, final_seq, sent_bytes):
    """The stalled viewer's catch-up shows conflation: its queued updates were cut
    (a gap in seq), what it still got fits the backlog plus socket buffers, and
    exactly one fresh full state with the newest seq ends it."""
    seqs = [seq for seq, _, _ in read]
    assert seqs == sorted(set(seqs)), "stalled viewer: seqs not strictly increasing"
    gaps = [(a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1]
    assert gaps, f"stalled viewer got every one of {len(seqs)} updates: nothing was dropped"
    last_seq, last_type, _ = read[-1]
    assert last_type == "session_update" and last_seq == final_seq, (
        f"catch-up ended with {last_type} seq {last_seq}, not a full state at the newest seq {final_seq}"
    )
    assert gaps[-1][1] == last_seq, f"the fresh full state did not come right after the cut: gaps {gaps[-3:]}"
    queued = sum(size for _, _, size in read[:-1])
    assert queued <= BACKLOG_KB * 1024 + SOCKET_SLACK_BYTES, (
        f"stalled viewer read {queued} bytes of old updates (of {sent_bytes} sent): more than the "
        f"{BACKLOG_KB} KiB backlog plus socket buffers"
    )


@pytest.mark.timeout(240)
def test_stalled_viewer_does_not_grow_host_memory_and_catches_up_with_a_session_update(
    start_host, connect, write_session, tmp_path, session, measure
):
    updates = 5000
    blob_size = 10_000

    # "i" and "blob" are config keys from the start, so every viewer of ours accepts their updates.
    session = {**session, "config": {**session["config"], "i": -1, "blob": ""}}
    host = start_host(
        write_session(tmp_path / "s.json", session),
        "--no-watch",
        "--debounce-ms", "0",
        "--max-viewer-buffer-kb", str(BACKLOG_KB),
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
    sent_bytes = updates * blob_size

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
    bound_kb = BACKLOG_KB + RSS_SLACK_KB
    assert growth < bound_kb, (
        f"host RSS grew by {growth / 1024:.1f} MB with a stalled viewer (bound {bound_kb / 1024:.0f} MB: "
        f"the {BACKLOG_KB} KiB backlog plus slack; {sent_bytes / 1e6:.0f} MB were sent)"
    )
    assert host.poll() is None

    # The stalled viewer reads again: what was queued, then one fresh full state.
    final_seq = host.status()["seq"]
    read = read_until_caught_up(stalled, expected)
    assert_conflated(read, final_seq, sent_bytes)
    measure(f"stalled viewer read {len(read)} envelopes ({sum(b for *_, b in read) / 1e6:.1f} MB) "
            f"before a session_update with the latest state")
    # And it is in step again: the next change reaches it as the next seq, alone.
    host.send_line({"config": {"i": updates}})
    msg = stalled.recv(timeout=10)
    body = json.loads(msg.text)
    assert (body["type"], body["seq"], body["payload"]) == ("config_update", final_seq + 1, {"i": updates}), msg
    stalled.abort()
