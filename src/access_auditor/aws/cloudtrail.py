"""Who changed an API, and when: attribution from CloudTrail's event history.

CloudTrail is never the judge of whether a change is pending (the saved and deployed configurations are
compared directly); it only names the actor. One API's writes are looked up by ``ResourceName`` (the API id,
which API Gateway records carry in ``Resources``): exact for that API whatever else the region does. Which
APIs of a region had writes goes by ``EventName`` (one lookup attribute per call), never by event source,
which the auditor's own reads would fill. LookupEvents allows 2 calls a second per account and region; every
call here goes through that quota's bucket (``pacing.LOOKUP_EVENTS``), and pagination is bounded.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from access_auditor.aws.clients import call
from access_auditor.changes import actor, rest_api_id

# The writes that change an existing API's saved policy or methods (ImportRestApi creates a new API).
POLICY_EVENTS = ("UpdateRestApi", "PutRestApi")
METHOD_EVENTS = ("PutMethod", "UpdateMethod", "DeleteMethod", "PutRestApi")
MAX_PAGES = 4  # per event name, region-wide since the last look: 200 writes of one kind a minute or two
API_PAGES = 20  # one API's events since its deployment, reads included: 1,000, newest first
EVENT_HISTORY = dt.timedelta(days=90)  # what event history keeps
# CloudTrail delivers an event to event history within minutes, not at once ("typically within 5 minutes",
# not guaranteed): a look reaches back this far before the previous one, and an absence is believed only after.
DELIVERY_LAG = dt.timedelta(minutes=15)
MAX_RECORD_CHARS = 256 * 1024  # CloudTrail caps an event at 256 KB; a longer one is not parsed
RESTAPI_TYPE = "AWS::ApiGateway::RestApi"


@dataclass(frozen=True)
class Change:
    event_name: str
    event_time: dt.datetime
    actor: str
    api_id: str = ""


class ChangeHistory(Protocol):
    def changes_since(self, since: dt.datetime, event_names: Sequence[str]) -> list[Change]: ...
    def latest_change(
        self, api_id: str, since: dt.datetime, event_names: Sequence[str]
    ) -> tuple[Change | None, bool]: ...


class CloudTrail:
    """Adapter over a botocore ``cloudtrail`` client. Raises AwsCallError or CredentialsError."""

    def __init__(self, client: Any, pace: Callable[[str], None] | None = None) -> None:
        self._client = client
        self._pace = pace

    def _events(self, attribute: tuple[str, str], since: dt.datetime, pages: int) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": attribute[0], "AttributeValue": attribute[1]}],
            "StartTime": since,
            "MaxResults": 50,
        }
        for _ in range(pages):
            if self._pace is not None:
                self._pace("LookupEvents")
            page = call("LookupEvents", self._client.lookup_events, **kwargs)
            yield from page.get("Events", [])
            if not page.get("NextToken"):
                return
            kwargs["NextToken"] = page["NextToken"]

    def changes_since(self, since: dt.datetime, event_names: Sequence[str]) -> list[Change]:
        """Successful writes of ``event_names`` to any REST API of the region at or after ``since``, newest
        first. CloudTrail keeps times to the second, so a change in ``since``'s own second is included."""
        changes = [
            found
            for name in dict.fromkeys(event_names)
            for event in self._events(("EventName", name), since, MAX_PAGES)
            if (found := _change(event, since)) is not None
        ]
        return sorted(changes, key=lambda c: c.event_time, reverse=True)

    def latest_change(
        self, api_id: str, since: dt.datetime, event_names: Sequence[str]
    ) -> tuple[Change | None, bool]:
        """(the newest successful write of ``event_names`` to ``api_id`` at or after ``since``, whether every
        event of the API since then was searched). Looked up by the API's own id (``ResourceName``), so that
        no other API's writes can push it out of reach; at most API_PAGES pages."""
        found, complete = self.writes_to(api_id, since, event_names, first=True)
        return (found[0] if found else None), complete or bool(found)

    def writes_to(
        self, api_id: str, since: dt.datetime, event_names: Sequence[str] | None = None, first: bool = False
    ) -> tuple[list[Change], bool]:
        """(the successful writes (of ``event_names``, default any) to ``api_id`` at or after ``since``, newest
        first, only the newest with ``first``; whether every event of the API since then was searched), by the
        API's own id, at most API_PAGES pages."""
        seen, found = 0, []
        for event in self._events(("ResourceName", api_id), since, API_PAGES):
            seen += 1
            if event_names is not None and event.get("EventName") not in event_names:
                continue
            change = _change(event, since)
            if change is not None and change.api_id == api_id:
                found.append(change)
                if first:
                    break
        return found, seen < API_PAGES * 50


def _detail(event: dict[str, Any]) -> dict[str, Any]:
    text = event.get("CloudTrailEvent") or "{}"
    if len(text) > MAX_RECORD_CHARS:
        return {}
    try:
        detail = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return detail if isinstance(detail, dict) else {}


def _api(event: dict[str, Any], detail: dict[str, Any]) -> str:
    for resource in event.get("Resources") or []:
        if resource.get("ResourceType") == RESTAPI_TYPE and resource.get("ResourceName"):
            return str(resource["ResourceName"])
    return rest_api_id(detail) or ""


def _change(event: dict[str, Any], since: dt.datetime) -> Change | None:
    """The write an event reports, or None (a read or a failed call changed nothing; an event about no REST
    API)."""
    detail = _detail(event)
    api = _api(event, detail)
    read = str(event.get("ReadOnly")).lower() == "true" or detail.get("readOnly") is True
    if read or detail.get("errorCode") or not api or event["EventTime"] < since:
        return None
    who = actor(detail) if detail.get("userIdentity") else str(event.get("Username") or "unknown")
    return Change(str(event.get("EventName")), event["EventTime"], who, api)
