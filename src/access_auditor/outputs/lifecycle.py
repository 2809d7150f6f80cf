"""A finding's life, as a pure function of what was kept and what this run saw.

Each finding has a stable id per account, region, API, stage, code and subject, and one of four states:

* NEW: first seen by this run (or seen again after it was resolved);
* ACTIVE: seen again, unchanged in kind;
* SUPPRESSED: seen, and a suppression of the configuration document matches it until its expiry;
* RESOLVED: no longer seen by a complete audit of its target, or its API or stage is gone.

A transition (opened, resolved, suppressed, returned) is what people are told about, once; a run that sees
the same findings again changes nothing but ``last_seen``. A finding that a run could not look for (the check
failed, the run ran out of time, the account could not be entered) stays as it was: absence is not proof.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

__all__ = ["Record", "Seen", "State", "Step", "Transition", "advance", "finding_id"]

KEEP_RESOLVED = dt.timedelta(days=30)  # a resolved finding is forgotten after this
TargetKey = tuple[str, str, str, str]  # account, region, API id, stage


class State(StrEnum):
    NEW = "NEW"
    ACTIVE = "ACTIVE"
    SUPPRESSED = "SUPPRESSED"
    RESOLVED = "RESOLVED"


OPEN = (State.NEW, State.ACTIVE, State.SUPPRESSED)


@dataclass(frozen=True)
class Seen:
    """One finding this run reported on a target; ``suppressed`` names the suppression that matches it."""

    target: TargetKey
    code: str
    severity: str
    message: str
    subject: str = ""
    suppressed: str | None = None  # the suppression's justification and expiry, as told
    until: str | None = None  # its expiry (ISO)
    kind: str = "rest"  # the API's: rest, or http (API Gateway v2)


@dataclass(frozen=True)
class Record:
    """What is kept of a finding between runs."""

    id: str
    account: str
    region: str
    api_id: str
    stage: str
    code: str
    subject: str
    severity: str
    message: str
    state: State
    first_seen: str
    last_seen: str
    changed_at: str  # its state, severity or message last changed (what Security Hub's UpdatedAt says)
    resolved_at: str | None = None
    reason: str = ""  # why it was resolved, or the suppression's justification
    until: str | None = None  # the suppression's expiry
    exported_at: str | None = None  # last sent to Security Hub
    kind: str = "rest"  # the API's: rest, or http (API Gateway v2)

    @property
    def target(self) -> TargetKey:
        return self.account, self.region, self.api_id, self.stage

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Record:
        fields = {k: raw.get(k) for k in cls.__dataclass_fields__}
        for name in ("subject", "reason"):
            fields[name] = fields[name] or ""
        fields["kind"] = fields["kind"] or "rest"
        fields["state"] = State(str(raw["state"]))
        return cls(**fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Transition:
    kind: str  # opened, reopened, resolved, suppressed, returned
    record: Record
    before: Record | None


@dataclass
class Step:
    records: dict[str, Record]
    transitions: list[Transition]
    changed: set[str]  # ids whose record differs from what was kept (to store, and to export)


def finding_id(target: TargetKey, code: str, subject: str = "") -> str:
    """Stable: the same finding on the same target has the same id in every run and every environment."""
    account, region, api_id, stage = target
    tail = f"/{hashlib.sha256(subject.encode()).hexdigest()[:16]}" if subject else ""
    return f"{account}/{region}/{api_id}/{stage}/{code}{tail}"


def advance(
    previous: Mapping[str, Record],
    seen: Iterable[Seen],
    complete: Iterable[TargetKey],
    gone: Mapping[TargetKey, str],
    now: dt.datetime,
) -> Step:
    """The records after this run. ``complete``: the targets this run audited completely (every check ran),
    so what it did not see there is resolved; ``gone``: targets that no longer exist, with why."""
    stamp = now.isoformat(timespec="seconds")
    records = dict(previous)
    transitions: list[Transition] = []
    changed: set[str] = set()
    present: set[str] = set()
    for item in _numbered(seen):
        fid, s = item
        present.add(fid)
        before = previous.get(fid)
        state = State.SUPPRESSED if s.suppressed else State.NEW
        if before is not None and before.state in OPEN and state is State.NEW:
            state = State.ACTIVE
        kind = _kind(before, state)
        account, region, api_id, stage = s.target
        after = Record(fid, account, region, api_id, stage, s.code, s.subject, s.severity, s.message[:2000], state,
                       first_seen=before.first_seen if before and before.state in OPEN else stamp,
                       last_seen=stamp,
                       changed_at=before.changed_at if before and not kind and _same(before, s) else stamp,
                       reason=s.suppressed or "", until=s.until,
                       exported_at=before.exported_at if before else None, kind=s.kind)  # fmt: skip
        if kind:
            transitions.append(Transition(kind, after, before))
        if before is None or after.changed_at != before.changed_at:
            changed.add(fid)
        records[fid] = after
    complete_targets = set(complete)
    for fid, before in previous.items():
        if fid in present or before.state not in OPEN:
            continue
        reason = gone.get(before.target)
        if reason is None and before.target in complete_targets:
            reason = "no longer found by a complete audit of its target"
        if reason is None:
            continue  # not looked for this run: it stays as it was
        after = replace(
            before, state=State.RESOLVED, resolved_at=stamp, changed_at=stamp, reason=reason, until=None
        )
        records[fid] = after
        changed.add(fid)
        transitions.append(Transition("resolved", after, before))
    for fid, record in list(records.items()):
        if (
            record.state is State.RESOLVED
            and record.resolved_at
            and now - _time(record.resolved_at) > KEEP_RESOLVED
        ):
            del records[fid]
    return Step(records, transitions, changed)


def _numbered(seen: Iterable[Seen]) -> list[tuple[str, Seen]]:
    """Ids for this run's findings; a second finding of the same code and subject on a target is #2."""
    counts: dict[str, int] = {}
    out = []
    for s in seen:
        base = finding_id(s.target, s.code, s.subject)
        counts[base] = counts.get(base, 0) + 1
        out.append((base if counts[base] == 1 else f"{base}#{counts[base]}", s))
    return out


def _kind(before: Record | None, state: State) -> str | None:
    if before is None:
        return "suppressed" if state is State.SUPPRESSED else "opened"
    if before.state is State.RESOLVED:
        return "suppressed" if state is State.SUPPRESSED else "reopened"
    if state is State.SUPPRESSED and before.state is not State.SUPPRESSED:
        return "suppressed"
    if before.state is State.SUPPRESSED and state is not State.SUPPRESSED:
        return "returned"
    return None


def _same(before: Record, s: Seen) -> bool:
    """The same in kind: a message that only words the same problem anew (a request id, a latency) is not a
    change, so an unchanged finding costs no export between refreshes."""
    return before.severity == s.severity and before.until == s.until


def _time(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp)
