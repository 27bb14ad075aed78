"""The viewer page in a real headless Chromium, the embedded assets, and `serve --qr`.

* The page at `/` shows the session a host serves, then a config change made on
  the host's stdin; after the host is killed it says "reconnecting in N s", and
  once a new host runs on the same port it reconnects by itself and shows the
  new state. What the page shows is read from the DOM over the DevTools
  protocol (Chromium's --remote-debugging-port, a `websockets` client).
* `/` and `/statecast.js` are byte for byte web/index.html and web/statecast.js.
* `serve --qr` prints a QR code that zbarimg decodes back to the viewer URL.

Needs Debian's `chromium` and `zbar-tools` (scripts/setup installs them).
Everything listens on 127.0.0.1 only; Chromium runs with background
networking off, so it talks to nothing but the host under test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from conftest import require_tool

REPO_ROOT = Path(__file__).resolve().parents[3]
SERVING_RE = re.compile(r'^Serving "(?P<name>.*)" on (?P<addr>[0-9.]+):(?P<port>\d+)$')
DEBOUNCE_MS = 250
# Generous: the machine running the tests may be busy building.
UPDATE_BOUND_S = 10.0
STARTUP_TIMEOUT_S = 30.0

SESSION: dict[str, Any] = {
    "name": "Browser test",
    "data": {"points": [[0, 0], [1, 2.5]], "label": "naïve ✓"},
    "config": {"speed": 1, "mode": "wave", "enabled": True},
    "metadata": {"owner": "tests"},
}
RESTARTED: dict[str, Any] = {
    "name": "Browser test, second run",
    "data": {"points": [], "label": "restarted"},
    "config": {"speed": 3, "mode": "square", "enabled": False},
    "metadata": {"owner": "tests"},
}

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _bin_dir() -> Path:
    env = os.environ.get("STATECAST_BIN_DIR")
    return Path(env) if env else REPO_ROOT / ".build" / "debug"


_require = require_tool


@pytest.fixture(scope="module")
def host_binary() -> Path:
    path = _bin_dir() / "statecast-host"
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `swift build` first")
    return path


# ---------------------------------------------------------------------------
# The host
# ---------------------------------------------------------------------------


class Host:
    """`statecast-host serve SESSION.json --stdin --bind 127.0.0.1 …`, stdout collected by a thread."""

    def __init__(self, binary: Path, session_file: Path, port: int = 0, extra: tuple[str, ...] = ()) -> None:
        self.argv = [
            str(binary), "serve", str(session_file), "--stdin", "--bind", "127.0.0.1",
            "--port", str(port), "--debounce-ms", str(DEBOUNCE_MS), *extra,
        ]
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self.stderr = b""
        self._cond = threading.Condition()
        self._eof = False
        self._readers = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in self._readers:
            reader.start()
        self.port = self._wait_serving()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def _wait_serving(self) -> int:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        with self._cond:
            while True:
                for line in self.lines:
                    match = SERVING_RE.match(line)
                    if match:
                        return int(match["port"])
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    self.proc.kill()
                    raise AssertionError(
                        f"host did not start (argv {self.argv})\nstdout:\n" + "\n".join(self.lines)
                        + "\nstderr:\n" + self.stderr.decode("utf-8", "replace"))
                self._cond.wait(remaining)

    def wait_lines(self, predicate: Any, timeout: float = 10.0) -> list[str]:
        """Waits until predicate(lines) is true; returns the lines."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.lines):
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    raise AssertionError("host output never matched:\n" + "\n".join(self.lines))
                self._cond.wait(remaining)
            return list(self.lines)

    def send(self, line: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(line).encode() + b"\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._join()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._join()

    def _join(self) -> None:
        for reader in self._readers:
            reader.join(timeout=5)


@pytest.fixture
def hosts(host_binary: Path):
    """`hosts(session_file, port=0, extra=())` starts a host; all are stopped at teardown."""
    started: list[Host] = []

    def start(session_file: Path, port: int = 0, extra: tuple[str, ...] = ()) -> Host:
        host = Host(host_binary, session_file, port, extra)
        started.append(host)
        return host

    yield start
    for host in started:
        host.stop()


def _write(path: Path, session: dict[str, Any]) -> Path:
    path.write_text(json.dumps(session, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    with _HTTP.open(url, timeout=10) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()


# ---------------------------------------------------------------------------
# Chromium over the DevTools protocol
# ---------------------------------------------------------------------------


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, chromium: str, url: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="statecast-chromium-")
        self.proc = subprocess.Popen(
            [
                chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps", "--mute-audio", "--window-size=390,844",
                url,
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self._next_id = 0
        self.ws = ws_connect(self._page_socket(url), max_size=None, open_timeout=10)

    def _page_socket(self, url: str) -> str:
        # Chromium writes its DevTools port to DevToolsActivePort in the profile.
        active = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"chromium exited with status {self.proc.returncode}")
            try:
                port = int(active.read_text().split()[0])
                _, _, body = _get(f"http://127.0.0.1:{port}/json/list")
                for target in json.loads(body):
                    if target.get("type") == "page" and target.get("url", "").startswith(url):
                        return target["webSocketDebuggerUrl"]
            except (OSError, ValueError, IndexError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"chromium's DevTools never listed a page for {url}")

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        request_id = self._next_id
        self.ws.send(json.dumps({"id": request_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + 10
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == request_id:
                if "error" in message:
                    raise AssertionError(f"{method} failed: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise AssertionError(f"page threw for {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            shutil.rmtree(self.profile, ignore_errors=True)


# What the page shows, read from its DOM: the heading, the status pill, and
# the value text of a few tree rows (found by their JSON pointer).
SHOWN = """(() => {
  if (!document.getElementById("status")) return { state: "loading" };
  const value = (path) => {
    const li = document.querySelector(`li[data-path="${path}"]`);
    return li ? li.querySelector(":scope > .row > .value").textContent : null;
  };
  const flashing = (path) => {
    const li = document.querySelector(`li[data-path="${path}"]`);
    return !!li && li.querySelector(":scope > .row > .value").classList.contains("changed");
  };
  return {
    name: document.getElementById("session-name").textContent,
    state: document.getElementById("status").dataset.state,
    status: document.getElementById("status").textContent,
    speed: value("/config/speed"), mode: value("/config/mode"), enabled: value("/config/enabled"),
    label: value("/data/label"), points: value("/data/points"), owner: value("/metadata/owner"),
    speedFlashing: flashing("/config/speed"), modeFlashing: flashing("/config/mode"),
    text: document.body.innerText,
  };
})()"""


def wait_shown(browser: Browser, predicate: Any, timeout: float, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        shown = browser.evaluate(SHOWN)
        if predicate(shown):
            return shown
        time.sleep(0.05)
    raise AssertionError(f"the page did not show {what} within {timeout} s; it shows:\n{json.dumps(shown, indent=2)}")


@pytest.fixture
def browser_factory():
    chromium = os.environ.get("STATECAST_CHROMIUM") or _require("chromium", "chromium")
    opened: list[Browser] = []

    def open_page(url: str) -> Browser:
        browser = Browser(chromium, url)
        opened.append(browser)
        return browser

    yield open_page
    for browser in opened:
        browser.close()


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_page_shows_session_then_changes_then_reconnects_to_a_restarted_host(
    tmp_path: Path, hosts: Any, browser_factory: Any
) -> None:
    host = hosts(_write(tmp_path / "first.json", SESSION))
    port = host.port
    # A ?token= in the page's address is passed on to the WebSocket (the host ignores it until tokens exist).
    browser = browser_factory(f"http://127.0.0.1:{port}/?token=t0k")
    # A phone's screen: 360 CSS pixels wide, mobile viewport rules.
    browser.call("Emulation.setDeviceMetricsOverride", {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True})

    # 1. The initial session, rendered as a tree.
    shown = wait_shown(
        browser, lambda s: s["state"] == "connected" and s["name"] == "Browser test" and s["speed"] == "1",
        STARTUP_TIMEOUT_S, "the initial session")
    assert shown["status"] == "connected"
    assert (shown["mode"], shown["enabled"], shown["label"], shown["points"], shown["owner"]) == (
        '"wave"', "true", '"naïve ✓"', "[2 items]", '"tests"')
    assert "2.5" in shown["text"], "nested array values are rendered"
    assert browser.evaluate("document.title") == "Browser test · StateCast"
    assert browser.evaluate("window.statecast.url") == f"ws://127.0.0.1:{port}/?token=t0k"
    # On the phone-sized screen nothing needs sideways scrolling.
    assert browser.evaluate("[document.documentElement.scrollWidth, window.innerWidth]") == [360, 360]

    # 2. A config change on the host's stdin appears within the debounce window plus a bound,
    #    and the changed value (only it) is highlighted.
    sent = time.monotonic()
    host.send({"config": {"speed": 2}})
    shown = wait_shown(browser, lambda s: s["speed"] == "2", DEBOUNCE_MS / 1000 + UPDATE_BOUND_S, "speed 2")
    took = time.monotonic() - sent
    assert shown["speedFlashing"] is True, "a changed value is highlighted"
    assert shown["modeFlashing"] is False, "an unchanged value is not highlighted"
    assert shown["mode"] == '"wave"' and shown["name"] == "Browser test"
    print(f"config change shown after {took:.3f} s (debounce {DEBOUNCE_MS} ms)")

    # 3. The host dies: the page says it is reconnecting, with a countdown.
    host.kill()
    shown = wait_shown(browser, lambda s: s["state"] == "reconnecting", 10, "the reconnecting state")
    assert re.fullmatch(r"reconnecting in \d+ s", shown["status"]), shown["status"]
    assert shown["speed"] == "2", "the last state stays on screen while reconnecting"

    # 4. A new host run on the same port with another state: the page reconnects by itself.
    hosts(_write(tmp_path / "second.json", RESTARTED), port=port)
    shown = wait_shown(
        browser,
        lambda s: s["state"] == "connected" and s["name"] == RESTARTED["name"] and s["speed"] == "3",
        UPDATE_BOUND_S + 20, "the restarted host's state")
    assert (shown["mode"], shown["enabled"], shown["label"], shown["points"]) == (
        '"square"', "false", '"restarted"', "[0 items]")

    # Its next connection would resume from the new run's seq and epoch, token kept.
    assert re.fullmatch(rf"ws://127\.0\.0\.1:{port}/\?token=t0k&since=\d+&epoch=[0-9a-f]{{16}}",
                        browser.evaluate("window.statecast.nextURL()"))
    # The page is the one viewer of the new host.
    status = json.loads(_get(f"http://127.0.0.1:{port}/status")[2])
    assert status["clientCount"] == 1, "the page is the one viewer of the restarted host"


@pytest.mark.timeout(90)
def test_page_with_a_token_connects_and_explains_a_missing_one(
    tmp_path: Path, hosts: Any, browser_factory: Any
) -> None:
    token = "s3cret-t0ken"
    host = hosts(_write(tmp_path / "s.json", SESSION), extra=("--token", token))
    base = f"http://127.0.0.1:{host.port}/"

    # The page and the module are public; the state is not.
    assert _get(base)[0] == 200 and _get(base + "statecast.js")[0] == 200
    without = browser_factory(base)
    shown = wait_shown(without, lambda s: s["state"] == "reconnecting", 15, "the reconnecting state")
    assert shown["speed"] is None, "no state without the token"
    deadline = time.monotonic() + 10
    notice = ""
    while time.monotonic() < deadline and not notice:
        notice = without.evaluate('document.getElementById("notice").hidden ? "" : document.getElementById("notice").textContent')
        time.sleep(0.05)
    assert "needs a token" in notice, f"the page explains why it cannot connect, shows {notice!r}"

    with_token = browser_factory(f"{base}?token={token}")
    shown = wait_shown(
        with_token, lambda s: s["state"] == "connected" and s["speed"] == "1", STARTUP_TIMEOUT_S, "the session")
    assert shown["name"] == "Browser test"
    assert with_token.evaluate('document.getElementById("notice").hidden') is True


def test_assets_are_the_web_sources_byte_for_byte(tmp_path: Path, hosts: Any) -> None:
    host = hosts(_write(tmp_path / "s.json", SESSION))
    base = f"http://127.0.0.1:{host.port}"
    for path, source, content_type in [
        ("/", "web/index.html", "text/html; charset=utf-8"),
        ("/statecast.js", "web/statecast.js", "text/javascript; charset=utf-8"),
    ]:
        status, headers, body = _get(base + path)
        assert status == 200, path
        assert headers["content-type"] == content_type, path
        assert body == (REPO_ROOT / source).read_bytes(), f"{path} differs from {source}: run scripts/embed-web"
    page = (REPO_ROOT / "web/index.html").read_text(encoding="utf-8")
    assert 'from "/statecast.js"' in page, "the page uses the module the host serves"
    assert not re.search(r"(src|href)=\"(https?:)?//", page), "the page loads nothing from other hosts"
    # The generated Swift files are what scripts/embed-web makes of web/.
    check = subprocess.run([str(REPO_ROOT / "scripts/embed-web"), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


# ---------------------------------------------------------------------------
# serve --qr
# ---------------------------------------------------------------------------

ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
HALF_BLOCKS = {" ": (False, False), "▀": (True, False), "▄": (False, True), "█": (True, True)}


def qr_modules(lines: list[str]) -> list[list[bool]]:
    """The module matrix (quiet zone included) of the QR code lines the host printed."""
    rows: list[list[bool]] = []
    for line in lines:
        text = ANSI_RE.sub("", line)
        assert set(text) <= set(HALF_BLOCKS), f"unexpected characters in QR line {text!r}"
        top = [HALF_BLOCKS[c][0] for c in text]
        bottom = [HALF_BLOCKS[c][1] for c in text]
        rows += [top, bottom]
    return rows


def write_pgm(path: Path, modules: list[list[bool]], scale: int = 8, margin: int = 4) -> None:
    size = len(modules[0])
    width = (size + 2 * margin) * scale
    height = (len(modules) + 2 * margin) * scale
    pixels = bytearray(b"\xff" * (width * height))
    for y, row in enumerate(modules):
        for x, dark in enumerate(row):
            if dark:
                for dy in range(scale):
                    start = ((y + margin) * scale + dy) * width + (x + margin) * scale
                    pixels[start:start + scale] = b"\x00" * scale
    path.write_bytes(f"P5 {width} {height} 255\n".encode() + bytes(pixels))


@pytest.mark.parametrize("token", [None, "a b/c+d"], ids=["no-token", "token"])
def test_qr_code_decodes_to_the_viewer_url(tmp_path: Path, hosts: Any, token: str | None) -> None:
    zbarimg = _require("zbarimg", "zbar-tools")
    extra = ("--qr",) if token is None else ("--qr", "--token", token)
    host = hosts(_write(tmp_path / "s.json", SESSION), extra=extra)
    # With a token the URL carries it, percent-encoded, for the page to pass on.
    url = f"http://127.0.0.1:{host.port}/" + ("" if token is None else "?token=a%20b%2Fc%2Bd")

    def code_lines(lines: list[str]) -> list[str]:
        return [line for line in lines if line.startswith("\x1b[")]

    # The code is the run of ANSI-coloured lines, two module rows per line:
    # complete once there are at least as many rows as columns.
    lines = host.wait_lines(
        lambda ls: bool(code_lines(ls)) and 2 * len(code_lines(ls)) >= len(ANSI_RE.sub("", code_lines(ls)[0])))
    assert any(url in line for line in lines), "the URL is printed next to the code:\n" + "\n".join(lines)
    modules = qr_modules(code_lines(lines))
    assert all(len(row) == len(modules[0]) for row in modules)
    # A symbol of version v has 17 + 4v modules a side; the quiet zone is light.
    assert not any(modules[0]) and not any(row[0] for row in modules)
    assert (len(modules[0]) - 4 - 17) % 4 == 0, f"{len(modules[0])} columns is not a QR symbol plus a 2-module quiet zone"
    image = tmp_path / "qr.pgm"
    write_pgm(image, modules)
    decoded = subprocess.run([zbarimg, "--quiet", "--raw", str(image)], capture_output=True, text=True, timeout=30)
    assert decoded.returncode == 0, f"zbarimg could not decode the code: {decoded.stderr}"
    assert decoded.stdout.strip() == url
    if token is not None:
        # The host accepts the token as the URL spells it.
        query = url.split("?", 1)[1]
        assert "clientCount" in json.loads(_get(f"http://127.0.0.1:{host.port}/status?{query}")[2])
    # Loopback only: the host warns that a phone cannot reach this address.
    host.stop()
    assert b"--qr: the host listens on 127.0.0.1, which a phone cannot reach" in host.stderr
