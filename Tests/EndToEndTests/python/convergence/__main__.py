"""`python -m convergence` (run from Tests/EndToEndTests/python): seeded
convergence scripts one after another, for scripts/soak.

    python -m convergence --seed 7 --minutes 30      # seeds 7, 8, 9 … for 30 minutes
    python -m convergence --seed 7 --scripts 1      # exactly seed 7 again

Prints a line per script, the totals at the end, and every failing seed with
a one-line rerun command; exits 1 if any script failed.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

from .runner import ConvergenceFailure, RunConfig, Stats, run_seed

REPO = Path(__file__).resolve().parents[4]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/soak", description="Randomized convergence scripts against a real host.")
    parser.add_argument("--seed", type=int, default=None,
                        help="first seed (default: $STATECAST_SOAK_SEED, else random); later scripts use seed+1, seed+2 …")
    parser.add_argument("--minutes", type=float, default=None, help="keep starting scripts for this long (default 5)")
    parser.add_argument("--scripts", type=int, default=None, help="run exactly this many scripts (overrides --minutes)")
    parser.add_argument("--steps", type=int, default=80, help="steps per script (default 80)")
    parser.add_argument("--debounce-ms", type=int, default=None, help="fixed debounce (default: per seed among 0, 30, 120, 250)")
    parser.add_argument("--bin-dir", type=Path, default=None, help="folder of the built binaries (default $STATECAST_BIN_DIR or .build/debug)")
    args = parser.parse_args(argv)

    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.scripts is not None and args.scripts < 1:
        parser.error("--scripts must be at least 1")
    seed = args.seed
    if seed is None:
        seed = int(os.environ["STATECAST_SOAK_SEED"]) if os.environ.get("STATECAST_SOAK_SEED") else random.randrange(1, 10**6)
    bin_dir = args.bin_dir or Path(os.environ.get("STATECAST_BIN_DIR") or REPO / ".build" / "debug")
    for binary in ("statecast-host", "statecast-viewer", "statecast-convergence-agent"):
        if not os.access(bin_dir / binary, os.X_OK):
            print(f"soak: {bin_dir / binary} does not exist; build with `swift build --build-tests` or pass --bin-dir",
                  file=sys.stderr)
            return 2
    minutes = args.minutes if args.minutes is not None else 5.0
    deadline = time.monotonic() + minutes * 60

    print(f"soak: first seed {seed}, {args.steps} steps per script, "
          + (f"{args.scripts} script(s)" if args.scripts else f"{minutes:g} minutes"), flush=True)
    total = Stats(scripts=0)
    failures: list[tuple[int, str]] = []  # (seed, rerun command)
    count = 0
    while (count < args.scripts) if args.scripts else (count == 0 or time.monotonic() < deadline):
        current = seed + count
        count += 1
        config = RunConfig(seed=current, steps=args.steps, debounce_ms=args.debounce_ms, debounce_choices=(0, 30, 120, 250))
        started = time.monotonic()
        try:
            stats = run_seed(config, bin_dir, log=lambda line: print(f"  {line}", flush=True))
            total.add(stats)
            print(f"seed {current}: ok in {time.monotonic() - started:.1f} s ({stats.line()})", flush=True)
        except ConvergenceFailure as failure:
            total.add(failure.stats or Stats())
            failures.append((current, failure.rerun))
            print(f"seed {current}: FAILED in {time.monotonic() - started:.1f} s\n{failure}", flush=True)
        except KeyboardInterrupt:
            print("soak: interrupted", flush=True)
            break

    print(f"\nsoak: {total.line()}")
    if failures:
        print(f"soak: {len(failures)} of {total.scripts} script(s) FAILED:")
        for failed, rerun in failures:
            print(f"  seed {failed}: rerun with {rerun}")
        return 1
    print(f"soak: all {total.scripts} script(s) passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
