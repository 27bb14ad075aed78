"""The model-based convergence test (issue 12): seeded random change scripts
against a real host, a relay fed through Redis and viewers of every kind
(ViewerClient, statecast-viewer, statecast.js under node, SSE, python-websockets),
which are cut, stalled, reconnected and killed while the host is restarted.
See convergence/__init__.py. A failure names its seed; rerun it with
`scripts/soak --seed S --scripts 1 --steps N`, or soak longer with
`scripts/soak --seed S --minutes M`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from convergence.runner import RunConfig, run_seed

# CI's fixed seeds: about a minute together on a loaded machine. Each covers
# all viewer kinds; between them the three debounce windows (0, 30, 120 ms).
CI_SEEDS = [(11, 0), (12, 30), (13, 120)]


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("seed", "debounce_ms"), CI_SEEDS, ids=[f"seed{s}-debounce{d}" for s, d in CI_SEEDS])
def test_every_viewer_converges_on_the_hosts_state(seed: int, debounce_ms: int, bin_dir: Path, tmp_path: Path) -> None:
    stats = run_seed(RunConfig(seed=seed, steps=45, debounce_ms=debounce_ms), bin_dir, tmp_path)
    print(f"seed {seed}: {stats.line()}")
    assert stats.checks >= 1 and stats.comparisons > 0
