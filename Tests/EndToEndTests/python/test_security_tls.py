"""TLS against a real host (issue #6): wss:// and https:// with a throw-away CA
made by the `openssl` command at test time, certificate problems reported by
the viewer as one sentence, and the per-viewer output cap under TLS."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error

import pytest

from conftest import require_tool
from test_host_limits import BACKLOG_KB, RSS_SLACK_KB, assert_conflated, read_until_caught_up
from security_support import (PKI, TLSRawWebSocket, cli_viewer, client_tls_context, env_without_token, http_get,
                              make_pki)



@pytest.fixture(autouse=True)
def openssl_installed() -> None:
    """The throw-away CA is made with the openssl command: without it every test here fails."""
    require_tool("openssl", "openssl")

UNKNOWN_CA = "is signed by an unknown CA; pass --ca FILE with the CA that signed it (or --insecure)"
OTHER_NAME = "is for another host name; connect with the name the certificate was issued for (or pass --insecure)"
EXPIRED = "has expired; renew it on the host (or pass --insecure to connect anyway)"
INSECURE_WARNING = ("statecast-viewer: warning: --insecure: the host's certificate is not checked; "
                    "anyone on the network path could read or change what you see")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_host(start_host, session_file, cert, key, *args, **kwargs):
    return start_host(session_file, "--no-watch", "--tls-cert", cert, "--tls-key", key, *args, **kwargs)


def viewer_once(url: str, *args: str, timeout_s: float = 10) -> subprocess.CompletedProcess[str]:
    return cli_viewer(url, "--once", "--once-timeout-s", str(timeout_s), *args, timeout=timeout_s + 20,
                      env=env_without_token())


def test_viewer_trusting_the_ca_gets_the_state_over_wss(start_host, connect, session_file, session, pki):
    host = tls_host(start_host, session_file, pki.host_cert, pki.host_key, "--debounce-ms", "0", stdin=True)
    host.wait_for_line(rf"^  wss://localhost:{host.port}/$")
    host.wait_for_line(rf"^Browsers: https://")
    for name in ("localhost", "127.0.0.1"):
        result = viewer_once(f"wss://{name}:{host.port}/", "--ca", str(pki.ca))
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == session
        assert f"connected to wss://{name}:{host.port}/" in result.stderr

    # A third-party client over TLS follows updates too.
    viewer = connect(f"wss://localhost:{host.port}/", ssl=client_tls_context(pki.ca))
    assert viewer.next().payload == session
    host.send_line({"config": {"speed": 7}})
    assert viewer.next().payload == {"speed": 7}

    # Plain ws:// to a TLS port gets no state.
    result = viewer_once(f"ws://127.0.0.1:{host.port}/", timeout_s=2)
    assert result.returncode == 1 and result.stdout == ""


def test_viewer_not_trusting_the_ca_fails_with_the_unknown_ca_sentence(start_host, session_file, pki):
    host = tls_host(start_host, session_file, pki.host_cert, pki.host_key)
    result = viewer_once(f"wss://127.0.0.1:{host.port}/", timeout_s=2)
    assert result.returncode == 1 and result.stdout == ""
    assert f"statecast-viewer: the certificate of 127.0.0.1:{host.port} {UNKNOWN_CA}; reconnecting in" in result.stderr, \
        result.stderr
    # The --once summary repeats the reason.
    assert f"within 2 s (the certificate of 127.0.0.1:{host.port} {UNKNOWN_CA})" in result.stderr


def test_insecure_connects_without_verification_and_warns(start_host, session_file, session, pki):
    host = tls_host(start_host, session_file, pki.host_cert, pki.host_key)
    result = viewer_once(f"wss://127.0.0.1:{host.port}/", "--insecure")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == session
    assert result.stderr.splitlines()[0] == INSECURE_WARNING


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1"])
def test_certificate_for_another_name_gives_the_other_host_name_sentence(start_host, session_file, session, pki, name):
    # lws 4.1.6 with OpenSSL 3 checks the name: a DNS name against the SANs
    # (X509_V_ERR_HOSTNAME_MISMATCH, 62), an IP literal against IP SANs (64).
    host = tls_host(start_host, session_file, pki.elsewhere_cert, pki.host_key)
    result = viewer_once(f"wss://{name}:{host.port}/", "--ca", str(pki.ca), timeout_s=2)
    assert result.returncode == 1 and result.stdout == ""
    assert f"statecast-viewer: the certificate of {name}:{host.port} {OTHER_NAME}; reconnecting in" in result.stderr, \
        result.stderr
    insecure = viewer_once(f"wss://{name}:{host.port}/", "--insecure")
    assert insecure.returncode == 0 and json.loads(insecure.stdout) == session, insecure.stderr


def test_expired_certificate_gives_the_expired_sentence(start_host, session_file, session, pki):
    host = tls_host(start_host, session_file, pki.expired_cert, pki.host_key)
    result = viewer_once(f"wss://localhost:{host.port}/", "--ca", str(pki.ca), timeout_s=2)
    assert result.returncode == 1 and result.stdout == ""
    assert f"statecast-viewer: the certificate of localhost:{host.port} {EXPIRED}; reconnecting in" in result.stderr, \
        result.stderr
    insecure = viewer_once(f"wss://localhost:{host.port}/", "--insecure")
    assert insecure.returncode == 0 and json.loads(insecure.stdout) == session, insecure.stderr


def test_https_status_with_curl_and_python(start_host, session_file, pki):
    host = tls_host(start_host, session_file, pki.host_cert, pki.host_key, "--token", "t0k")
    url = f"https://localhost:{host.port}/status"
    curl = require_tool("curl", "curl")
    ok = subprocess.run([curl, "-sS", "--noproxy", "*", "--max-time", "10", "--cacert", str(pki.ca),
                         "-H", "Authorization: Bearer t0k", url], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["port"] == host.port
    reduced = subprocess.run([curl, "-sS", "--noproxy", "*", "--max-time", "10", "--cacert", str(pki.ca), url],
                             capture_output=True, text=True, timeout=30)
    assert json.loads(reduced.stdout) == {"running": True}
    untrusted = subprocess.run([curl, "-sS", "--noproxy", "*", "--max-time", "10", url], capture_output=True,
                               text=True, timeout=30)
    assert untrusted.returncode == 60, untrusted  # curl: peer certificate cannot be authenticated
    code, body = http_get(f"https://127.0.0.1:{host.port}/status?token=t0k", cafile=pki.ca)
    assert code == 200 and json.loads(body)["running"] is True and "clientCount" in json.loads(body)
    # Plain HTTP on the TLS port gets no status: the host resets the connection (no
    # timeout, no HTTP answer). urllib raises the reset as is, or wrapped if it came while sending.
    with pytest.raises((ConnectionResetError, urllib.error.URLError)) as raised:
        http_get(f"http://127.0.0.1:{host.port}/status", timeout=5)
    reset = raised.value.reason if isinstance(raised.value, urllib.error.URLError) else raised.value
    assert isinstance(reset, ConnectionResetError), repr(raised.value)


@pytest.mark.timeout(180)
def test_stalled_tls_reader_keeps_host_memory_bounded_and_others_get_everything(
    start_host, connect, write_session, tmp_path, session, pki, measure
):
    updates, blob_size, batch = 2000, 10_000, 50
    # "i" and "blob" are config keys from the start, so every viewer of ours accepts their updates.
    session = {**session, "config": {**session["config"], "i": -1, "blob": ""}}
    host = tls_host(start_host, write_session(tmp_path / "s.json", session), pki.host_cert, pki.host_key,
                    "--debounce-ms", "0", "--max-viewer-buffer-kb", str(BACKLOG_KB),
                    "--ping-interval-s", "300", "--ping-timeout-s", "600", "--client-poll-ms", "100", stdin=True)
    context = client_tls_context(pki.ca)
    readers = [connect(f"wss://localhost:{host.port}/", ssl=context, compression=None) for _ in range(2)]
    for r in readers:
        r.next()
    stalled = TLSRawWebSocket("127.0.0.1", host.port, context, server_hostname="localhost", rcvbuf=4096)

    def status():
        return json.loads(http_get(f"https://localhost:{host.port}/status", cafile=pki.ca)[1])

    deadline = time.monotonic() + 10
    while status()["clientCount"] != 3:
        assert time.monotonic() < deadline, "the stalled TLS viewer did not connect"
        time.sleep(0.05)

    expected = session
    lines = []
    for i in range(updates):
        line = {"config": {"i": i, "blob": f"{i:06d}" + "x" * (blob_size - 6)}}
        expected = {**expected, "config": {**expected["config"], **line["config"]}}
        lines.append(line)
    sent_bytes = updates * blob_size

    with host.peak_rss() as rss:
        t0 = time.monotonic()
        # Paced in batches, so the reading viewers never fall a whole backlog
        # behind and must receive every update; the stalled one falls ~20 MB behind.
        for start in range(0, updates, batch):
            host.send_lines(lines[start : start + batch])
            want = start + batch - 1
            deadline = time.monotonic() + 60
            while any((r.state or {}).get("config", {}).get("i") != want for r in readers):
                assert time.monotonic() < deadline, f"reading viewers did not get update {want}"
                for r in readers:
                    assert not r.closed.is_set(), f"reading viewer closed with code {r.close_code}"
                time.sleep(0.01)
        elapsed = time.monotonic() - t0
    baseline, peak = rss["baseline"], rss["peak"]

    for i, r in enumerate(readers):
        assert r.state == expected
        # "i" and "blob" are config keys from the start: every update is a config_update.
        configs = [e for e in r.received if e.type == "config_update"]
        assert len(configs) == updates, f"reader {i} got {len(configs)} of {updates} updates"
        assert [e.payload["i"] for e in configs] == list(range(updates))
        seqs = [e.seq for e in r.received]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"reader {i}: seqs not consecutive"
    growth = peak - baseline
    measure(f"TLS: {updates} updates of ~10 KB in {elapsed:.1f} s to 2 readers + 1 stalled TLS viewer; "
            f"host RSS baseline {baseline / 1024:.1f} MB, peak {peak / 1024:.1f} MB (+{growth / 1024:.1f} MB)")
    bound_kb = BACKLOG_KB + RSS_SLACK_KB
    assert growth < bound_kb, (f"host RSS grew by {growth / 1024:.1f} MB with a stalled TLS viewer (bound "
                               f"{bound_kb / 1024:.0f} MB; {sent_bytes / 1e6:.0f} MB were sent)")

    # The stalled viewer reads again: what was queued, then one fresh full state.
    final_seq = status()["seq"]
    read = read_until_caught_up(stalled, expected)
    assert_conflated(read, final_seq, sent_bytes)
    measure(f"TLS: the stalled viewer read {len(read)} envelopes before reaching the latest state")
    stalled.abort()
