"""What the local AWS adds to moto so that it behaves like AWS where the product depends on it:

* CreateDeployment is refused while any method has no integration, as API Gateway refuses it;
* each deployment snapshots the policy and the methods' authorization types, and a stage serves its own
  deployment's snapshot, so a saved change has no effect until the next deployment;
* GetExport answers from the stage's deployment ("exports a deployed version of a RestApi", API reference),
  with the policy as ``x-amazon-apigateway-policy``, and refuses (400) an API with a model that is not
  application/json ("Export a REST API", developer guide); GetDeployment with ``embed=apisummary`` returns each
  method's authorizationType as deployed;
* a saved policy is rewritten the way API Gateway rewrites it (shorthand expanded, one-element lists
  collapsed, compact JSON with every quote and slash backslash-escaped);
* CloudTrail event history records every API Gateway call, reads included (``ReadOnly`` true), per account
  and region, shaped as real records are (nested request bodies, links in ``responseElements``, the API in
  ``Resources``); LookupEvents takes one lookup attribute (``ResourceName`` included), answers newest first,
  50 events a page with a NextToken;
* CloudWatch Logs Insights answers StartQuery with the subset the product uses (``insights``), over the
  JSON log lines Lambda shipped;
* several accounts, an organization, and STS that refuses what STS refuses (``accounts``);
* quotas throttle, per account and region, as AWS documents them ("Amazon API Gateway quotas": about 10
  control-plane calls a second, burst 40, GetResources 5 every 2 seconds; CloudTrail: LookupEvents 2 a
  second). A throttled call gets API Gateway's 429 TooManyRequestsException (CloudTrail's
  ThrottlingException). The numbers are written here from the documentation, not taken from the product.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
import time
import uuid
import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from moto.apigateway import models as apigw
from moto.apigateway.exceptions import BadRequestException
from moto.apigateway.responses import APIGatewayResponse
from moto.cloudtrail.responses import CloudTrailResponse
from moto.core.exceptions import JsonRESTError
from moto.logs import models as logs_models
from moto.sts.models import sts_backends

from access_auditor.local_aws import accounts
from access_auditor.policy.document import ApiRef


@dataclass(frozen=True)
class Snapshot:
    policy: str | None
    methods: dict[tuple[str, str], str]  # (resource path, HTTP verb) -> authorizationType


SNAPSHOTS: dict[tuple[str, str], Snapshot] = {}
EVENTS: list[dict[str, Any]] = []
PAGE_SIZE = 50
# (calls a second, burst) per account and region.
QUOTAS = {
    "apigateway": (10.0, 40.0),
    "apigateway:GetResources": (2.5, 5.0),
    "cloudtrail:LookupEvents": (2.0, 2.0),
}
THROTTLED: dict[str, int] = defaultdict(int)
# Which copy of the policy GetExport carries. No public source says; "deployment" is the product's working
# assumption, and "saved" plays an AWS where it does not hold, for the checks that must notice (and for
# doctor --experiment, which must tell the two apart).
EXPORT_CARRIES = "deployment"  # quota -> calls refused, for tests and the bench


class _Allowance:
    """A refilling allowance: ``rate`` a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.left, self.at = rate, burst, burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.left = min(self.burst, self.left + (now - self.at) * self.rate)
        self.at = now
        if self.left < 1:
            return False
        self.left -= 1
        return True


_allowances: dict[tuple[str, str, str], _Allowance] = {}


def _within_quota(account: str, region: str, *quotas: str) -> bool:
    with _lock:
        for quota in quotas:
            key = (account, region, quota)
            if key not in _allowances:
                _allowances[key] = _Allowance(*QUOTAS[quota])
        for quota in quotas:
            if not _allowances[(account, region, quota)].take():
                THROTTLED[quota] += 1
                return False
    return True


_lock = threading.Lock()
_installed = False
# URI parameters as moto's router names them -> as CloudTrail's requestParameters name them.
_PARAMETER_NAMES = {
    "restapi_id": "restApiId",
    "resource_id": "resourceId",
    "http_method": "httpMethod",
    "stage_name": "stageName",
    "deployment_id": "deploymentId",
    "export_type": "exportType",
}


def reset() -> None:
    global EXPORT_CARRIES
    with _lock:
        SNAPSHOTS.clear()
        EVENTS.clear()
        _allowances.clear()
        THROTTLED.clear()
        LISTENERS.clear()
        accounts.DISABLED_REGIONS.clear()
        EXPORT_CARRIES = "deployment"
    from access_auditor.local_aws import findings_services

    findings_services.reset()


