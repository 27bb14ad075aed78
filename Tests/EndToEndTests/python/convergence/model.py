"""What the host's state must be: `SessionInput`'s rules (SPEC §3, `--stdin`)
applied to the lines the script sends, and file reloads replacing the state."""

from __future__ import annotations

import copy
from typing import Any

from .jsonvalue import canon

MEMBERS = ("name", "data", "config", "metadata")


def apply_line(state: dict[str, Any], line: Any) -> dict[str, Any] | None:
    """The state after one `--stdin` line, or None when the host must skip the line."""
    if not isinstance(line, dict) or not line:
        return None
    if "session" in line:
        whole = line["session"]
        if len(line) != 1 or not valid_session(whole):
            return None
        return copy.deepcopy(whole)
    if any(key not in MEMBERS for key in line):
        return None
    new = copy.deepcopy(state)
    if "name" in line:
        if not isinstance(line["name"], str):
            return None
        new["name"] = line["name"]
    if "data" in line:
        new["data"] = copy.deepcopy(line["data"])
    if "config" in line:
        if not isinstance(line["config"], dict):
            return None
        for key, value in line["config"].items():
            if value is None:
                new["config"].pop(key, None)
            else:
                new["config"][key] = copy.deepcopy(value)
    if "metadata" in line:
        if not isinstance(line["metadata"], dict):
            return None
        new["metadata"] = copy.deepcopy(line["metadata"])
    return new


def valid_session(value: Any) -> bool:
    return (isinstance(value, dict) and set(value) == set(MEMBERS) and isinstance(value["name"], str)
            and isinstance(value["config"], dict) and isinstance(value["metadata"], dict))


class HostModel:
    """The state the host must hold, and every state it ever held (canonical)."""

    def __init__(self, initial: dict[str, Any]) -> None:
        self.state = copy.deepcopy(initial)
        self.ever: set[Any] = {canon(self.state)}

    def apply(self, line: Any) -> bool:
        """Applies a stdin line; False if the host must skip it."""
        new = apply_line(self.state, line)
        if new is None:
            return False
        self.replace(new)
        return True

    def replace(self, session: dict[str, Any]) -> None:
        self.state = copy.deepcopy(session)
        self.ever.add(canon(self.state))
