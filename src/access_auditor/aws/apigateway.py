"""Reading and writing an API's state through the API Gateway control plane."""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from access_auditor.aws.clients import aws_call, call
from access_auditor.errors import AuditorError, AwsCallError
from access_auditor.policy.access_config import AccessConfig
from access_auditor.policy.document import parse_policy_text
from access_auditor.policy.matrix import Method

T = TypeVar("T")
# What a deployment serves, kept by its id (deployments are immutable): (created, access config, export problem).
Deployed = tuple[dt.datetime | None, AccessConfig, "ExportProblem | None"]
TAG_PREFIX = "access-auditor:"
LISTED_FRESH_S = 60.0  # a stage listed by GetStages this long ago still stands for its GetStage


@dataclass(frozen=True)
class SweptApi:
    """One REST API as GetRestApis lists it: its saved policy and its tags come with it."""

    api_id: str
    name: str
    policy: str | None
    tags: dict[str, str]
    endpoint_types: tuple[str, ...] = ()  # REGIONAL, EDGE or PRIVATE
    vpc_endpoint_ids: tuple[str, ...] = ()  # the endpoints a private API is associated with

    @property
    def private(self) -> bool:
        return "PRIVATE" in self.endpoint_types


@dataclass(frozen=True)
class ExportProblem:
    """Why the deployed policy could not be read from the stage's export: API Gateway refused to export the
    API (``refused``: "You cannot export an API if its payloads are not of the application/json type",
    developer guide, "Export a REST API"), or the export it gave could not be read."""

    refused: bool
    reason: str


@dataclass(frozen=True)
class StageState:
    """The stage as it serves calls: its deployment and, from that deployment, the live access config
    (None when the stage has never been deployed). With ``export_problem``, ``deployed.policy`` is unknown:
    only its methods (from the deployment's apiSummary) were read."""

    deployment_id: str | None
    deployed_at: dt.datetime | None
    deployed: AccessConfig | None = None
    canary_deployment_id: str | None = None
    canary_percent: float | None = None
    export_problem: ExportProblem | None = None


class ControlPlane(Protocol):
    def sweep(self) -> list[SweptApi]: ...
    def stages(self, api_id: str) -> list[str]: ...
    def get_policy(self, api_id: str) -> str | None: ...
    def list_methods(self, api_id: str, stage: str) -> list[Method]: ...
    def stage_state(self, api_id: str, stage: str) -> StageState: ...
    def customised_responses(self, api_id: str) -> list[str]: ...


