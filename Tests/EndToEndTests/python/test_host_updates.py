"""Updates from --stdin reach viewers: envelopes, debounce, classification, fan-out."""

from __future__ import annotations

import time

# Timers may fire a hair early relative to our clock reading; the debounce
# lower bound is checked with this much slack.
TIMER_SLACK = 0.005
DEBOUNCE = 0.250
# A quiet window longer than the debounce: anything still coming would be here by then.
QUIET = 0.75


def assert_all_quiet(viewers, seconds=QUIET):
    time.sleep(seconds)
    for i, v in enumerate(viewers):
        extra = v.pending()
        assert not extra, f"viewer {i} got unexpected envelopes: {[e.raw[:200] for e in extra]}"


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
        assert latency >= DEBOUNCE - TIMER_SLACK, f"config_update after {latency:.3f} s, before the 250 ms debounce"
        assert latency <= 2.0, f"config_update after {latency:.3f} s"
        assert v.state["config"]["speed"] == 2
    assert len({v.received[-1].seq for v in viewers}) == 1, "viewers saw different seqs for the same update"
    assert_all_quiet(viewers)
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
    assert latency < 1.0
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
    assert_all_quiet(viewers)


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
    assert_all_quiet(viewers)


def test_same_values_again_send_nothing(start_host, connect, session_file, session):
    host = start_host(session_file, "--no-watch", stdin=True)
    viewer = connect(host)
    viewer.next()
    host.send_line({"config": {"speed": session["config"]["speed"]}})
    host.send_line({"name": session["name"]})
    assert_all_quiet([viewer], DEBOUNCE + QUIET)
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
    assert_all_quiet([viewer])


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
    assert_all_quiet([viewer])
    assert host.poll() is None
    assert not any("stdin line 5" in line for line in host.stderr_lines)


def test_fifty_viewers_get_every_update_in_order_and_a_newcomer_gets_full_state(
    start_host, connect, session_file, session
):
    host = start_host(session_file, "--no-watch", stdin=True)
    viewers = [connect(host) for _ in range(50)]
    for v in viewers:
        env = v.next()
        assert env.type == "session_update" and env.payload == session

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
    assert_all_quiet(viewers)  # the 50 others get nothing extra

    host.send_line({"config": {"speed": 4}})
    last_seq = seqs[0][-1]
    for v in [*viewers, newcomer]:
        env = v.next(timeout=5)
        assert env.type == "config_update" and env.payload == {"speed": 4}
        assert env.seq > last_seq
