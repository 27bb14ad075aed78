"""Fixtures for the end-to-end tests of `statecast-host`.

Every test talks to a real host process over real sockets on 127.0.0.1:

    def test_x(start_host, connect, write_session, tmp_path):
        host = start_host(write_session(tmp_path / "s.json", SESSION), stdin=True)
        viewer = connect(host)
        assert viewer.next().payload == SESSION

* `start_host(*args, stdin=False, cwd=None)` runs `statecast-host serve --bind
  127.0.0.1 --port 0 [--stdin] *args` (stdin=True adds `--stdin` and gives the
  host a pipe that `send_line` writes to) and returns a `HostProcess` once the host printed
  `Serving "…" on 127.0.0.1:PORT`. Every host is stopped at teardown.
* `run_host(*args, timeout=30)` runs the binary to completion (for exit codes).
* `connect(host_or_url, **kwargs)` opens a `Viewer`: a `websockets` client
  (a third-party client, no subprotocol) whose reader thread timestamps every
  envelope as it arrives, so latency checks measure arrival, not our reading.
* `write_session(path, dict)` writes a session file.

The binary is taken from $STATECAST_BIN_DIR (set by scripts/test to
`swift build --show-bin-path`), else `<repo>/.build/debug`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect as ws_connect

REPO_ROOT = Path(__file__).resolve().parents[3]

# Generous bounds: the machine running the tests may be busy building.
STARTUP_TIMEOUT = 30.0
RECV_TIMEOUT = 10.0

SERVING_RE = re.compile(r'^Serving "(?P<name>.*)" on (?P<addr>[0-9.]+):(?P<port>\d+)$')

# The session most tests serve: every member present, non-ASCII text, a float.
BASE_SESSION: dict[str, Any] = {
    "name": "E2E session",
    "data": {"points": [[0, 0], [1, 2.5]], "label": "naïve ✓ 日本語"},
    "config": {"speed": 1, "mode": "wave", "enabled": True},
    "metadata": {"owner": "tests", "revision": 1},
}

# Numbers worth reporting (latency, RSS), printed at the end of the run.
_MEASUREMENTS: list[str] = []

# urllib without proxies from the environment: we only ever talk to 127.0.0.1.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A hung host must never hang the run: every test gets a timeout unless it
    # sets its own (@pytest.mark.timeout(N)).
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(60))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _MEASUREMENTS:
        terminalreporter.write_sep("-", "statecast-host measurements")
        for line in _MEASUREMENTS:
            terminalreporter.write_line(line)


@pytest.fixture
def measure(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """`measure("latency 0.25 s")` records a number for the end-of-run summary."""

    def record(text: str) -> None:
        _MEASUREMENTS.append(f"{request.node.name}: {text}")

    return record


# ---------------------------------------------------------------------------
# The host process
# ---------------------------------------------------------------------------


class HostProcess:
    """A running `statecast-host serve`, with its output collected by reader threads."""

    def __init__(self, argv: list[str], *, stdin: bool, cwd: str | os.PathLike[str] | None) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
        )
        self.lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = {"stdout": False, "stderr": False}
        self._stopping = False
        self._stdin_lines_sent = 0
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines, "stdout"), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr_lines, "stderr"), daemon=True),
        ]
        for t in self._readers:
            t.start()
        self.port = 0
        self.session_name = ""
        self.started_at = time.monotonic()

    def _read(self, stream: Any, sink: list[str], name: str) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._cond:
                sink.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof[name] = True
            self._cond.notify_all()

    def _wait_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    m = SERVING_RE.match(line)
                    if m:
                        self.port = int(m["port"])
                        self.session_name = m["name"]
                        return
                if self._eof["stdout"] or self.proc.poll() is not None:
                    # Give stderr a moment to drain so the failure says why.
                    self._cond.wait_for(lambda: self._eof["stderr"], timeout=2)
                    raise RuntimeError(
                        f"host exited with status {self.proc.poll()} before serving\n"
                        f"argv: {self.argv}\nstdout:\n" + "\n".join(self.lines)
                        + "\nstderr:\n" + "\n".join(self.stderr_lines)
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"host printed no 'Serving \"…\" on 127.0.0.1:PORT' line within {timeout} s\n"
                        f"stdout:\n" + "\n".join(self.lines) + "\nstderr:\n" + "\n".join(self.stderr_lines)
                    )
                self._cond.wait(remaining)

    # -- addresses ---------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    # -- stdin -------------------------------------------------------------

    def send_line(self, line: str | dict[str, Any]) -> int:
        """Writes one line to the host's stdin (a dict is JSON-encoded) and flushes.
        Returns the 1-based number of that line."""
        self.send_lines([line])
        return self._stdin_lines_sent

    def send_lines(self, lines: list[str | dict[str, Any]]) -> None:
        """Writes several lines in one write and flushes."""
        assert self.proc.stdin is not None, "start the host with stdin=True to use send_line"
        data = b"".join(
            (json.dumps(l, separators=(",", ":")) if isinstance(l, dict) else l).encode("utf-8") + b"\n" for l in lines
        )
        self.proc.stdin.write(data)
        self.proc.stdin.flush()
        self._stdin_lines_sent += len(lines)

    def close_stdin(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    # -- output ------------------------------------------------------------

    def _wait_for(self, sink: list[str], pattern: str, timeout: float, since: int, what: str) -> re.Match[str]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in sink[since:]:
                    m = rx.search(line)
                    if m:
                        return m
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no {what} line matching {pattern!r} within {timeout} s; {what} so far:\n" + "\n".join(sink)
                    )
                self._cond.wait(remaining)

    def wait_for_line(self, pattern: str, timeout: float = RECV_TIMEOUT, since: int = 0) -> re.Match[str]:
        """The first stdout line (from index `since`) where `pattern` matches (re.search)."""
        return self._wait_for(self.lines, pattern, timeout, since, "stdout")

    def wait_for_stderr(self, pattern: str, timeout: float = RECV_TIMEOUT, since: int = 0) -> re.Match[str]:
        """The first stderr line (from index `since`) where `pattern` matches (re.search)."""
        return self._wait_for(self.stderr_lines, pattern, timeout, since, "stderr")

    # -- resources and status -----------------------------------------------

    def rss_kb(self) -> int:
        """Resident set size of the host process (VmRSS), in KiB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/PID/status")


    @contextlib.contextmanager
    def peak_rss(self, interval: float = 0.02) -> Any:
        """Samples VmRSS in the background while the block runs.

        Yields a dict with `baseline` (KiB at entry); after the block it also
        holds `peak` (the highest KiB seen, including a last sample at exit).
        """
        result = {"baseline": self.rss_kb()}
        peak = result["baseline"]
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                try:
                    peak = max(peak, self.rss_kb())
                except (OSError, AssertionError):
                    return
                time.sleep(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield result
        finally:
            done.set()
            sampler.join(timeout=5)
            try:
                peak = max(peak, self.rss_kb())
            except (OSError, AssertionError):
                pass
            result["peak"] = peak
    def http_get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        """(status code, body) of GET `path`; HTTP errors are returned, not raised."""
        try:
            with _HTTP.open(self.http_url + path, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def status(self) -> dict[str, Any]:
        """GET /status as JSON."""
        code, body = self.http_get("/status")
        assert code == 200, f"GET /status answered {code}: {body[:200]!r}"
        return json.loads(body)

    def wait_for_status(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = RECV_TIMEOUT, interval: float = 0.05
    ) -> dict[str, Any]:
        """Polls /status until `predicate(status)` holds; returns that status."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while True:
            last = self.status()
            if predicate(last):
                return last
            if time.monotonic() >= deadline:
                raise AssertionError(f"/status did not reach the expected state within {timeout} s; last: {last}")
            time.sleep(interval)

    # -- ending --------------------------------------------------------------

    def poll(self) -> int | None:
        return self.proc.poll()

    def send_signal(self, sig: int) -> None:
        self._stopping = True
        self.proc.send_signal(sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self._stopping = True
        self.proc.kill()

    def wait(self, timeout: float = 10.0) -> int:
        """Waits for the process to exit and its output to be read; returns the exit status."""
        code = self.proc.wait(timeout)
        for t in self._readers:
            t.join(timeout=5)
        return code

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within 10 s."""
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
                self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    def died_unexpectedly(self) -> bool:
        return not self._stopping and self.proc.poll() is not None

    def describe(self, tail: int = 40) -> str:
        return (
            f"host argv: {self.argv}\nexit status: {self.proc.poll()}\n"
            f"last stdout lines:\n" + "\n".join(self.lines[-tail:])
            + "\nlast stderr lines:\n" + "\n".join(self.stderr_lines[-tail:])
        )


def require_tool(program: str, package: str) -> str:
    """The path of `program`; fails the test (never skips) when it is missing, so a
    machine without it cannot pass the suite by running less of it."""
    import shutil

    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is not installed: run scripts/setup (Debian package {package})")
    return path


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    """Folder holding the built statecast-host ($STATECAST_BIN_DIR or .build/debug)."""
    path = Path(os.environ.get("STATECAST_BIN_DIR") or REPO_ROOT / ".build" / "debug")
    return path


@pytest.fixture(scope="session")
def host_bin(bin_dir: Path) -> Path:
    exe = bin_dir / "statecast-host"
    if not os.access(exe, os.X_OK):
        pytest.fail(f"{exe} does not exist; build it with `swift build` or set STATECAST_BIN_DIR")
    return exe


def launch(argv: list[str], registry: list[HostProcess], *, stdin: bool = False,
           cwd: str | os.PathLike[str] | None = None, startup_timeout: float = STARTUP_TIMEOUT) -> HostProcess:
    """Starts a host-like process (`serve` or `relay`), waits for its "Serving" line
    and records it in `registry` for `stop_all`."""
    process = HostProcess(argv, stdin=stdin, cwd=cwd)
    registry.append(process)
    try:
        process._wait_serving(startup_timeout)
    except BaseException:
        process._stopping = True  # already reported; not a death during the test
        raise
    return process


def stop_all(registry: list[HostProcess], what: str = "the host") -> None:
    """Stops every process; fails the test if one died on its own during it."""
    problems = []
    for process in registry:
        if process.died_unexpectedly():
            problems.append(f"{what} died during the test (status {process.proc.poll()})\n{process.describe()}")
        process.stop()
        # Shown by pytest only when the test fails.
        print(process.describe())
    if problems:
        pytest.fail("\n\n".join(problems))


@pytest.fixture
def start_host(host_bin: Path) -> Any:
    hosts: list[HostProcess] = []

    def start(
        *args: str | os.PathLike[str],
        stdin: bool = False,
        cwd: str | os.PathLike[str] | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> HostProcess:
        argv = [str(host_bin), "serve", "--bind", "127.0.0.1", "--port", "0", *(["--stdin"] if stdin else []), *map(str, args)]
        return launch(argv, hosts, stdin=stdin, cwd=cwd, startup_timeout=startup_timeout)

    yield start
    stop_all(hosts)


@pytest.fixture
def run_host(host_bin: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs `statecast-host *args` to completion; returns its CompletedProcess (text)."""

    def run(*args: str | os.PathLike[str], timeout: float = 30.0, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(host_bin), *map(str, args)],
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def session() -> dict[str, Any]:
    """A fresh copy of BASE_SESSION."""
    return copy.deepcopy(BASE_SESSION)


@pytest.fixture
def session_file(tmp_path: Path, session: dict[str, Any]) -> Path:
    """`session` written to tmp_path/session.json."""
    path = tmp_path / "session.json"
    path.write_text(json.dumps(session, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def write_session() -> Callable[[Path, dict[str, Any]], Path]:
    def write(path: Path, session: dict[str, Any], *, indent: int | None = 2) -> Path:
        path.write_text(json.dumps(session, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    return write


# ---------------------------------------------------------------------------
# Viewers (third-party client: python-websockets)
# ---------------------------------------------------------------------------


def json_kind(value: Any) -> str:
    """The JSON kind a derived schema tells apart: null, boolean, number, string, array, object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def apply_envelope(state: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any] | None:
    """What our viewers (Swift `ViewerClient`, `statecast-viewer`, `statecast.js`)
    hold after envelope `body`, exactly as strict as they are (SPEC §4):
    session_update replaces; config_update merges only the keys the last full
    state's config has, with the same JSON kind (the derived whitelist), and
    drops the others; anything else changes nothing."""
    kind = body.get("type")
    if kind == "session_update":
        return body["payload"]
    if kind == "config_update":
        assert state is not None, "config_update before any session_update"
        config = dict(state.get("config", {}))
        for key, value in body["payload"].items():
            if key in config and json_kind(config[key]) == json_kind(value):
                config[key] = value
        return {**state, "config": config}
    return state


@dataclass
class Envelope:
    """One envelope received by a viewer, stamped with its arrival time (monotonic)."""

    at: float
    raw: str
    body: dict[str, Any] = field(repr=False)

    @property
    def type(self) -> str:
        return self.body.get("type")  # type: ignore[return-value]

    @property
    def seq(self) -> int:
        return self.body.get("seq")  # type: ignore[return-value]

    @property
    def payload(self) -> Any:
        return self.body.get("payload")


class Viewer:
    """A `websockets` client with a reader thread that timestamps each envelope
    and keeps `state`, the session as a viewer applying the envelopes holds it."""

    @staticmethod
    def apply(state: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any] | None:
        """What one of our viewers holds after envelope `body` (see `apply_envelope`)."""
        return apply_envelope(state, body)

    def __init__(self, url: str, *, holding: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """`holding`: the state this viewer already has (a resuming viewer's, for `?since=`)."""
        options: dict[str, Any] = {
            "open_timeout": 10,
            "close_timeout": 5,
            "max_size": None,
            "proxy": None,
            # The host's own heartbeat is under test elsewhere; no client pings here.
            "ping_interval": None,
        }
        options.update(kwargs)
        self.url = url
        self.ws: ClientConnection = ws_connect(url, **options)
        self.connected_at = time.monotonic()
        self._queue: queue.Queue[Envelope] = queue.Queue()
        self.received: list[Envelope] = []
        self.non_text: list[bytes] = []
        self.state: dict[str, Any] | None = copy.deepcopy(holding)
        self.closed = threading.Event()
        self.close_code: int | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                msg = self.ws.recv()
                at = time.monotonic()
                if isinstance(msg, bytes):
                    self.non_text.append(msg)
                    continue
                env = Envelope(at, msg, json.loads(msg))
                self.state = self.apply(self.state, env.body)
                self.received.append(env)
                self._queue.put(env)
        except ConnectionClosed:
            pass
        except BaseException as e:  # surfaced by next()
            self.error = e
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()

    def next(self, timeout: float = RECV_TIMEOUT) -> Envelope:
        """The next envelope; fails the test if none arrives within `timeout`."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            if self.error is not None:
                raise AssertionError(f"viewer reader failed: {self.error!r}") from self.error
            if self.closed.is_set():
                raise AssertionError(f"connection closed (code {self.close_code}) while waiting for an envelope")
            raise AssertionError(f"no envelope within {timeout} s") from None

    def next_until(self, predicate: Callable[[Envelope], bool], timeout: float = RECV_TIMEOUT) -> list[Envelope]:
        """Envelopes up to and including the first one for which `predicate` holds."""
        deadline = time.monotonic() + timeout
        seen: list[Envelope] = []
        while True:
            env = self.next(max(0.0, deadline - time.monotonic()))
            seen.append(env)
            if predicate(env):
                return seen

    def pending(self) -> list[Envelope]:
        """Envelopes received but not yet taken with next()."""
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def wait_closed(self, timeout: float = RECV_TIMEOUT) -> int | None:
        """Waits for the connection to end; returns the close code received."""
        assert self.closed.wait(timeout), f"connection still open after {timeout} s"
        return self.close_code

    def send(self, message: str | bytes) -> None:
        self.ws.send(message)

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
        self._thread.join(timeout=5)


@pytest.fixture
def connect() -> Any:
    viewers: list[Viewer] = []

    def open_viewer(target: HostProcess | str, **kwargs: Any) -> Viewer:
        url = target.url if isinstance(target, HostProcess) else target
        viewer = Viewer(url, **kwargs)
        viewers.append(viewer)
        return viewer

    yield open_viewer

    for v in viewers:
        v.close()


# ---------------------------------------------------------------------------
# Our own viewer, for convergence checks
# ---------------------------------------------------------------------------


def host_state(url: str, **kwargs: Any) -> dict[str, Any]:
    """The host's current state as a fresh client sees it: its first session_update."""
    viewer = Viewer(url, **kwargs)
    try:
        env = viewer.next()
        assert env.type == "session_update", f"a newcomer's first envelope was {env.raw[:200]}"
        return env.payload
    finally:
        viewer.close()


class RealViewer:
    """`statecast-viewer URL --format quiet --output FILE`: the state one of our
    real viewers holds, read back from FILE (replaced atomically by the viewer)."""

    def __init__(self, url: str, path: Path, *extra: str) -> None:
        from viewer_servers import ViewerProcess

        self.url = url
        self.path = path
        self.process = ViewerProcess(url, "--format", "quiet", "--output", str(path), *extra)

    def held(self) -> dict[str, Any] | None:
        """The state in FILE, or None before the first one."""
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def wait_converged(self, timeout: float = 20.0, **kwargs: Any) -> dict[str, Any]:
        """Waits until FILE holds exactly the host's state (as a fresh client gets it)
        and returns it. Call it once the host is quiet."""
        expected = host_state(self.url, **kwargs)
        deadline = time.monotonic() + timeout
        while self.held() != expected:
            if self.process.proc.poll() is not None:
                raise AssertionError(f"statecast-viewer exited ({self.process.proc.poll()}): {self.process.stderr_lines()[-10:]}")
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"statecast-viewer did not converge on the host's state within {timeout} s\n"
                    f"host:   {json.dumps(expected)[:600]}\nviewer: {json.dumps(self.held())[:600]}"
                )
            time.sleep(0.05)
        return expected

    def stop(self) -> None:
        self.process.kill()


@pytest.fixture
def real_viewer(tmp_path: Path) -> Any:
    """`real_viewer(host_or_url, *extra_args)` starts a `RealViewer`; all stop at teardown."""
    viewers: list[RealViewer] = []

    def start(target: HostProcess | str, *extra: str) -> RealViewer:
        url = target.url if isinstance(target, HostProcess) else target
        viewer = RealViewer(url, tmp_path / f"real-viewer-{len(viewers)}.json", *extra)
        viewers.append(viewer)
        return viewer

    yield start
    for viewer in viewers:
        viewer.stop()


@pytest.fixture
def viewers():
    """Starts statecast-viewer processes (ViewerProcess's arguments) and kills them after the test."""
    from viewer_servers import ViewerProcess  # here, not at the top: viewer_servers is a plain helper module

    started = []
    yield lambda *args: started.append(ViewerProcess(*args)) or started[-1]
    for viewer in started:
        viewer.kill()
