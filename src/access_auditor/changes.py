"""Changes as CloudTrail reports them through EventBridge ("AWS API Call via CloudTrail"): which REST API a
management event changed, who changed it and when. Pure: the handler turns a batch of them into one audit
per API.

API Gateway's REST (v1) and HTTP/WebSocket (v2) APIs share the event source; v1 events name the API as
``restApiId`` (creations: ``id`` in ``responseElements``), v2 events as ``apiId``, and are ignored.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

API_CALL = "AWS API Call via CloudTrail"
# The writes that can change who may invoke a stage: the API and its policy, deployments and stages (which
# deployment a stage serves), methods and resources (authorization), custom-domain mappings (which stage a
# domain reaches), and tags (what discovery expects). The template's rule lists exactly these; a test checks.
CHANGE_EVENTS = (
    "CreateRestApi", "ImportRestApi", "PutRestApi", "UpdateRestApi", "DeleteRestApi",
    "CreateDeployment", "UpdateDeployment", "DeleteDeployment",
    "CreateStage", "UpdateStage", "DeleteStage",
    "CreateResource", "UpdateResource", "DeleteResource", "PutMethod", "UpdateMethod", "DeleteMethod",
    "CreateBasePathMapping", "UpdateBasePathMapping", "DeleteBasePathMapping",
    "TagResource", "UntagResource",
    # HTTP APIs (v2): the API and its routes (their authorization); stages and deployments share the names above
    "CreateApi", "ImportApi", "ReimportApi", "UpdateApi", "DeleteApi", "CreateRoute", "UpdateRoute", "DeleteRoute",
)  # fmt: skip
MAX_DEPTH = 8  # request parameters nest a level or two (createDeploymentInput, ...); deeper is not searched
_RESTAPI_ARN = re.compile(r"^arn:aws[a-z-]*:apigateway:[a-z0-9-]+::/(?:restapis|apis)/([a-z0-9]+)(/|$)")


@dataclass(frozen=True)
class ApiChange:
    account: str
    region: str
    api_id: str
    event_name: str
    actor: str
    at: dt.datetime

    @property
    def key(self) -> tuple[str, str, str]:
        return self.account, self.region, self.api_id

    def describe(self) -> str:
        return f"{self.event_name} by {self.actor} at {self.at:%Y-%m-%d %H:%M:%SZ}"


MAX_MESSAGE_CHARS = 256 * 1024  # an EventBridge event, and an SQS message, is at most 256 KB
MAX_MESSAGE_DEPTH = 32  # a CloudTrail record nests a few levels; far deeper is not a record


class UnreadableMessage(ValueError):
    """A queued message that is not an event this function can read; it names what is wrong."""


def read_message(body: str) -> ApiChange | None:
    """The REST API change a queued message reports (None: an event about something else). Raises
    UnreadableMessage for a message too large, too deeply nested, or not an EventBridge event, checked
    before it is parsed, so that one hostile message fails alone."""
    if len(body) > MAX_MESSAGE_CHARS:
        raise UnreadableMessage(
            f"the message has {len(body)} characters, more than an event can ({MAX_MESSAGE_CHARS})"
        )
    if _nesting(body) > MAX_MESSAGE_DEPTH:
        raise UnreadableMessage(
            f"the message nests deeper than {MAX_MESSAGE_DEPTH} levels: not a CloudTrail event"
        )
    try:
        raw = json.loads(body)
    except ValueError as exc:
        raise UnreadableMessage(f"the message is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise UnreadableMessage("the message is not an EventBridge event (not a JSON object)")
    try:
        return api_change(raw)
    except (TypeError, AttributeError, KeyError) as exc:
        raise UnreadableMessage(
            f"the message is not an EventBridge event ({type(exc).__name__}: {exc})"
        ) from exc


def _nesting(text: str) -> int:
    """How deep JSON ``text`` nests, counted without parsing it (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def api_change(raw: dict[str, Any]) -> ApiChange | None:
    """The REST or HTTP API change an EventBridge event reports, or None (another kind of event, a failed
    call, a call that names no API). A WebSocket API's change names an API no tag or entry audits: its audit
    finds no target."""
    from aws_lambda_powertools.utilities.data_classes import (
        EventBridgeEvent,  # here: the audit path never needs it
    )

    event = EventBridgeEvent(raw)
    if raw.get("source") != "aws.apigateway" or raw.get("detail-type") != API_CALL:
        return None
    detail = event.detail or {}
    if detail.get("errorCode") or detail.get("eventName") not in CHANGE_EVENTS:
        return None
    api_id = rest_api_id(detail)
    if not api_id:
        return None
    stamp = str(detail.get("eventTime") or event.time or "")
    try:
        at = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        at = dt.datetime.now(dt.UTC)
    return ApiChange(str(detail.get("recipientAccountId") or event.account), str(detail.get("awsRegion") or event.region),
                     api_id, str(detail["eventName"]), actor(detail), at)  # fmt: skip


def rest_api_id(detail: dict[str, Any]) -> str | None:
    """The REST API a CloudTrail record is about: ``restApiId`` in its (nested) request parameters, a REST API
    ARN, or a creation's new ``id`` in ``responseElements``."""
    return _rest_api_id(detail.get("requestParameters")) or _rest_api_id(
        detail.get("responseElements"), creation=True
    )


def actor(detail: dict[str, Any]) -> str:
    """Who made the call a CloudTrail record reports: the caller's ARN (and the service it went through,
    ``invokedBy``), or, for a call an AWS service made on its own (``type`` AWSService, no ARN), the service."""
    identity = detail.get("userIdentity")
    identity = identity if isinstance(identity, dict) else {}
    arn, via = identity.get("arn"), identity.get("invokedBy")
    if arn:
        return f"{arn} via {via}" if via else str(arn)
    return str(via or identity.get("principalId") or identity.get("type") or "unknown")


def _rest_api_id(values: Any, creation: bool = False, depth: int = 0) -> str | None:
    """``restApiId`` (a REST API) or ``apiId`` (an HTTP API, v2) anywhere in the parameters (mappings nest
    it), an API's ARN (tags), or a creation's ``id``."""
    if not isinstance(values, dict):
        return None
    for key in ("restApiId", "apiId"):
        if isinstance(values.get(key), str):
            return str(values[key])
    arn = values.get("resourceArn")
    if isinstance(arn, str) and (match := _RESTAPI_ARN.match(arn)):
        return match[1]
    if (
        creation
        and isinstance(values.get("id"), str)
        and "apiId" not in values
        and "apiEndpoint" not in values
    ):
        return str(values["id"])
    for nested in values.values():
        if (
            depth < MAX_DEPTH
            and isinstance(nested, dict)
            and (found := _rest_api_id(nested, depth=depth + 1))
        ):
            return found
    return None


def settle(changes: Iterable[ApiChange]) -> dict[tuple[str, str, str], list[ApiChange]]:
    """The changes of a settled burst, per API (account, region, id), oldest first: one audit each."""
    per_api: dict[tuple[str, str, str], list[ApiChange]] = {}
    for change in sorted(changes, key=lambda c: c.at):
        per_api.setdefault(change.key, []).append(change)
    return per_api
