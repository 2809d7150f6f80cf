"""Live calls to the API: the signed health call and the negative probes, and what their answers mean.

API Gateway answers 403 for very different reasons, so the verdict reads the message, not only the status
(API Gateway developer guide, "Gateway responses"): ``Missing Authentication Token`` also means "no such
path or stage", and only ``... with an explicit deny`` proves that the resource policy refused a caller.
"""

from __future__ import annotations

import json
import time
from collections.abc import Container
from dataclasses import dataclass

import requests
from botocore.credentials import ReadOnlyCredentials

from access_auditor.errors import RequestError
from access_auditor.findings import Finding, finding
from access_auditor.signing import normalize_url, sign_request
from access_auditor.transport import Reply, send

MAX_BODY_BYTES = 16 * 1024  # API Gateway's error messages fit many times over


@dataclass(frozen=True)
class CallResult:
    status: int | None
    latency_ms: float
    request_id: str | None = None
    error_type: str | None = None
    message: str = ""
    failure: str | None = None  # timeout, dns, tls, connection, url: the call got no HTTP answer

    @property
    def explicit_deny(self) -> bool:
        return self.status == 403 and "explicit deny" in self.message

    @property
    def missing_token(self) -> bool:
        return self.status == 403 and "Missing Authentication Token" in self.message


def make_call(
    session: requests.Session,
    method: str,
    url: str,
    *,
    region: str,
    credentials: ReadOnlyCredentials | None,
    timeout: tuple[float, float],
    budget_s: float | None = None,
) -> CallResult:
    """One call, signed when ``credentials`` are given, within ``budget_s`` seconds in all. Only the start of
    the body is read (API Gateway's messages are short). Never raises for network trouble: that is a
    result."""
    started = time.monotonic()
    try:
        if credentials:
            signed = sign_request(method, url, credentials=credentials, region=region)
            method, url, headers = signed.method, signed.url, signed.headers
        else:
            url, headers = normalize_url(url), {}
        response = send(session, method, url, headers=headers, timeout=timeout, budget_s=budget_s,
                        max_body=MAX_BODY_BYTES)  # fmt: skip
    except RequestError as exc:
        return CallResult(None, (time.monotonic() - started) * 1000, failure=exc.kind, message=str(exc))
    return CallResult(
        status=response.status_code,
        latency_ms=round((time.monotonic() - started) * 1000, 1),
        request_id=response.headers.get("x-amzn-RequestId"),
        error_type=response.headers.get("x-amzn-ErrorType"),
        message=_message(response),
    )


def health_finding(result: CallResult, expected: Container[int], url: str) -> Finding | None:
    """None when the health call succeeded, else a finding that says why it failed."""
    if result.status in expected:
        return None
    where = f"the signed health call to {url}"
    if result.failure:
        kinds = {"timeout": "HEALTH_TIMEOUT", "dns": "HEALTH_DNS_FAILURE", "tls": "HEALTH_TLS_FAILURE"}
        return finding(
            kinds.get(result.failure, "HEALTH_UNREACHABLE"),
            f"{where} failed: {result.message}",
        )
    if result.explicit_deny:
        return finding("HEALTH_EXPLICIT_DENY", f"{where} was refused by an explicit Deny: the resource policy no longer exempts the allowed "
                       "role, or the method is no longer AWS_IAM so the call arrives anonymous and the Deny matches "
                       f"it ({result.message})")  # fmt: skip
    if result.missing_token:
        return finding("HEALTH_MISSING_TOKEN", f"{where} got 403 Missing Authentication Token although it was signed: the path, method or "
                       "stage does not exist (check HEALTH_PATH, HEALTH_METHOD and API_STAGE)")  # fmt: skip
    if result.status == 403 and "not authorized to perform" in result.message:
        return finding("HEALTH_NOT_AUTHORIZED", f"{where} was refused without an explicit deny: the allowed role's own IAM policy no longer "
                       "grants execute-api:Invoke, or the method is no longer AWS_IAM, so the Deny-only policy "
                       f"allows nobody ({result.message})")  # fmt: skip
    if result.status == 403 and result.error_type in {"UnrecognizedClientException", "ExpiredTokenException"}:
        return finding("HEALTH_CREDENTIALS_REJECTED", f"{where} was refused: {result.message}")
    if result.status == 403 and result.error_type in {
        "InvalidSignatureException",
        "IncompleteSignatureException",
    }:
        first_line = result.message.splitlines()[0] if result.message else ""
        return finding("HEALTH_SIGNATURE_REJECTED", f"{where} was refused: {first_line}")
    if result.status == 429:
        return finding("HEALTH_THROTTLED", f"{where} was throttled (429) after retries")
    if result.status is not None and result.status >= 500:
        return finding(
            "HEALTH_SERVER_ERROR",
            f"{where} returned {result.status}: {result.message or 'no message'}",
        )
    return finding("HEALTH_UNEXPECTED_STATUS", f"{where} returned {result.status}, outside the expected statuses: {result.message or 'no message'}")  # fmt: skip


def probe_finding(result: CallResult, who: str, url: str) -> tuple[bool, Finding | None]:
    """(got_in, finding) for a negative probe made as ``who`` ("unsigned" or "outsider")."""
    label = "an unsigned call" if who == "unsigned" else "a call signed as the outsider role"
    if result.status is not None and 200 <= result.status < 300:
        code = "UNSIGNED_CALL_ALLOWED" if who == "unsigned" else "OUTSIDER_CALL_ALLOWED"
        return True, finding(code, f"{label} to {url} was answered {result.status}: someone other than the allowed role "
                             "can invoke the live API. Restore the expected policy and deploy the stage now.")  # fmt: skip
    refused_as_expected = result.missing_token if who == "unsigned" else result.explicit_deny
    if refused_as_expected or (who == "unsigned" and result.explicit_deny):
        return False, None
    if who == "outsider" and result.status == 403 and "not authorized to perform" in result.message:
        return False, finding("OUTSIDER_DENIED_IMPLICITLY", f"{label} was refused, but not by the resource policy's Deny; grant the outsider role "
                              "execute-api:Invoke so that the probe tests the policy itself")  # fmt: skip
    reason = result.message if result.failure else f"{result.status}: {result.message or 'no message'}"
    return False, finding("PROBE_INCONCLUSIVE", f"{label} to {url} proved nothing ({reason})")


def _message(response: Reply) -> str:
    text = response.text[:2000]
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(body, dict):
        return str(body.get("message") or body.get("Message") or "")
    return ""
