"""The checks of an HTTP API (API Gateway v2). It has no resource policy: a route answers whoever its
authorization type lets in, so "locked to these roles" means every route is AWS_IAM (and the roles' own IAM
policies grant execute-api:Invoke; no other principal's may). What is audited instead of a policy:

* each route's authorization type: a route that is not AWS_IAM is a finding (ROUTE_NOT_IAM);
* the allowed role's signed health call (HealthCheckFailed), as for a REST API;
* an unsigned probe, which an AWS_IAM route refuses with 403 (UnauthorizedCallAllowed).

The outsider probe is not made: without a resource policy, any principal whose own IAM policy grants
execute-api:Invoke gets in by design, so its answer would say nothing about the API.
"""

from __future__ import annotations

from access_auditor.checks import Check, health_call
from access_auditor.errors import AuditorError
from access_auditor.findings import Category as C
from access_auditor.findings import Finding, finding
from access_auditor.observation import Observation

__all__ = ["HTTP_CHECKS"]


def routes(obs: Observation) -> list[Finding]:
    """Each route's authorization type (PolicyDrift): AWS_IAM everywhere, as the expected state says."""
    if obs.ports.http_apis is None:
        raise AuditorError("no HTTP API control plane to read the routes with")
    found = []
    for route in obs.ports.http_apis(obs.scope).routes(obs.target.api_id):
        if route.authorization_type != "AWS_IAM":
            by = f" (authorizer {route.authorizer_id})" if route.authorizer_id else ""
            found.append(finding("ROUTE_NOT_IAM",
                f"route {route.route_key} of HTTP API {obs.target.api_id} uses authorizationType "
                f"{route.authorization_type}{by}: an HTTP API has no resource policy, so this route answers whoever "
                "that authorization lets in, not only the allowed roles. Set it to AWS_IAM (aws apigatewayv2 "
                f"update-route --api-id {obs.target.api_id} --route-id ID --authorization-type AWS_IAM)",
                subject=route.route_key))  # fmt: skip
    return found


def unsigned_probe(obs: Observation) -> list[Finding]:
    """An unsigned call to the health path (UnauthorizedCallAllowed): an AWS_IAM route refuses it with 403."""
    try:
        answer = obs.health()
    except AuditorError:  # no credentials, no identity: already reported by the health check
        answer = None
    url = obs.target.health_url
    if answer is None or answer.status is None or answer.status == 404:
        return [finding("PROBES_NOT_RUN", f"the unsigned probe was not run: the health call's answer does not show "
                        f"that {url} exists, so a refusal would prove nothing")]  # fmt: skip
    result = obs.call(None)
    obs.probe_answers["unsigned"] = result
    if result.status is not None and 200 <= result.status < 300:
        return [finding("UNSIGNED_CALL_ALLOWED", f"an unsigned call to {url} was answered {result.status}: the route "
                        "is open to anyone. Set its authorization type to AWS_IAM.")]  # fmt: skip
    if result.status in (401, 403):
        return []
    reason = result.message if result.failure else f"{result.status}: {result.message or 'no message'}"
    return [
        finding(
            "PROBE_INCONCLUSIVE", f"an unsigned call to {url} proved nothing ({reason})", subject="unsigned"
        )
    ]


HTTP_CHECKS = (
    Check("routes", "reading the HTTP API's routes", frozenset({C.DRIFT}), routes),
    Check("health", "calling the API", frozenset({C.HEALTH}), health_call),
    Check("probes", "probing the API unsigned", frozenset({C.EXPOSURE}), unsigned_probe),
)
