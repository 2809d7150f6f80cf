"""Reading and writing an API's state through the API Gateway control plane."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from access_auditor.aws.clients import call
from access_auditor.policy.analysis import Method


@dataclass(frozen=True)
class StageState:
    deployment_id: str | None
    deployed_at: dt.datetime | None
    canary_deployment_id: str | None = None
    canary_percent: float | None = None


class ControlPlane(Protocol):
    def get_policy(self, api_id: str) -> str | None: ...
    def list_methods(self, api_id: str, stage: str) -> list[Method]: ...
    def stage_state(self, api_id: str, stage: str) -> StageState: ...


class ApiGateway:
    """Adapter over a boto3 ``apigateway`` client. Every method raises AwsCallError or CredentialsError."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def get_policy(self, api_id: str) -> str | None:
        api = call("GetRestApi", self._client.get_rest_api, restApiId=api_id)
        policy = api.get("policy")
        return str(policy) if policy else None

    def list_methods(self, api_id: str, stage: str) -> list[Method]:
        """Every method with its authorizationType: one GetResources call per 500 resources, because
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
        info = call("GetStage", self._client.get_stage, restApiId=api_id, stageName=stage)
        deployment_id = info.get("deploymentId")
        deployed_at = None
        if deployment_id:
            deployment = call(
                "GetDeployment", self._client.get_deployment, restApiId=api_id, deploymentId=deployment_id
            )
            deployed_at = deployment.get("createdDate")
        canary = info.get("canarySettings") or {}
        return StageState(
            deployment_id=deployment_id,
            deployed_at=deployed_at,
            canary_deployment_id=canary.get("deploymentId"),
            canary_percent=canary.get("percentTraffic"),
        )

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
