"""Editors that save with a backup rename (vim's `backupcopy=no`, emacs) move
the watched file away and write a new one: for a moment the file is missing,
then empty (issue 17). The host waits a short window (500 ms) for the new file
before it warns; a file really deleted still warns, after that window.
"""

from __future__ import annotations

import os
import re
import time

from test_host_watch import PUBLISH_TIMEOUT, dump

MISSING = "no such file"
EMPTY = "input is empty"


def save_like_vim(path, text: str) -> None:
    """vim with backupcopy=no: rename the file to its backup, then write a new file in its place."""
    os.rename(path, path.with_name(path.name + "~"))
    time.sleep(0.1)  # the gap the editor leaves between the rename and the new file
    with open(path, "w", encoding="utf-8") as new_file:  # created empty, written, closed
        new_file.write(text)


def test_a_backup_rename_save_is_published_without_a_warning(start_host, connect, session_file, session):
    host = start_host(session_file)
    viewer = connect(host)
    assert viewer.next().payload == session

    edited = {**session, "name": "saved by vim", "data": {"v": 2}}
    save_like_vim(session_file, dump(edited))
    env = viewer.next(timeout=PUBLISH_TIMEOUT)
    assert env.type == "session_update" and env.payload == edited, env.raw

    # The marker: a real deletion warns after the window, and its check runs after the one
    # the rename above scheduled, so by the time it is printed the rename's would be too.
    since = len(host.stderr_lines)
    session_file.unlink()
    host.wait_for_stderr(rf"warning: .*{re.escape(session_file.name)}: {MISSING}", timeout=PUBLISH_TIMEOUT, since=since)
    warnings = [line for line in host.stderr_lines if "warning" in line]
    assert len(warnings) == 1 and MISSING in warnings[0], host.stderr_lines
    assert not any(EMPTY in line for line in host.stderr_lines), host.stderr_lines


def test_a_deleted_file_still_warns_once_and_keeps_the_last_good_state(start_host, connect, session_file, session):
    host = start_host(session_file)
    viewer = connect(host)
    viewer.next()
    deleted_at = time.monotonic()
    session_file.unlink()
    host.wait_for_stderr(rf"^statecast-host: warning: .*{re.escape(session_file.name)}: {MISSING}; check the path; "
                         "still serving the last good state$", timeout=PUBLISH_TIMEOUT)
    assert time.monotonic() - deleted_at >= 0.5  # not before the window: an editor could still be writing
    assert connect(host).next().payload == session