class ApiGateway:
    """Adapter over a botocore ``apigateway`` client of one account and region. Every call goes through
    ``pace`` first (the quota buckets); every method raises AwsCallError, CredentialsError or QuotaWait.

    A deployment is an immutable snapshot, so what it serves is read once and kept (the adapter lives as
    long as the warm function): in a steady state a stage costs one GetStage.
    """

    def __init__(
        self,
        client: Any,
        pace: Callable[[str], None] | None = None,
        deployments: dict[tuple[str, str, str], Deployed] | None = None,
    ) -> None:
        """``deployments``: where what a deployment serves is kept (default: this adapter's own dict; the
        hub passes one shared by its execution environments)."""
        self._client = client
        self._pace = pace
        self._deployments = {} if deployments is None else deployments
        self._listed: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}  # GetStages items, just read
        self._lock = threading.Lock()

    def _call(self, operation: str, fn: Callable[..., T], **kwargs: Any) -> T:
        if self._pace is not None:
            self._pace(operation)
        return call(operation, fn, **kwargs)

    def sweep(self) -> list[SweptApi]:
        """Every REST API of the region with its saved policy and tags: one GetRestApis call per 500."""
        apis: list[SweptApi] = []
        kwargs: dict[str, Any] = {"limit": 500}
        while True:
            page = self._call("GetRestApis", self._client.get_rest_apis, **kwargs)
            for item in page.get("items", []):
                policy = item.get("policy")
                endpoints = item.get("endpointConfiguration") or {}
                apis.append(SweptApi(item["id"], str(item.get("name", "")), str(policy) if policy else None,
                                     {str(k): str(v) for k, v in (item.get("tags") or {}).items()},
                                     tuple(str(t) for t in endpoints.get("types") or ()),
                                     tuple(str(v) for v in endpoints.get("vpcEndpointIds") or ())))  # fmt: skip
            if not page.get("position"):
                return apis
            kwargs["position"] = page["position"]

    def stages(self, api_id: str) -> list[str]:
        """The API's stage names (GetStages). Each stage's item is what GetStage would answer, so the
        stage's state read right after (within LISTED_FRESH_S) takes it instead of a GetStage call."""
        answer = self._call("GetStages", self._client.get_stages, restApiId=api_id)
        items = answer.get("item", [])
        now = time.monotonic()
        with self._lock:
            for item in items:
                self._listed[(api_id, str(item["stageName"]))] = (now, item)
        return sorted(str(item["stageName"]) for item in items)

    def get_policy(self, api_id: str) -> str | None:
        """The saved policy (GetRestApi): what the next deployment will serve, not what is live."""
        api = self._call("GetRestApi", self._client.get_rest_api, restApiId=api_id)
        policy = api.get("policy")
        return str(policy) if policy else None

    def list_methods(self, api_id: str, stage: str) -> list[Method]:
        """Every saved method with its authorizationType: one GetResources call per 500 resources, because
        GetResources has its own tight limit (5 calls every 2 seconds)."""
        methods: list[Method] = []
        kwargs: dict[str, Any] = {"restApiId": api_id, "embed": ["methods"], "limit": 500}
        while True:
            page = self._call("GetResources", self._client.get_resources, **kwargs)
            for resource in page.get("items", []):
                for verb, method in (resource.get("resourceMethods") or {}).items():
                    methods.append(
                        Method(stage, verb, resource["path"], method.get("authorizationType", "NONE"))
                    )
            if not page.get("position"):
                return methods
            kwargs["position"] = page["position"]

    def customised_responses(self, api_id: str) -> list[str]:
        """The gateway responses the API customised (GetGatewayResponses: ``defaultResponse`` false), each
        as "TYPE (status)"."""
        answer = self._call(
            "GetGatewayResponses", self._client.get_gateway_responses, restApiId=api_id, limit=500
        )
        return sorted(f"{item['responseType']} ({item.get('statusCode') or 'default status'})"
                      for item in answer.get("items", []) if not item.get("defaultResponse", False))  # fmt: skip

    def stage_state(self, api_id: str, stage: str) -> StageState:
        """What the stage serves. GetStage names the deployment; GetDeployment with ``embed=apisummary``
        gives each method's authorizationType as deployed; GetExport "exports a deployed version of a
        RestApi", and with ``extensions=apigateway`` carries the deployed x-amazon-apigateway-policy."""
        with self._lock:
            listed = self._listed.pop((api_id, stage), None)
        if listed is not None and time.monotonic() - listed[0] <= LISTED_FRESH_S:
            info = listed[1]
        else:
            info = self._call("GetStage", self._client.get_stage, restApiId=api_id, stageName=stage)
        canary = info.get("canarySettings") or {}
        deployment_id = info.get("deploymentId")
        if not deployment_id:
            return StageState(None, None)
        key = (api_id, stage, str(deployment_id))
        with self._lock:
            known = self._deployments.get(key)
        if known is None:
            deployment = self._call("GetDeployment", self._client.get_deployment, restApiId=api_id,
                                    deploymentId=deployment_id, embed=["apisummary"])  # fmt: skip
            methods = tuple(
                Method(stage, verb, path, str(summary.get("authorizationType", "NONE")))
                for path, verbs in (deployment.get("apiSummary") or {}).items()
                for verb, summary in verbs.items()
            )
            try:
                policy, problem = self._deployed_policy(api_id, stage), None
            except ExportFailed as exc:
                policy, problem = None, exc.problem
            known = deployment.get("createdDate"), AccessConfig(policy, methods), problem
            with self._lock:
                self._deployments[key] = known
        return StageState(
            deployment_id=deployment_id,
            deployed_at=known[0],
            deployed=known[1],
            canary_deployment_id=canary.get("deploymentId"),
            canary_percent=canary.get("percentTraffic"),
            export_problem=known[2],
        )

    def _deployed_policy(self, api_id: str, stage: str) -> str | None:
        """The policy the stage's export carries (None: no policy), as text. Raises ExportFailed when API
        Gateway refuses the export (400) or gives one that cannot be read; a number too long to convert stays
        in the text as its digits, so that the policy, not the export, is what cannot be read."""
        try:
            export = self._call("GetExport", self._client.get_export, restApiId=api_id, stageName=stage,
                                exportType="oas30", parameters={"extensions": "apigateway"}, accepts="application/json")  # fmt: skip
        except AwsCallError as exc:
            if exc.code in {"BadRequestException", "BadRequest"}:
                raise ExportFailed(ExportProblem(True, str(exc))) from exc
            raise
        with aws_call("GetExport"):
            body = export["body"].read()
        try:
            document = json.loads(body, parse_int=_number)
        except (ValueError, RecursionError) as exc:
            raise ExportFailed(
                ExportProblem(False, f"the export is not readable JSON: {type(exc).__name__}: {exc}")
            ) from exc
        policy = document.get("x-amazon-apigateway-policy") if isinstance(document, dict) else None
        if policy is None:
            return None
        return policy if isinstance(policy, str) else _dumps(policy)

    def apply_policy(self, api_id: str, stage: str, policy_json: str, previous: str | None) -> str:
        """Save ``policy_json`` and deploy ``stage``; returns the new deployment id. A saved policy has no
        effect until a deployment, so the two always go together: when the deployment fails, ``previous``
        (the policy it replaced, as GetRestApi gave it; None for none) is saved back, and the error says so."""
        self._save(api_id, policy_json)
        try:
            deployment = self._call("CreateDeployment", self._client.create_deployment, restApiId=api_id, stageName=stage,
                                    description="apigw-access-auditor: apply the expected resource policy")  # fmt: skip
        except AwsCallError as exc:
            try:
                self._save(api_id, json.dumps(parse_policy_text(previous)) if previous else "")
            except AuditorError as restore:
                raise AwsCallError("CreateDeployment", exc.code, f"{exc}; and the policy it replaced could NOT be "
                                   f"restored ({restore}): the new policy is saved, not deployed") from exc  # fmt: skip
            raise AwsCallError("CreateDeployment", exc.code, f"{exc}; the policy it replaced was saved back, so "
                               "nothing changed") from exc  # fmt: skip
        return str(deployment["id"])

    def _save(self, api_id: str, policy_json: str) -> None:
        self._call("UpdateRestApi", self._client.update_rest_api, restApiId=api_id,
                   patchOperations=[{"op": "replace", "path": "/policy", "value": policy_json}])  # fmt: skip


class ExportFailed(Exception):
    """GetExport gave no readable policy (see ExportProblem); the stage's other state is still read."""

    def __init__(self, problem: ExportProblem) -> None:
        super().__init__(problem.reason)
        self.problem = problem


class _Digits(str):
    """A JSON number too long for ``int()`` (Python's limit on digits), kept as its digits."""


def _number(text: str) -> int | _Digits:
    limit = sys.get_int_max_str_digits()
    return _Digits(text) if limit and len(text.lstrip("-")) > limit else int(text)


def _dumps(value: Any) -> str:
    """JSON text of an exported document part, long numbers written back as the digits they were."""
    digits: list[str] = []

    def mark(item: Any) -> Any:
        if isinstance(item, _Digits):
            digits.append(str(item))
            return f"\u0000digits{len(digits) - 1}\u0000"
        if isinstance(item, dict):
            return {k: mark(v) for k, v in item.items()}
        if isinstance(item, list):
            return [mark(v) for v in item]
        return item

    text = json.dumps(mark(value))
    for n, number in enumerate(digits):
        text = text.replace(json.dumps(f"\u0000digits{n}\u0000"), number)
    return text
