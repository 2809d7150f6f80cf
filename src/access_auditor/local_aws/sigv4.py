"""Server-side SigV4 verification, written from the published algorithm rather than with botocore, so that
the product's signer (botocore) is checked by something independent. Validated against AWS's test vectors
(tests/unit/test_sigv4_verifier.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
    r"Signature=(?P<sig>[0-9a-f]{64})\s*$"
)


@dataclass(frozen=True)
class Secret:
    """What the verifier needs to know about an access key."""

    secret_key: str
    session_token: str | None
    expired: bool = False


class SignatureRejected(Exception):  # noqa: N818 - a rejection, named as API Gateway names it
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class SignedParts:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> SignedParts:
    match = _AUTH.match(value.strip())
    if not match:
        raise SignatureRejected(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.",
        )
    scope = match["cred"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise SignatureRejected(
            "IncompleteSignatureException",
            "Credential is not of the form KEY/DATE/REGION/SERVICE/aws4_request.",
        )
    return SignedParts(
        scope[0], scope[1], scope[2], scope[3], tuple(match["signed"].split(";")), match["sig"]
    )


def canonical_request(
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    signed_headers: Sequence[str],
    *,
    normalize: bool = True,
) -> str:
    """The canonical request for a request as received: ``target`` is the request-target (path and query)."""
    path, _, query = target.partition("?")
    if normalize:
        path = _remove_dot_segments(path)
    # Non-S3 services encode the path as received once more (so '%' becomes '%25'): SigV4 "canonical URI".
    canonical_uri = quote(path, safe="/~") or "/"
    pairs = []
    for item in query.split("&") if query else []:
        key, _, value = item.partition("=")
        pairs.append((_encode(key), _encode(value)))
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    by_name: dict[str, list[str]] = {}
    for name, value in headers:
        by_name.setdefault(name.lower(), []).append(" ".join(value.split()))
    canonical_headers = "".join(f"{name}:{','.join(by_name.get(name, []))}\n" for name in signed_headers)
    return "\n".join(
        [
            method,
            canonical_uri,
            canonical_query,
            canonical_headers,
            ";".join(signed_headers),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])


def signature(secret_key: str, date: str, region: str, service: str, to_sign: str) -> str:
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def verify(
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    *,
    lookup: Callable[[str], Secret | None],
    region: str,
    service: str,
    now: dt.datetime,
) -> str:
    """Check a request's SigV4 signature the way API Gateway does. Returns the access key id.

    Raises SignatureRejected carrying API Gateway's error type and message.
    """
    header_map = {name.lower(): value for name, value in headers}
    authorization = header_map.get("authorization")
    if authorization is None:
        raise SignatureRejected("MissingAuthenticationTokenException", "Missing Authentication Token")
    parts = parse_authorization(authorization)
    secret = lookup(parts.access_key)
    if secret is None or (secret.session_token or None) != header_map.get("x-amz-security-token"):
        raise SignatureRejected(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    if secret.expired:
        raise SignatureRejected(
            "ExpiredTokenException", "The security token included in the request is expired"
        )
    amz_date = header_map.get("x-amz-date", "")
    try:
        signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise SignatureRejected(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ) from exc
    skew = dt.timedelta(minutes=5)
    if signed_at < now - skew:
        raise SignatureRejected(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is now earlier than {(now - skew):%Y%m%dT%H%M%SZ} ({now:%Y%m%dT%H%M%SZ} - 5 min.)",
        )
    if signed_at > now + skew:
        raise SignatureRejected(
            "InvalidSignatureException",
            f"Signature not yet current: {amz_date} is still later than {(now + skew):%Y%m%dT%H%M%SZ} ({now:%Y%m%dT%H%M%SZ} + 5 min.)",
        )
    if parts.region != region:
        raise SignatureRejected(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region, not '{parts.region}'.",
        )
    if parts.service != service:
        raise SignatureRejected(
            "InvalidSignatureException", f"Credential should be scoped to correct service: '{service}'."
        )
    if parts.date != amz_date[:8] or "host" not in parts.signed_headers:
        raise SignatureRejected("InvalidSignatureException", MISMATCH)
    canonical = canonical_request(method, target, headers, body, parts.signed_headers)
    scope = f"{parts.date}/{parts.region}/{parts.service}/aws4_request"
    to_sign = string_to_sign(amz_date, scope, canonical)
    expected = signature(secret.secret_key, parts.date, parts.region, parts.service, to_sign)
    if not hmac.compare_digest(expected, parts.signature):
        # API Gateway shows both texts to help debugging; neither holds a secret.
        raise SignatureRejected(
            "InvalidSignatureException",
            f"{MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'\n\n"
            f"The String-to-Sign should have been\n'{to_sign}'\n",
        )
    return parts.access_key


def _encode(text: str) -> str:
    return quote(unquote_to_bytes(text), safe="-_.~")


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 section 5.2.4, plus the collapsing of empty segments that AWS services apply.
    output: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if output:
                output.pop()
        else:
            output.append(segment)
    trailing = "/" if path.endswith("/") and output else ""
    return "/" + "/".join(output) + trailing
