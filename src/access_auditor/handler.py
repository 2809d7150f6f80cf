"""The Lambda entry point: wiring only. Configuration, ports, the audit and publishing live elsewhere."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit

from access_auditor.audit import Ports, TargetResult, run_audit
from access_auditor.config import AuditConfig, NotifyConfig, function_region, load_config, load_notify_config
from access_auditor.errors import ConfigError
from access_auditor.publish import AUDIT_ERROR, AUDIT_HEARTBEAT, publish
from access_auditor.redact import redact
from access_auditor.wiring import build_ports


class RedactingFilter(logging.Filter):
    """Redacts a record where it is handled, before any formatter sees it: its message with its arguments,
    and its traceback (kept as text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def redact_logging(*loggers: logging.Logger) -> None:
    """Every record that reaches a handler of the root logger or of ``loggers`` is redacted (idempotent)."""
    for source in (logging.getLogger(), *loggers):
        for handler in source.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log line, redacted whole: the message, every extra field and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


logger = Logger(logger_formatter=RedactingFormatter())
metrics = Metrics()
redact_logging()  # the records of every other logger, as Lambda's own handler on the root logger prints them
# botocore logs signatures, session tokens and STS answers (secret keys included) at DEBUG, and urllib3 logs
# request lines; whatever level Lambda gives the root logger (AWS_LAMBDA_LOG_LEVEL), they stay at WARNING.
for _noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)
DEFAULT_BUDGET_S = 60.0  # when no Lambda context says how long the invocation has


@lru_cache(maxsize=1)
def _ports(share: float) -> Ports:
    return build_ports(share=share)


def run_budget_s(config: AuditConfig, context: Any) -> float:
    """What the invocation has left for the audit: Lambda's remaining time less the margin for publishing."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return (remaining() - config.deadline_margin_ms) / 1000 if remaining else DEFAULT_BUDGET_S


@lru_cache(maxsize=1)
def load_audit_config() -> AuditConfig:
    def read_parameter(name: str, key: str) -> str:
        from access_auditor.aws.clients import make_client
        from access_auditor.aws.ssm import parameter_reader

        return str(parameter_reader(make_client("ssm", function_region(os.environ)))(name, key))

    return load_config(os.environ, read_parameter)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Audit every configured target; return ``{"ok", "targets": [...]}``. Never raises for audit outcomes:
    a failed call, drift or an unreadable API is reported in the result, the logs and the metrics."""
    if isinstance(event, dict) and event.get("source") == "aws.cloudwatch":
        return notify_alarm(event, context)
    if isinstance(event, dict) and event.get("source") == "aws.ssm":
        return notify_config_change(event)
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        return _changes(event, context)
    if isinstance(event, dict) and "resultToken" in event:
        return config_rule(event, context)
    if isinstance(event, dict) and event.get("correlationId"):
        logger.set_correlation_id(str(event["correlationId"]))
    try:
        config = load_audit_config()
    except Exception as exc:  # ConfigError names the variable; anything else is a bug, still reported
        error = redact(
            str(exc) if isinstance(exc, ConfigError) else f"internal error: {type(exc).__name__}: {exc}"
        )
        logger.error("invalid configuration", extra={"error": error})
        metrics.add_metric(name=AUDIT_ERROR, unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=AUDIT_HEARTBEAT, unit=MetricUnit.Count, value=1)
        return {"ok": False, "error": error, "targets": []}
    try:
        budget_s = run_budget_s(config, context)
        results = run_audit(config, _ports(config.control_plane_share), budget_s=budget_s)
        deliver_results(config, results)
    except Exception as exc:  # a bug: still an alarm, a heartbeat and one line, never a bare traceback
        logger.error("the audit failed", extra={"error": redact(f"{type(exc).__name__}: {exc}")})
        metrics.add_metric(name=AUDIT_ERROR, unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=AUDIT_HEARTBEAT, unit=MetricUnit.Count, value=1)
        return {"ok": False, "error": f"internal error: {type(exc).__name__}", "targets": []}
    summaries = [r.summary() for r in results]
    return {"ok": all(r.ok for r in results), "targets": summaries}


