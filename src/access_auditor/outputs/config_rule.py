"""AWS Config's invocation of a custom Lambda rule ("Example events for AWS Config rules", AWS Config
developer guide): a periodic one (ScheduledNotification) audits every target; a configuration change of a
REST API or a stage audits that API. The event's ``invokingEvent`` is a JSON string.

Whoever may invoke the function could forge such an event: it can only start an audit of an API the
configuration or its tags already watch, and the evaluations it asks for are refused by Config unless the
result token is Config's own.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["ConfigInvocation", "evaluation", "read_config_event"]
STAGE_TYPE = "AWS::ApiGateway::Stage"

RESOURCE_TYPES = ("AWS::ApiGateway::RestApi", "AWS::ApiGateway::Stage")
DELETED = ("ResourceDeleted", "ResourceDeletedNotRecorded")
# API Gateway's resource ARNs ("Amazon API Gateway resource ARNs"): arn:aws:apigateway:region::/restapis/id[/stages/name]
_ARN = re.compile(
    r"^arn:aws[a-z-]*:apigateway:([a-z0-9-]+)::/restapis/([a-z0-9]+)(?:/stages/([A-Za-z0-9_-]+))?$"
)


@dataclass(frozen=True)
class ConfigInvocation:
    token: str
    rule: str
    account: str
    scheduled: bool
    api: tuple[str, str, str] | None = None  # (account, region, id) a change is about
    stage: str | None = None
    resource_id: str | None = None  # what Config named the changed resource
    resource_type: str | None = None
    gone: bool = False  # deleted, or no longer in the rule's scope


def read_config_event(event: dict[str, Any]) -> ConfigInvocation | None:
    """The invocation, or None when ``event`` is not one of Config's; raises ValueError when it claims to be
    and cannot be read."""
    if not (isinstance(event, dict) and "resultToken" in event and "invokingEvent" in event):
        return None
    token, rule = str(event.get("resultToken") or ""), str(event.get("configRuleName") or "")
    account = str(event.get("accountId") or "")
    if not token or not re.fullmatch(r"\d{12}", account):
        raise ValueError("a Config rule invocation without a result token or a 12-digit accountId")
    try:
        invoking = json.loads(str(event["invokingEvent"]))
    except ValueError as exc:
        raise ValueError(f"invokingEvent is not JSON: {exc}") from exc
    kind = invoking.get("messageType")
    if kind == "ScheduledNotification":
        return ConfigInvocation(token, rule, account, scheduled=True)
    item = invoking.get("configurationItem") or invoking.get("configurationItemSummary")
    if kind not in (
        "ConfigurationItemChangeNotification",
        "OversizedConfigurationItemChangeNotification",
    ) or not isinstance(item, dict):
        raise ValueError(f"a Config message this rule does not take: {kind!r}")
    resource_type = str(item.get("resourceType") or "")
    if resource_type not in RESOURCE_TYPES:
        raise ValueError(f"a configuration change of {resource_type!r}, outside the rule's scope")
    match = _ARN.match(str(item.get("ARN") or ""))
    if match is None:
        raise ValueError(f"the configuration item's ARN {item.get('ARN')!r} names no REST API")
    region, api_id, stage = match.groups()
    gone = bool(event.get("eventLeftScope")) or item.get("configurationItemStatus") in DELETED
    return ConfigInvocation(token, rule, account, scheduled=False, api=(account, region, api_id), stage=stage,
                            resource_id=str(item.get("resourceId") or ""), resource_type=resource_type, gone=gone)  # fmt: skip


def evaluation(resource_id: str, compliance: str, annotation: str, at: dt.datetime,
               resource_type: str = STAGE_TYPE) -> dict[str, Any]:  # fmt: skip
    """One PutEvaluations entry (the annotation cut to Config's 256 characters)."""
    return {"ComplianceResourceType": resource_type, "ComplianceResourceId": resource_id,
            "ComplianceType": compliance, "Annotation": annotation[:256], "OrderingTimestamp": at}  # fmt: skip
