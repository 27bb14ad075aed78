"""The contract, checked against the host's own truth (the `Recorder`):

- `history_problems`: every state a viewer held is the state the host had at
  that position (epoch, seq) as the recorder saw it, or, at a position the
  recorder did not get, a state the host's inputs made; seqs strictly increase
  within an epoch for each client instance; a viewer that does not tell its
  epoch is placed by its seq.
- `resume_problems`: a resumed connection got no more than docs/PROTOCOL.md §4
  promises: the full state only for another epoch, a missing epoch, a missed
  session_update or a history that no longer reaches back; otherwise one
  config_update merging exactly the missed ones.
"""

from __future__ import annotations

from typing import Any

from .jsonvalue import canon, short
from .model import HostModel
from .recorder import Recorder
from .viewers import ViewerDriver


def history_problems(viewer: ViewerDriver, recorder: Recorder, model: HostModel, start: int = 0) -> tuple[list[str], int, int]:
    """Problems in `viewer.history[start:]`, how many states were compared, and
    how many times the viewer caught up with one full state over skipped seqs
    (the host conflated it, or a resume could not be served from history)."""
    problems: list[str] = []
    compared = 0
    catch_ups = 0
    last: dict[tuple[int, str], int] = {}
    history = list(viewer.history)
    for index, seen in enumerate(history):
        if seen.seq is None:
            if index >= start and canon(seen.state) not in model.ever:
                problems.append(f"{viewer.describe()} held a state without seq that the host never had: {short(seen.state)}")
            continue
        epochs = [seen.epoch] if seen.epoch is not None else recorder.epochs_with(seen.seq)
        if not any((e, seen.seq) in recorder.by_position for e in epochs):
            # A position the recorder never got: the host conflated the recorder
            # there, or sent it elsewhere only (a host stopping publishes its last
            # change to Redis after closing its own viewers). The state must still
            # be one the host had.
            if index >= start and canon(seen.state) not in model.ever:
                problems.append(f"{viewer.describe()} held seq {seen.seq} (epoch {seen.epoch}), a position the recorder "
                                f"never got, with a state the host never had: {short(seen.state)}")
            continue
        matching = [e for e in epochs if (e, seen.seq) in recorder.by_position
                    and canon(recorder.by_position[(e, seen.seq)].state) == canon(seen.state)]
        if index >= start:
            compared += 1
            if not matching:
                host = [short(recorder.by_position[(e, seen.seq)].state) for e in epochs if (e, seen.seq) in recorder.by_position]
                problems.append(
                    f"{viewer.describe()} after a {seen.type} held at seq {seen.seq} a state the host did not have there\n"
                    f"      viewer: {short(seen.state)}\n      host:   {' | '.join(host) or 'no such position'}")
        epoch = matching[0] if len(matching) == 1 else (seen.epoch or (epochs[0] if len(epochs) == 1 else None))
        if epoch is None:
            continue
        key = (seen.instance, epoch)
        if key in last and seen.seq > last[key] + 1 and seen.type == "session_update" and index >= start:
            catch_ups += 1
        if key in last and seen.seq <= last[key] and index >= start:
            problems.append(f"{viewer.describe()}: seq went from {last[key]} to {seen.seq} within epoch {epoch} "
                            f"(client instance {seen.instance})")
        last[key] = seen.seq
    return problems, compared, catch_ups


def resume_problems(viewer: ViewerDriver, recorder: Recorder, history_cap_bytes: int, start: int = 0) -> list[str]:
    problems: list[str] = []
    for resume in viewer.resumes[start:]:
        what = (f"{viewer.describe()} resumed from since={resume.since} epoch={resume.epoch} "
                f"and first got a {resume.first_type} seq {resume.first_seq}")
        if resume.first_type == "session_update":
            if resume.epoch is None or resume.first_epoch is None or resume.first_epoch != resume.epoch:
                continue  # another run (or no epoch named): the full state is the rule
            if resume.first_seq is not None and resume.first_seq <= resume.since:
                problems.append(f"{what}: a state it already had (PROTOCOL §4: since equal to the newest seq → nothing)")
                continue
            missed = recorder.between(resume.epoch, resume.since, resume.first_seq)
            if missed is None or not missed:
                continue  # the record does not reach back that far: cannot judge
            if any(m.type == "session_update" for m in missed):
                continue
            if sum(m.size for m in missed) > history_cap_bytes // 4 or len(missed) > 1000:
                continue  # the history may no longer reach back
            problems.append(f"{what}: the full state although only {len(missed)} config_update(s) were missed "
                            f"(PROTOCOL §4: one merged config_update)")
            continue
        if resume.first_type != "config_update":
            continue
        if resume.epoch is None:
            problems.append(f"{what}: a resume naming no epoch must get the full state (SPEC §2)")
            continue
        if resume.first_seq is None or (resume.epoch, resume.first_seq) not in recorder.by_position:
            recorded = recorder.by_epoch.get(resume.epoch, [])
            if resume.first_seq is not None and recorded and resume.first_seq > recorded[-1].seq:
                continue  # past the recorder's end of that run (a killed host published it to Redis only)
            problems.append(f"{what}: the host never sent that position in epoch {resume.epoch} "
                            f"(a resume into another run must get the full state)")
            continue
        if resume.first_seq <= resume.since:
            problems.append(f"{what}: not after the resume position")
            continue
        missed = recorder.between(resume.epoch, resume.since, resume.first_seq)
        if missed is None:
            continue
        if any(m.type == "session_update" for m in missed):
            problems.append(f"{what}: a session_update was missed, so the full state was due")
            continue
        if resume.first_payload is not None:
            merged: dict[str, Any] = {}
            for m in missed:
                merged.update(m.payload)
            if canon(merged) != canon(resume.first_payload):
                problems.append(f"{what}: payload {short(resume.first_payload)} is not the merge of the missed "
                                f"config_updates {short(merged)}")
    return problems
