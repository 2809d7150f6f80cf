"""Publishing results: one structured log record per target and EMF metrics through Powertools.

The metric names come from the findings registry (each category's metric), plus the latency and the
heartbeat declared here; the template's alarms watch them, and the template tests check both against a
captured run.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from access_auditor.audit import TargetResult
from access_auditor.findings import Category
from access_auditor.outputs.sinks import Outcome

HEALTH_CHECK_LATENCY = "HealthCheckLatency"
AUDIT_HEARTBEAT = "AuditHeartbeat"
TARGETS_AUDITED = "TargetsAudited"
SHARDS_PLANNED = "ShardsPlanned"
SHARD_REPORTED = "ShardReported"
SUPPRESSED = "Suppressed"
AUDIT_ERROR = str(Category.AUDIT_ERROR.metric)
# Every metric the function emits, with its unit: what docs/reference/metrics.md lists and the alarms may watch.
METRICS = {
    **{c.metric: (MetricUnit.Count, c.meaning) for c in Category if c.metric},
    HEALTH_CHECK_LATENCY: (MetricUnit.Milliseconds, "the health call's latency, when it got an answer"),
    AUDIT_HEARTBEAT: (MetricUnit.Count, "1 per completed invocation"),
    TARGETS_AUDITED: (
        MetricUnit.Count,
        "the targets (API stages) a scheduled run audited; an alarm fires when it drops",
    ),
    SHARDS_PLANNED: (
        MetricUnit.Count,
        "organization: the account-region shards the planner sent, at the cycle's time",
    ),
    SHARD_REPORTED: (MetricUnit.Count, "organization: 1 per shard a worker reported on, at its cycle's time"),
    SUPPRESSED: (
        MetricUnit.Count,
        "the findings a suppression of the configuration document muted, per target",
    ),
}


def publish(
    results: Sequence[TargetResult], metrics: Metrics, logger: Logger, *, heartbeat: bool = True
) -> None:
    """Add one value per target for each metric (EMF keeps them as a list) and log each target. The
    heartbeat says the schedule ran, and with it the number of targets it audited (fewer than last time is an
    alarm: an insider may narrow what is audited); an audit started by a change event adds neither.

    Log records carry the summary only: status, request id, findings. Credentials never reach this layer.
    """
    for result in results:
        for name, value in result.metric_values().items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        if result.suppressed:
            metrics.add_metric(name=SUPPRESSED, unit=MetricUnit.Count, value=len(result.suppressed))
        summary = result.summary()
        if summary["latencyMs"] is not None:
            metrics.add_metric(
                name=HEALTH_CHECK_LATENCY, unit=MetricUnit.Milliseconds, value=summary["latencyMs"]
            )
        level = logger.info if result.ok else logger.warning
        level("target audited", extra={"audit": {"ok": result.ok, **summary}})
    if heartbeat:
        metrics.add_metric(name=AUDIT_HEARTBEAT, unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=TARGETS_AUDITED, unit=MetricUnit.Count, value=len(results))


class PublishSink:
    """Logs and metrics as a sink (outputs/sinks.py): each target's line and metrics, and one line per
    finding transition (opened, reopened, resolved, suppressed, returned)."""

    name = "logs and metrics"

    def __init__(self, metrics: Metrics, logger: Logger, *, heartbeat: bool = True) -> None:
        self._metrics, self._logger, self._heartbeat = metrics, logger, heartbeat
        self.done = False

    def deliver(self, outcome: Outcome) -> set[str]:
        publish(outcome.results, self._metrics, self._logger, heartbeat=self._heartbeat)
        self.done = True
        for t in outcome.step.transitions:
            r = t.record
            self._logger.info("finding transition", extra={"finding": {"transition": t.kind, "id": r.id, "code": r.code, "state": r.state.value,
                              "severity": r.severity, "reason": r.reason, "until": r.until, "firstSeen": r.first_seen}})  # fmt: skip
        return set()
