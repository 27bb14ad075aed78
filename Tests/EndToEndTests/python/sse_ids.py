"""SSE event ids of StateCast hosts: `EPOCH:SEQ` (docs/PROTOCOL.md, resume rules)."""

from __future__ import annotations


def split_event_id(event_id: str) -> tuple[str, int]:
    """(epoch, seq) of an SSE event id; fails the test if the id names no epoch."""
    epoch, sep, seq = event_id.rpartition(":")
    assert sep and epoch, f"SSE id {event_id!r} does not carry the epoch (expected EPOCH:SEQ)"
    return epoch, int(seq)


def event_seq(event_id: str) -> int:
    """The seq part of an SSE event id."""
    return split_event_id(event_id)[1]
