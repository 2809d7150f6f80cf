"""Who changed an API, and when: attribution from CloudTrail's event history.

CloudTrail is never the judge of whether a change is pending (the saved and deployed configurations are
compared directly); it only names the actor. Event history records read events too, so lookups go by
``EventName`` (one lookup attribute per call), never by event source, which the auditor's own reads would
fill. LookupEvents allows 2 calls a second per account and region; every call here goes through that
quota's bucket (``pacing.LOOKUP_EVENTS``), and pagination stops after ``MAX_PAGES`` pages per event name.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from access_auditor.aws.clients import call

# The writes that change an existing API's saved policy or methods (ImportRestApi creates a new API).
POLICY_EVENTS = ("UpdateRestApi", "PutRestApi")
METHOD_EVENTS = ("PutMethod", "UpdateMethod", "DeleteMethod", "PutRestApi")
MAX_PAGES = 4  # 200 events per event name: far more writes than an API sees between two runs


@dataclass(frozen=True)
class Change:
    event_name: str
    event_time: dt.datetime
    actor: str
    api_id: str = ""


class ChangeHistory(Protocol):
    def changes_since(
        self, api_id: str | None, since: dt.datetime, event_names: Sequence[str]
    ) -> list[Change]: ...


class CloudTrail:
    """Adapter over a botocore ``cloudtrail`` client. Raises AwsCallError or CredentialsError."""

    def __init__(self, client: Any, pace: Callable[[str], None] | None = None) -> None:
        self._client = client
        self._pace = pace

    def changes_since(
        self, api_id: str | None, since: dt.datetime, event_names: Sequence[str]
    ) -> list[Change]:
        """Writes of ``event_names`` to ``api_id`` (to any REST API when None) at or after ``since``, newest
        first. CloudTrail keeps times to the second, so a change in the deployment's own second is included."""
        changes: list[Change] = []
        for name in dict.fromkeys(event_names):
            kwargs: dict[str, Any] = {
                "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": name}],
                "StartTime": since,
                "MaxResults": 50,
            }
            for _ in range(MAX_PAGES):
                if self._pace is not None:
                    self._pace("LookupEvents")
                page = call("LookupEvents", self._client.lookup_events, **kwargs)
                for event in page.get("Events", []):
                    detail = _detail(event)
                    if _about(detail, api_id):
                        changes.append(_change(event, detail))
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        return sorted((c for c in changes if c.event_time >= since), key=lambda c: c.event_time, reverse=True)


def _detail(event: dict[str, Any]) -> dict[str, Any]:
    try:
        detail = json.loads(event.get("CloudTrailEvent") or "{}")
    except ValueError:
        return {}
    return detail if isinstance(detail, dict) else {}


def _api(detail: dict[str, Any]) -> str:
    params = detail.get("requestParameters") or {}
    response = detail.get("responseElements") or {}
    return str(params.get("restApiId") or response.get("id") or "")


def _about(detail: dict[str, Any], api_id: str | None) -> bool:
    if detail.get("errorCode"):
        return False  # a failed call changed nothing
    return bool(_api(detail)) if api_id is None else api_id == _api(detail)


def _change(event: dict[str, Any], detail: dict[str, Any]) -> Change:
    actor = (detail.get("userIdentity") or {}).get("arn") or event.get("Username") or "unknown"
    return Change(str(event.get("EventName")), event["EventTime"], str(actor), _api(detail))
