"""HTTP APIs (API Gateway v2): the APIs of a region with their tags (GetApis), their stages and their
routes' authorization (GetRoutes). An HTTP API has no resource policy: who may call a route is its
authorization type (NONE, AWS_IAM, CUSTOM, JWT) and, for AWS_IAM, the caller's own IAM policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from access_auditor.aws.clients import call

T = TypeVar("T")


@dataclass(frozen=True)
class SweptHttpApi:
    api_id: str
    name: str
    tags: dict[str, str]


@dataclass(frozen=True)
class Route:
    route_key: str  # "GET /health", "ANY /{proxy+}", "$default"
    authorization_type: str
    authorizer_id: str | None = None


class HttpApiPlane(Protocol):
    def sweep(self) -> list[SweptHttpApi]: ...
    def stages(self, api_id: str) -> list[str]: ...
    def routes(self, api_id: str) -> list[Route]: ...


class HttpApis:
    """Adapter over a botocore ``apigatewayv2`` client of one account and region; every call goes through
    ``pace`` (API Gateway's account-level control-plane quota is shared with REST APIs)."""

    def __init__(self, client: Any, pace: Callable[[str], None] | None = None) -> None:
        self._client, self._pace = client, pace

    def _pages(
        self, operation: str, fn: Callable[..., dict[str, Any]], **kwargs: Any
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            if self._pace is not None:
                self._pace(operation)
            page = call(operation, fn, **kwargs)
            items += page.get("Items", [])
            if not page.get("NextToken"):
                return items
            kwargs["NextToken"] = page["NextToken"]

    def sweep(self) -> list[SweptHttpApi]:
        items = self._pages("GetApis", self._client.get_apis, MaxResults="500")
        return [SweptHttpApi(str(i["ApiId"]), str(i.get("Name", "")), {str(k): str(v) for k, v in (i.get("Tags") or {}).items()})
                for i in items if i.get("ProtocolType") == "HTTP"]  # fmt: skip

    def stages(self, api_id: str) -> list[str]:
        return [str(s["StageName"]) for s in self._pages("GetStages", self._client.get_stages, ApiId=api_id)]

    def routes(self, api_id: str) -> list[Route]:
        return [Route(str(r["RouteKey"]), str(r.get("AuthorizationType") or "NONE"), r.get("AuthorizerId"))
                for r in self._pages("GetRoutes", self._client.get_routes, ApiId=api_id)]  # fmt: skip
