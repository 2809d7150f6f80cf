"""Alarm notifications that name the APIs: CloudWatch's own notification names a metric, and the metrics are
per stack, so when one of the per-API alarms goes to ALARM, EventBridge delivers its state change here and
the function publishes to the alarm topic which APIs raised it, from the runs' ``target audited`` lines.

If the query fails, the notification still goes out, saying so: an alarm is never swallowed.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from access_auditor.errors import AuditorError
from access_auditor.findings import Category
from access_auditor.redact import redact

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
MAX_APIS = 50  # per notification; the dashboard's table has them all
CATEGORIES = {c.metric: c for c in Category if c.metric}


@dataclass(frozen=True)
class AlarmChange:
    """What EventBridge says about an alarm's state change ("Alarm events and EventBridge")."""

    alarm: str
    state: str
    reason: str
    metric: str
    at: dt.datetime
    region: str

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> AlarmChange | None:
        if event.get("source") != "aws.cloudwatch" or event.get("detail-type") != ALARM_STATE_CHANGE:
            return None
        detail = event.get("detail") or {}
        metrics = (detail.get("configuration") or {}).get("metrics") or [{}]
        metric = ((metrics[0].get("metricStat") or {}).get("metric") or {}).get("name", "")
        state = detail.get("state") or {}
        stamp = str(state.get("timestamp") or event.get("time") or "")
        try:
            at = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00").replace("+0000", "+00:00"))
        except ValueError:
            at = dt.datetime.now(dt.UTC)
        return cls(str(detail.get("alarmName", "")), str(state.get("value", "")), str(state.get("reason", "")),
                   str(metric), at, str(event.get("region", "")))  # fmt: skip


class Query(Protocol):
    def query(
        self, group: str, query: str, start: dt.datetime, end: dt.datetime, deadline: float
    ) -> list[dict[str, str]]: ...


def per_api_query(metric: str) -> str:
    """Each API's latest verdict on ``metric`` (and its first finding), per API, stage, region and account. The rows
    whose latest value is 1 are the APIs that raise the alarm now; an API that recovered is left out."""
    return ('filter message = "target audited" '
            f"| stats latest(audit.flags.{metric}) as raised, latest(audit.raisedBy.{metric}) as finding, "
            "latest(audit.trigger) as trigger, max(@timestamp) as seen "
            "by audit.apiId as api, audit.stage as stage, audit.region as region, audit.account as account "
            "| limit 10000")  # fmt: skip


def raising(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows whose latest value raises the metric, in a stable order."""
    chosen = (r for r in rows if str(r.get("raised")) in {"1", "1.0"})
    return sorted(chosen, key=lambda r: (r.get("api", ""), r.get("stage", ""), r.get("region", "")))


def compose(change: AlarmChange, rows: list[dict[str, str]] | None, problem: str | None) -> tuple[str, str]:
    """(subject, message) for the alarm topic."""
    apis = [_short(r) for r in rows or []]
    named = f": {', '.join(apis[:3])}{' and more' if len(apis) > 3 else ''}" if apis else ""
    subject = f"{change.state}: {change.alarm}{named}"[:100]  # SNS subjects are at most 100 characters
    lines = [f"{change.alarm} is {change.state} since {change.at:%Y-%m-%d %H:%M:%SZ} ({change.region}).",
             f"CloudWatch: {change.reason}", ""]  # fmt: skip
    category = CATEGORIES.get(change.metric)
    if category is not None:
        lines.append(f"{change.metric}: {category.meaning}.")
    if rows:
        lines.append(f"APIs whose latest run raises it ({len(rows)}):")
        for row in rows[:MAX_APIS]:
            changed = f" (changed: {row['trigger']})" if row.get("trigger") not in (None, "", "None") else ""
            account = f" of account {row['account']}" if row.get("account") not in (None, "", "None") else ""
            where = (f"account {row.get('account')} in {row.get('region')}" if row.get("api") == "*"
                     else f"{row.get('api')} stage {row.get('stage')} in {row.get('region')}{account}")  # fmt: skip
            lines.append(f"- {where}: {row.get('finding')}{changed}")
    elif problem:
        lines.append(f"The APIs could not be listed ({problem}); the dashboard's per-API table names them.")
    elif category is not None:
        lines.append("No API's latest run raises it any more; the dashboard's per-API table has the history.")
    return subject, redact("\n".join(lines))


def _short(row: dict[str, str]) -> str:
    """An API for a subject line; a whole account and region (api ``*``: its role, its sweep) as such."""
    if row.get("api") == "*":
        return f"account {row.get('account')} ({row.get('region')})"
    return f"{row.get('api')} ({row.get('stage')}, {row.get('region')})"


def notify(
    change: AlarmChange,
    query: Query,
    publish: Callable[[str, str], None],
    group: str,
    period_s: int,
    deadline: float,
) -> tuple[str, str]:
    """Publish the notification for ``change``; returns what was published."""
    rows: list[dict[str, str]] | None = None
    problem = None
    if change.metric in CATEGORIES:
        start = change.at - dt.timedelta(seconds=2 * period_s)
        try:
            rows = raising(query.query(group, per_api_query(change.metric), start, change.at + dt.timedelta(minutes=1),
                                       min(deadline, time.monotonic() + 30)))  # fmt: skip
        except AuditorError as exc:
            problem = str(exc)
    subject, message = compose(change, rows, problem)
    publish(subject, message)
    return subject, message


CONFIG_CHANGE = "Parameter Store Change"  # EventBridge's detail-type for an SSM parameter's change


def config_change(event: dict[str, Any], watched: str) -> tuple[str, str] | None:
    """(subject, message) for a change of the configuration document's parameter ``watched`` (EventBridge's
    "Parameter Store Change": Create, Update, Delete, LabelParameterVersion), or None for any other event.
    Whoever can rewrite the document can change, or silence, what is audited, so every change pages."""
    detail = event.get("detail")
    if (
        event.get("source") != "aws.ssm"
        or event.get("detail-type") != CONFIG_CHANGE
        or not isinstance(detail, dict)
    ):
        return None
    name = str(detail.get("name") or "")
    if not watched or name.lstrip("/") != watched.lstrip("/"):
        return None
    operation = "".join(c for c in str(detail.get("operation") or "a change") if c.isalnum())[:40]
    subject = f"CONFIG CHANGED: {operation} of {watched}"[:100]  # SNS subjects are at most 100 characters
    message = (f"The auditor's configuration document {watched} had {operation} at {event.get('time')}, in account "
               f"{event.get('account')} ({event.get('region')}). Whoever can rewrite it can change or silence what "
               "is audited: review the change (CloudTrail's PutParameter or DeleteParameter event names who made "
               "it), and restore the reviewed document if it was not one.")  # fmt: skip
    return subject, message