def deliver_results(
    config: AuditConfig,
    results: Sequence[TargetResult],
    *,
    heartbeat: bool = True,
    session_for: Callable[[str, str], Any] | None = None,
    config_evaluations: tuple[Any, str, Mapping[tuple[str, str, str, str], str]] | None = None,
) -> None:
    """Logs and metrics first, then every sink the configuration turns on (outputs/sinks.py). A sink that
    fails is logged and counted as an AuditError; if the findings' state cannot be had at all, the results
    are still published."""
    from access_auditor import __version__
    from access_auditor.outputs.sinks import FindingState, deliver
    from access_auditor.publish import PublishSink
    from access_auditor.wiring import finding_outputs

    def failed(sink: str, why: str) -> None:
        metrics.add_metric(name=AUDIT_ERROR, unit=MetricUnit.Count, value=1)
        logger.error("a findings sink failed", extra={"sink": sink, "error": redact(why)})

    try:
        try:
            page = _pager(load_notify_config(os.environ))
        except ConfigError:
            page = None  # no alarm topic (a local run): no transition page
        state, sinks = finding_outputs(config, function_region(os.environ), session_for=session_for, page=page,
                                       config_evaluations=config_evaluations, version=__version__)  # fmt: skip
    except Exception as exc:
        failed("setup", f"{type(exc).__name__}: {exc}")
        state, sinks = FindingState(None), []
    published = PublishSink(metrics, logger, heartbeat=heartbeat)
    try:
        deliver(results, config.suppressions, state, [published, *sinks], on_error=failed)
    except Exception as exc:  # the findings' life could not be advanced: the run is still published
        failed("lifecycle", f"{type(exc).__name__}: {exc}")
        if not published.done:
            publish(results, metrics, logger, heartbeat=heartbeat)


def config_rule(event: dict[str, Any], context: Any, session_for: Callable[[str, str], Any] | None = None,
                load: Callable[[], AuditConfig] | None = None, ports: Callable[[float], Ports] | None = None) -> dict[str, Any]:  # fmt: skip
    """AWS Config invoked the function as a custom rule: audit (everything, or the changed API) and answer
    with PutEvaluations per stage. An invocation that cannot be read raises, so Config shows the rule as
    failed rather than compliant."""
    from access_auditor.aws.clients import make_client
    from access_auditor.aws.configservice import put_evaluations
    from access_auditor.outputs.config_rule import evaluation, read_config_event
    from access_auditor.outputs.formats import stage_arn

    invocation = read_config_event(event)
    assert invocation is not None
    config = (load or load_audit_config)()
    region = function_region(os.environ)
    client = make_client("config", region, session_for(invocation.account, region) if session_for else None)

    def not_applicable(why: str) -> dict[str, Any]:
        assert invocation is not None and invocation.api is not None
        named = invocation.resource_id or stage_arn(*invocation.api, invocation.stage or "*")
        put_evaluations(client, invocation.token, [evaluation(named, "NOT_APPLICABLE", why, dt.datetime.now(dt.UTC),
                                                              invocation.resource_type or "AWS::ApiGateway::Stage")])  # fmt: skip
        return {"ok": True, "evaluated": 1}

    if invocation.gone and invocation.api:
        return not_applicable("deleted, or no longer in the rule's scope")
    results = run_audit(config, (ports or _ports)(config.control_plane_share), budget_s=run_budget_s(config, context),
                        only={invocation.api} if invocation.api else None)  # fmt: skip
    if invocation.api and not any(r.target.api_key == invocation.api for r in results):
        return not_applicable(
            "not locked by the auditor: no access-auditor:allowed-roles tag and no configuration entry"
        )
    ids = {}
    if invocation.stage and invocation.resource_id and invocation.api:
        ids[(*invocation.api, invocation.stage)] = invocation.resource_id
    deliver_results(config, results, heartbeat=False, session_for=session_for,
                    config_evaluations=(client, invocation.token, ids))  # fmt: skip
    return {
        "ok": all(r.ok for r in results),
        "evaluated": len([r for r in results if r.target.api_id != "*"]),
    }


