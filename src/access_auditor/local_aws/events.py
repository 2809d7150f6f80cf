"""EventBridge as the local AWS needs it: a rule's event pattern matched against an event (by moto's
implementation of AWS's "Event patterns" pages, independent of this project: lists of alternatives, ``prefix``,
``suffix``, ``wildcard``, ``anything-but``, ``exists``, ``$or``), a target's input transformer, and the alarm
state change event CloudWatch delivers ("Alarm events and EventBridge")."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from moto.events.models import EventPattern

from access_auditor.local_aws.alarms import alarm_arn
from access_auditor.local_aws.server import ACCOUNT, REGION


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether ``event`` matches ``pattern``."""
    return EventPattern(json.dumps(pattern), pattern).matches_event(event)  # type: ignore[arg-type]


def transform(transformer: dict[str, Any], event: dict[str, Any]) -> str:
    """What a target with this ``InputTransformer`` receives ("Amazon EventBridge input transformation"): the
    InputTemplate with each ``<variable>`` replaced by the value its InputPathsMap path (dot notation) finds in
    the event. The templates use plain text, whose values go in as they are; a path the event lacks gives an
    empty value (inferred: no AWS sample shows it)."""
    values: dict[str, str] = {}
    for variable, path in transformer.get("InputPathsMap", {}).items():
        found: Any = event
        for key in str(path).removeprefix("$.").split("."):
            found = found.get(key) if isinstance(found, dict) else None
        values[variable] = "" if found is None else found if isinstance(found, str) else json.dumps(found)
    return re.sub(r"<([A-Za-z0-9_.-]+)>", lambda m: values.get(m.group(1), m.group(0)),
                  str(transformer["InputTemplate"]))  # fmt: skip


def alarm_state_change(alarm: str, arn: str, metric: str, namespace: str, dimensions: dict[str, str], state: str,
                       previous: str, reason: str, account: str, region: str) -> dict[str, Any]:  # fmt: skip
    """The event CloudWatch sends EventBridge when a single-metric alarm changes state."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": now[:19] + "Z",
        "region": region,
        "resources": [arn],
        "detail": {
            "alarmName": alarm,
            "state": {"value": state, "reason": reason, "timestamp": now},
            "previousState": {"value": previous, "timestamp": now},
            "configuration": {
                "metrics": [{"id": str(uuid.uuid4()), "returnData": True, "metricStat": {
                    "metric": {"namespace": namespace, "name": metric, "dimensions": dimensions},
                    "period": 300, "stat": "Maximum"}}],
            },
        },
    }  # fmt: skip


def deliver_alarm_change(
    alarm: Any,
    state: str,
    previous: str,
    pattern: dict[str, Any],
    function: Any,
    sent: list[Any],
    on_failure: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Any, tuple[str, str] | None] | None:
    """EventBridge with the alarm's state change: None when ``pattern`` (the template's AlarmRaised rule) does
    not match it; else the function's answer and what it published to the topic (``sent``: moto's
    ``sent_notifications`` of it), (subject, message) or None. EventBridge invokes the function
    asynchronously, so when it fails, Lambda hands ``on_failure`` (the function's OnFailure destination) the
    invocation record, the event included."""
    event = alarm_state_change(alarm.name, alarm_arn(alarm.name), alarm.metric,
                               alarm.namespace, dict(alarm.dimensions), state, previous,
                               f"Threshold Crossed: {alarm.metric} >= {alarm.threshold:g}", ACCOUNT, REGION)  # fmt: skip
    if not matches(pattern, event):
        return None
    before = len(sent)
    answer = function(event)
    error = getattr(answer, "error", None)
    if error and on_failure is not None:
        on_failure(failure_record(event, str(error)))
    if len(sent) == before:
        return answer, None
    _, message, subject, *_ = sent[-1]
    return answer, (str(subject or ""), str(message))


def failure_record(event: dict[str, Any], error: str, function: str = "AuditorFunction") -> dict[str, Any]:
    """What Lambda sends an asynchronous invocation's OnFailure destination ("Capturing records of Lambda
    asynchronous invocations", Lambda developer guide): the request, its payload and the function's error."""
    return {
        "version": "1.0",
        "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "requestContext": {"requestId": str(uuid.uuid4()), "condition": "RetriesExhausted", "approximateInvokeCount": 1,
                           "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}:$LATEST"},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": error[:1000], "errorType": "Error"},
    }  # fmt: skip


def on_failure_destination(template: dict[str, Any], function: str) -> str | None:
    """The logical id of the resource a function's EventInvokeConfig sends failed invocations to."""
    config = template["Resources"][function]["Properties"].get("EventInvokeConfig") or {}
    destination = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    return destination.get("Ref") if isinstance(destination, dict) else None


def publish_to(sns: Any, topic_arn: str) -> Callable[[dict[str, Any]], None]:
    """An SNS OnFailure destination: Lambda publishes the record as the message, as JSON."""
    return lambda record: sns.publish(TopicArn=topic_arn, Message=json.dumps(record))