def install() -> None:
    """Patch moto in this process (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    from access_auditor.local_aws import findings_services

    findings_services.install()
    original_deploy = apigw.APIGatewayBackend.create_deployment
    original_update = apigw.APIGatewayBackend.update_rest_api
    original_call = APIGatewayResponse.call_action
    original_get_deployment = APIGatewayResponse.get_deployment

    def create_deployment(self: Any, function_id: str, *args: Any, **kwargs: Any) -> Any:
        # API Gateway refuses to deploy while any method lacks an integration (moto only when all do).
        for resource in self.apis[function_id].resources.values() if function_id in self.apis else ():
            if any(m.method_integration is None for m in resource.resource_methods.values()):
                raise BadRequestException("No integration defined for method")
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
        endpoint_ops = [
            op for op in patch_operations if op.get("path") == "/endpointConfiguration/vpcEndpointIds"
        ]
        for op in patch_operations:
            if op.get("path") == "/policy" and op.get("value"):
                op["value"] = stored_form(op["value"], api_ref)
        answer = original_update(self, function_id, [op for op in patch_operations if op not in endpoint_ops])
        # The endpoints a private API is associated with ("Associate or disassociate a VPC endpoint with a
        # private REST API": add or remove /endpointConfiguration/vpcEndpointIds), which moto leaves out.
        config = self.apis[function_id].endpoint_configuration
        for op in endpoint_ops:
            ids = [i for i in config.get("vpcEndpointIds", []) if i != op["value"]]
            config["vpcEndpointIds"] = ids + [op["value"]] if op["op"] == "add" else ids
        return answer

    def get_deployment(self: Any) -> str:
        answer = json.loads(original_get_deployment(self))
        if "apisummary" in (self.querystring.get("embed") or []):
            snapshot = SNAPSHOTS.get((self.path.split("/")[2], answer["id"]))
            summary: dict[str, dict[str, Any]] = {}
            for (path, verb), authorization in (snapshot.methods if snapshot else {}).items():
                summary.setdefault(path, {})[verb] = {
                    "authorizationType": authorization,
                    "apiKeyRequired": False,
                }
            answer["apiSummary"] = summary
        return json.dumps(answer)

    def get_export(self: Any) -> Any:
        parts = self.path.split("/")
        api_id, stage_name = parts[2], parts[4]
        stage = self.backend.get_stage(api_id, stage_name)  # raises NotFound as API Gateway does
        snapshot = SNAPSHOTS.get((api_id, stage.deployment_id))
        if snapshot is None:
            raise BadRequestException(f"stage {stage_name} has no deployment")
        models = self.backend.get_rest_api(api_id).models.values()
        if any((m.content_type or "application/json") != "application/json" for m in models):
            raise BadRequestException("Unable to export the API: JSON body models are not found. Only an API "
                                      "whose payloads are application/json can be exported.")  # fmt: skip
        paths: dict[str, dict[str, Any]] = {}
        for (path, verb), authorization in snapshot.methods.items():
            security: list[dict[str, list[str]]] = [{"sigv4": []}] if authorization == "AWS_IAM" else []
            paths.setdefault(path, {})[verb.lower()] = {"security": security, "responses": {}}
        document: dict[str, Any] = {"openapi": "3.0.1", "info": {"title": api_id}, "paths": paths}
        text = json.dumps(document)
        policy = (
            snapshot.policy if EXPORT_CARRIES == "deployment" else self.backend.get_rest_api(api_id).policy
        )
        if policy:  # the stored text unescaped, written in as it is (a number may be any length)
            text = text[:-1] + ', "x-amazon-apigateway-policy": ' + json.loads(f'"{policy}"') + "}"
        return 200, {"Content-Type": "application/json"}, text.encode()

    def get_rest_apis(self: Any) -> str:
        # GetRestApis pages: 25 by default, at most 500 (API reference, "limit"), continued with position.
        apis = list(self.backend.list_apis())
        limit = min(int(self.querystring.get("limit", ["25"])[0]), 500)
        offset = int(self.querystring.get("position", ["0"])[0])
        answer: dict[str, Any] = {"item": [api.to_dict() for api in apis[offset : offset + limit]]}
        if offset + limit < len(apis):
            answer["position"] = str(offset + limit)
        return json.dumps(answer)

    def call_action(self: Any) -> Any:
        action = self._get_action()
        if accounts.region_disabled(self.current_account, self.region):
            body = json.dumps({"message": "The security token included in the request is invalid."})
            return (
                403,
                {"x-amzn-ErrorType": "UnrecognizedClientException", "Content-Type": "application/json"},
                body,
            )
        quotas = ("apigateway", "apigateway:GetResources") if action == "GetResources" else ("apigateway",)
        if not _within_quota(self.current_account, self.region, *quotas):
            body = json.dumps({"message": "Too Many Requests"})
            return (
                429,
                {"x-amzn-ErrorType": "TooManyRequestsException", "Content-Type": "application/json"},
                body,
            )
        answer = original_call(self)
        status = int(answer[0]) if isinstance(answer[0], int | str) and str(answer[0]).isdigit() else 200
        _record_api_call(self, action, status, answer[2] if len(answer) > 2 else "")
        return answer

    from moto.apigatewayv2.responses import ApiGatewayV2Response

    original_v2_call = ApiGatewayV2Response.call_action

    def call_v2_action(self: Any) -> Any:
        # HTTP APIs' calls in CloudTrail: the same event source, the API named apiId (and a route routeId).
        action = self._get_action()
        answer = original_v2_call(self)
        status = int(answer[0]) if isinstance(answer[0], int | str) and str(answer[0]).isdigit() else 200
        found = re.search(r"/v2/apis/([a-z0-9]+)(?:/routes/([a-z0-9]+))?", self.path or "")
        params = {"apiId": found[1], **({"routeId": found[2]} if found[2] else {})} if found else {}
        _record(self.current_account, self.region, action, read_only=action.startswith("Get"),
                detail={"eventName": action, "requestParameters": params, "responseElements": None,
                        "userIdentity": _identity(self.headers.get("Authorization", ""), self.current_account),
                        **({"errorCode": f"HTTP {status}"} if status >= 400 else {})})  # fmt: skip
        return answer

    ApiGatewayV2Response.call_action = call_v2_action  # type: ignore[method-assign]
    apigw.APIGatewayBackend.create_deployment = create_deployment  # type: ignore[method-assign]
    apigw.APIGatewayBackend.update_rest_api = update_rest_api  # type: ignore[method-assign]
    APIGatewayResponse.get_deployment = get_deployment  # type: ignore[method-assign]
    APIGatewayResponse.get_export = get_export  # type: ignore[method-assign]
    APIGatewayResponse.get_rest_apis = get_rest_apis  # type: ignore[method-assign]
    APIGatewayResponse.call_action = call_action  # type: ignore[method-assign]
    CloudTrailResponse.lookup_events = _lookup_events  # type: ignore[attr-defined]
    accounts.install()
    _install_parameter_keys()
    logs_models.execute_query = _execute_query  # type: ignore[attr-defined]


def _install_parameter_keys() -> None:
    """PutParameter without KeyId: a SecureString is encrypted with the account's default key
    (alias/aws/ssm, PutParameter API reference, "KeyId"), an overwrite included, and a String has no key;
    moto keeps the previous version's key instead."""
    from moto.ssm.models import SimpleSystemManagerBackend

    original = SimpleSystemManagerBackend.put_parameter

    def put_parameter(self: Any, name: str, description: str, value: str, parameter_type: str, allowed_pattern: str,
                      keyid: str, *args: Any, **kwargs: Any) -> Any:  # fmt: skip
        if keyid is None and parameter_type:
            keyid = "alias/aws/ssm" if parameter_type == "SecureString" else None
            answer = original(
                self, name, description, value, parameter_type, allowed_pattern, keyid, *args, **kwargs
            )
            if parameter_type != "SecureString" and self._parameters.get(name):
                self._parameters[name][-1].keyid = None
            return answer
        return original(
            self, name, description, value, parameter_type, allowed_pattern, keyid, *args, **kwargs
        )

    SimpleSystemManagerBackend.put_parameter = put_parameter  # type: ignore[method-assign]


