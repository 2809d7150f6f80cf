"""Finding saved-but-undeployed policy changes in CloudTrail's event history."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Protocol

from access_auditor.aws.clients import call

POLICY_EVENTS = {"UpdateRestApi", "PutRestApi"}


@dataclass(frozen=True)
class PolicyChange:
    event_name: str
    event_time: dt.datetime
    actor: str


class ChangeHistory(Protocol):
    def policy_changes_since(self, api_id: str, since: dt.datetime) -> list[PolicyChange]: ...


class CloudTrail:
    """Adapter over a boto3 ``cloudtrail`` client. LookupEvents is limited to 2 calls a second per account
    and region, so one call per target (the newest 50 API Gateway events) is all this makes."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def policy_changes_since(self, api_id: str, since: dt.datetime) -> list[PolicyChange]:
        page = call(
            "LookupEvents",
            self._client.lookup_events,
            LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "apigateway.amazonaws.com"}],
            StartTime=since,
            MaxResults=50,
        )
        changes = []
        for event in page.get("Events", []):
            if event.get("EventName") not in POLICY_EVENTS or event["EventTime"] <= since:
                continue
            detail = json.loads(event.get("CloudTrailEvent") or "{}")
            params = detail.get("requestParameters") or {}
            if params.get("restApiId") != api_id or not _touches_policy(event["EventName"], params):
                continue
            changes.append(
                PolicyChange(event["EventName"], event["EventTime"], event.get("Username") or "unknown")
            )
        return changes


def _touches_policy(event_name: str, params: dict[str, Any]) -> bool:
    if event_name == "PutRestApi":
        return True
    operations = (params.get("updateRestApiInput") or params).get("patchOperations") or []
    return any(str(op.get("path", "")).startswith("/policy") for op in operations)
