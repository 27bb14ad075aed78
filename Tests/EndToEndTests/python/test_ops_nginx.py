"""deploy/nginx/statecast.conf in front of two relays (issue 17), with Debian's
nginx started by the test on loopback: TLS terminated by nginx with a
self-signed certificate made by openssl here, WebSocket viewers
(`statecast-viewer wss://…`) and Server-Sent Events readers through it, the
token still enforced by the relays, and one relay killed: every viewer fails
over through nginx to the other relay and converges on the host's state.

Only the addresses of the shipped configuration are rewritten (ports, the
certificate paths, loopback instead of every interface); the proxy settings
under test are the shipped ones.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from conftest import REPO_ROOT
from test_relay_redis import publishing_host, redis_server, start_relay  # noqa: F401 (fixtures)
from viewer_servers import ViewerProcess, free_port, wait_until

CONF = REPO_ROOT / "deploy" / "nginx" / "statecast.conf"
TOKEN = "through-the-proxy"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return cert, key


class Nginx:
    """Debian's nginx in the foreground with the shipped server blocks, rewritten to loopback ports."""

    def __init__(self, folder: Path, relay_ports: tuple[int, int], cert: Path, key: Path) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.access(binary, os.X_OK):
            pytest.fail("nginx is not installed; scripts/setup installs it (apt-get install nginx-light)")
        self.folder = folder
        self.https_port, self.http_port = free_port(), free_port()
        text = CONF.read_text()
        replacements = {
            "127.0.0.1:9877": f"127.0.0.1:{relay_ports[0]}",
            "127.0.0.1:9878": f"127.0.0.1:{relay_ports[1]}",
            "listen 443 ssl;": f"listen 127.0.0.1:{self.https_port} ssl;",
            "listen 80;": f"listen 127.0.0.1:{self.http_port};",
            "/etc/ssl/statecast/fullchain.pem": str(cert),
            "/etc/ssl/statecast/privkey.pem": str(key),
        }
        for old, new in replacements.items():
            assert old in text, f"{CONF} no longer contains {old!r}; update the test's rewrite"
            text = text.replace(old, new)
        text = re.sub(r"^\s*listen \[::\].*$", "", text, flags=re.M)
        (folder / "statecast.conf").write_text(text)
        temp = folder / "temp"
        temp.mkdir()
        user = "user root;\n" if os.geteuid() == 0 else ""
        (folder / "nginx.conf").write_text(f"""{user}worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {folder}/statecast.conf;
}}
""")
        self.argv = [binary, "-e", str(folder / "error.log"), "-p", str(folder), "-c", str(folder / "nginx.conf")]
        self.proc: subprocess.Popen[bytes] | None = None

    def check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.argv, "-t"], capture_output=True, text=True, timeout=30)

    def start(self) -> None:
        self.proc = subprocess.Popen([*self.argv, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def listening() -> bool:
            assert self.proc is not None and self.proc.poll() is None, f"nginx exited: {self.log()}"
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=0.5):
                    return True
            except OSError:
                return False

        wait_until(listening, 20, f"nginx listening on 127.0.0.1:{self.https_port}")

    def log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class EventStream(threading.Thread):
    """An EventSource-like reader over https: reconnects with Last-Event-ID after a drop."""

    def __init__(self, port: int, context: ssl.SSLContext, token: str | None) -> None:
        super().__init__(daemon=True)
        self.port, self.context, self.token = port, context, token
        self.state: dict[str, Any] | None = None
        self.last_id: str | None = None
        self.connections = 0
        self.statuses: list[int] = []
        self.stopping = False
        self.lock = threading.Lock()

    def apply(self, kind: str, event_id: str, payload: Any) -> None:
        with self.lock:
            if kind == "session_update":
                self.state = payload
            elif kind == "config_update" and self.state is not None:
                self.state = {**self.state, "config": {**self.state["config"], **payload}}
            self.last_id = event_id

    def config(self) -> dict[str, Any]:
        with self.lock:
            return dict((self.state or {}).get("config", {}))

    def run(self) -> None:
        while not self.stopping:
            try:
                self.follow()
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.3)

    def follow(self) -> None:
        connection = http.client.HTTPSConnection("localhost", self.port, context=self.context, timeout=60)
        headers = {"Accept": "text/event-stream"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.last_id:
            headers["Last-Event-ID"] = self.last_id
        connection.request("GET", "/events", headers=headers)
        response = connection.getresponse()
        self.statuses.append(response.status)
        if response.status != 200:
            self.stopping = True
            return
        self.connections += 1
        fields: dict[str, str] = {}
        while not self.stopping:
            # Through the response, not its socket: nginx sends the stream chunked.
            line = response.readline()
            if not line:
                return
            text = line.decode().rstrip("\r\n")
            if text == "":
                if "event" in fields and "data" in fields:
                    self.apply(fields["event"], fields.get("id", ""), json.loads(fields["data"]))
                fields = {}
            elif not text.startswith(":"):
                name, _, value = text.partition(":")
                fields[name] = value.removeprefix(" ")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return make_certificate(tmp_path)


@pytest.fixture
def nginx_for(tmp_path: Path, certificate: tuple[Path, Path]) -> Any:
    started: list[Nginx] = []

    def make(relay_ports: tuple[int, int]) -> Nginx:
        folder = tmp_path / "nginx"
        folder.mkdir()
        server = Nginx(folder, relay_ports, *certificate)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
        print(server.log())


def tls_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def viewer_kinds(relay: Any) -> dict[str, int]:
    """{"websocket": N, "sse": M} from the relay's /metrics (which needs the token)."""
    code, body = relay.http_get(f"/metrics?token={TOKEN}")
    assert code == 200, (code, body)
    found = re.findall(r'^statecast_viewers\{kind="(\w+)"\} (\d+)$', body.decode(), re.M)
    return {kind: int(count) for kind, count in found}


def converge(speeds: Any, speed: int, when: str) -> None:
    try:
        wait_until(lambda: speeds() == [speed] * 6, 45, f"speed {speed} on every viewer {when}")
    except AssertionError as error:
        raise AssertionError(f"{error}; have {speeds()}") from None


@pytest.mark.timeout(150)
def test_websocket_and_sse_viewers_fail_over_through_nginx_and_converge(
        start_host, start_relay, redis_server, session_file, nginx_for, certificate):
    cert, _ = certificate
    host = publishing_host(start_host, session_file, redis_server, "proxied")
    ports = (free_port(), free_port())
    relays = [start_relay(redis_server, "proxied", "--token", TOKEN, port=port) for port in ports]
    nginx = nginx_for(ports)
    checked = nginx.check()
    assert checked.returncode == 0, checked.stderr
    nginx.start()
    url = f"wss://localhost:{nginx.https_port}/"
    context = tls_context(cert)

    # The relays' token, enforced through the proxy: none and a wrong one get 401.
    for suffix in ("", "?token=wrong"):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(url + suffix, ssl=context, open_timeout=10).close()
        assert refused.value.response.status_code == 401
    anonymous = EventStream(nginx.https_port, context, None)
    anonymous.follow()
    assert anonymous.statuses == [401]

    # Plain HTTP is sent to https.
    plain = http.client.HTTPConnection("127.0.0.1", nginx.http_port, timeout=10)
    plain.request("GET", "/events")
    answer = plain.getresponse()
    assert answer.status == 301 and answer.getheader("Location", "").startswith("https://"), answer.status

    viewers = [ViewerProcess(url, "--ca", str(cert), "--token", TOKEN, "--format", "json-lines", "--no-jitter")
               for _ in range(4)]
    streams = [EventStream(nginx.https_port, context, TOKEN) for _ in range(2)]
    for stream in streams:
        stream.start()

    def speeds() -> list[Any]:
        seen = [((v.json_lines() or [{}])[-1].get("state") or {}).get("config", {}).get("speed") for v in viewers]
        return seen + [stream.config().get("speed") for stream in streams]

    try:
        host.send_line({"config": {"speed": 7}})
        converge(speeds, 7, "through nginx")
        # Which relay holds which viewers, from its /metrics; the victim is one with an event stream.
        kinds = [viewer_kinds(relay) for relay in relays]
        assert sum(k["websocket"] for k in kinds) == 4 and sum(k["sse"] for k in kinds) == 2, kinds
        victim = max(range(2), key=lambda i: (kinds[i]["sse"], kinds[i]["websocket"]))
        survivor = relays[1 - victim]

        relays[victim].kill()
        host.send_line({"config": {"speed": 8}})
        host.send_line({"data": {"after": "failover"}})
        converge(speeds, 8, "after a relay died")
        wait_until(lambda: viewer_kinds(survivor) == {"websocket": 4, "sse": 2}, 20, "every viewer on the surviving relay")
        moved = [v for v in viewers if any("reconnecting" in line for line in v.stderr_lines())]
        assert len(moved) == kinds[victim]["websocket"], [v.stderr_lines() for v in viewers]
        assert sum(s.connections - 1 for s in streams) == kinds[victim]["sse"], [s.connections for s in streams]

        expected = host.status()["seq"]
        for viewer in viewers:
            last = viewer.json_lines()[-1]
            assert last["state"]["data"] == {"after": "failover"}, last
            assert last["seq"] == expected, (last["seq"], expected)
        for stream in streams:
            assert stream.state is not None and stream.state["data"] == {"after": "failover"}
    finally:
        for stream in streams:
            stream.stopping = True
        for viewer in viewers:
            viewer.kill()
