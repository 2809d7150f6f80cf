"""An HTTP API (v2) on the local AWS: discovered by the same tag as a REST API, its routes' authorization
audited (it has no resource policy), a signed health call and an unsigned probe through a gateway that
enforces each route's authorization type."""

from __future__ import annotations

import pytest

from access_auditor.local_aws.invoke import Invocation, invoke_auditor
from access_auditor.local_aws.sample import grant_invoke
from tests.harness import Harness

HEALTH = "GET /health"


@pytest.fixture(scope="module")
def http_api(harness: Harness) -> dict[str, str]:
    aws, sample = harness.aws, harness.sample
    v2 = aws.client("apigatewayv2")
    api = v2.create_api(Name="quotes-http", ProtocolType="HTTP",
                        Tags={"access-auditor:allowed-roles": sample.allowed_role_arn})  # fmt: skip
    route = v2.create_route(ApiId=api["ApiId"], RouteKey=HEALTH, AuthorizationType="AWS_IAM")
    v2.create_stage(ApiId=api["ApiId"], StageName="prod", AutoDeploy=True)
    grant_invoke(aws.client("iam"), sample.allowed_role_arn.rsplit("/", 1)[1],
                 f"arn:aws:execute-api:{aws.region}:{aws.account}:{api['ApiId']}/*", policy_name="invoke-http")  # fmt: skip
    return {"api": api["ApiId"], "route": route["RouteId"]}


def run(harness: Harness) -> Invocation:
    return invoke_auditor(harness.function_env(API_ID="", API_ENDPOINT="", OUTSIDER_ROLE_ARN="",
                                               DISCOVERY_REGIONS=harness.aws.region,
                                               AWS_ENDPOINT_URL_EXECUTE_API=harness.aws.gateway.url))  # fmt: skip


def target(invocation: Invocation, api_id: str) -> dict:  # type: ignore[type-arg]
    assert invocation.result is not None, invocation.error
    return next(t for t in invocation.result["targets"] if t["apiId"] == api_id)


def test_a_tagged_http_api_locked_to_iam_is_audited_clean(harness: Harness, http_api: dict[str, str]) -> None:
    audited = target(run(harness), http_api["api"])
    assert audited["statusCode"] == 200 and audited["healthy"] and audited["findings"] == []
    assert audited["flags"] == {"UnauthorizedCallAllowed": 0, "PolicyDrift": 0, "HealthCheckFailed": 0,
                                "AuditError": 0, "AuditDeferred": 0}  # fmt: skip


def test_a_route_switched_to_none_is_reported_and_the_unsigned_probe_gets_in(
    harness: Harness, http_api: dict[str, str]
) -> None:
    v2 = harness.aws.client("apigatewayv2")
    v2.update_route(ApiId=http_api["api"], RouteId=http_api["route"], AuthorizationType="NONE")
    try:
        audited = target(run(harness), http_api["api"])
    finally:
        v2.update_route(ApiId=http_api["api"], RouteId=http_api["route"], AuthorizationType="AWS_IAM")
    codes = {f["code"]: f["message"] for f in audited["findings"]}
    assert "ROUTE_NOT_IAM" in codes and HEALTH in codes["ROUTE_NOT_IAM"] and "NONE" in codes["ROUTE_NOT_IAM"]
    assert "UNSIGNED_CALL_ALLOWED" in codes and audited["drift"] and audited["unauthorizedCallAllowed"]


def test_an_iam_route_that_stops_answering_the_signed_call_is_reported(
    harness: Harness, http_api: dict[str, str]
) -> None:
    iam = harness.aws.client("iam")
    role = harness.sample.allowed_role_arn.rsplit("/", 1)[1]
    iam.delete_role_policy(RoleName=role, PolicyName="invoke-http")
    try:
        audited = target(run(harness), http_api["api"])
    finally:
        grant_invoke(iam, role, f"arn:aws:execute-api:{harness.aws.region}:{harness.aws.account}:{http_api['api']}/*",
                     policy_name="invoke-http")  # fmt: skip
    codes = {f["code"]: f["message"] for f in audited["findings"]}
    assert "HEALTH_NOT_AUTHORIZED" in codes and "no resource policy" in codes["HEALTH_NOT_AUTHORIZED"]
    assert audited["healthy"] is False


def test_a_route_change_starts_an_audit_of_that_http_api(harness: Harness, http_api: dict[str, str]) -> None:
    from access_auditor.local_aws.eventbridge import ChangePipeline, invoke_with
    from access_auditor.local_aws.invoke import TEMPLATE

    env = harness.function_env(API_ID="", API_ENDPOINT="", OUTSIDER_ROLE_ARN="", DISCOVERY_REGIONS=harness.aws.region,
                               AWS_ENDPOINT_URL_EXECUTE_API=harness.aws.gateway.url)  # fmt: skip
    role = harness.sample.allowed_role_arn.rsplit("/", 1)[1]
    pipe = ChangePipeline(
        harness.aws, TEMPLATE, {"AllowedRoleName": role, "SettleSeconds": "1"}, invoke_with(env)
    )
    v2 = harness.aws.client("apigatewayv2")
    with pipe:
        # WHEN someone switches the route to NONE (CloudTrail's UpdateRoute names the API as apiId)
        v2.update_route(ApiId=http_api["api"], RouteId=http_api["route"], AuthorizationType="NONE")
        assert pipe.delivery_of("UpdateRoute") is not None
    v2.update_route(ApiId=http_api["api"], RouteId=http_api["route"], AuthorizationType="AWS_IAM")
    audited = [line["audit"] for run in (d.answer for d in pipe.deliveries) for line in run.logs
               if line.get("message") == "target audited"]  # fmt: skip
    # THEN that HTTP API alone is audited at once, the route named, and the change with its author
    assert {a["apiId"] for a in audited} == {http_api["api"]}
    codes = {f["code"] for f in audited[-1]["findings"]}
    assert {"ROUTE_NOT_IAM", "UNSIGNED_CALL_ALLOWED", "CHANGED_BY"} <= codes
