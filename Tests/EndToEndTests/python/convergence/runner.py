"""One seeded run: a host (and a relay fed through Redis), a recorder, viewers
of every kind behind proxies, a generated script, and the checks.

    stats = run_seed(RunConfig(seed=7), bin_dir=Path(".build/debug"), workdir=tmp)

raises `ConvergenceFailure` (its message starts with the seed and the rerun
command) when the contract is broken.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from conftest import HostProcess, launch

from .generator import ScriptGenerator, Step
from .jsonvalue import canon, compact, short
from .model import HostModel
from .proxy import TcpProxy
from .recorder import Recorder, fresh_state
from .viewers import AgentViewer, CliViewer, NodeViewer, PythonViewer, SseViewer, ViewerDriver
from . import checks

KINDS = ("python", "sse", "cli", "node", "agent")
HISTORY_CAP_KB = 256
QUIET_TIMEOUT = 20.0  # the host and the recorder reach the model's state
CONVERGE_TIMEOUT = 40.0  # every viewer reaches it (reconnect backoffs included)


class ConvergenceFailure(AssertionError):
    """The contract was broken; the message names the seed and how to rerun it."""

    rerun = ""  # the one-line command that reruns the failed script
    stats: "Stats | None" = None  # what the failed script did before it failed


@dataclass
class RunConfig:
    seed: int
    steps: int = 60
    debounce_ms: int | None = None  # None: chosen from the seed among `debounce_choices`
    debounce_choices: tuple[int, ...] = (0, 30, 120)
    relay: bool = True
    restarts: bool = True
    kinds: tuple[str, ...] = KINDS


@dataclass
class Stats:
    scripts: int = 0
    changes: int = 0
    viewer_sessions: int = 0
    reconnects: int = 0
    comparisons: int = 0
    checks: int = 0
    host_restarts: int = 0
    stalls: int = 0
    cuts: int = 0
    catch_ups: int = 0  # full states over skipped seqs (conflation, resume past the history)

    def add(self, other: "Stats") -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def line(self) -> str:
        return ", ".join(f"{getattr(self, f.name)} {f.name.replace('_', ' ')}" for f in fields(self))


def rerun_command(seed: int, steps: int, debounce_ms: int) -> str:
    return f"scripts/soak --seed {seed} --scripts 1 --steps {steps} --debounce-ms {debounce_ms}"


class Run:
    def __init__(self, config: RunConfig, bin_dir: Path, workdir: Path, log: Callable[[str], None] = lambda _: None) -> None:
        self.config = config
        self.bin_dir = bin_dir
        self.workdir = workdir
        self.log = log
        self.rng = random.Random(config.seed)
        self.debounce_ms = config.debounce_ms if config.debounce_ms is not None else self.rng.choice(config.debounce_choices)
        self.stats = Stats(scripts=1)
        self.steps_done: list[str] = []
        self.processes: list[HostProcess] = []
        self.viewers: list[ViewerDriver] = []
        self.proxies: list[TcpProxy] = []
        self.stall_until: dict[int, float] = {}
        self.history_checked: dict[int, int] = {}
        self.resumes_checked: dict[int, int] = {}
        self.redis: Any = None
        self.relay: HostProcess | None = None
        self.recorder: Recorder | None = None
        self.session_file = workdir / "session.json"
        self.channel = f"conv{config.seed}"

    # -- set-up ---------------------------------------------------------------

    def host_argv(self, port: int) -> list[str]:
        argv = [str(self.bin_dir / "statecast-host"), "serve", str(self.session_file), "--stdin",
                "--bind", "127.0.0.1", "--port", str(port), "--debounce-ms", str(self.debounce_ms),
                "--max-viewer-buffer-kb", str(HISTORY_CAP_KB), "--client-poll-ms", "200"]
        if self.redis is not None:
            argv += ["--redis", self.redis.url, "--channel", self.channel]
        return argv

    def start_host(self, port: int = 0) -> None:
        last: BaseException | None = None
        for _ in range(20):
            try:
                self.host = launch(self.host_argv(port), self.processes, stdin=True)
                return
            except (RuntimeError, TimeoutError) as error:  # the old run's port not free yet
                last = error
                time.sleep(0.25)
        raise AssertionError(f"the host did not start again on port {port}: {last}")

    def write_file(self, text: str, mode: str) -> None:
        if mode == "rename":
            temporary = self.session_file.with_name(".session.json.tmp")
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, self.session_file)
        else:
            with open(self.session_file, "w", encoding="utf-8") as f:
                f.write(text)

    def make_viewer(self, kind: str, name: str, proxy: TcpProxy, rng: random.Random) -> ViewerDriver:
        if kind == "python":
            return PythonViewer(name, proxy, rng)
        if kind == "sse":
            return SseViewer(name, proxy, rng)
        if kind == "cli":
            return CliViewer(name, proxy, rng, self.workdir, self.bin_dir / "statecast-viewer")
        if kind == "node":
            if shutil.which("node") is None:
                raise AssertionError("node is not installed; scripts/setup installs it")
            return NodeViewer(name, proxy, rng, self.workdir)
        if kind == "agent":
            return AgentViewer(name, proxy, rng, self.workdir, self.bin_dir / "statecast-convergence-agent")
        raise ValueError(f"unknown viewer kind {kind!r}; use one of {', '.join(KINDS)}")

    def set_up(self) -> None:
        self.model = HostModel({"name": "", "data": None, "config": {}, "metadata": {}})
        self.generator = ScriptGenerator(self.rng, self.model, 0, self.debounce_ms, restarts=self.config.restarts)
        initial = self.generator.session(nulls=False)
        initial["metadata"]["file"] = 0
        self.model.replace(initial)
        self.file_session = initial
        self.write_file(json.dumps(initial, ensure_ascii=False, indent=2) + "\n", "rename")
        if self.config.relay:
            from test_relay_redis import RedisServer

            self.redis = RedisServer()
            self.redis.start()
        self.start_host()
        self.port = self.host.port
        if self.config.relay:
            argv = [str(self.bin_dir / "statecast-host"), "relay", "--redis", self.redis.url, "--channel", self.channel,
                    "--bind", "127.0.0.1", "--port", "0", "--max-viewer-buffer-kb", str(HISTORY_CAP_KB)]
            self.relay = launch(argv, self.processes)
        self.recorder = Recorder(self.host.url)
        self.recorder.wait_for(lambda e: canon(e.state) == canon(self.model.state), QUIET_TIMEOUT, "the initial state")

        targets = [(kind, lambda: self.host.port) for kind in self.config.kinds]
        if self.relay is not None:
            relay = self.relay
            targets.append((self.rng.choice(self.config.kinds), lambda: relay.port))
        for index, (kind, port) in enumerate(targets):
            proxy = TcpProxy(port)
            self.proxies.append(proxy)
            where = "relay" if index == len(self.config.kinds) else "host"
            viewer = self.make_viewer(kind, f"v{index}-{kind}-{where}", proxy, random.Random(self.config.seed * 1000 + index))
            self.viewers.append(viewer)
            viewer.start()
        self.generator.viewers = len(self.viewers)
        self.log(f"seed {self.config.seed}: debounce {self.debounce_ms} ms, viewers "
                 + ", ".join(v.name for v in self.viewers))

    def tear_down(self) -> None:
        for viewer in self.viewers:
            try:
                viewer.close()
            except Exception:
                pass
        for proxy in self.proxies:
            proxy.close()
        if self.recorder is not None:
            self.recorder.close()
        for process in self.processes:
            process.stop()
        if self.redis is not None:
            self.redis.kill()

    # -- running ----------------------------------------------------------------

    def sync_stdin(self) -> None:
        """Returns once the host has read every line sent so far: an invalid
        line's warning on stderr is the marker (stdin is read in order)."""
        number = self.host.send_line("#sync: not JSON")
        self.host.wait_for_stderr(rf"stdin line {number}:", timeout=QUIET_TIMEOUT)

    def wait_quiet(self) -> None:
        """The host has applied everything and published the model's state."""
        self.sync_stdin()
        want = canon(self.model.state)
        deadline = time.monotonic() + QUIET_TIMEOUT
        last: Any = None
        while True:
            _, _, last = fresh_state(self.host.url)
            if canon(last) == want:
                break
            if time.monotonic() > deadline:
                raise ConvergenceFailure(f"the host's state (what a new viewer gets) is not the state its inputs make\n"
                                         f"      host:  {short(last)}\n      model: {short(self.model.state)}")
            time.sleep(0.05)
        assert self.recorder is not None
        try:
            self.recorder.wait_for(lambda e: canon(e.state) == want, QUIET_TIMEOUT, "the host's current state")
        except AssertionError as error:
            raise ConvergenceFailure(f"a viewer that never dropped (the recorder) does not hold the host's state: {error}") from None
        if self.relay is not None:
            deadline = time.monotonic() + QUIET_TIMEOUT
            while canon(fresh_state(self.relay.url)[2]) != want:
                if time.monotonic() > deadline:
                    raise ConvergenceFailure("the relay's state (what a new viewer of it gets) is not the host's")
                time.sleep(0.05)

    def resume_stalls(self, everything: bool = False) -> None:
        now = time.monotonic()
        for index, until in list(self.stall_until.items()):
            if everything or now >= until:
                self.proxies[index].resume()
                del self.stall_until[index]

    def check(self) -> None:
        self.stats.checks += 1
        self.resume_stalls(everything=True)
        self.wait_quiet()
        assert self.recorder is not None
        want = canon(self.model.state)
        problems: list[str] = []
        deadline = time.monotonic() + CONVERGE_TIMEOUT
        for viewer in self.viewers:
            while canon(viewer.current()) != want:
                if time.monotonic() > deadline:
                    problems.append(f"{viewer.describe()} did not converge within {CONVERGE_TIMEOUT:.0f} s "
                                    f"({len(viewer.history)} states applied; {len(viewer.notes)} notes: {' | '.join(viewer.notes[-6:])})\n"
                                    f"      viewer: {short(viewer.current())}\n      host:   {short(self.model.state)}")
                    break
                time.sleep(0.05)
            self.stats.comparisons += 1
        problems += self.recorder.violations
        for index, viewer in enumerate(self.viewers):
            found, compared, catch_ups = checks.history_problems(viewer, self.recorder, self.model,
                                                                 self.history_checked.get(index, 0))
            self.history_checked[index] = len(viewer.history)
            self.stats.comparisons += compared
            self.stats.catch_ups += catch_ups
            problems += found
            problems += checks.resume_problems(viewer, self.recorder, HISTORY_CAP_KB * 1024, self.resumes_checked.get(index, 0))
            self.resumes_checked[index] = len(viewer.resumes)
        if problems:
            unique = list(dict.fromkeys(problems))
            shown = unique[:12] + ([f"… and {len(unique) - 12} more"] if len(unique) > 12 else [])
            raise ConvergenceFailure("\n".join(f"  - {p}" for p in shown))

    def execute(self, step: Step) -> None:
        assert self.recorder is not None
        if step.kind == "lines":
            payload: list[Any] = []
            for line in step.lines:
                if isinstance(line, dict):
                    if self.model.apply(line):
                        self.stats.changes += 1
                payload.append(line)
            self.host.send_lines(payload)
        elif step.kind == "sleep":
            time.sleep(step.seconds)
        elif step.kind == "file":
            assert step.session is not None
            self.sync_stdin()
            self.write_file(json.dumps(step.session, ensure_ascii=False, indent=self.rng.choice([None, 2])) + "\n", step.mode)
            self.model.replace(step.session)
            self.file_session = step.session
            self.stats.changes += 1
            want = canon(step.session)
            try:
                self.recorder.wait_for(lambda e: canon(e.state) == want, QUIET_TIMEOUT, "the new session file's state")
            except AssertionError as error:
                raise ConvergenceFailure(f"the host did not publish the replaced session file ({step.mode}): {error}") from None
        elif step.kind == "file_invalid":
            self.sync_stdin()
            since = len(self.host.stderr_lines)
            self.write_file(step.text, step.mode)
            self.host.wait_for_stderr("still serving the last good state", timeout=QUIET_TIMEOUT, since=since)
            # Put a valid file back, so a host restart finds one.
            self.execute(self.generator_file_step(step.mode))
        elif step.kind == "cut":
            self.proxies[step.viewer].cut()
            self.stats.cuts += 1
        elif step.kind == "stall":
            self.proxies[step.viewer].stall()
            self.stall_until[step.viewer] = time.monotonic() + step.seconds
            self.stats.stalls += 1
            for line in step.lines:  # each in its own debounce window
                self.execute(Step("lines", lines=[line]))
                time.sleep(self.debounce_ms / 1000 * 1.5 + 0.01)
        elif step.kind == "reconnect":
            self.viewers[step.viewer].reconnect()
        elif step.kind == "kill":
            self.viewers[step.viewer].kill()
        elif step.kind == "host_restart":
            self.restart_host(step.mode)
        elif step.kind == "check":
            self.check()
        else:
            raise ValueError(f"unknown step {step.kind}")

    def generator_file_step(self, mode: str) -> Step:
        self.generator.file_revision += 1
        session = json.loads(json.dumps(self.file_session))
        session["metadata"]["file"] = self.generator.file_revision
        return Step("file", session=session, mode=mode)

    def restart_host(self, how: str) -> None:
        assert self.recorder is not None
        old_epoch = self.recorder.latest.epoch if self.recorder.latest else None
        if how == "kill":
            self.host.kill()
        else:
            self.host.terminate()
        self.host.wait(15)
        self.start_host(self.port)
        self.stats.host_restarts += 1
        self.model.replace(self.file_session)
        want = canon(self.file_session)
        try:
            self.recorder.wait_for(lambda e: e.epoch != old_epoch and canon(e.state) == want, QUIET_TIMEOUT,
                                   "the restarted host's state")
        except AssertionError as error:
            raise ConvergenceFailure(f"after a restart ({how}) the host does not serve its session file: {error}") from None

    def run(self) -> Stats:
        try:
            self.set_up()
            for number in range(self.config.steps):
                self.resume_stalls()
                step = self.generator.next_step()
                self.steps_done.append(f"{number}: {step.describe()}")
                self.execute(step)
            self.steps_done.append("final check")
            self.check()
        except ConvergenceFailure as failure:
            raise self.failure(str(failure)) from None
        except Exception as error:
            raise self.failure(f"  - the run failed: {error!r}") from error
        finally:
            self.tear_down()
            for viewer in self.viewers:
                self.stats.viewer_sessions += viewer.counts.sessions
                self.stats.reconnects += viewer.counts.reconnects
            self.stats.reconnects += sum(p.cuts for p in self.proxies)
        return self.stats

    def dump(self, path: Path) -> None:
        """Everything recorded, as JSON, for a failure that needs a closer look."""
        recorder = self.recorder
        data = {
            "seed": self.config.seed, "debounce_ms": self.debounce_ms, "steps": self.steps_done,
            "recorder": [] if recorder is None else
            [{"epoch": e.epoch, "seq": e.seq, "type": e.type, "payload": e.payload} for e in recorder.by_position.values()],
            "viewers": {v.name: {"history": [{"instance": h.instance, "epoch": h.epoch, "seq": h.seq, "type": h.type,
                                              "state": h.state} for h in v.history],
                                 "resumes": [r.__dict__ for r in v.resumes], "notes": v.notes} for v in self.viewers},
        }
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")

    def failure(self, problems: str) -> ConvergenceFailure:
        failure = ConvergenceFailure(self.report(problems))
        failure.rerun = rerun_command(self.config.seed, self.config.steps, self.debounce_ms)
        failure.stats = self.stats  # completed by run()'s teardown
        return failure

    def report(self, problems: str) -> str:
        c = self.config
        dump = os.environ.get("STATECAST_CONV_DUMP")
        if dump:
            self.dump(Path(dump))
        lines = [f"convergence failed for seed {c.seed} (debounce {self.debounce_ms} ms, {c.steps} steps); "
                 f"rerun: {rerun_command(c.seed, c.steps, self.debounce_ms)}", problems,
                 "  last steps: " + "; ".join(self.steps_done[-12:])]
        if self.recorder is not None:
            lines.append(f"  recorder: {self.recorder.envelopes} envelopes, {len(self.recorder.epochs)} epoch(s), "
                         f"{self.recorder.gaps} gap(s) where the host conflated it")
        for viewer in self.viewers:
            if viewer.notes or viewer.diagnostics():
                lines.append(f"  {viewer.name}: {viewer.diagnostics()} notes: " + " | ".join(viewer.notes[-5:]))
        return "\n".join(lines)


def run_seed(config: RunConfig, bin_dir: Path, workdir: Path | None = None, log: Callable[[str], None] = lambda _: None) -> Stats:
    if workdir is not None:
        return Run(config, bin_dir, workdir, log).run()
    with tempfile.TemporaryDirectory(prefix=f"statecast-conv-{config.seed}-") as directory:
        return Run(config, bin_dir, Path(directory), log).run()