def _execute_query(log_groups: list[Any], query: str, start_time: int, end_time: int) -> list[dict[str, Any]]:
    from access_auditor.local_aws.insights import run_query

    records = []
    for group in log_groups:
        for stream in group.streams.values():
            for event in stream.events:
                if (
                    start_time
                    and event.timestamp < start_time * 1000
                    or end_time
                    and event.timestamp > end_time * 1000
                ):
                    continue
                try:
                    record = json.loads(event.message)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append({**record, "timestamp": event.timestamp})
    records.sort(key=lambda r: r["timestamp"])
    return [{k: "" if v is None else v for k, v in row.items()} for row in run_query(query, records)]


def stored_form(text: str, api: ApiRef) -> str:
    """The policy text as API Gateway stores and returns it."""
    long_numbers: list[
        str
    ] = []  # API Gateway stores a number of any length; Python's int() stops at 4,300 digits

    def number(digits: str) -> Any:
        if len(digits) < 4000:
            return int(digits)
        long_numbers.append(digits)
        return f"\x00number{len(long_numbers) - 1}\x00"

    try:
        doc = json.loads(text, parse_int=number)
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
    for n, digits in enumerate(long_numbers):
        compact = compact.replace(json.dumps(f"\x00number{n}\x00"), digits)
    return compact.replace("\\", "\\\\").replace('"', '\\"').replace("/", "\\/")


