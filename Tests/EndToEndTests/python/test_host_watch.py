"""The watched session file: editors that save by rename, invalid and missing files."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from conftest import host_state
from test_host_cli import INVALID_COLUMNS, INVALID_LINE, INVALID_SESSION, location_re

# How long a file change may take to reach a viewer: inotify + 250 ms debounce,
# on a busy machine.
PUBLISH_TIMEOUT = 5.0


def replace_by_rename(path: Path, text: str) -> None:
    """Save the way many editors do: write a temporary file beside it, rename over."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def dump(session: dict) -> str:
    return json.dumps(session, indent=2, ensure_ascii=False) + "\n"


def warnings_about(host, path: Path, since: int) -> list[str]:
    names = {str(path), str(path.resolve()), path.name}
    return [
        line
        for line in host.stderr_lines[since:]
        if "warning" in line and any(n in line for n in names)
    ]


def test_rename_replace_of_watched_file_publishes(start_host, connect, session_file, session):
    host = start_host(session_file)
    viewer = connect(host)
    assert viewer.next().payload == session

    # A config-only edit: one config_update with just that key.
    edited = {**session, "config": {**session["config"], "speed": 5}}
    replace_by_rename(session_file, dump(edited))
    env = viewer.next(timeout=PUBLISH_TIMEOUT)
    assert env.type == "config_update", env.raw
    assert env.payload == {"speed": 5}

    # A structural edit: one full session_update.
    edited = {**edited, "name": "renamed", "data": {"v": 2}}
    replace_by_rename(session_file, dump(edited))
    env = viewer.next(timeout=PUBLISH_TIMEOUT)
    assert env.type == "session_update", env.raw
    assert env.payload == edited

    # A second rename-replace still works (the watch survived the first one).
    edited = {**edited, "metadata": {"saved": 3}}
    replace_by_rename(session_file, dump(edited))
    env = viewer.next(timeout=PUBLISH_TIMEOUT)
    assert env.type == "session_update" and env.payload == edited

    # The marker: one more save is the next thing the viewer gets, so nothing extra came before it.
    edited = {**edited, "metadata": {"saved": 4}}
    replace_by_rename(session_file, dump(edited))
    env = viewer.next(timeout=PUBLISH_TIMEOUT)
    assert env.type == "session_update" and env.payload == edited
    assert not any("warning" in line for line in host.stderr_lines), host.stderr_lines


def test_invalid_file_keeps_last_good_state_and_warns_with_location(start_host, connect, session_file, session):
    host = start_host(session_file)
    viewer = connect(host)
    assert viewer.next().payload == session

    since = len(host.stderr_lines)
    replace_by_rename(session_file, INVALID_SESSION)
    m = host.wait_for_stderr(
        rf"^statecast-host: warning: {location_re(session_file)}: .*", timeout=PUBLISH_TIMEOUT, since=since
    )
    assert int(m[1]) == INVALID_LINE, m[0]
    assert int(m[2]) in INVALID_COLUMNS, m[0]

    # Nothing is published (the fixed file below is the next thing the viewer
    # gets), a newcomer gets the last good state, /status is fine.
    newcomer = connect(host)
    env = newcomer.next()
    assert env.type == "session_update" and env.payload == session
    assert host.status()["running"] is True
    # One warning for one bad save.
    assert len(warnings_about(host, session_file, since)) == 1, host.stderr_lines[since:]

    # Fixing the file publishes again.
    fixed = {**session, "data": {"fixed": True}}
    replace_by_rename(session_file, dump(fixed))
    for v in (viewer, newcomer):
        env = v.next(timeout=PUBLISH_TIMEOUT)
        assert env.type == "session_update" and env.payload == fixed


def test_missing_file_keeps_last_good_state_and_warns(start_host, connect, session_file, session):
    host = start_host(session_file)
    viewer = connect(host)
    viewer.next()

    since = len(host.stderr_lines)
    session_file.unlink()
    host.wait_for_stderr(rf"warning: .*{re.escape(session_file.name)}", timeout=PUBLISH_TIMEOUT, since=since)
    # Nothing is published: the restored file below is the next thing the viewer gets.
    assert connect(host).next().payload == session

    restored = {**session, "config": {**session["config"], "speed": 6}}
    replace_by_rename(session_file, dump(restored))
    env = viewer.next(timeout=PUBLISH_TIMEOUT)
    assert env.type == "config_update" and env.payload == {"speed": 6}


def test_no_watch_ignores_file_changes(start_host, connect, session_file, session):
    host = start_host(session_file, "--no-watch", stdin=True)
    viewer = connect(host)
    viewer.next()
    replace_by_rename(session_file, dump({**session, "name": "ignored"}))
    time.sleep(0.5)  # a watcher would see the save now (test_rename_replace… shows it does)
    # The marker, after the save: had the file been read, it would come first or be merged in.
    host.send_line({"metadata": {"marker": 1}})
    env = viewer.next(timeout=PUBLISH_TIMEOUT)
    assert env.type == "session_update" and env.payload == {**session, "metadata": {"marker": 1}}, env.raw


def test_file_rewritten_while_viewers_resume_every_viewer_converges(start_host, connect, real_viewer, session_file,
                                                                      session):
    host = start_host(session_file, "--debounce-ms", "50")
    first = connect(host).next()
    epoch, since = first.body["epoch"], first.seq
    ours = real_viewer(host)
    resumed = []
    current = session
    for i in range(30):
        if i % 5 == 4:
            current = {**current, "data": {"i": i}}
        else:
            current = {**current, "config": {**current["config"], "speed": i}}
        replace_by_rename(session_file, dump(current))
        time.sleep(0.03)
        if i % 3 == 0:
            # A viewer that held the first state comes back now, in the middle of the saves.
            resumed.append(connect(f"{host.url}?since={since}&epoch={epoch}", holding=first.payload))

    # The host ends with the last save; then our own viewer and every resumed one hold it.
    deadline = time.monotonic() + PUBLISH_TIMEOUT * 3
    while (held := host_state(host.url)) != current:
        assert time.monotonic() < deadline, f"the host serves {held}, the file holds {current}"
        time.sleep(0.1)
    expected = ours.wait_converged()
    assert expected == current
    deadline = time.monotonic() + 20
    for i, v in enumerate(resumed):
        while v.state != expected:
            assert time.monotonic() < deadline, f"resumed viewer {i} holds {v.state}, host {expected}"
            assert v.error is None and not v.closed.is_set(), f"resumed viewer {i}: {v.error!r}, code {v.close_code}"
            time.sleep(0.05)
        seqs = [e.seq for e in v.received]
        assert seqs == sorted(set(seqs)) and seqs[0] > since, f"resumed viewer {i} seqs {seqs}"
