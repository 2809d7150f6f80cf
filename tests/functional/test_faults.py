"""The fault matrix: a faulty target beside a healthy one, the handler run as Lambda runs it. Each fault
must produce its own finding within the deadline, leave the healthy target intact, keep every alarmed
metric present (or AuditError 1), print no traceback, leak no credential, and stay within memory."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from access_auditor.local_aws.faults import FaultyUpstream
from access_auditor.local_aws.invoke import Invocation, invoke_auditor
from tests.functional.test_handler import metric
from tests.harness import Harness

TIMEOUT_MS = 20_000  # the function's timeout for these runs; the audit must end before it


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultyUpstream]:
    with FaultyUpstream() as server:
        yield server


def run_beside_a_healthy_target(
    harness: Harness, upstream: FaultyUpstream, fault: str, **env: str
) -> Invocation:
    faulty = {"API_ID": harness.sample.api_id, "API_ENDPOINT": upstream.url(fault)}
    healthy = {"API_ID": harness.sample.api_id}
    return invoke_auditor(
        harness.function_env(AUDIT_TARGETS=json.dumps([faulty, healthy]), HTTP_CONNECT_TIMEOUT="2",
                             HTTP_READ_TIMEOUT="4", **env),
        timeout_ms=TIMEOUT_MS,
    )  # fmt: skip


def assert_contained(run: Invocation, env: dict[str, str]) -> dict[str, object]:
    """The common half of every fault: the healthy target intact, metrics complete, no traceback, no secret,
    the run within its deadline. Returns the faulty target's summary."""
    assert run.error is None and run.result is not None, run.error
    faulty, healthy = run.result["targets"]
    assert healthy["healthy"] is True and healthy["drift"] is False and healthy["auditError"] is False
    assert healthy["unauthorizedCallAllowed"] is False
    for name in ("HealthCheckFailed", "PolicyDrift", "AuditError", "UndeployedPolicyChange"):
        assert len(metric(run, name)) == 2, name
    if len(metric(run, "UnauthorizedCallAllowed")) < 2:
        assert faulty["auditError"] is True  # a check that could not run says so
    assert metric(run, "AuditHeartbeat") == [1]
    assert "Traceback" not in run.stdout
    for secret in (env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"], env["AWS_ACCESS_KEY_ID"]):
        assert secret not in run.stdout
    assert "Signature=" not in run.stdout or "Signature=<redacted>" in run.stdout
    assert run.duration_ms < TIMEOUT_MS - 1000
    return faulty


FAULTS = {
    "trickle-body": "HEALTH_TIMEOUT",
    "trickle-headers": "HEALTH_TIMEOUT",
    "hang": "HEALTH_TIMEOUT",
    "huge": "HEALTH_SERVER_ERROR",
    "echo": "HEALTH_SERVER_ERROR",
    "retry-after": "HEALTH_SERVER_ERROR",
}


@pytest.mark.parametrize(("fault", "code"), FAULTS.items(), ids=FAULTS.keys())
def test_a_faulty_endpoint_is_one_finding_and_loses_nothing_else(
    harness: Harness, upstream: FaultyUpstream, fault: str, code: str
) -> None:
    run = run_beside_a_healthy_target(harness, upstream, fault)
    faulty = assert_contained(run, harness.function_env())
    codes = {f["code"] for f in faulty["findings"]}  # type: ignore[attr-defined]
    assert code in codes, faulty
    # the verdict on the policy still stands beside the failed call
    assert faulty["drift"] is False


def test_a_200_mb_error_body_is_not_read(harness: Harness, upstream: FaultyUpstream) -> None:
    run = run_beside_a_healthy_target(harness, upstream, "huge")
    assert_contained(run, harness.function_env())
    assert run.max_rss_mb < 150, run.max_rss_mb


def test_a_trickling_target_does_not_starve_the_next_one(harness: Harness, upstream: FaultyUpstream) -> None:
    # GIVEN one worker, and the trickling target first in line
    run = run_beside_a_healthy_target(harness, upstream, "trickle-body", MAX_CONCURRENCY="1")
    faulty = assert_contained(run, harness.function_env())
    assert any(f["code"] == "HEALTH_TIMEOUT" for f in faulty["findings"])  # type: ignore[attr-defined]


def test_root_debug_logging_leaks_nothing(harness: Harness, upstream: FaultyUpstream) -> None:
    # GIVEN Lambda's root logger at DEBUG, and a backend that echoes the request
    env = harness.function_env(OUTSIDER_ROLE_ARN=harness.sample.outsider_role_arn)
    run = run_beside_a_healthy_target(harness, upstream, "echo", AWS_LAMBDA_LOG_LEVEL="DEBUG")
    assert_contained(run, env)
    # THEN no credential of the function's, nor of the outsider it assumed, appears anywhere
    assert "SecretAccessKey" not in run.stdout and "ASIA" not in run.stdout