def _record_api_call(response: Any, action: str, status: int, body: Any) -> None:
    """One CloudTrail management event for an API Gateway call, shaped as real records are: the URI's
    parameters, the request body nested under ``<operation>Input`` and ``template: false``; for a write that
    succeeded, ``responseElements`` with the answer and its ``self`` link (naming ``restApiId``); and the API
    in ``Resources`` (``AWS::ApiGateway::RestApi``), which LookupEvents can look up by ``ResourceName``."""
    params: dict[str, Any] = {_PARAMETER_NAMES.get(k, k): v for k, v in (response.uri_match or {}).items()}
    try:
        sent = json.loads(response.body) if response.body else {}
    except ValueError:
        sent = {}
    if isinstance(sent, dict) and sent:
        params[action[0].lower() + action[1:] + "Input"] = sent
    params["template"] = False
    elements: Any = None
    if status < 300 and not action.startswith("Get"):
        try:
            elements = json.loads(body) if body else None
        except (ValueError, TypeError):
            elements = None
    api_id = params.get("restApiId") or (
        elements.get("id") if action in _CREATIONS and isinstance(elements, dict) else None
    )
    if isinstance(elements, dict) and api_id:
        elements["self"] = {k: v for k, v in params.items() if isinstance(v, str)} | {"restApiId": api_id}
    _record(
        response.current_account,
        response.region,
        action,
        read_only=action.startswith("Get"),
        detail={
            "eventName": action,
            "requestParameters": params,
            "responseElements": elements if isinstance(elements, dict) else None,
            "userIdentity": _identity(response.headers.get("Authorization", ""), response.current_account),
            **({"errorCode": f"HTTP {status}"} if status >= 400 else {}),
        },
        resources=[{"ResourceType": "AWS::ApiGateway::RestApi", "ResourceName": api_id}] if api_id else [],
    )


def record_write(
    account: str,
    region: str,
    service: str,
    name: str,
    parameters: dict[str, Any],
    identity: dict[str, Any],
    source_ip: str = "192.0.2.10",
) -> None:
    """A successful write to another service than API Gateway, as CloudTrail records it (see local_aws/trail.py)."""
    _record(account, region, name, read_only=False, service=service, detail={
        "eventName": name, "requestParameters": parameters, "responseElements": None, "userIdentity": identity,
        "sourceIPAddress": source_ip, "userAgent": source_ip})  # fmt: skip


def record_call(account: str, region: str, action: str, api_id: str, identity: dict[str, Any]) -> None:
    """A write to ``api_id`` as CloudTrail records it, made by ``identity`` (its ``userIdentity``) outside this
    local AWS's own API: another tool's writes, or an AWS service's (``{"type": "AWSService", "invokedBy":
    "cloudformation.amazonaws.com"}``, with no ARN)."""
    _record(account, region, action, read_only=False, detail={
        "eventName": action, "requestParameters": {"restApiId": api_id, "template": False}, "responseElements": None,
        "userIdentity": identity}, resources=[{"ResourceType": "AWS::ApiGateway::RestApi", "ResourceName": api_id}])  # fmt: skip


def assumed_session(access_key: str) -> tuple[Any, str] | None:
    """The STS session (and its account) an access key belongs to, if the emulated STS issued it."""
    for account, by_partition in list(sts_backends.items()):
        for backend in list(by_partition.values()):
            for role in backend.assumed_roles:
                if role.access_key_id == access_key:
                    return role, account
    return None


