"""A private REST API on the local AWS: reachable only through an execute-api VPC endpoint that stamps its id,
its VPC and the caller's address on every request, and refused from outside, as AWS refuses it. The auditor
calls it the three documented ways and reports each weakening naming the caller and the network."""

from __future__ import annotations

import json

import pytest

from access_auditor.local_aws.invoke import Invocation, invoke_auditor
from access_auditor.local_aws.sample import PrivateApi, create_private_api, deploy, save_policy
from access_auditor.policy.expected import render_expected_policy
from tests.harness import Harness


@pytest.fixture(scope="module")
def private(harness: Harness) -> PrivateApi:
    return create_private_api(harness.aws, harness.sample)


def env(harness: Harness, private: PrivateApi, **overrides: str) -> dict[str, str]:
    """The function in the endpoint's VPC: execute-api reached through the local endpoint (the public front
    door is the local gateway, for a call that leaves the VPC's endpoint out)."""
    settings = {"API_ID": private.api.api_id, "ALLOWED_VPCE": private.endpoint.vpce_id, "API_ENDPOINT": "",
                "AWS_ENDPOINT_URL_EXECUTE_API": harness.aws.gateway.url,
                "AWS_ENDPOINT_URL_EXECUTE_API_VPCE": private.endpoint.url}  # fmt: skip
    return harness.function_env(**{**settings, **overrides})


def findings(run: Invocation) -> dict[str, str]:
    assert run.result is not None, run.error
    return {f["code"]: f["message"] for f in run.result["targets"][0]["findings"]}


def put(harness: Harness, private: PrivateApi, policy: str) -> None:
    apigw = harness.aws.client("apigateway")
    save_policy(apigw, private.api.api_id, policy)
    deploy(apigw, private.api.api_id)


@pytest.mark.parametrize("addressing", ["dns", "alias", "endpoint"])
def test_a_private_api_locked_to_one_role_and_one_endpoint_audits_clean_each_way_it_is_called(
    harness: Harness, private: PrivateApi, addressing: str
) -> None:
    via = {"dns": "", "alias": private.endpoint.vpce_id, "endpoint": private.endpoint_dns}[addressing]
    run = invoke_auditor(env(harness, private, PRIVATE_ADDRESSING=addressing, EXECUTE_API_ENDPOINT=via))
    assert run.result is not None and run.result["ok"] is True, findings(run)
    target = run.result["targets"][0]
    assert target["statusCode"] == 200 and target["unauthorizedCallAllowed"] is False and not target["drift"]


def test_from_outside_any_endpoint_the_private_api_is_refused_and_the_finding_says_why(
    harness: Harness, private: PrivateApi
) -> None:
    run = invoke_auditor(env(harness, private, AWS_ENDPOINT_URL_EXECUTE_API_VPCE=""))
    found = findings(run)
    assert "HEALTH_NOT_THROUGH_ENDPOINT" in found and "VpcSubnetIds" in found["HEALTH_NOT_THROUGH_ENDPOINT"]


def test_the_endpoint_condition_dropped_is_reported_naming_the_role_and_any_endpoint(
    harness: Harness, private: PrivateApi
) -> None:
    put(harness, private, json.dumps(render_expected_policy(private.api, [harness.sample.allowed_role_arn])))
    try:
        found = findings(invoke_auditor(env(harness, private)))
    finally:
        put(harness, private, private.policy(harness.sample))
    assert (
        "another VPC endpoint" in found["ACCESS_WEAKENED"]
        and harness.sample.allowed_role_arn in found["ACCESS_WEAKENED"]
    )
    assert "PRIVATE_API_ANY_ENDPOINT" in found


def test_another_endpoint_added_is_reported_naming_it(harness: Harness, private: PrivateApi) -> None:
    put(
        harness, private, private.policy(harness.sample, (private.endpoint.vpce_id, "vpce-0e5f6a7b8c9d0e1f2"))
    )
    try:
        found = findings(invoke_auditor(env(harness, private)))
    finally:
        put(harness, private, private.policy(harness.sample))
    assert "VPC endpoint vpce-0e5f6a7b8c9d0e1f2" in found["ACCESS_WEAKENED"]


def test_a_widened_source_vpc_is_reported_naming_the_vpcs(harness: Harness, private: PrivateApi) -> None:
    vpc = private.endpoint.vpc_id
    # GIVEN a target locked to its VPC, clean, then the policy's aws:SourceVpc widened to another VPC too
    put(harness, private, private.policy(harness.sample, (), (vpc,)))
    clean = findings(invoke_auditor(env(harness, private, ALLOWED_VPCE="", ALLOWED_VPC=vpc)))
    put(harness, private, private.policy(harness.sample, (), (vpc, "vpc-0b22bbbbcccc")))
    try:
        found = findings(invoke_auditor(env(harness, private, ALLOWED_VPCE="", ALLOWED_VPC=vpc)))
    finally:
        put(harness, private, private.policy(harness.sample))
    assert "ACCESS_WEAKENED" not in clean
    assert "in VPC vpc-0b22bbbbcccc" in found["ACCESS_WEAKENED"]


def test_an_unsigned_call_through_the_endpoint_is_refused_and_one_to_a_regional_api_is_forbidden(
    harness: Harness, private: PrivateApi
) -> None:
    import requests

    host = f"{private.api.api_id}.execute-api.{harness.aws.region}.amazonaws.com"
    unsigned = requests.get(f"{private.endpoint.url}/prod/health", headers={"Host": host}, timeout=5)
    assert (
        unsigned.status_code == 403
        and unsigned.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    )
    regional = requests.get(f"{private.endpoint.url}/prod/health", headers={"x-apigw-api-id": harness.sample.api_id},
                            timeout=5)  # fmt: skip
    assert regional.status_code == 403 and regional.headers["x-amzn-ErrorType"] == "ForbiddenException"


def test_an_endpoint_type_change_is_seen_by_the_next_audit(harness: Harness, private: PrivateApi) -> None:
    apigw = harness.aws.client("apigateway")

    def switch(kind: str, now: str) -> None:
        apigw.update_rest_api(restApiId=private.api.api_id, patchOperations=[
            {"op": "replace", "path": f"/endpointConfiguration/types/{now}", "value": kind}])  # fmt: skip

    # GIVEN the private API made REGIONAL (its expected policy still names the endpoint)
    switch("REGIONAL", "PRIVATE")
    try:
        found = findings(invoke_auditor(env(harness, private)))
    finally:
        switch("PRIVATE", "REGIONAL")
    # THEN the call through the endpoint is refused, and the finding says what an endpoint serves
    assert "HEALTH_NOT_THROUGH_ENDPOINT" in found
    # AND back to PRIVATE, the next audit is clean again
    assert "HEALTH_NOT_THROUGH_ENDPOINT" not in findings(invoke_auditor(env(harness, private)))
