"""The host's truth, seen from outside:

- `Recorder`: one python-websockets connection straight to the host (no proxy,
  never stalled) that records every envelope, so `(epoch, seq)` → the state the
  host had there. It applies envelopes without any whitelist (session_update
  replaces, config_update merges its keys), and reports protocol breaches it
  sees itself (a seq that does not increase, a config_update that adds a key or
  changes a value's kind, which SPEC §2 forbids). After a host restart it
  connects again (a new epoch).
- `fresh_state(url)`: what a brand-new viewer receives first: the current state.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect as ws_connect

from .jsonvalue import canon, kind, short

WS_OPTIONS: dict[str, Any] = {"open_timeout": 10, "close_timeout": 2, "max_size": None, "proxy": None, "ping_interval": None}


@dataclass
class Recorded:
    """One envelope as the host sent it, and the state after it."""

    epoch: str
    seq: int
    type: str
    payload: Any
    size: int
    state: dict[str, Any]


def fresh_state(url: str, timeout: float = 10.0) -> tuple[str, int, dict[str, Any]]:
    """(epoch, seq, state) of the first envelope a new connection to `url` receives."""
    with ws_connect(url, **WS_OPTIONS) as ws:
        body = json.loads(ws.recv(timeout=timeout))
    assert body.get("type") == "session_update", f"a newcomer's first message is not a session_update: {short(body)}"
    return body.get("epoch"), body["seq"], body["payload"]


class Recorder:
    def __init__(self, url: str) -> None:
        self.url = url
        self.by_position: dict[tuple[str, int], Recorded] = {}
        self.by_epoch: dict[str, list[Recorded]] = {}
        self.epochs: list[str] = []
        self.latest: Recorded | None = None
        self.violations: list[str] = []
        self.envelopes = 0
        self.gaps = 0  # times the host skipped seqs for the recorder (it conflated it)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._ws: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="recorder")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ws = ws_connect(self.url, **WS_OPTIONS)
            except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed):
                # The host is down, or went down during the handshake (a restart).
                time.sleep(0.05)
                continue
            self._ws = ws
            try:
                for message in ws:
                    self._record(message)
            except ConnectionClosed:
                pass
            except Exception as error:  # a failure of the recorder itself must be seen
                self._violation(f"recorder failed: {error!r}")
            finally:
                ws.close()

    def _violation(self, text: str) -> None:
        with self._cond:
            self.violations.append(text)

    def _record(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self._violation(f"host sent a binary frame ({len(message)} bytes)")
            return
        body = json.loads(message)
        kind_ = body.get("type")
        seq = body.get("seq")
        with self._cond:
            self.envelopes += 1
            previous = self.latest
            # States are never changed in place, so copies can be shallow (the
            # recorder must keep up, or the host conflates it too).
            if kind_ == "session_update":
                epoch = body.get("epoch")
                state = body["payload"]
            elif kind_ == "config_update":
                if previous is None:
                    self.violations.append(f"config_update before any session_update: {short(body)}")
                    return
                epoch = previous.epoch
                if body.get("epoch") not in (None, epoch):
                    self.violations.append(f"config_update seq {seq} names epoch {body['epoch']} inside epoch {epoch}")
                state = {**previous.state, "config": dict(previous.state["config"])}
                for key, value in body["payload"].items():
                    if key not in state["config"]:
                        self.violations.append(
                            f"config_update seq {seq} adds config key {key!r} (SPEC §2: only a session_update may)")
                    elif kind(state["config"][key]) != kind(value):
                        self.violations.append(
                            f"config_update seq {seq} changes the kind of {key!r} from {kind(state['config'][key])} "
                            f"to {kind(value)} (SPEC §2: only a session_update may)")
                    state["config"][key] = value
            else:
                self.violations.append(f"host sent an envelope of unknown type: {short(body)}")
                return
            if previous is not None and previous.epoch == epoch and seq > previous.seq + 1:
                self.gaps += 1
            if previous is not None and previous.epoch == epoch and seq <= previous.seq:
                self.violations.append(f"host seq went from {previous.seq} to {seq} within epoch {epoch}")
            entry = Recorded(epoch, seq, kind_, body["payload"], len(message.encode()), state)
            known = self.by_position.get((epoch, seq))
            if known is not None and canon(known.state) != canon(state):
                self.violations.append(f"two different states at epoch {epoch} seq {seq}")
            self.by_position[(epoch, seq)] = entry
            if epoch not in self.by_epoch:
                self.by_epoch[epoch] = []
                self.epochs.append(epoch)
            self.by_epoch[epoch].append(entry)
            self.latest = entry
            self._cond.notify_all()

    def wait_for(self, predicate: Any, timeout: float, what: str) -> Recorded:
        """Waits until `predicate(latest)` holds; returns that entry."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self.latest is not None and predicate(self.latest):
                    return self.latest
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    latest = short(self.latest.state) if self.latest else "nothing"
                    raise AssertionError(f"the recorder did not see {what} within {timeout} s; latest: {latest}")
                self._cond.wait(remaining)

    def epochs_with(self, seq: int) -> list[str]:
        with self._cond:
            return [epoch for epoch in self.epochs if (epoch, seq) in self.by_position]

    def between(self, epoch: str, after: int, upto: int) -> list[Recorded] | None:
        """The envelopes of `epoch` with after < seq <= upto, or None if the record has a gap there
        (the recorder joined the epoch later than `after`)."""
        with self._cond:
            entries = self.by_epoch.get(epoch, [])
            if not entries or entries[0].seq > after:
                return None
            found = [e for e in entries if after < e.seq <= upto]
            if [e.seq for e in found] != list(range(after + 1, after + 1 + len(found))):
                return None  # a gap: the recorder was conflated there
            return found

    def close(self) -> None:
        self._stop.set()
        if self._ws is not None:
            self._ws.close()
        self._thread.join(timeout=5)
