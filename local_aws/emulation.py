"""What the local AWS adds to moto so that it behaves like API Gateway where the product depends on it:

* each deployment snapshots the policy and the methods' authorization types, and a stage serves its own
  deployment's snapshot, so a saved change has no effect until the next deployment;
* a saved policy is rewritten the way API Gateway rewrites it (shorthand expanded, one-element lists
  collapsed, compact JSON with every quote and slash backslash-escaped);
* CloudTrail's LookupEvents answers with the UpdateRestApi events of the session.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass
from typing import Any

from moto.apigateway import models as apigw
from moto.apigateway.exceptions import BadRequestException
from moto.cloudtrail.responses import CloudTrailResponse

from access_auditor.policy.document import ApiRef


@dataclass(frozen=True)
class Snapshot:
    policy: str | None
    methods: dict[tuple[str, str], str]  # (resource path, HTTP verb) -> authorizationType


SNAPSHOTS: dict[tuple[str, str], Snapshot] = {}
EVENTS: list[dict[str, Any]] = []
_lock = threading.Lock()
_installed = False


def reset() -> None:
    with _lock:
        SNAPSHOTS.clear()
        EVENTS.clear()


def install() -> None:
    """Patch moto in this process (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    original_deploy = apigw.APIGatewayBackend.create_deployment
    original_update = apigw.APIGatewayBackend.update_rest_api

    def create_deployment(self: Any, function_id: str, *args: Any, **kwargs: Any) -> Any:
        deployment = original_deploy(self, function_id, *args, **kwargs)
        api = self.apis[function_id]
        methods = {
            (resource.get_path(), verb): method.authorization_type
            for resource in api.resources.values()
            for verb, method in resource.resource_methods.items()
        }
        SNAPSHOTS[(function_id, deployment.id)] = Snapshot(api.policy, methods)
        return deployment

    def update_rest_api(self: Any, function_id: str, patch_operations: list[dict[str, Any]]) -> Any:
        api_ref = ApiRef(self.region_name, self.account_id, function_id)
        for op in patch_operations:
            if op.get("path") == "/policy" and op.get("value"):
                op["value"] = stored_form(op["value"], api_ref)
        result = original_update(self, function_id, patch_operations)
        if any(op.get("path") == "/policy" for op in patch_operations):
            _record("UpdateRestApi", function_id, patch_operations)
        return result

    apigw.APIGatewayBackend.create_deployment = create_deployment  # type: ignore[method-assign]
    apigw.APIGatewayBackend.update_rest_api = update_rest_api  # type: ignore[method-assign]
    CloudTrailResponse.lookup_events = _lookup_events  # type: ignore[attr-defined]


def stored_form(text: str, api: ApiRef) -> str:
    """The policy text as API Gateway stores and returns it."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequestException(
            f"Invalid policy document. Please check the policy syntax and try again. ({exc.msg})"
        ) from exc

    def rewrite(value: Any, principal: bool = False) -> Any:
        if isinstance(value, list):
            items = [rewrite(v, principal) for v in value]
            return items[0] if len(items) == 1 else items
        if isinstance(value, dict):
            return {k: rewrite(v, principal) for k, v in value.items()}
        if isinstance(value, str) and value.startswith("execute-api:/"):
            return api.arn + value[len("execute-api:") :]
        if principal and isinstance(value, str) and value.isdigit() and len(value) == 12:
            return f"arn:aws:iam::{value}:root"
        return value

    statements = doc.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        for key in ("Resource", "NotResource", "Action", "NotAction", "Condition"):
            if key in statement:
                statement[key] = rewrite(statement[key])
        for key in ("Principal", "NotPrincipal"):
            if isinstance(statement.get(key), dict):
                statement[key] = rewrite(statement[key], principal=True)
    compact = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return compact.replace("\\", "\\\\").replace('"', '\\"').replace("/", "\\/")


def _record(name: str, api_id: str, patch_operations: list[dict[str, Any]]) -> None:
    # CloudTrail keeps event times to the second.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    detail = {
        "eventName": name,
        "requestParameters": {"restApiId": api_id, "patchOperations": patch_operations},
    }
    with _lock:
        EVENTS.append(
            {
                "EventId": f"local-{len(EVENTS) + 1}",
                "EventName": name,
                "EventSource": "apigateway.amazonaws.com",
                "EventTime": now.timestamp(),
                "Username": "console-user",
                "CloudTrailEvent": json.dumps(detail),
            }
        )


def _lookup_events(self: Any) -> str:
    start = self._get_param("StartTime")
    since = float(start) if start is not None else 0.0
    with _lock:
        events = [e for e in EVENTS if e["EventTime"] >= since]
    return json.dumps({"Events": list(reversed(events))})
