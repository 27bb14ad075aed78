"""Updates from --stdin reach viewers: envelopes, debounce, classification, fan-out."""

from __future__ import annotations

import time

# Timers may fire a hair early relative to our clock reading; the debounce
# lower bound is checked with this much slack.
TIMER_SLACK = 0.005
DEBOUNCE = 0.250


def assert_marker_comes_next(host, viewers, tag):
    """A negative check that observes something: sends a marker change and asserts
    it is the next envelope every viewer gets. Anything the host sent wrongly
    before the marker (a duplicate, a broadcast meant for one viewer) arrives first."""
    host.send_line({"metadata": {"marker": tag}})
    for i, v in enumerate(viewers):
        env = v.next(timeout=10)
        assert env.type == "session_update" and env.payload["metadata"] == {"marker": tag}, (
            f"viewer {i} got {env.raw[:200]} before the marker {tag!r}"
        )


def test_third_party_client_without_subprotocol_gets_session_file(start_host, connect, session_file, session):
    host = start_host(session_file, "--no-watch")
    viewer = connect(host)  # python-websockets, no subprotocol requested
    assert viewer.ws.subprotocol is None
    env = viewer.next()
    assert env.type == "session_update"
    assert isinstance(env.seq, int)
    assert env.payload == session
    # Compact JSON text. Extra members are allowed by the protocol (clients ignore them).
    assert {"type", "seq", "payload"} <= set(env.body)
    assert "\n" not in env.raw and ", " not in env.raw and '": ' not in env.raw
    assert host.session_name == session["name"]


def test_config_line_gives_each_viewer_one_config_update_after_the_debounce(
    start_host, connect, session_file, measure
):
    host = start_host(session_file, "--no-watch", stdin=True)
    viewers = [connect(host) for _ in range(4)]
    first_seqs = [v.next().seq for v in viewers]

    t0 = time.monotonic()
    host.send_line('{"config":{"speed":2}}')

    latencies = []
    for v, first in zip(viewers, first_seqs):
        env = v.next(timeout=5)
        assert env.type == "config_update", env.raw
        assert env.payload == {"speed": 2}
        assert env.seq > first
        latency = env.at - t0
        latencies.append(latency)
        # Only the lower bound is a property; how late it comes depends on the machine's load.
        assert latency >= DEBOUNCE - TIMER_SLACK, f"config_update after {latency:.3f} s, before the 250 ms debounce"
        assert v.state["config"]["speed"] == 2
    assert len({v.received[-1].seq for v in viewers}) == 1, "viewers saw different seqs for the same update"
    assert_marker_comes_next(host, viewers, "after one config_update")
    measure(f"stdin config line -> config_update latency {min(latencies):.3f}-{max(latencies):.3f} s (debounce 250 ms)")


def test_debounce_zero_sends_at_once(start_host, connect, session_file, measure):
    host = start_host(session_file, "--no-watch", "--debounce-ms", "0", stdin=True)
    viewer = connect(host)
    viewer.next()
    t0 = time.monotonic()
    host.send_line({"config": {"speed": 7}})
    env = viewer.next(timeout=5)
    assert env.type == "config_update" and env.payload == {"speed": 7}
    latency = env.at - t0
    measure(f"--debounce-ms 0 latency {latency * 1000:.1f} ms")


def test_thirty_rapid_lines_give_one_config_update_with_final_values(start_host, connect, session_file):
    host = start_host(session_file, "--no-watch", stdin=True)
    viewers = [connect(host) for _ in range(3)]
    for v in viewers:
        v.next()

    for i in range(30):  # one write each, no pauses: well within one 250 ms window
        host.send_line({"config": {"speed": 100 + i, "mode": f"mode-{i}"}})

    for v in viewers:
        env = v.next(timeout=5)
        assert env.type == "config_update", env.raw
        assert env.payload == {"speed": 129, "mode": "mode-29"}
    assert_marker_comes_next(host, viewers, "after thirty lines")


def test_data_change_gives_one_session_update(start_host, connect, session_file, session):
    host = start_host(session_file, "--no-watch", stdin=True)
    viewers = [connect(host) for _ in range(3)]
    for v in viewers:
        v.next()

    new_data = {"points": [], "label": "changed", "nested": {"deep": [1, {"x": None}]}}
    host.send_line({"data": new_data})

    expected = {**session, "data": new_data}
    for v in viewers:
        env = v.next(timeout=5)
        assert env.type == "session_update", env.raw
        assert env.payload == expected
    assert_marker_comes_next(host, viewers, "after a data change")


def test_same_values_again_send_nothing(start_host, connect, session_file, session):
    # Without debouncing each line is classified on its own, so the marker that
    # follows cannot be coalesced with them: anything they sent would come first.
    host = start_host(session_file, "--no-watch", "--debounce-ms", "0", stdin=True)
    viewer = connect(host)
    viewer.next()
    host.send_line({"config": {"speed": session["config"]["speed"]}})
    host.send_line({"name": session["name"]})
    host.send_line({"session": session})
    assert_marker_comes_next(host, [viewer], "after the same values")
    # ... and the host is still listening to stdin.
    host.send_line({"config": {"speed": 3}})
    assert viewer.next(timeout=5).payload == {"speed": 3}


