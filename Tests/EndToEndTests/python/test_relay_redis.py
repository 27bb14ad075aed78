"""Relays fed through Redis (issue #9), against a real redis-server started by
the tests on a free loopback port (`--save '' --appendonly no`), a real
publishing host (`statecast-host serve --redis … --channel …`) and real relays
(`statecast-host relay …`).

Viewers are asyncio clients (python-websockets for WebSocket, a raw socket for
Server-Sent Events) so that hundreds fit in one test process; each records
every (type, seq) it applies and the state it holds.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from websockets.asyncio.client import connect as ws_connect

from conftest import BASE_SESSION, HostProcess, apply_envelope, launch, stop_all as stop_processes
from sse_ids import event_seq
from viewer_servers import ViewerProcess, free_port, wait_until

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


# ---------------------------------------------------------------------------
# redis-server, relays
# ---------------------------------------------------------------------------


class RedisServer:
    """A redis-server of the test's own on 127.0.0.1:PORT, without persistence."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        if not os.access(REDIS_SERVER, os.X_OK):
            pytest.fail("redis-server is not installed; scripts/setup installs it (apt-get install redis-server)")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.answers, 10, f"redis-server answering on port {self.port}")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: the server loses every key, as after a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def redis_server() -> Any:
    server = RedisServer()
    server.start()
    yield server
    if server.proc is not None:
        server.resume()
    server.kill()


@pytest.fixture
def start_relay(host_bin: Path) -> Any:
    relays: list[HostProcess] = []

    def start(redis: RedisServer, channel: str, *args: str, port: int = 0) -> HostProcess:
        argv = [str(host_bin), "relay", "--redis", redis.url, "--channel", channel,
                "--bind", "127.0.0.1", "--port", str(port), *args]
        return launch(argv, relays)

    yield start
    stop_processes(relays, "a relay")


def publishing_host(start_host: Any, session_file: Path, redis: RedisServer, channel: str) -> HostProcess:
    return start_host(session_file, "--redis", redis.url, "--channel", channel, "--debounce-ms", "0", stdin=True)


# ---------------------------------------------------------------------------
# asyncio viewers
# ---------------------------------------------------------------------------


class Seen:
    """What one viewer applied: every (type, seq), the state, and any seq that went backwards."""

    def __init__(self, kind: str, server: str) -> None:
        self.kind = kind
        self.server = server
        self.events: list[tuple[str, int]] = []
        self.state: dict[str, Any] | None = None
        self.backwards: list[tuple[int, int]] = []
        self.error: BaseException | None = None

    def apply(self, kind: str, seq: int, payload: Any) -> None:
        if self.events and seq <= self.events[-1][1]:
            self.backwards.append((self.events[-1][1], seq))
        self.events.append((kind, seq))
        if kind == "session_update" or self.state is not None:
            self.state = apply_envelope(self.state, {"type": kind, "payload": payload})

    @property
    def last_seq(self) -> int | None:
        return self.events[-1][1] if self.events else None


async def follow_websocket(url: str, seen: Seen) -> None:
    try:
        async with ws_connect(url, open_timeout=30, ping_interval=None, max_size=None, proxy=None) as ws:
            async for message in ws:
                body = json.loads(message)
                seen.apply(body["type"], body["seq"], body["payload"])
    except asyncio.CancelledError:
        raise
    except BaseException as error:  # reported by the test
        seen.error = error


async def follow_events(port: int, seen: Seen) -> None:
    writer = None
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:100]
        fields: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if not line:
                return
            text = line.decode().rstrip("\r\n")
            if text == "":
                if "event" in fields:
                    seen.apply(fields["event"], event_seq(fields["id"]), json.loads(fields["data"]))
                fields = {}
            elif not text.startswith(":"):
                name, _, value = text.partition(": ")
                fields[name] = value
    except asyncio.CancelledError:
        raise
    except BaseException as error:
        seen.error = error
    finally:
        if writer is not None:
            writer.close()


