"""A real Prometheus (Debian's `prometheus` package, installed by scripts/setup)
scrapes a host's /metrics on loopback (issue 17): its query API reports the
target up and our metrics with the values the host reports itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from viewer_servers import free_port, wait_until

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SCRAPE_TIMEOUT = 60  # Prometheus' start, the first scrape (every second) and the query, on a busy machine


def query(api: str, expression: str) -> list[dict[str, Any]]:
    """The instant vector Prometheus answers for `expression` ([] while it has no sample yet)."""
    url = f"{api}/api/v1/query?query={urllib.parse.quote(expression)}"
    try:
        with _HTTP.open(url, timeout=10) as answer:
            body = json.load(answer)
    except OSError:
        return []  # not listening yet
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.fixture
def prometheus(tmp_path: Path):
    """Starts Prometheus with `scrape(target)`; stops it after the test."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed; scripts/setup installs it (apt-get install prometheus)")
    processes: list[subprocess.Popen[bytes]] = []

    def scrape(target: str) -> str:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: statecast\n    metrics_path: /metrics\n"
            f"    static_configs:\n      - targets: ['{target}']\n")
        port = free_port()
        log = open(tmp_path / "prometheus.log", "wb")
        processes.append(subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        return f"http://127.0.0.1:{port}"

    yield scrape
    for process in processes:
        process.terminate()
        process.wait(30)


def test_prometheus_scrapes_the_host_and_reads_our_metrics(start_host, session_file, prometheus, tmp_path):
    host = start_host(session_file, "--no-watch", "--bind", "127.0.0.1")
    api = prometheus(f"127.0.0.1:{host.port}")
    up = wait_until(lambda: query(api, 'up{job="statecast"}'), SCRAPE_TIMEOUT,
                    f"a scrape of the host; Prometheus log: {(tmp_path / 'prometheus.log').read_text()[-2000:]}")
    assert up[0]["value"][1] == "1", up
    seq = wait_until(lambda: query(api, "statecast_seq"), SCRAPE_TIMEOUT, "statecast_seq in Prometheus")
    assert float(seq[0]["value"][1]) == host.status()["seq"], seq
    viewers = wait_until(lambda: query(api, "statecast_viewers"), SCRAPE_TIMEOUT, "statecast_viewers in Prometheus")
    assert {series["metric"]["kind"] for series in viewers} >= {"websocket", "sse"}, viewers
