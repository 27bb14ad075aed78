"""The model-based convergence test (issue 12), randomized: seeded change scripts
against a real host, a relay fed through Redis and viewers of every kind
(ViewerClient, statecast-viewer, statecast.js under node, SSE, python-websockets),
which are cut, stalled, reconnected and killed while the host is restarted.
See convergence/__init__.py. A failure names its seed; rerun it with
`scripts/soak --seed S --scripts 1 --steps N`, or soak longer with
`scripts/soak --seed S --minutes M`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from convergence.runner import RunConfig, run_seed

# CI's fixed seeds: about a minute together on a loaded machine. Each covers
# all viewer kinds; between them the three debounce windows (0, 30, 120 ms).
CI_SEEDS = [(11, 0), (12, 30), (15, 120)]


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("seed", "debounce_ms"), CI_SEEDS, ids=[f"seed{s}-debounce{d}" for s, d in CI_SEEDS])
def test_every_viewer_converges_on_the_hosts_state(seed: int, debounce_ms: int, bin_dir: Path, tmp_path: Path) -> None:
    stats = run_seed(RunConfig(seed=seed, steps=45, debounce_ms=debounce_ms), bin_dir, tmp_path)
    print(f"seed {seed}: {stats.line()}")
    assert stats.checks >= 1 and stats.comparisons > 0


# ---------------------------------------------------------------------------
# What the randomized runs found, as plain scripts
# ---------------------------------------------------------------------------

import random  # noqa: E402

from conftest import BASE_SESSION  # noqa: E402
from convergence.jsonvalue import same  # noqa: E402
from convergence.proxy import TcpProxy  # noqa: E402
from convergence.recorder import Recorder  # noqa: E402
from convergence.viewers import NodeViewer, PythonViewer  # noqa: E402
from viewer_servers import free_port, wait_until  # noqa: E402

# Each line is a change SPEC §2 says must reach a viewer with a derived
# whitelist: a key added, a key whose value changes kind, a key removed and
# added back with another kind, a null (only a whole session can hold one).
WHITELIST_CHANGES = [
    {"config": {"gain": 0.5}},
    {"config": {"speed": "fast"}},
    {"config": {"mode": None}},
    {"config": {"mode": 3}},
    {"session": {**BASE_SESSION, "config": {**BASE_SESSION["config"], "speed": None}}},
    {"config": {"speed": [1, 2]}},
]


def test_a_strict_derived_whitelist_follows_keys_added_removed_and_changing_kind(start_host, session_file):
    # Seeds 20, 31 and 32 on main: these went out as config_update, which a
    # viewer whose whitelist comes from the last full state rejects forever.
    host = start_host(session_file, "--debounce-ms", "0", stdin=True)
    recorder = Recorder(host.url)
    proxy = TcpProxy(lambda: host.port)
    viewer = PythonViewer("strict", proxy, random.Random(0))
    viewer.start()
    try:
        state = dict(BASE_SESSION)
        wait_until(lambda: same(viewer.current(), state), 10, "the initial state")
        for line in WHITELIST_CHANGES:
            host.send_line(line)
            if "session" in line:
                state = line["session"]
            else:
                config = {k: v for k, v in {**state["config"], **line["config"]}.items()
                          if not (k in line["config"] and line["config"][k] is None)}
                state = {**state, "config": config}
            wait_until(lambda: same(viewer.current(), state), 10, f"the state after {line}")
        assert not viewer.strict.rejected, f"the derived whitelist rejected: {viewer.strict.rejected}"
        assert not recorder.violations, recorder.violations
    finally:
        viewer.close()
        proxy.close()
        recorder.close()


@pytest.mark.timeout(90)
def test_statecast_js_under_node_reconnects_when_a_proxy_drops_its_handshake(start_host, session_file, tmp_path):
    # Seeds 23 and 41: behind a proxy whose host is down, Node's WebSocket got
    # a connection closed before any answer and reported nothing, and
    # statecast.js stayed "connecting" after the host came back.
    port = free_port()
    proxy = TcpProxy(lambda: port)
    viewer = NodeViewer("node", proxy, random.Random(0), tmp_path)
    viewer.start()
    try:
        wait_until(lambda: "status connecting" in viewer.notes, 10, "node's first attempt")
        time.sleep(0.5)  # the attempt reaches the proxy, which drops it: nothing listens behind it yet
        assert proxy.connections == 0
        host = start_host(session_file, "--port", str(port))
        assert host.port == port
        wait_until(lambda: same(viewer.current(), BASE_SESSION), 30, "statecast.js to connect once the host is up")
    finally:
        viewer.close()
        proxy.close()
