"""What a live answer means: API Gateway's 403s differ only by their message."""

from __future__ import annotations

from access_auditor.probes import CallResult, health_finding, probe_finding

OK = frozenset(range(200, 300))
URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/health"
DENY = "User: arn:aws:sts::1:assumed-role/x/y is not authorized to perform: execute-api:Invoke on resource: arn with an explicit deny"


def code(result: CallResult) -> str | None:
    finding = health_finding(result, OK, URL)
    return finding.code if finding else None


def test_health_call_reasons() -> None:
    assert code(CallResult(200, 5)) is None
    assert code(CallResult(403, 5, message=DENY)) == "HEALTH_EXPLICIT_DENY"
    assert code(CallResult(403, 5, message="Missing Authentication Token")) == "HEALTH_MISSING_TOKEN"
    assert (
        code(CallResult(403, 5, message=DENY.replace(" with an explicit deny", "")))
        == "HEALTH_NOT_AUTHORIZED"
    )
    assert (
        code(CallResult(403, 5, error_type="ExpiredTokenException", message="expired"))
        == "HEALTH_CREDENTIALS_REJECTED"
    )
    assert code(CallResult(502, 5, message="Internal server error")) == "HEALTH_SERVER_ERROR"
    assert code(CallResult(429, 5)) == "HEALTH_THROTTLED"
    assert code(CallResult(None, 5, failure="timeout", message="timed out")) == "HEALTH_TIMEOUT"
    assert code(CallResult(None, 5, failure="dns", message="nodename")) == "HEALTH_DNS_FAILURE"
    assert code(CallResult(None, 5, failure="tls", message="cert")) == "HEALTH_TLS_FAILURE"


def test_probes_check_the_message_not_only_the_status() -> None:
    # An unsigned call refused for a missing token proves IAM auth is enforced.
    assert probe_finding(CallResult(403, 1, message="Missing Authentication Token"), "unsigned", URL) == (
        False,
        None,
    )
    # An outsider refused by the explicit deny proves the policy works.
    assert probe_finding(CallResult(403, 1, message=DENY), "outsider", URL) == (False, None)
    # An outsider refused only implicitly proves nothing about the policy.
    got_in, finding = probe_finding(CallResult(403, 1, message=DENY[:-22]), "outsider", URL)
    assert not got_in and finding is not None and finding.code == "OUTSIDER_DENIED_IMPLICITLY"
    # A 5xx says nothing either way.
    got_in, finding = probe_finding(CallResult(500, 1, message="boom"), "unsigned", URL)
    assert not got_in and finding is not None and finding.code == "PROBE_INCONCLUSIVE"
    # Any 2xx is critical.
    got_in, finding = probe_finding(CallResult(200, 1), "outsider", URL)
    assert got_in and finding is not None and finding.severity.value == "critical"
