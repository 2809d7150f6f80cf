"""Reading and writing an API's state through the API Gateway control plane."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Protocol

from access_auditor.aws.clients import aws_call, call
from access_auditor.errors import AwsCallError
from access_auditor.policy.access_config import AccessConfig
from access_auditor.policy.matrix import Method


@dataclass(frozen=True)
class StageState:
    """The stage as it serves calls: its deployment and, from that deployment, the live access config
    (None when the stage has never been deployed)."""

    deployment_id: str | None
    deployed_at: dt.datetime | None
    deployed: AccessConfig | None = None
    canary_deployment_id: str | None = None
    canary_percent: float | None = None


class ControlPlane(Protocol):
    def saved(self, api_id: str, stage: str) -> AccessConfig: ...
    def stage_state(self, api_id: str, stage: str) -> StageState: ...


class ApiGateway:
    """Adapter over a botocore ``apigateway`` client. Every method raises AwsCallError or CredentialsError."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def get_policy(self, api_id: str) -> str | None:
        """The saved policy (GetRestApi): what the next deployment will serve, not what is live."""
        api = call("GetRestApi", self._client.get_rest_api, restApiId=api_id)
        policy = api.get("policy")
        return str(policy) if policy else None

    def saved(self, api_id: str, stage: str) -> AccessConfig:
        """The saved policy and methods: GetRestApi, then GetResources."""
        return AccessConfig(self.get_policy(api_id), tuple(self.list_methods(api_id, stage)))

    def list_methods(self, api_id: str, stage: str) -> list[Method]:
        """Every saved method with its authorizationType: one GetResources call per 500 resources, because
        GetResources has its own tight limit (5 calls every 2 seconds)."""
        methods: list[Method] = []
        kwargs: dict[str, Any] = {"restApiId": api_id, "embed": ["methods"], "limit": 500}
        while True:
            page = call("GetResources", self._client.get_resources, **kwargs)
            for resource in page.get("items", []):
                for verb, method in (resource.get("resourceMethods") or {}).items():
                    methods.append(
                        Method(stage, verb, resource["path"], method.get("authorizationType", "NONE"))
                    )
            if not page.get("position"):
                return methods
            kwargs["position"] = page["position"]

    def stage_state(self, api_id: str, stage: str) -> StageState:
        """What the stage serves. GetStage names the deployment; GetDeployment with ``embed=apisummary``
        gives each method's authorizationType as deployed; GetExport "exports a deployed version of a
        RestApi", and with ``extensions=apigateway`` carries the deployed x-amazon-apigateway-policy."""
        info = call("GetStage", self._client.get_stage, restApiId=api_id, stageName=stage)
        canary = info.get("canarySettings") or {}
        deployment_id = info.get("deploymentId")
        if not deployment_id:
            return StageState(None, None)
        deployment = call("GetDeployment", self._client.get_deployment, restApiId=api_id,
                          deploymentId=deployment_id, embed=["apisummary"])  # fmt: skip
        methods = tuple(
            Method(stage, verb, path, str(summary.get("authorizationType", "NONE")))
            for path, verbs in (deployment.get("apiSummary") or {}).items()
            for verb, summary in verbs.items()
        )
        return StageState(
            deployment_id=deployment_id,
            deployed_at=deployment.get("createdDate"),
            deployed=AccessConfig(self._deployed_policy(api_id, stage), methods),
            canary_deployment_id=canary.get("deploymentId"),
            canary_percent=canary.get("percentTraffic"),
        )

    def _deployed_policy(self, api_id: str, stage: str) -> str | None:
        export = call("GetExport", self._client.get_export, restApiId=api_id, stageName=stage,
                      exportType="oas30", parameters={"extensions": "apigateway"}, accepts="application/json")  # fmt: skip
        with aws_call("GetExport"):
            body = export["body"].read()
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise AwsCallError("GetExport", "UnreadableExport", f"the export is not JSON: {exc}") from exc
        policy = document.get("x-amazon-apigateway-policy") if isinstance(document, dict) else None
        if policy is None:
            return None
        return policy if isinstance(policy, str) else json.dumps(policy)

    def apply_policy(self, api_id: str, stage: str, policy_json: str) -> str:
        """Save ``policy_json`` and deploy ``stage``; returns the new deployment id. A saved policy has no
        effect until a deployment, so the two always go together."""
        call(
            "UpdateRestApi",
            self._client.update_rest_api,
            restApiId=api_id,
            patchOperations=[{"op": "replace", "path": "/policy", "value": policy_json}],
        )
        deployment = call(
            "CreateDeployment",
            self._client.create_deployment,
            restApiId=api_id,
            stageName=stage,
            description="apigw-access-auditor: apply the expected resource policy",
        )
        return str(deployment["id"])