def test_stdin_patch_and_replace_semantics(start_host, connect, session_file, session):
    host = start_host(session_file, "--no-watch", stdin=True)
    viewer = connect(host)
    viewer.next()

    # config is merged key by key: untouched keys stay. A new key ("extra") makes it a
    # session_update (SPEC §2: a derived whitelist would reject it in a config_update).
    host.send_line({"config": {"mode": "calm", "extra": [1, 2]}})
    env = viewer.next(timeout=5)
    current = {**session, "config": {**session["config"], "mode": "calm", "extra": [1, 2]}}
    assert env.type == "session_update" and env.payload == current
    host.send_line({"config": {"mode": "wave", "extra": [3]}})
    env = viewer.next(timeout=5)
    assert env.type == "config_update" and env.payload == {"mode": "wave", "extra": [3]}
    current = {**current, "config": {**current["config"], "mode": "wave", "extra": [3]}}
    assert viewer.state == current

    # metadata is replaced, not merged.
    host.send_line({"metadata": {"only": True}})
    env = viewer.next(timeout=5)
    assert env.type == "session_update"
    current = {**current, "metadata": {"only": True}}
    assert env.payload == current

    # {"session": …} replaces everything; a removed config key means a full update.
    replacement = {"name": "replaced", "data": [1, 2, 3], "config": {"speed": 9}, "metadata": {}}
    host.send_line({"session": replacement})
    env = viewer.next(timeout=5)
    assert env.type == "session_update"
    assert env.payload == replacement
    assert_marker_comes_next(host, [viewer], "after the replacement")


def test_malformed_stdin_lines_are_reported_and_skipped(start_host, connect, session_file):
    host = start_host(session_file, "--no-watch", stdin=True)
    viewer = connect(host)
    viewer.next()

    host.send_line('{"config":{"speed":2}')  # line 1: truncated
    host.send_line("[1, 2, 3]")  # line 2: not an object
    host.send_line('{"config": 5}')  # line 3: config is not an object
    host.send_line("this is not JSON")  # line 4: not JSON at all
    host.send_line({"config": {"speed": 3}})  # line 5: fine

    for n in (1, 2, 3, 4):
        host.wait_for_stderr(rf"^statecast-host: (?:warning: )?stdin line {n}: .+; line skipped$", timeout=5)
    env = viewer.next(timeout=5)
    assert env.type == "config_update" and env.payload == {"speed": 3}
    assert_marker_comes_next(host, [viewer], "after the malformed lines")
    assert host.poll() is None
    assert not any("stdin line 5" in line for line in host.stderr_lines)


def test_fifty_viewers_get_every_update_in_order_and_a_newcomer_gets_full_state(
    start_host, connect, real_viewer, session_file, session
):
    host = start_host(session_file, "--no-watch", stdin=True)
    viewers = [connect(host) for _ in range(50)]
    for v in viewers:
        env = v.next()
        assert env.type == "session_update" and env.payload == session
    ours = real_viewer(host)
    deadline = time.monotonic() + 20
    while ours.held() != session:
        assert time.monotonic() < deadline, f"statecast-viewer holds {ours.held()} instead of the first state"
        time.sleep(0.05)

    updates = [
        ({"config": {"speed": 2}}, "config_update"),
        ({"data": {"points": [[5, 5]]}}, "session_update"),
        ({"config": {"mode": "calm", "enabled": False}}, "config_update"),
    ]
    expected = session
    for line, kind in updates:
        host.send_line(line)  # the next one only after everyone has this one
        for i, v in enumerate(viewers):
            env = v.next(timeout=5)
            assert env.type == kind, f"viewer {i}: {env.raw[:200]}"
        expected = viewers[0].state

    assert expected == {
        **session,
        "data": {"points": [[5, 5]]},
        "config": {"speed": 2, "mode": "calm", "enabled": False},
    }
    seqs = [[e.seq for e in v.received] for v in viewers]
    for i, s in enumerate(seqs):
        assert s == sorted(set(s)), f"viewer {i} seqs not strictly increasing: {s}"
        assert s[1:] == seqs[0][1:], f"viewer {i} saw seqs {s[1:]}, viewer 0 saw {seqs[0][1:]}"
        assert viewers[i].state == expected

    newcomer = connect(host)
    env = newcomer.next()
    assert env.type == "session_update"
    assert env.payload == expected
    assert isinstance(env.seq, int)

    # The marker: the next thing all 51 get is this update, so the newcomer's
    # full state went to it alone.
    host.send_line({"config": {"speed": 4}})
    last_seq = seqs[0][-1]
    for v in [*viewers, newcomer]:
        env = v.next(timeout=5)
        assert env.type == "config_update" and env.payload == {"speed": 4}
        assert env.seq > last_seq
    # Our own viewer (statecast-viewer) holds exactly the host's state too.
    assert ours.wait_converged() == {**expected, "config": {**expected["config"], "speed": 4}}


def test_max_wait_flushes_a_continuous_stream_of_changes(start_host, connect, session_file):
    # A trailing debounce of 5 s never closes while a line comes every 100 ms; only
    # --max-wait-ms lets changes out during the stream.
    host = start_host(session_file, "--no-watch", "--debounce-ms", "5000", "--max-wait-ms", "300", stdin=True)
    viewer = connect(host)
    viewer.next()
    deadline = time.monotonic() + 30
    step = 0
    while len(viewer.received) < 3:  # the first state and two flushes, all while still sending
        assert time.monotonic() < deadline, f"{step} lines over 30 s and only {len(viewer.received) - 1} updates"
        step += 1
        host.send_line({"config": {"speed": step}})
        time.sleep(0.1)
    flushed = [e.payload["speed"] for e in viewer.received[1:3]]
    assert all(e.type == "config_update" for e in viewer.received[1:3])
    assert flushed[0] < flushed[1] <= step, f"flushes carried {flushed} while line {step} was being sent"