def open_viewers(server: HostProcess, count: int, name: str) -> tuple[list[Seen], list[asyncio.Task[None]]]:
    """`count` viewers on `server`, alternately WebSocket and SSE."""
    seen: list[Seen] = []
    tasks: list[asyncio.Task[None]] = []
    for index in range(count):
        if index % 2 == 0:
            viewer = Seen("ws", name)
            tasks.append(asyncio.create_task(follow_websocket(server.url, viewer)))
        else:
            viewer = Seen("sse", name)
            tasks.append(asyncio.create_task(follow_events(server.port, viewer)))
        seen.append(viewer)
    return seen, tasks


async def until(predicate: Callable[[], bool], timeout: float, what: str, describe: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s. {describe()}")
        await asyncio.sleep(0.02)


async def stop_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def laggards(seen: list[Seen], expected: dict[str, Any]) -> str:
    late = [v for v in seen if v.state != expected]
    errors = [f"{v.server}/{v.kind}: {v.error!r}" for v in seen if v.error is not None][:5]
    return f"{len(late)} of {len(seen)} not there (e.g. {[(v.server, v.kind, v.last_seq) for v in late[:5]]}); errors: {errors}"


def run(coroutine: Awaitable[None]) -> None:
    asyncio.run(coroutine)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_one_host_and_three_relays_serve_four_hundred_viewers_the_same_seqs(
        start_host, start_relay, redis_server, session_file, measure):
    host = publishing_host(start_host, session_file, redis_server, "fanout")
    relays = [start_relay(redis_server, "fanout") for _ in range(3)]
    servers = [("host", host)] + [(f"relay{i}", relay) for i, relay in enumerate(relays)]
    expected = copy.deepcopy(BASE_SESSION)

    async def scenario() -> None:
        everyone: list[Seen] = []
        tasks: list[asyncio.Task[None]] = []
        for name, server in servers:
            seen, started = open_viewers(server, 100, name)
            everyone += seen
            tasks += started
        try:
            await until(lambda: all(v.state is not None for v in everyone), 60, "every viewer's first state",
                        lambda: laggards(everyone, expected))
            assert all(v.state == expected for v in everyone)
            initial_seq = host.status()["seq"]
            assert {v.last_seq for v in everyone} == {initial_seq}

            started_at = time.monotonic()
            for step in range(1, 11):
                host.send_line({"config": {"speed": step}})
                expected["config"]["speed"] = step
                await asyncio.sleep(0.05)
            host.send_line({"name": "renamed on the host"})   # a structural change: session_update
            expected["name"] = "renamed on the host"
            await asyncio.sleep(0.05)
            host.send_line({"config": {"mode": "square"}})
            expected["config"]["mode"] = "square"
            await until(lambda: all(v.state == expected for v in everyone), 30, "all 400 viewers converging",
                        lambda: laggards(everyone, expected))
            measure(f"400 viewers (1 host + 3 relays) converged {time.monotonic() - started_at:.2f} s after the first of 12 changes")

            final_seq = host.status()["seq"]
            reference = everyone[0].events
            # Changes that reach the host together may share one envelope; whatever the host sent, all got it.
            assert reference[-1][1] == final_seq and len(reference) >= 4
            assert [kind for kind, _ in reference[-2:]] == ["session_update", "config_update"]
            assert [seq for _, seq in reference] == list(range(initial_seq, final_seq + 1))
            for viewer in everyone:
                assert viewer.events == reference, f"{viewer.server}/{viewer.kind} saw {viewer.events}"
                assert viewer.backwards == [] and viewer.error is None
            for _, relay in servers[1:]:
                status = relay.status()
                assert status["role"] == "relay" and status["degraded"] is False
                assert status["seq"] == final_seq and status["upstreamSeq"] == final_seq
                assert status["clientCount"] == 100

            # A newcomer on any relay gets the current state at the current seq.
            for name, relay in servers[1:]:
                newcomers, started = open_viewers(relay, 2, name)
                await until(lambda: all(v.state is not None for v in newcomers), 10, f"newcomers on {name}")
                await stop_all(started)
                for newcomer in newcomers:
                    assert newcomer.events == [("session_update", final_seq)]
                    assert newcomer.state == expected
        finally:
            await stop_all(tasks)

    run(scenario())


@pytest.mark.timeout(90)
def test_viewers_of_a_killed_relay_fail_over_and_resume_without_a_full_state(
        start_host, start_relay, redis_server, session_file):
    host = publishing_host(start_host, session_file, redis_server, "failover")
    relay_a = start_relay(redis_server, "failover")
    port_b = free_port()
    url_b = f"ws://127.0.0.1:{port_b}/"
    viewers = [ViewerProcess(relay_a.url, url_b, "--format", "json-lines", "--no-jitter", "--failover-delay-ms", "100")
               for _ in range(10)]
    try:
        def last(viewer: ViewerProcess) -> dict[str, Any] | None:
            lines = viewer.json_lines()
            return lines[-1] if lines else None

        wait_until(lambda: all(last(v) is not None for v in viewers), 30, "every viewer's first state")
        for step in (1, 2, 3):
            host.send_line({"config": {"speed": step}})
        wait_until(lambda: all((last(v) or {}).get("state", {}).get("config", {}).get("speed") == 3 for v in viewers),
                   15, "speed 3 on every viewer")
        at_three = host.status()["seq"]
        before = [len(v.json_lines()) for v in viewers]

        # Relay A freezes, the host changes on, relay B starts (loading base and history from
        # Redis), and only then is A killed: its viewers' cursor (speed 3) is older than
        # anything B relayed live, so only B's preloaded history can resume them.
        relay_a.send_signal(signal.SIGSTOP)
        for step in (4, 5):
            host.send_line({"config": {"speed": step}})
        host.wait_for_status(lambda s: s["seq"] == at_three + 2)
        relay_b = start_relay(redis_server, "failover", port=port_b)
        relay_b.wait_for_status(lambda s: s["seq"] == at_three + 2)
        relay_a.kill()

        wait_until(lambda: all((last(v) or {}).get("state", {}).get("config", {}).get("speed") == 5 for v in viewers),
                   20, "speed 5 on every viewer after the failover")
        relay_b.wait_for_status(lambda s: s["clientCount"] == 10)
        for viewer, count in zip(viewers, before):
            after = viewer.json_lines()[count:]
            assert [(line["type"], line["seq"]) for line in after] == [("config_update", at_three + 2)], after
            seqs = [line["seq"] for line in viewer.json_lines()]
            assert seqs == sorted(set(seqs)), seqs
            assert any(f"connected to {url_b}" in line for line in viewer.stderr_lines()), viewer.stderr_lines()
    finally:
        for viewer in viewers:
            viewer.kill()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("outage", ["restart", "pause"])
def test_relays_converge_after_redis_is_away_for_five_seconds(
        outage, start_host, start_relay, redis_server, session_file, measure):
    host = publishing_host(start_host, session_file, redis_server, "outage")
    relays = [start_relay(redis_server, "outage") for _ in range(3)]
    expected = copy.deepcopy(BASE_SESSION)

    async def scenario() -> None:
        everyone: list[Seen] = []
        tasks: list[asyncio.Task[None]] = []
        for index, server in enumerate([host, *relays]):
            seen, started = open_viewers(server, 20, "host" if index == 0 else f"relay{index}")
            everyone += seen
            tasks += started
        try:
            await until(lambda: all(v.state is not None for v in everyone), 30, "every viewer's first state")
            host.send_line({"config": {"speed": 100}})
            expected["config"]["speed"] = 100
            await until(lambda: all(v.state == expected for v in everyone), 15, "the change before the outage")

            # Redis goes away (killed and restarted empty, or frozen and resumed) for at
            # least 5 s and until every relay has said it is degraded, however long a
            # loaded machine takes to notice, while the host keeps changing its state.
            redis_server.kill() if outage == "restart" else redis_server.pause()
            down_at = time.monotonic()
            degraded_seen: set[int] = set()
            step = 0
            while time.monotonic() - down_at < 5.0 or degraded_seen != {0, 1, 2}:
                assert time.monotonic() - down_at < 60, f"after 60 s only relays {degraded_seen} reported degraded"
                step += 1
                host.send_line({"config": {"speed": 100 + step}})
                if step == 10:
                    host.send_line({"metadata": {"owner": "outage", "revision": 2}})   # a session_update too
                    expected["metadata"] = {"owner": "outage", "revision": 2}
                await asyncio.sleep(0.25)
                for index, relay in enumerate(relays):
                    if relay.status()["degraded"]:
                        degraded_seen.add(index)
            expected["config"]["speed"] = 100 + step
            # The host served its own viewers all along.
            host_viewers = [v for v in everyone if v.server == "host"]
            await until(lambda: all(v.state == expected for v in host_viewers), 20, "the host's own viewers during the outage")
            assert degraded_seen == {0, 1, 2}, f"relays that reported degraded: {degraded_seen}"

            back_at = time.monotonic()
            redis_server.start() if outage == "restart" else redis_server.resume()
            final_seq = host.status()["seq"]
            await until(lambda: all(r.status()["seq"] == final_seq and not r.status()["degraded"] for r in relays), 20,
                        "every relay converging", lambda: str([r.status() for r in relays]))
            await until(lambda: all(v.state == expected for v in everyone), 20, "every viewer converging",
                        lambda: laggards(everyone, expected))
            measure(f"{outage}: relays and their viewers converged {time.monotonic() - back_at:.2f} s after Redis came back")
            for viewer in everyone:
                assert viewer.backwards == [], f"{viewer.server}/{viewer.kind} went back: {viewer.backwards}"
                assert viewer.last_seq == final_seq and viewer.error is None
        finally:
            await stop_all(tasks)

    run(scenario())


@pytest.mark.parametrize("command", ["serve", "relay"])
def test_an_unreachable_redis_at_start_exits_non_zero_naming_the_url(command, run_host):
    url = f"redis://127.0.0.1:{free_port()}"
    result = run_host(command, "--redis", url, "--channel", "nobody", "--bind", "127.0.0.1", "--port", "0", timeout=20)
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and "cannot reach Redis" in lines[0], result.stderr


@pytest.mark.parametrize("url", ["127.0.0.1:6379", "redis://127.0.0.1:99999", "redis://:pw@127.0.0.1:6379", "http://h:1"])
def test_a_malformed_redis_url_exits_2_naming_it(url, run_host):
    result = run_host("serve", "--redis", url, "--channel", "x", "--port", "0", timeout=20)
    assert result.returncode == 2, result
    assert f'"{url}"' in result.stderr and "redis://HOST:PORT" in result.stderr, result.stderr


def test_relay_needs_redis_and_channel(run_host):
    result = run_host("relay", "--port", "0", timeout=20)
    assert result.returncode != 0
    assert "--redis" in result.stderr and "--channel" in result.stderr


def test_a_relay_enforces_its_token_and_reports_itself_in_status(start_host, start_relay, redis_server, session_file):
    host = publishing_host(start_host, session_file, redis_server, "guarded")
    relay = start_relay(redis_server, "guarded", "--token", "s3cret")
    assert relay.status() == {"running": True}   # without the token: nothing more
    code, body = relay.http_get("/status?token=s3cret")
    status = json.loads(body)
    assert code == 200 and status["role"] == "relay" and status["upstream"] == {"redis": redis_server.url, "channel": "guarded"}
    assert status["seq"] == host.status()["seq"] and status["upstreamEpoch"]
    code, _ = relay.http_get("/events")
    assert code == 401

    async def scenario() -> None:
        seen = Seen("ws", "relay")
        task = asyncio.create_task(follow_websocket(relay.url + "?token=s3cret", seen))
        refused = Seen("ws", "relay")
        await follow_websocket(relay.url, refused)
        try:
            await until(lambda: seen.state is not None, 10, "the state with the token")
            assert seen.state == BASE_SESSION
            assert refused.state is None and refused.error is not None and "401" in str(refused.error)
        finally:
            await stop_all([task])

    run(scenario())
