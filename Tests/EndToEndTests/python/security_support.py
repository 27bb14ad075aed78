"""Helpers for the security and reliability end-to-end tests (issue #6).

* `make_pki(folder)` writes a throw-away CA and host certificates with the
  `openssl` command (nothing secret is committed): a good host certificate
  for localhost/127.0.0.1, one valid only for another name, one that expired.
* `https_get(url, cafile)`, `refusal_status(url, **kwargs)`: HTTP over TLS and
  the HTTP status with which a host refuses a strict client's upgrade.
* `TLSRawWebSocket`: raw_ws.RawWebSocket over TLS (a stalled reader under TLS).
* `cli_viewer(...)`: runs `statecast-viewer` to completion.
* `start_module_host(...)`: a host that lives for a whole test module.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from raw_ws import RawWebSocket
from viewer_servers import viewer_binary

OPENSSL_TIMEOUT = 30.0


@dataclass(frozen=True)
class PKI:
    """Files of a throw-away certificate authority and the host certificates it signed."""

    folder: Path
    ca: Path  # the CA certificate viewers trust with --ca
    host_cert: Path  # valid now, for DNS:localhost and IP:127.0.0.1
    host_key: Path
    elsewhere_cert: Path  # valid now, only for DNS:elsewhere.test (same key)
    expired_cert: Path  # for localhost/127.0.0.1, valid 2020-01-01 to 2020-01-02 (same key)


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=OPENSSL_TIMEOUT)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")


def make_pki(folder: Path) -> PKI:
    """Creates the CA and certificates in `folder` (OpenSSL 3.0 command line).

    The expired certificate is issued with `openssl ca -startdate/-enddate`,
    since `openssl x509 -req` in 3.0 cannot set dates in the past."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=StateCast throw-away test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=folder)
    _openssl("req", "-new", *ec, "-keyout", "host.key", "-out", "host.csr", "-subj", "/CN=localhost", cwd=folder)
    (folder / "ca.cnf").write_text(
        "[ ca ]\ndefault_ca = test_ca\n"
        "[ test_ca ]\ndatabase = db/index.txt\nnew_certs_dir = db\nserial = db/serial\n"
        "default_md = sha256\npolicy = any\nunique_subject = no\ncopy_extensions = none\n"
        "[ any ]\ncommonName = supplied\n"
        "[ localhost ]\nsubjectAltName = DNS:localhost,IP:127.0.0.1\nbasicConstraints = CA:FALSE\n"
        "extendedKeyUsage = serverAuth\n"
        "[ elsewhere ]\nsubjectAltName = DNS:elsewhere.test\nbasicConstraints = CA:FALSE\n"
        "extendedKeyUsage = serverAuth\n"
    )
    (folder / "db").mkdir(exist_ok=True)
    (folder / "db" / "index.txt").write_text("")
    (folder / "db" / "serial").write_text("1000\n")

    def sign(out: str, extensions: str, start: str | None = None, end: str | None = None) -> None:
        dates = ["-startdate", start, "-enddate", end] if start and end else ["-days", "2"]
        _openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", "host.csr",
                 "-out", out, "-extensions", extensions, "-notext", *dates, cwd=folder)

    sign("host.pem", "localhost")
    sign("elsewhere.pem", "elsewhere")
    sign("expired.pem", "localhost", "20200101000000Z", "20200102000000Z")
    return PKI(folder, folder / "ca.pem", folder / "host.pem", folder / "host.key",
               folder / "elsewhere.pem", folder / "expired.pem")


def client_tls_context(cafile: Path | None) -> ssl.SSLContext:
    """A verifying client context trusting `cafile` (or nothing but the system's CAs)."""
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    return context


_NO_PROXY = urllib.request.ProxyHandler({})


def http_get(url: str, *, cafile: Path | None = None, headers: dict[str, str] | None = None,
             timeout: float = 10.0) -> tuple[int, bytes]:
    """(status, body) of GET `url` (http or https); HTTP errors are returned, not raised."""
    handlers: list[Any] = [_NO_PROXY]
    if url.startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=client_tls_context(cafile)))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def refusal_status(url: str, **kwargs: Any) -> int:
    """Opens `url` with the strict `websockets` client and returns the HTTP status
    of the refusal; fails if the upgrade succeeds. A malformed response makes
    `websockets` raise something other than InvalidStatus, which fails the test."""
    options: dict[str, Any] = {"open_timeout": 10, "proxy": None}
    options.update(kwargs)
    try:
        ws = ws_connect(url, **options)
    except InvalidStatus as e:
        return e.response.status_code
    ws.close()
    raise AssertionError(f"{url} was admitted (101); expected a refusal")


def first_envelope(url: str, timeout: float = 10.0, **kwargs: Any) -> dict[str, Any]:
    """Connects with `websockets`, returns the first envelope, closes."""
    options: dict[str, Any] = {"open_timeout": timeout, "proxy": None, "max_size": None}
    options.update(kwargs)
    with ws_connect(url, **options) as ws:
        return json.loads(ws.recv(timeout=timeout))


class TLSRawWebSocket(RawWebSocket):
    """raw_ws.RawWebSocket over TLS: the same frames, encrypted. `rcvbuf` limits
    the TCP receive window as for the plain one."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, path: str = "/", *,
                 server_hostname: str | None = None, rcvbuf: int | None = None, timeout: float = 10.0) -> None:
        plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            plain.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        plain.settimeout(timeout)
        plain.connect((host, port))
        self.sock = context.wrap_socket(plain, server_hostname=server_hostname or host)
        self._buf = bytearray()
        self.response_headers = {}
        self._handshake(host, port, path, {}, timeout)


def cli_viewer(*args: str, timeout: float = 30.0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs `statecast-viewer ARGS…` to completion (text output)."""
    return subprocess.run([str(viewer_binary()), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, env=env)


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Polls `predicate()` until it returns something truthy; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def env_without_token() -> dict[str, str]:
    """This process's environment without STATECAST_TOKEN (so a stray one cannot leak in)."""
    return {k: v for k, v in os.environ.items() if k != "STATECAST_TOKEN"}
