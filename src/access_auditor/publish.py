"""Publishing results: one structured log record per target and EMF metrics through Powertools.

Metric names and the ``service`` dimension are what the alarms in template.yaml watch; the template tests
check the two against a captured run.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from access_auditor.audit import TargetResult

HEALTH_CHECK_FAILED = "HealthCheckFailed"
HEALTH_CHECK_LATENCY = "HealthCheckLatency"
POLICY_DRIFT = "PolicyDrift"
AUDIT_ERROR = "AuditError"
AUDIT_HEARTBEAT = "AuditHeartbeat"
UNAUTHORIZED_CALL_ALLOWED = "UnauthorizedCallAllowed"
UNDEPLOYED_POLICY_CHANGE = "UndeployedPolicyChange"


def publish(results: Sequence[TargetResult], metrics: Metrics, logger: Logger) -> None:
    """Add one value per target for each metric (EMF keeps them as a list) and log each target.

    Log records carry the summary only: status, request id, findings. Credentials never reach this layer.
    """
    for result in results:
        metrics.add_metric(name=HEALTH_CHECK_FAILED, unit=MetricUnit.Count, value=0 if result.healthy else 1)
        if result.latency_ms is not None:
            metrics.add_metric(
                name=HEALTH_CHECK_LATENCY, unit=MetricUnit.Milliseconds, value=result.latency_ms
            )
        metrics.add_metric(name=POLICY_DRIFT, unit=MetricUnit.Count, value=int(result.drift))
        metrics.add_metric(name=AUDIT_ERROR, unit=MetricUnit.Count, value=int(result.audit_error))
        if result.unauthorized_call_allowed is not None:
            metrics.add_metric(
                name=UNAUTHORIZED_CALL_ALLOWED,
                unit=MetricUnit.Count,
                value=int(result.unauthorized_call_allowed),
            )
        if result.undeployed_change is not None:
            metrics.add_metric(
                name=UNDEPLOYED_POLICY_CHANGE, unit=MetricUnit.Count, value=int(result.undeployed_change)
            )
        level = logger.info if result.ok else logger.warning
        level("target audited", extra={"audit": {"ok": result.ok, **result.summary()}})
    metrics.add_metric(name=AUDIT_HEARTBEAT, unit=MetricUnit.Count, value=1)
