"""Every credential shape that reaches outbound text is redacted, whatever text carries it."""

from __future__ import annotations

import pytest

from access_auditor.findings import Finding, Severity
from access_auditor.redact import redact

KEY_ID = "ASIAQWERTYUIOPASDFGHJ"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzEBYaDmxwfwppl1s0PL" + "Ab9+/x" * 60
SIGNATURE = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"

CARRIERS = {
    # API Gateway's InvalidSignatureException quotes the canonical request it expected, token included
    "InvalidSignatureException": (
        "The request signature we calculated does not match the signature you provided. The Canonical String "
        f"for this request should have been\n'GET\n/prod/health\n\nhost:x\nx-amz-date:20261125T000000Z\n"
        f"x-amz-security-token:{TOKEN}\n\nhost;x-amz-date;x-amz-security-token\ne3b0'"
    ),
    "a backend echoing the request": (
        f'{{"headers": {{"Authorization": "AWS4-HMAC-SHA256 Credential={KEY_ID}/20261125/us-east-1/execute-api/'
        f'aws4_request, SignedHeaders=host, Signature={SIGNATURE}", "X-Amz-Security-Token": "{TOKEN}"}}}}'
    ),
    "botocore's DEBUG log of an STS answer": (
        f"<Credentials><AccessKeyId>{KEY_ID}</AccessKeyId><SecretAccessKey>{SECRET}</SecretAccessKey>"
        f"<SessionToken>{TOKEN}</SessionToken></Credentials>"
    ),
    "a presigned URL": f"https://h/p?X-Amz-Credential={KEY_ID}%2F20261125&X-Amz-Signature={SIGNATURE}&X-Amz-Security-Token={TOKEN}",
    "a JSON credentials file": f'{{"aws_secret_access_key": "{SECRET}", "aws_session_token": "{TOKEN}"}}',
}


@pytest.mark.parametrize("text", CARRIERS.values(), ids=CARRIERS.keys())
def test_no_credential_survives_redaction(text: str) -> None:
    cleaned = redact(text)
    for secret in (KEY_ID, SECRET, TOKEN, SIGNATURE, TOKEN[:40]):
        assert secret not in cleaned
    assert "<redacted>" in cleaned


def test_findings_are_redacted_however_they_are_built() -> None:
    finding = Finding("HEALTH_SERVER_ERROR", Severity.HIGH, CARRIERS["a backend echoing the request"])
    assert TOKEN not in finding.message and KEY_ID not in finding.message


def test_what_is_not_a_credential_is_left_alone() -> None:
    text = "GET /prod/items?q=a%20b host;x-amz-date e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert redact(text) == text


MORE_CARRIERS = {
    "a secret_key= pair (a .env file, a boto config)": f"aws_access_key_id=x\nsecret_key={SECRET}\n",
    "a session token URL-encoded in a query string, unnamed": "next="
    + TOKEN.replace("/", "%2F").replace("+", "%2B"),
    "a JSON signature field": f'{{"signature": "{SIGNATURE}", "credential": "{KEY_ID}/20261125"}}',
    "a form signature field": f"Signature = {SIGNATURE}",
}


@pytest.mark.parametrize("text", MORE_CARRIERS.values(), ids=MORE_CARRIERS.keys())
def test_no_credential_survives_redaction_in_its_other_shapes(text: str) -> None:
    cleaned = redact(text)
    for secret in (KEY_ID, SECRET, SIGNATURE, TOKEN[:40], TOKEN.replace("/", "%2F")[:40]):
        assert secret not in cleaned
    assert "<redacted>" in cleaned


def test_a_traceback_is_redacted_where_the_record_is_handled() -> None:
    import io
    import logging

    from access_auditor.handler import redact_logging

    stream = io.StringIO()
    log = logging.getLogger("test.redaction")
    handler = logging.StreamHandler(stream)
    log.addHandler(handler)
    log.propagate = False
    try:
        redact_logging(log)
        try:
            raise RuntimeError(f"STS said SessionToken={TOKEN}")
        except RuntimeError:
            log.exception("call failed with key %s", KEY_ID)
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "Traceback" in text and "RuntimeError" in text
    assert TOKEN[:40] not in text and KEY_ID not in text


def test_the_lambda_s_json_log_line_is_redacted_whole() -> None:
    import logging
    import sys

    from access_auditor.handler import RedactingFormatter

    try:
        raise ValueError(f"x-amz-security-token: {TOKEN}")
    except ValueError:
        record = logging.LogRecord("service", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    record.detail = f"secret_key={SECRET}"  # an extra field, as Powertools' extra= sets it
    line = RedactingFormatter().format(record)
    assert "failed" in line and "ValueError" in line and TOKEN[:40] not in line and SECRET not in line
