"""The Lambda entry point: wiring only. Configuration, ports, the audit and publishing live elsewhere."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from access_auditor.audit import Ports, run_audit
from access_auditor.config import AuditConfig, load_config
from access_auditor.errors import ConfigError
from access_auditor.publish import AUDIT_ERROR, AUDIT_HEARTBEAT, publish
from access_auditor.wiring import build_ports

logger = Logger()
metrics = Metrics()


@lru_cache(maxsize=1)
def _ports() -> Ports:
    return build_ports()


@lru_cache(maxsize=1)
def _config() -> AuditConfig:
    return load_config(os.environ)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Audit every configured target; return ``{"ok", "targets": [...]}``. Never raises for audit outcomes:
    a failed call, drift or an unreadable API is reported in the result, the logs and the metrics."""
    if isinstance(event, dict) and event.get("correlationId"):
        logger.set_correlation_id(str(event["correlationId"]))
    try:
        config = _config()
    except ConfigError as exc:
        logger.error("invalid configuration", extra={"error": str(exc)})
        metrics.add_metric(name=AUDIT_ERROR, unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=AUDIT_HEARTBEAT, unit=MetricUnit.Count, value=1)
        return {"ok": False, "error": str(exc), "targets": []}
    results = run_audit(config, _ports(), remaining_ms=getattr(context, "get_remaining_time_in_millis", None))
    publish(results, metrics, logger)
    summaries = [r.summary() for r in results]
    return {"ok": all(r.ok for r in results), "targets": summaries}