def notify_alarm(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An alarm went to ALARM: publish which APIs raised it (notify.py)."""
    import time

    from access_auditor.aws.clients import make_client
    from access_auditor.aws.logs import LogsInsights
    from access_auditor.notify import AlarmChange, notify

    change = AlarmChange.from_event(event)
    if change is None:
        logger.debug(
            "an aws.cloudwatch event that is not an alarm state change",
            extra={"detailType": event.get("detail-type")},
        )
        return {"ok": True, "notified": False}
    try:
        config = load_notify_config(os.environ)
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        deadline = time.monotonic() + ((remaining() - 3000) / 1000 if remaining else DEFAULT_BUDGET_S)
        logs = LogsInsights(make_client("logs", config.region))
        subject, _ = notify(change, logs, _pager(config), config.log_group, config.period_s, deadline)
    except Exception as exc:  # the alarm still reaches people through the function's Errors alarm
        logger.error("the alarm notification failed", extra={"error": redact(f"{type(exc).__name__}: {exc}")})
        raise
    logger.info("alarm notification published", extra={"alarm": change.alarm, "subject": subject})
    return {"ok": True, "notified": True, "subject": subject}


def _pager(config: NotifyConfig) -> Callable[[str, str], None]:
    """``page(subject, message)``: a publish to the alarm topic, the one way the function pages."""
    from access_auditor.wiring import own_client

    sns = own_client(("sns", config.region))  # kept while warm: every run and shard may page
    return lambda subject, message: sns.publish(TopicArn=config.topic_arn, Subject=subject, Message=message)


def notify_config_change(event: dict[str, Any]) -> dict[str, Any]:
    """The configuration document's parameter changed (the ConfigChanged rule): page the topic. A failure
    raises, so Lambda's OnFailure destination still takes the event to the topic."""
    from access_auditor.notify import config_change

    config = load_notify_config(os.environ)
    page = config_change(event, config.config_parameter)
    if page is None:
        return {"ok": True, "notified": False}
    _pager(config)(*page)
    logger.warning("the configuration document changed", extra={"subject": page[0]})
    return {"ok": True, "notified": True, "subject": page[0]}


def _changes(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A settled batch of API Gateway changes (CloudTrail -> EventBridge -> SQS): one whole audit per changed
    API that the configuration or its tags watch, the change named in a CHANGED_BY finding. A message that
    cannot be read fails alone (a batch item failure, so it ends in the dead-letter queue, which alarms); the
    valid changes beside it are audited."""
    from aws_lambda_powertools.utilities.data_classes import SQSEvent

    from access_auditor.changes import UnreadableMessage, read_message, settle
    from access_auditor.findings import finding

    changes = []
    unreadable: list[dict[str, str]] = []
    for record in SQSEvent(event).records:
        try:
            change = read_message(record.body)
        except UnreadableMessage as exc:
            logger.error(
                "a queued message cannot be read",
                extra={"error": redact(str(exc)), "messageId": record.message_id},
            )
            unreadable.append({"itemIdentifier": record.message_id})
            continue
        if change is None:
            logger.debug("an event that changes no REST API (an HTTP or WebSocket API, or another call)")
            continue
        changes.append(change)
    per_api = settle(changes)
    if not per_api:
        return {"batchItemFailures": unreadable}
    try:
        config = load_audit_config()
    except Exception as exc:  # the messages go back to the queue, then to its dead-letter queue (alarmed)
        logger.error("invalid configuration", extra={"error": redact(str(exc))})
        metrics.add_metric(name=AUDIT_ERROR, unit=MetricUnit.Count, value=1)
        return {"batchItemFailures": [{"itemIdentifier": r.message_id} for r in SQSEvent(event).records]}
    budget_s = run_budget_s(config, context)
    results = run_audit(config, _ports(config.control_plane_share), budget_s=budget_s, only=set(per_api))
    for result in results:
        burst = per_api.get(result.target.api_key)
        if burst:
            result.trigger = burst[-1].describe()
            more = f" (and {len(burst) - 1} earlier change(s) in the same burst)" if len(burst) > 1 else ""
            result.findings.append(finding("CHANGED_BY", f"{burst[-1].describe()}{more}: this audit was started by "
                                           "that change (CloudTrail, delivered by EventBridge)"))  # fmt: skip
    deliver_results(config, results, heartbeat=False)
    watched = {r.target.api_key for r in results}
    for key in set(per_api) - watched:
        logger.info("a changed API that no configuration entry or tag watches", extra={"api": "/".join(key)})
    return {"batchItemFailures": unreadable}
