"""The handler, imported as Lambda imports it (template.yaml's CodeUri and Handler) and run in its own
process against the local AWS: moto's control plane and a gateway that verifies every signature."""

from __future__ import annotations

import json
import time

import pytest

from access_auditor.local_aws.alarms import Datapoint
from access_auditor.local_aws.invoke import Invocation, invoke_auditor
from tests.harness import Harness

SERVICE_DIMS = (("service", "apigw-access-auditor"),)


def metric(run: Invocation, name: str) -> list[float]:
    return [v for p in run.points if p.metric == name and p.dimensions == SERVICE_DIMS for v in p.values]


def test_expected_policy_in_api_gateways_escaped_form_is_healthy_without_drift(harness: Harness) -> None:
    # GIVEN the expected policy, which the local AWS stores escaped exactly as API Gateway does
    stored = harness.aws.client("apigateway").get_rest_api(restApiId=harness.sample.api_id)["policy"]
    assert '\\"Effect\\"' in stored and "\\/" in stored
    # WHEN the auditor runs
    run = invoke_auditor(harness.function_env())
    # THEN it is healthy, without drift, and both negative probes were refused
    assert run.error is None and run.result is not None
    assert run.result["ok"] is True
    target = run.result["targets"][0]
    assert (
        target["statusCode"] == 200
        and target["drift"] is False
        and target["unauthorizedCallAllowed"] is False
    )
    assert metric(run, "PolicyDrift") == [0] and metric(run, "HealthCheckFailed") == [0]
    assert metric(run, "AuditHeartbeat") == [1] and metric(run, "UnauthorizedCallAllowed") == [0]
    assert metric(run, "HealthCheckLatency")[0] > 0


def test_weakened_policy_is_drift_and_the_outsider_probe_gets_in(harness: Harness) -> None:
    harness.save_and_deploy(harness.sample.weakened_policy())
    try:
        run = invoke_auditor(harness.function_env())
    finally:
        harness.restore()
    assert run.result is not None and run.result["ok"] is False
    codes = {f["code"] for f in run.result["targets"][0]["findings"]}
    assert {"ACCESS_WEAKENED", "OUTSIDER_CALL_ALLOWED"} <= codes
    assert metric(run, "PolicyDrift") == [1] and metric(run, "UnauthorizedCallAllowed") == [1]


def test_unreachable_endpoint_fails_the_health_check_within_the_deadline(harness: Harness) -> None:
    # GIVEN an endpoint where nothing listens (a loopback port just closed)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/x/prod"
    started = time.monotonic()
    run = invoke_auditor(harness.function_env(API_ENDPOINT=dead, HTTP_CONNECT_TIMEOUT="1"), timeout_ms=20000)
    # THEN a result, not an exception: HealthCheckFailed 1, a finding naming the connection failure
    assert run.error is None and run.result is not None
    target = run.result["targets"][0]
    assert target["healthy"] is False
    assert any(f["code"] == "HEALTH_UNREACHABLE" for f in target["findings"])
    assert metric(run, "HealthCheckFailed") == [1] and metric(run, "AuditHeartbeat") == [1]
    assert time.monotonic() - started < 20


def test_one_bad_target_loses_nothing_of_the_others(harness: Harness) -> None:
    good = {"API_ID": harness.sample.api_id}
    missing = {"API_ID": "nosuchapi1", "API_ENDPOINT": harness.aws.invoke_url("nosuchapi1", "prod")}
    run = invoke_auditor(harness.function_env(AUDIT_TARGETS=json.dumps([missing, good])))
    assert run.result is not None
    first, second = run.result["targets"]
    assert first["apiId"] == "nosuchapi1" and first["auditError"] is True
    assert any("NotFound" in f["message"] for f in first["findings"])
    assert second["apiId"] == harness.sample.api_id and second["healthy"] is True and second["drift"] is False
    assert metric(run, "AuditError") == [1, 0]


@pytest.mark.parametrize(
    ("name", "value"),
    [("HEALTH_METHOD", "FETCH"), ("EXPECTED_STATUS", "²"), ("API_ENDPOINT", "https://[::1"),
     ("HTTP_READ_TIMEOUT", "nan"), ("HTTP_CONNECT_TIMEOUT", "inf")],
)  # fmt: skip
def test_bad_configuration_is_an_error_naming_the_variable_not_a_traceback(
    harness: Harness, name: str, value: str
) -> None:
    run = invoke_auditor(harness.function_env(**{name: value}))
    assert run.error is None and run.result is not None
    assert run.result["ok"] is False and name in run.result["error"]
    assert "Traceback" not in run.stdout
    assert metric(run, "AuditError") == [1] and metric(run, "AuditHeartbeat") == [1]


def test_no_secret_reaches_logs_or_metrics(harness: Harness) -> None:
    env = harness.function_env()
    run = invoke_auditor(env)
    assert run.result is not None and run.result["ok"]
    for secret in (env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"], env["AWS_ACCESS_KEY_ID"]):
        assert secret not in run.stdout
    assert "Signature=" not in run.stdout
    # one structured record per target, carrying the verdict
    records = [r for r in run.logs if r.get("message") == "target audited"]
    assert len(records) == 1 and records[0]["audit"]["apiId"] == harness.sample.api_id
    assert records[0]["correlation_id"] == "3f1b8a2e-6c4d-4e7f-9a10-2b3c4d5e6f70"


def test_metrics_are_emitted_under_the_service_dimension_only(harness: Harness) -> None:
    run = invoke_auditor(harness.function_env())
    emitted = {
        p.dimensions for p in run.points if isinstance(p, Datapoint) and p.namespace == "ApiAccessAuditor"
    }
    assert emitted == {SERVICE_DIMS}
