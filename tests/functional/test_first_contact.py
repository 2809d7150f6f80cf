"""What a real account does that the product once assumed away, reproduced on the local AWS: a HEAD health
method, customised gateway responses, an API that cannot be exported, a busy CloudTrail, an unreadable
deployed policy."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from access_auditor.audit import TargetResult, run_audit
from access_auditor.config import load_config
from access_auditor.local_aws import emulation
from access_auditor.local_aws.emulation import record_call
from access_auditor.local_aws.sample import add_method, deploy, save_policy
from access_auditor.observation import Scope
from access_auditor.wiring import build_ports
from tests.harness import Harness


def audit(harness: Harness, monkeypatch: pytest.MonkeyPatch, **env: str) -> TargetResult:
    config = load_config(harness.in_process(monkeypatch, **env))
    return run_audit(config, build_ports(), budget_s=30)[0]


def codes(result: TargetResult) -> dict[str, str]:
    return {f.code: f.message for f in result.findings}


def health_resource(harness: Harness) -> str:
    apigw = harness.aws.client("apigateway")
    items = apigw.get_resources(restApiId=harness.sample.api_id)["items"]
    return next(r["id"] for r in items if r["path"] == "/health")


@pytest.fixture
def head_health(harness: Harness) -> Iterator[Harness]:
    apigw = harness.aws.client("apigateway")
    add_method(apigw, harness.sample.api_id, health_resource(harness), "HEAD")
    deploy(apigw, harness.sample.api_id)
    yield harness
    apigw.delete_method(
        restApiId=harness.sample.api_id, resourceId=health_resource(harness), httpMethod="HEAD"
    )
    deploy(apigw, harness.sample.api_id)


def test_a_head_health_method_is_healthy_and_its_probes_prove_the_lock(
    head_health: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the health method is HEAD: every answer comes without a body
    # WHEN the auditor runs
    result = audit(head_health, monkeypatch, HEALTH_METHOD="HEAD")
    # THEN the health call succeeded, and both probes were read as refused, not as inconclusive
    assert result.healthy and result.call is not None and result.call.status == 200
    assert result.unauthorized_call_allowed is False
    assert not {"PROBE_INCONCLUSIVE", "OUTSIDER_DENIED_IMPLICITLY", "PROBES_NOT_RUN"} & set(codes(result))


@pytest.fixture
def customised(harness: Harness) -> Iterator[Harness]:
    # GIVEN the API answers refusals its own way: a denied caller gets 200 and a friendly body, an unsigned
    # one 404 and another message
    apigw, api_id = harness.aws.client("apigateway"), harness.sample.api_id
    apigw.put_gateway_response(restApiId=api_id, responseType="ACCESS_DENIED", statusCode="200",
                               responseTemplates={"application/json": '{"error": "please ask the platform team"}'})  # fmt: skip
    apigw.put_gateway_response(restApiId=api_id, responseType="MISSING_AUTHENTICATION_TOKEN", statusCode="404",
                               responseTemplates={"application/json": '{"message": "Not found"}'})  # fmt: skip
    yield harness
    for kind in ("ACCESS_DENIED", "MISSING_AUTHENTICATION_TOKEN"):
        apigw.delete_gateway_response(restApiId=api_id, responseType=kind)


def test_customised_gateway_responses_are_read_by_their_error_type(
    customised: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = audit(customised, monkeypatch)
    found = codes(result)
    # THEN a refused probe answered 200 is still a refusal: nobody got in, and the health call is healthy
    assert result.unauthorized_call_allowed is False and result.healthy
    assert "UNSIGNED_CALL_ALLOWED" not in found and "OUTSIDER_CALL_ALLOWED" not in found
    # and the finding names what the API customised
    assert "ACCESS_DENIED (200)" in found["GATEWAY_RESPONSES_CUSTOMISED"]
    assert "MISSING_AUTHENTICATION_TOKEN (404)" in found["GATEWAY_RESPONSES_CUSTOMISED"]


def test_a_customised_refusal_of_the_allowed_role_is_a_health_failure_not_a_success(
    customised: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the health call is signed as the outsider, whom the policy's Deny refuses (answered 200 here)
    result = audit(customised, monkeypatch, ASSUME_ROLE_ARN=customised.sample.outsider_role_arn)
    # THEN the health call failed, whatever status the customisation gave the refusal
    assert not result.healthy and "HEALTH_NOT_AUTHORIZED" in codes(result)


@pytest.fixture
def pending_weakening(harness: Harness) -> Iterator[Harness]:
    # GIVEN a weakening saved on the API by the console user, not deployed
    save_policy(harness.aws.client("apigateway"), harness.sample.api_id, harness.sample.weakened_policy())
    yield harness
    harness.restore()


def test_the_author_of_a_pending_change_is_named_after_thousands_of_unrelated_writes(
    pending_weakening: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN after it, 3,000 policy writes to other APIs of the region by a pipeline
    aws = pending_weakening.aws
    pipeline = {"type": "AssumedRole", "arn": f"arn:aws:sts::{aws.account}:assumed-role/pipeline/run"}
    for n in range(3000):
        record_call(aws.account, aws.region, "UpdateRestApi", f"other{n:05d}", pipeline)
    # WHEN the auditor runs
    found = codes(audit(pending_weakening, monkeypatch))
    # THEN the pending change is still attributed to the one who made it
    assert "UNDEPLOYED_POLICY_CHANGE" in found
    assert "assumed-role/console/alice (UpdateRestApi at" in found["CHANGED_BY"]


def test_a_change_an_aws_service_made_is_attributed_to_that_service(
    pending_weakening: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws = pending_weakening.aws
    service = {"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"}
    record_call(aws.account, aws.region, "UpdateRestApi", pending_weakening.sample.api_id, service)
    found = codes(audit(pending_weakening, monkeypatch))
    assert found["CHANGED_BY"].startswith("Changed by cloudformation.amazonaws.com (UpdateRestApi at")


@pytest.fixture
def xml_model(harness: Harness) -> Iterator[Harness]:
    # GIVEN the API has a model that is not application/json, so API Gateway will not export it
    apigw, api_id = harness.aws.client("apigateway"), harness.sample.api_id
    harness.restore()
    apigw.create_model(restApiId=api_id, name="Order", contentType="application/xml", schema="<order/>")
    with pytest.raises(apigw.exceptions.BadRequestException, match="JSON body models are not found"):
        apigw.get_export(restApiId=api_id, stageName=harness.sample.stage, exportType="oas30")
    yield harness
    apigw.delete_model(restApiId=api_id, modelName="Order")
    harness.restore()


def test_an_api_that_cannot_be_exported_is_judged_from_its_saved_policy_when_cloudtrail_rules_out_a_write(
    xml_model: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # WHEN the auditor runs and no policy was written since the deployment
    result = audit(xml_model, monkeypatch)
    found = codes(result)
    # THEN the verdict stands on the saved policy, says how it knows, and nothing is an audit error
    assert not result.audit_error and not result.drift and result.healthy
    assert (
        "cannot be exported" in found["LIVE_POLICY_INFERRED"]
        and "no policy write" in found["LIVE_POLICY_INFERRED"]
    )


def test_an_api_that_cannot_be_exported_with_a_write_since_its_deployment_says_exactly_what_is_known(
    xml_model: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a weakening saved after the deployment, not deployed
    time.sleep(1.1)  # CloudTrail keeps whole seconds: the write lands after the deployment's second
    save_policy(
        xml_model.aws.client("apigateway"), xml_model.sample.api_id, xml_model.sample.weakened_policy()
    )
    result = audit(xml_model, monkeypatch)
    found = codes(result)
    # THEN the live policy is unknown, the write and its author are named, and the saved weakening is what the
    # next deployment would serve; still no audit error
    assert not result.audit_error and result.undeployed_change
    assert "assumed-role/console/alice" in found["LIVE_POLICY_UNKNOWN"]
    assert "WEAKEN" in found["UNDEPLOYED_POLICY_CHANGE"]


def huge_number_policy(harness: Harness) -> str:
    """The expected policy and a statement, about no method, on a number of 5,000 digits (valid JSON, which
    API Gateway stores; Python's int() refuses it)."""
    doc = json.loads(harness.sample.expected_policy())
    doc["Statement"].append({"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke",
                             "Resource": f"{harness.sample.api.arn}/no-such-stage/*",
                             "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "NUMBER"}}})  # fmt: skip
    return json.dumps(doc).replace('"NUMBER"', "9" * 5000)


def test_a_deployed_policy_with_a_number_python_cannot_convert_is_unreadable_drift(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.save_and_deploy(huge_number_policy(harness))
    try:
        result = audit(harness, monkeypatch)
    finally:
        harness.restore()
    assert result.drift and not result.audit_error
    assert "4300 digits" in codes(result)["POLICY_UNREADABLE"]


def test_the_same_number_read_through_the_saved_policy_is_unreadable_drift_too(
    xml_model: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    xml_model.save_and_deploy(huge_number_policy(xml_model))
    result = audit(xml_model, monkeypatch)
    assert result.drift and not result.audit_error
    assert "LIVE_POLICY_INFERRED" in codes(result) and "4300 digits" in codes(result)["POLICY_UNREADABLE"]


@pytest.fixture
def export_of_saved(harness: Harness) -> Iterator[Harness]:
    # GIVEN an AWS whose export carries the saved policy, not the deployment's (the assumption broken)
    emulation.EXPORT_CARRIES = "saved"
    yield harness
    emulation.EXPORT_CARRIES = "deployment"
    harness.restore()


def test_a_probe_that_gets_in_where_the_verdict_says_refused_is_a_critical_contradiction(
    export_of_saved: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the weakening deployed, then the expected policy saved over it without deploying: the export shows
    # the expected policy, while the stage lets the outsider in
    harness = export_of_saved
    harness.save_and_deploy(harness.sample.weakened_policy())
    save_policy(harness.aws.client("apigateway"), harness.sample.api_id, harness.sample.expected_policy())
    result = audit(harness, monkeypatch)
    found = codes(result)
    # THEN the probe's evidence contradicts the verdict, critically, naming the caller and the method
    assert "OUTSIDER_CALL_ALLOWED" in found
    contradiction = next(f for f in result.findings if f.code == "VERDICT_CONTRADICTED")
    assert contradiction.severity.value == "critical" and "GET /health" in contradiction.message
    assert result.drift


def test_a_policy_write_after_the_deployment_while_the_export_equals_the_saved_policy_is_reported(
    export_of_saved: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a policy write (the weakening) after the stage's deployment, not deployed
    harness = export_of_saved
    harness.restore()
    time.sleep(1.1)
    save_policy(harness.aws.client("apigateway"), harness.sample.api_id, harness.sample.weakened_policy())
    config = load_config(harness.in_process(monkeypatch))
    ports = build_ports()
    # and a function that last looked at CloudTrail two minutes ago
    ports.memory.method_lookups[Scope(harness.aws.account, harness.aws.region)] = dt.datetime.now(
        dt.UTC
    ) - dt.timedelta(minutes=2)
    [result] = run_audit(config, ports, budget_s=30)
    # THEN saved equals exported although CloudTrail shows a write since the deployment: said, with the write
    assert "assumed-role/console/alice" in codes(result)["EXPORT_DISAGREES"] and result.audit_error


def test_an_api_that_cannot_be_exported_with_cloudtrail_off_says_so_rather_than_guessing(
    xml_model: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = audit(xml_model, monkeypatch, CLOUDTRAIL_LOOKUP="false")
    assert "CloudTrail lookups are off" in codes(result)["LIVE_POLICY_UNKNOWN"] and not result.audit_error


def test_an_inference_is_asked_again_until_cloudtrail_has_had_time_to_deliver(
    xml_model: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    config = load_config(xml_model.in_process(monkeypatch))
    ports = build_ports()
    asked: list[str] = []

    class Counting:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def latest_change(self, *args: Any) -> Any:
            asked.append(args[0])
            return self._inner.latest_change(*args)

        def changes_since(self, *args: Any) -> Any:
            return self._inner.changes_since(*args)

    original = ports.history
    assert original is not None
    counted = dataclasses.replace(ports, history=lambda scope: Counting(original(scope)))
    # WHEN the auditor runs twice within CloudTrail's delivery delay, then twice after it
    for _ in range(2):
        run_audit(config, counted, budget_s=30)
    within = len(asked)
    for key in counted.memory.pending_seen:
        counted.memory.pending_seen[key] -= 16 * 60
    for _ in range(2):
        run_audit(config, counted, budget_s=30)
    # THEN it asked CloudTrail every run at first, and once more after the delay, then kept the answer
    assert within == 2 and len(asked) == 3