def _identity(authorization: str, account: str) -> dict[str, Any]:
    """CloudTrail's userIdentity for the caller: the session of the role it assumed through the emulated
    STS, else a console user (the keys the demo and the tests administer the world with)."""
    key = authorization.partition("Credential=")[2].partition("/")[0]
    found = assumed_session(key) if key else None
    if found is None:
        role_arn, name, arn = f"arn:aws:iam::{account}:role/console", "console", _ACTOR
    else:
        session, account = found
        role_arn, arn = session.role_arn, session.arn
        name = role_arn.rsplit("/", 1)[-1]
    principal = f"AROALOCAL{zlib.crc32(role_arn.encode()):010d}:{arn.rsplit('/', 1)[-1]}"  # role id : session
    return {"type": "AssumedRole", "principalId": principal, "arn": arn, "accountId": account,
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role_arn, "accountId": account, "userName": name}}}  # fmt: skip


_CREATIONS = ("CreateRestApi", "ImportRestApi")


def _record(
    account: str,
    region: str,
    name: str,
    *,
    read_only: bool,
    detail: dict[str, Any],
    resources: list[dict[str, str]] | None = None,
    service: str = "apigateway",
) -> None:
    """One CloudTrail record of a call to ``service`` (its endpoint prefix: ``apigateway``, ``lambda``,
    ``monitoring``...), kept for LookupEvents and, for a write, handed to EventBridge's listeners."""
    # CloudTrail keeps event times to the second.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with _lock:
        EVENTS.append(
            {
                "account": account,
                "region": region,
                "ReadOnly": "true" if read_only else "false",
                "EventId": f"local-{len(EVENTS) + 1}",
                "EventName": name,
                "EventSource": f"{service}.amazonaws.com",
                "EventTime": now.timestamp(),
                "Username": str(
                    detail["userIdentity"].get("arn") or detail["userIdentity"].get("invokedBy")
                ).rsplit("/", 1)[-1],
                "Resources": resources or [],
                "CloudTrailEvent": json.dumps(detail),
            }
        )
        listeners = list(LISTENERS)
    if read_only:
        return
    # What EventBridge receives from CloudTrail for a write ("AWS API Call via CloudTrail"), failed calls too.
    envelope = {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "AWS API Call via CloudTrail",
        # "aws." + the endpoint prefix: aws.monitoring for CloudWatch (EventBridge's events reference)
        "source": f"aws.{service}",
        "account": account, "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region, "resources": [],
        "detail": {"eventVersion": "1.09", "sourceIPAddress": "192.0.2.10", **detail,
                   "eventTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "eventSource": f"{service}.amazonaws.com", "awsRegion": region, "readOnly": False,
                   "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": account,
                   "eventCategory": "Management", "eventID": str(uuid.uuid4())},
    }  # fmt: skip
    for listener in listeners:
        try:
            listener(envelope)
        except Exception:  # a listener's failure must not fail the API call that was recorded
            logging.getLogger(__name__).exception("a CloudTrail listener failed")


_ACTOR = (
    "arn:aws:sts::123456789012:assumed-role/console/alice"  # the console user the world is administered as
)
# Called with each write's EventBridge event (the local EventBridge); see local_aws/eventbridge.py.
LISTENERS: list[Any] = []


def _lookup_events(self: Any) -> str:
    account, region = self.current_account, self.region
    if not _within_quota(account, region, "cloudtrail:LookupEvents"):
        raise JsonRESTError("ThrottlingException", "Rate exceeded")
    with _lock:
        events = [e for e in EVENTS if e["account"] == account and e["region"] == region]
    start, end = self._get_param("StartTime"), self._get_param("EndTime")
    attributes = self._get_param("LookupAttributes") or []
    if len(attributes) > 1:
        raise JsonRESTError("InvalidLookupAttributesException", "only one lookup attribute is allowed")
    for attribute in attributes:
        key, value = attribute["AttributeKey"], attribute["AttributeValue"]
        if key in ("ResourceName", "ResourceType"):
            events = [e for e in events if any(r.get(key) == value for r in e["Resources"])]
        else:
            events = [e for e in events if str(e.get(key)) == value]
    if start is not None:
        events = [e for e in events if e["EventTime"] >= float(start)]
    if end is not None:
        events = [e for e in events if e["EventTime"] <= float(end)]
    events.reverse()  # newest first
    size = min(int(self._get_param("MaxResults") or PAGE_SIZE), PAGE_SIZE)
    offset = int(self._get_param("NextToken") or 0)
    page = [
        {k: v for k, v in e.items() if k not in {"account", "region"}} for e in events[offset : offset + size]
    ]
    answer: dict[str, Any] = {"Events": page}
    if offset + size < len(events):
        answer["NextToken"] = str(offset + size)
    return json.dumps(answer)
