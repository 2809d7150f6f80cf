"""Findings flow to sinks. A run produces results; ``deliver`` mutes what a suppression matches, advances
each finding's life (lifecycle.py) against what the state table kept, and hands the outcome to every sink:
logs and metrics, the transition notification, Security Hub, AWS Config, OCSF files. Each sink is added
without touching a check, and a sink that fails is named in the log and counted as an AuditError; the
others still deliver, and what a sink could not deliver is delivered next run.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from access_auditor.audit import AuditRun, TargetResult
from access_auditor.aws.dynamodb import SharedStore
from access_auditor.findings import Category
from access_auditor.outputs.config_rule import evaluation
from access_auditor.outputs.formats import asff, ocsf, resource_arn, stage_arn
from access_auditor.outputs.lifecycle import OPEN, Record, Seen, State, Step, TargetKey, advance
from access_auditor.outputs.suppression import Suppression

__all__ = ["Outcome", "Sink", "FindingState", "deliver", "suppress", "transition_page"]

log = logging.getLogger(__name__)
UNTRACKED = frozenset({"AUDIT_DEFERRED", "CHANGED_BY"})  # about this run, not about the API
# Security Hub deletes a finding not updated for 90 days; a daily refresh also undoes, within a day, an update
# someone else imported over ours (anyone the account lets call BatchImportFindings can).
REFRESH = dt.timedelta(days=1)
SAVE_AT_LEAST = dt.timedelta(hours=1)  # last_seen is written at least this often while nothing changes
Scope = tuple[str, str]


@dataclass
class Outcome:
    results: Sequence[TargetResult]
    previous: dict[str, Record]
    step: Step
    now: dt.datetime
    gone: dict[TargetKey, str]

    @property
    def records(self) -> dict[str, Record]:
        return self.step.records


class Sink(Protocol):
    name: str

    def deliver(self, outcome: Outcome) -> set[str]:
        """Deliver; returns the ids of the records it exported to Security Hub (other sinks: empty)."""
        ...


def suppress(results: Iterable[TargetResult], suppressions: Sequence[Suppression], now: dt.datetime) -> None:
    """Move every finding a live suppression matches from ``findings`` to ``suppressed``."""
    if not suppressions:
        return
    for result in results:
        kept = []
        for f in result.findings:
            match = next(
                (s for s in suppressions if s.matches(f, result.target.api_id, result.tags, now)), None
            )
            if match is None or f.code in UNTRACKED:
                kept.append(f)
            else:
                result.suppressed.append((f, match))
        result.findings = kept


class FindingState:
    """The records of each account and region, one entry per scope in the shared table (authenticated, so a
    forged or altered entry reads as none: every finding then opens again rather than staying silenced).
    Without a table (the CLI), nothing is kept between runs."""

    def __init__(self, store: SharedStore | None) -> None:
        self._store = store
        self._saved: dict[Scope, dt.datetime] = {}

    def load(self, scopes: Iterable[Scope]) -> dict[str, Record]:
        records: dict[str, Record] = {}
        for scope in scopes:
            raw = self._store.get(_key(scope)) if self._store else None
            if raw is None:
                continue
            try:
                body = json.loads(zlib.decompress(base64.b64decode(raw)))
                self._saved[scope] = dt.datetime.fromisoformat(body["saved"])
                for item in body["records"]:
                    record = Record.from_dict(item)
                    if (record.account, record.region) == scope:  # an entry holds its own scope's only
                        records[record.id] = record
            except (ValueError, KeyError, TypeError, zlib.error) as exc:
                log.warning(
                    "the finding state of %s could not be read (%s); its findings open again", scope, exc
                )
        return records

    def save(
        self, records: Mapping[str, Record], changed: set[str], scopes: Iterable[Scope], now: dt.datetime
    ) -> None:
        if self._store is None:
            return
        by_scope: dict[Scope, list[Record]] = defaultdict(list)
        for record in records.values():
            by_scope[(record.account, record.region)].append(record)
        dirty = {(r.account, r.region) for fid, r in records.items() if fid in changed}
        for scope in set(scopes) | dirty:
            saved = self._saved.get(scope)
            if scope not in dirty and saved is not None and now - saved < SAVE_AT_LEAST:
                continue
            body = {"saved": now.isoformat(timespec="seconds"),
                    "records": [r.as_dict() for r in sorted(by_scope[scope], key=lambda r: r.id)]}  # fmt: skip
            self._store.put(
                _key(scope), base64.b64encode(zlib.compress(json.dumps(body).encode(), 6)).decode()
            )
            self._saved[scope] = now


def _key(scope: Scope) -> str:
    return f"v1/findings/{scope[0]}/{scope[1]}"


def _seen(results: Iterable[TargetResult]) -> list[Seen]:
    seen = []
    for result in results:
        key = result.target.key
        for f in result.findings:
            if f.code not in UNTRACKED:
                seen.append(
                    Seen(key, f.code, f.severity.value, f.message, f.subject, kind=result.target.kind)
                )
        for f, by in result.suppressed:
            seen.append(
                Seen(
                    key,
                    f.code,
                    f.severity.value,
                    f.message,
                    f.subject,
                    by.justification,
                    by.expires.isoformat(timespec="seconds"),
                    result.target.kind,
                )
            )
    return seen


def _complete(result: TargetResult) -> bool:
    """Every check ran: what it did not report is not there."""
    return not (result.has(Category.AUDIT_ERROR) or result.has(Category.DEFERRED))


def gone_targets(run: Sequence[TargetResult], previous: Mapping[str, Record]) -> dict[TargetKey, str]:
    """Tracked targets that this run proves gone: missing from a whole sweep of their account and region."""
    if not isinstance(run, AuditRun):
        return {}
    present = {r.target.key for r in run}
    gone: dict[TargetKey, str] = {}
    for record in previous.values():
        key = record.target
        if key in present or record.state not in OPEN or (record.account, record.region) not in run.swept:
            continue
        api = (record.account, record.region, record.api_id)
        if run.only is not None and api not in run.only and record.api_id != "*":
            continue
        if record.api_id == "*":
            if run.only is None:
                gone[key] = "the account and region were audited again"
        elif api not in run.apis:
            gone[key] = f"API {record.api_id} no longer exists"
        else:
            gone[key] = (f"stage {record.stage} of API {record.api_id} no longer exists, or the API is no longer "
                         "tagged or configured for audit")  # fmt: skip
    return gone


def deliver(
    run: Sequence[TargetResult],
    suppressions: Sequence[Suppression],
    state: FindingState,
    sinks: Sequence[Sink],
    now: dt.datetime | None = None,
    on_error: Callable[[str, str], None] | None = None,
) -> Outcome:
    """Suppress, advance the findings' lives, deliver to every sink, and keep the new state."""
    now = now or dt.datetime.now(dt.UTC)
    suppress(run, suppressions, now)
    scopes = {(r.target.account, r.target.region) for r in run} | (
        run.swept if isinstance(run, AuditRun) else set()
    )
    previous = state.load(scopes)
    gone = gone_targets(run, previous)
    step = advance(previous, _seen(run), [r.target.key for r in run if _complete(r)], gone, now)
    outcome = Outcome(run, previous, step, now, gone)
    exported: set[str] = set()
    for sink in sinks:
        try:
            exported |= sink.deliver(outcome)
        except Exception as exc:  # one sink's failure loses nothing of the others
            log.error("the %s sink failed: %s: %s", sink.name, type(exc).__name__, exc)
            if on_error:
                on_error(sink.name, f"{type(exc).__name__}: {exc}")
    stamp = now.isoformat(timespec="seconds")
    for fid in exported:
        if fid in step.records:
            step.records[fid] = replace(step.records[fid], exported_at=stamp)
    state.save(step.records, step.changed | exported, scopes, now)
    return outcome


