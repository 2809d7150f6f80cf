"""Live calls to the API: the signed health call and the negative probes, and what their answers mean.

An answer is classified by what an API's own customisation cannot change: the ``x-amzn-ErrorType`` header
that names API Gateway's error (cut at the first ':', as the SDKs' protocol tests show it may carry a
``:http://...`` suffix), then the status. A gateway response's body and status can be customised (developer
guide, "Gateway response types"), and a ``HEAD`` answer has no body, so the message text only refines what
the error type already says: ``... with an explicit deny`` tells the resource policy's Deny from another
refusal when API Gateway's default message is there to read. ``MissingAuthenticationTokenException`` also
means "no such path or stage", so it never proves a signature was required on its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Container, Mapping
from dataclasses import dataclass

import requests
from botocore.credentials import ReadOnlyCredentials

from access_auditor.errors import RequestError
from access_auditor.findings import Finding, finding
from access_auditor.signing import normalize_url, sign_request
from access_auditor.transport import Reply, send

MAX_BODY_BYTES = 16 * 1024  # API Gateway's error messages fit many times over
ACCESS_DENIED = "AccessDeniedException"
MISSING_TOKEN = "MissingAuthenticationTokenException"
# A private API called from outside any execute-api VPC endpoint, or a regional one through an endpoint.
FORBIDDEN = "ForbiddenException"
PRIVATE_HINT = ("; a private API answers only through an execute-api VPC endpoint: run the function in a VPC "
                "that has one (the template's VpcSubnetIds and VpcSecurityGroupIds) with private DNS, or set "
                "PRIVATE_ADDRESSING to alias or endpoint with EXECUTE_API_ENDPOINT")  # fmt: skip
BAD_CREDENTIALS = frozenset({"UnrecognizedClientException", "ExpiredTokenException"})
BAD_SIGNATURE = frozenset({"InvalidSignatureException", "IncompleteSignatureException"})
# The errors by which API Gateway refuses a caller before the integration runs: an answer naming one of these
# is a refusal whatever status and body a customised gateway response gave it.
REFUSALS = frozenset({ACCESS_DENIED, MISSING_TOKEN}) | BAD_CREDENTIALS | BAD_SIGNATURE
# The status each of those answers with unless the API customised it ("Gateway response types").
DEFAULT_STATUS = dict.fromkeys(REFUSALS, 403)


def error_type(header: str | None) -> str | None:
    """The error an ``x-amzn-ErrorType`` header names: ``AccessDeniedException:http://internal...`` is
    ``AccessDeniedException``."""
    name = (header or "").split(":", 1)[0].strip()
    return name or None


@dataclass(frozen=True)
class CallResult:
    status: int | None
    latency_ms: float
    request_id: str | None = None
    error_type: str | None = None
    message: str = ""
    failure: str | None = None  # timeout, dns, tls, connection, url: the call got no HTTP answer
    head: bool = False  # a HEAD answer, which has no body to read

    @property
    def refused(self) -> bool:
        """API Gateway refused the caller (by the error type; by the status only when no type was sent)."""
        return self.error_type in REFUSALS or (self.error_type is None and self.status in (401, 403))

    @property
    def got_in(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and not self.refused

    @property
    def denied(self) -> bool:
        """Refused by authorization: the resource policy, or IAM (explicit or implicit, customised or not)."""
        return self.error_type == ACCESS_DENIED or (self.error_type is None and self.status == 403
                                                     and "not authorized to perform" in self.message)  # fmt: skip

    @property
    def explicit_deny(self) -> bool:
        return self.denied and "explicit deny" in self.message

    @property
    def implicit_deny(self) -> bool:
        """Refused without an explicit deny, as API Gateway's default message says (None: it cannot be told,
        because the answer has no default message to read)."""
        return self.denied and "not authorized to perform" in self.message and not self.explicit_deny

    @property
    def missing_token(self) -> bool:
        return self.error_type == MISSING_TOKEN or (
            self.error_type is None and self.status == 403 and "Missing Authentication Token" in self.message
        )

    @property
    def customised(self) -> bool:
        """A refusal whose status, or (for a method with a body) message, is not API Gateway's default: the API
        customised its gateway responses."""
        if self.error_type not in REFUSALS:
            return False
        return self.status != DEFAULT_STATUS[self.error_type] or (not self.head and not self.message)


def make_call(
    session: requests.Session,
    method: str,
    url: str,
    *,
    region: str,
    credentials: ReadOnlyCredentials | None,
    timeout: tuple[float, float],
    budget_s: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> CallResult:
    """One call, signed when ``credentials`` are given, within ``budget_s`` seconds in all. Only the start of
    the body is read (API Gateway's messages are short). Never raises for network trouble: that is a
    result."""
    started = time.monotonic()
    try:
        if credentials:
            signed = sign_request(method, url, credentials=credentials, region=region, headers=headers)
            method, url, sent = signed.method, signed.url, signed.headers
        else:
            url, sent = normalize_url(url), dict(headers or {})
        response = send(session, method, url, headers=sent, timeout=timeout, budget_s=budget_s,
                        max_body=MAX_BODY_BYTES)  # fmt: skip
    except RequestError as exc:
        return CallResult(None, (time.monotonic() - started) * 1000, failure=exc.kind, message=str(exc))
    return CallResult(
        status=response.status_code,
        latency_ms=round((time.monotonic() - started) * 1000, 1),
        request_id=response.headers.get("x-amzn-RequestId"),
        error_type=error_type(response.headers.get("x-amzn-ErrorType")),
        message=_message(response),
        head=method.upper() == "HEAD",
    )


def health_finding(
    result: CallResult, expected: Container[int], url: str, private: bool = False, http: bool = False
) -> Finding | None:
    """None when the health call succeeded, else a finding that says why it failed (for a ``private`` API,
    with what it takes to reach one; for an ``http`` API, which has no resource policy, what refuses it)."""
    if result.status in expected and not result.refused:
        return None
    where = f"the signed health call to {url}"
    hint = PRIVATE_HINT if private else ""
    if http and result.status in (401, 403):
        return finding("HEALTH_NOT_AUTHORIZED", f"{where} was refused ({result.status}: {result.message or 'no message'}): "
                       "an HTTP API has no resource policy, so the allowed role's own IAM policy no longer grants "
                       "execute-api:Invoke on this route, or the route's authorization type or authorizer changed")  # fmt: skip
    if result.failure:
        kinds = {"timeout": "HEALTH_TIMEOUT", "dns": "HEALTH_DNS_FAILURE", "tls": "HEALTH_TLS_FAILURE"}
        return finding(
            kinds.get(result.failure, "HEALTH_UNREACHABLE"),
            f"{where} failed: {result.message}{hint}",
        )
    if result.error_type == FORBIDDEN:
        return finding("HEALTH_NOT_THROUGH_ENDPOINT", f"{where} was refused 403 {FORBIDDEN}: the API is private and the call "
                       "did not come through an execute-api VPC endpoint, or it is not private and the call came through "
                       f"one, or the endpoint's alias names an API not associated with it{PRIVATE_HINT}")  # fmt: skip
    if result.explicit_deny:
        return finding("HEALTH_EXPLICIT_DENY", f"{where} was refused by an explicit Deny: the resource policy no longer exempts the allowed "
                       "role, or the method is no longer AWS_IAM so the call arrives anonymous and the Deny matches "
                       f"it ({result.message})")  # fmt: skip
    if result.missing_token:
        return finding("HEALTH_MISSING_TOKEN", f"{where} got 403 Missing Authentication Token although it was signed: the path, method or "
                       "stage does not exist (check HEALTH_PATH, HEALTH_METHOD and API_STAGE)")  # fmt: skip
    if result.implicit_deny:
        return finding("HEALTH_NOT_AUTHORIZED", f"{where} was refused without an explicit deny: the allowed role's own IAM policy no longer "
                       "grants execute-api:Invoke, or the method is no longer AWS_IAM, so the Deny-only policy "
                       f"allows nobody ({result.message})")  # fmt: skip
    if result.denied:
        return finding("HEALTH_NOT_AUTHORIZED", f"{where} was refused ({ACCESS_DENIED}, status {result.status}); the answer "
                       "does not carry API Gateway's default message, so whether the resource policy's Deny or IAM refused "
                       "it cannot be told")  # fmt: skip
    if result.error_type in BAD_CREDENTIALS:
        return finding(
            "HEALTH_CREDENTIALS_REJECTED", f"{where} was refused ({result.error_type}): {result.message}"
        )
    if result.error_type in BAD_SIGNATURE:
        first_line = result.message.splitlines()[0] if result.message else ""
        return finding(
            "HEALTH_SIGNATURE_REJECTED", f"{where} was refused ({result.error_type}): {first_line}"
        )
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
    if result.got_in:
        code = "UNSIGNED_CALL_ALLOWED" if who == "unsigned" else "OUTSIDER_CALL_ALLOWED"
        return True, finding(code, f"{label} to {url} was answered {result.status}: someone other than the allowed role "
                             "can invoke the live API. Restore the expected policy and deploy the stage now.")  # fmt: skip
    if result.refused and result.status is not None and 200 <= result.status < 300:
        # A 2xx that names a refusal: a gateway response customised to 2xx, or an integration that sets
        # x-amzn-ErrorType itself. Either way the probe proves nothing; the verdict on the policy decides.
        return False, finding("PROBE_INCONCLUSIVE", f"{label} to {url} was answered {result.status} naming a refusal "
                              f"({result.error_type}): a gateway response customised to {result.status}, or an integration "
                              "setting the header itself; the probe proves nothing either way", subject=who)  # fmt: skip
    if who == "unsigned" and (result.missing_token or result.denied):
        return False, None
    if who == "outsider" and result.denied and not result.implicit_deny:
        return False, None  # the Deny refused it (or a customised answer hides which refusal: still refused)
    if who == "outsider" and result.implicit_deny:
        return False, finding("OUTSIDER_DENIED_IMPLICITLY", f"{label} was refused, but not by the resource policy's Deny; grant the outsider role "
                              "execute-api:Invoke so that the probe tests the policy itself")  # fmt: skip
    reason = result.message if result.failure else f"{result.status}: {result.message or 'no message'}"
    return False, finding("PROBE_INCONCLUSIVE", f"{label} to {url} proved nothing ({reason})", subject=who)


def _message(response: Reply) -> str:
    text = response.text[:2000]
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(body, dict):
        return str(body.get("message") or body.get("Message") or "")
    return ""
