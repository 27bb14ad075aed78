"""Change scripts, generated step by step from a seeded `random.Random` and the
host model (so a removal names a key that exists, a kind change a key that has
a kind). The same seed gives the same script."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any

from .jsonvalue import kind
from .model import HostModel

CONFIG_KEYS = ["speed", "mode", "gain", "enabled", "tags", "limits", "note", "a b", "ü", "__proto__", ""]
STRINGS = ["", "wave", "ramp", "naïve ✓", "日本語", 'quote"back\\slash', "line\nbreak", "0", "🎛️"]
INVALID_LINES = [
    "this is not JSON",
    '{"config": {"speed": 1}',
    '{"config": 3}',
    '{"speed": 2}',
    "[1, 2, 3]",
    "{}",
    '{"session": {"name": 1}}',
    '{"session": {}, "config": {}}',
    '{"name": false}',
]


@dataclass
class Step:
    """One thing the runner does. `kind` is one of: lines, sleep, file, file_invalid,
    cut, stall, reconnect, kill, host_restart, check."""

    kind: str
    lines: list[Any] = field(default_factory=list)  # dicts (valid or not) or raw strings; for a stall, sent during it
    seconds: float = 0.0
    session: dict[str, Any] | None = None
    text: str = ""
    mode: str = ""  # file: rename | inplace; host_restart: term | kill
    viewer: int = 0

    def describe(self) -> str:
        if self.kind == "lines":
            return f"lines x{len(self.lines)}"
        if self.kind in ("cut", "stall", "reconnect", "kill"):
            return f"{self.kind} viewer {self.viewer}" + (f" {self.seconds:.1f} s" if self.kind == "stall" else "")
        if self.kind in ("file", "file_invalid", "host_restart"):
            return f"{self.kind} ({self.mode})"
        if self.kind == "sleep":
            return f"sleep {self.seconds:.3f} s"
        return self.kind


class ScriptGenerator:
    def __init__(self, rng: random.Random, model: HostModel, viewers: int, debounce_ms: int, *,
                 restarts: bool = True) -> None:
        self.rng = rng
        self.model = model
        self.viewers = viewers
        self.debounce = debounce_ms / 1000
        self.restarts = restarts
        self.file_revision = 0

    # -- values --------------------------------------------------------------

    def value(self, depth: int = 2) -> Any:
        r = self.rng
        choice = r.randrange(9 if depth > 0 else 6)
        if choice == 0:
            return r.choice([True, False])
        if choice in (1, 2):
            return r.choice([0, 1, -3, 7, 2**40, r.randrange(-1000, 1000)])
        if choice == 3:
            return r.choice([0.5, 2.5, -1.25, 1e-7, 123456.75, 3.0, 1e21])
        if choice in (4, 5):
            return r.choice(STRINGS)
        if choice in (6, 7):
            return [self.value(depth - 1) for _ in range(r.randrange(4))]
        return {r.choice(["x", "y", "z", "k", "ü"]): self.value(depth - 1) for _ in range(r.randrange(4))}

    def same_kind(self, old: Any) -> Any:
        for _ in range(10):
            candidate = self.value()
            if kind(candidate) == kind(old):
                return candidate
        return old

    def config(self) -> dict[str, Any]:
        return {self.rng.choice(CONFIG_KEYS): self.value() for _ in range(self.rng.randrange(6))}

    def session(self, *, nulls: bool = True) -> dict[str, Any]:
        config = self.config()
        if nulls and config and self.rng.random() < 0.3:
            config[self.rng.choice(list(config))] = None  # only a whole session can hold a null config value
        return {
            "name": self.rng.choice(["Mixer", "Show", "naïve ✓"]),
            "data": self.value(),
            "config": config,
            "metadata": {} if self.rng.random() < 0.3 else {"owner": self.rng.choice(STRINGS), "rev": self.rng.randrange(3)},
        }

    # -- changes ---------------------------------------------------------------

    def change(self) -> dict[str, Any]:
        """One valid stdin line, biased towards config changes (as a host's are)."""
        r = self.rng
        config = self.model.state["config"]
        keys = list(config)
        roll = r.randrange(20)
        if roll < 8 and keys:  # existing key, same kind (a config_update)
            key = r.choice(keys)
            value = config[key]
            return {"config": {key: self.same_kind(value) if value is not None else self.value()}}
        if roll < 10 and keys:  # existing key, another kind
            key = r.choice(keys)
            return {"config": {key: self.value()}}
        if roll < 12:  # a key added (or re-added)
            return {"config": {r.choice(CONFIG_KEYS): self.value()}}
        if roll < 14 and keys:  # a key removed
            return {"config": {r.choice(keys): None}}
        if roll == 14:  # several keys at once
            return {"config": {r.choice(CONFIG_KEYS): self.value() for _ in range(r.randrange(1, 4))}}
        if roll == 15:
            return {"name": r.choice(["Mixer", "Show", "naïve ✓"])}
        if roll == 16:
            return {"data": self.value()}
        if roll == 17:
            return {"metadata": {} if r.random() < 0.3 else {"owner": r.choice(STRINGS)}}
        if roll == 18:  # the same values again: nothing to send
            return {"config": copy.deepcopy(config)} if config else {"name": self.model.state["name"]}
        return {"session": self.session()}

    def revert_pair(self) -> list[dict[str, Any]]:
        """A change and its undo in one write: inside one debounce window, nothing to send."""
        change = self.change()
        state = self.model.state
        if "session" in change:
            undo: dict[str, Any] = {"session": copy.deepcopy(state)}
        elif "config" in change:
            undo = {"config": {key: copy.deepcopy(state["config"].get(key)) for key in change["config"]}}
        else:
            undo = {member: copy.deepcopy(state[member]) for member in change}
        return [change, undo]

    def big_data(self) -> dict[str, Any]:
        """A large structural change (tens of KiB) so a stalled viewer's backlog overflows."""
        size = self.rng.randrange(20_000, 120_000)
        return {"data": {"blob": self.rng.choice("abcdef") * size, "n": self.rng.randrange(10**6)}}

    # -- steps -----------------------------------------------------------------

    def next_step(self) -> Step:
        r = self.rng
        roll = r.random()
        if roll < 0.40:
            lines: list[Any] = [self.change() for _ in range(r.choice([1, 1, 1, 2, 3, 6]))]
            if r.random() < 0.15:
                lines.insert(r.randrange(len(lines) + 1), r.choice(INVALID_LINES))
            return Step("lines", lines=lines)
        if roll < 0.47:
            return Step("lines", lines=self.revert_pair())
        if roll < 0.55:
            window = max(self.debounce, 0.02)
            return Step("sleep", seconds=r.choice([0.0, window * 0.5, window * 1.5, window * 3]))
        if roll < 0.59:
            self.file_revision += 1
            session = self.session()
            session["metadata"]["file"] = self.file_revision  # never a no-op, so its arrival can be awaited
            return Step("file", session=session, mode=r.choice(["rename", "inplace"]))
        if roll < 0.61:
            return Step("file_invalid", text=r.choice(['{"name": "half', "", "[]", '{"name": 3, "config": {}}']),
                        mode=r.choice(["rename", "inplace"]))
        if roll < 0.68:
            return Step("cut", viewer=r.randrange(self.viewers))
        if roll < 0.73:
            # A viewer stops reading while large changes go out in separate windows,
            # more than the host's backlog holds: the host must conflate it.
            big = [self.big_data() for _ in range(r.randrange(2, 5))]
            return Step("stall", viewer=r.randrange(self.viewers), seconds=r.uniform(0.5, 2.5), lines=big)
        if roll < 0.78:
            return Step("lines", lines=[self.big_data()])
        if roll < 0.84:
            return Step("reconnect", viewer=r.randrange(self.viewers))
        if roll < 0.87:
            return Step("kill", viewer=r.randrange(self.viewers))
        if roll < 0.89 and self.restarts:
            return Step("host_restart", mode=r.choice(["term", "term", "kill"]))
        if roll < 0.93:
            return Step("check")
        return Step("lines", lines=[self.change()])