def transition_page(outcome: Outcome) -> tuple[str, str] | None:
    """(subject, message) naming this run's transitions, or None when nothing changed: the same findings seen
    again page nobody."""
    moves = outcome.step.transitions
    if not moves:
        return None
    counts: dict[str, int] = defaultdict(int)
    for t in moves:
        counts[t.kind] += 1
    subject = ("FINDINGS: " + ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())))[:100]
    lines = []
    for t in sorted(moves, key=lambda t: (t.kind, t.record.id))[:50]:
        r = t.record
        why = f" ({r.reason})" if r.reason and t.kind in {"resolved", "suppressed"} else ""
        lines.append(f"- {t.kind}: {r.code} [{r.severity}] on {resource_arn(r)}{why}: {r.message[:300]}")
    if len(moves) > 50:
        lines.append(f"... and {len(moves) - 50} more (the function's log has each)")
    return subject, "\n".join(lines)


class PageSink:
    name = "notification"

    def __init__(self, page: Callable[[str, str], None]) -> None:
        self._page = page

    def deliver(self, outcome: Outcome) -> set[str]:
        page = transition_page(outcome)
        if page is not None:
            self._page(*page)
        return set()


class SecurityHubSink:
    """ASFF through BatchImportFindings, in each finding's own account and region. Sent: what changed, and
    what is due for a refresh before Security Hub's 90-day expiry; an unchanged finding between refreshes
    costs no call."""

    name = "Security Hub"

    def __init__(
        self, importer: Callable[[str, str, list[dict[str, Any]]], tuple[set[str], list[str]]]
    ) -> None:
        self._import = importer  # (account, region, findings) -> (ASFF ids imported, problems)

    def deliver(self, outcome: Outcome) -> set[str]:
        due: dict[Scope, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        for fid, record in outcome.records.items():
            before = outcome.previous.get(fid)
            stale = record.state in OPEN and (
                record.exported_at is None
                or outcome.now - dt.datetime.fromisoformat(record.exported_at) > REFRESH
            )
            if fid in outcome.step.changed or stale:
                if record.state is State.RESOLVED and (before is None or before.exported_at is None):
                    continue  # never sent: nothing to archive
                exported_before = before if before is not None and before.exported_at else None
                for item in asff(record, exported_before, outcome.now):
                    due[(record.account, record.region)].append((fid, item))
        exported: set[str] = set()
        for (account, region), items in due.items():
            imported, problems = self._import(account, region, [item for _, item in items])
            for problem in problems:
                log.error("Security Hub refused findings of %s/%s: %s", account, region, problem)
            exported |= {fid for fid, item in items if item["Id"] in imported}
        return exported


class ConfigSink:
    """AWS Config's evaluations for the invocation Config made: one per stage audited (COMPLIANT, NON_COMPLIANT
    with the finding in the annotation) and NOT_APPLICABLE for a stage that is gone."""

    name = "AWS Config"

    def __init__(
        self, put: Callable[[list[dict[str, Any]]], list[str]], resource_ids: Mapping[TargetKey, str]
    ) -> None:
        self._put = put
        self._ids = resource_ids  # what Config named (a configuration item's resourceId), per target

    def deliver(self, outcome: Outcome) -> set[str]:
        evaluations = []
        for result in outcome.results:
            if result.target.api_id == "*":
                continue
            raised = [f for f in result.findings if f.categories - {Category.NOTE, Category.DEFERRED}]
            if result.deferred and not raised:
                continue  # not audited: Config keeps its last evaluation
            first = raised[0] if raised else None
            evaluations.append(evaluation(self._id(result.target.key, result.target.kind),
                                          "NON_COMPLIANT" if first else "COMPLIANT",
                                          f"{first.code}: {first.message}" if first else
                                          "locked to the expected roles; no finding", outcome.now))  # fmt: skip
        for key, why in outcome.gone.items():
            if key[2] != "*":
                evaluations.append(evaluation(self._id(key), "NOT_APPLICABLE", why, outcome.now))
        if evaluations:
            for problem in self._put(evaluations):
                log.error("AWS Config refused an evaluation: %s", problem)
        return set()

    def _id(self, key: TargetKey, kind: str = "rest") -> str:
        """The stage as Config named it, else its ARN."""
        return self._ids.get(key) or stage_arn(*key, kind)


class OcsfSink:
    """OCSF 1.6 events, one JSON line per finding that changed, one S3 object per run (for Security Lake's
    custom source, or any OCSF reader)."""

    name = "OCSF"

    def __init__(self, put: Callable[[str, bytes], None], version: str) -> None:
        self._put, self._version = put, version

    def deliver(self, outcome: Outcome) -> set[str]:
        changed = [outcome.records[fid] for fid in sorted(outcome.step.changed) if fid in outcome.records]
        if changed:
            lines = "\n".join(
                json.dumps(ocsf(r, self._version, outcome.now), separators=(",", ":")) for r in changed
            )
            digest = hashlib.sha256(lines.encode()).hexdigest()[:12]  # two runs in one second never collide
            self._put(
                f"ocsf/findings/{outcome.now:%Y/%m/%d/%H%M%S}-{digest}.json",
                lines.encode() + b"\n",
            )
        return set()
