"""SigV4-signed HTTP calls that send exactly the bytes they signed.

botocore's ``SigV4Auth`` signs; this module's job is to hand it the request in the one form that will
travel. The URL is normalised first (dot segments and empty segments removed, every path segment and
query key/value percent-encoded the SigV4 way) and that normalised URL is both signed and sent, byte for
byte. The classic bug (pass ``params`` to botocore and to requests, which encode ``a b`` differently) has
no way in: nothing after signing re-encodes anything.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlsplit, urlunsplit

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials

from access_auditor.errors import CredentialsError, RequestError
from access_auditor.redact import REDACTED, redact
from access_auditor.transport import Reply, new_session, send

_UNRESERVED = "-_.~"
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
Params = Mapping[str, str] | Sequence[tuple[str, str]]


@dataclass(frozen=True)
class SignedRequest:
    """A request ready to send. ``canonical_request`` and ``string_to_sign`` are for ``-v`` output and hold
    no secret (the session token's value is replaced)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    canonical_request: str
    string_to_sign: str

    def redacted_headers(self) -> dict[str, str]:
        """Headers safe to print: the signature, the key id and the session token are replaced."""
        return {
            name: REDACTED if name.lower() == "x-amz-security-token" else redact(value)
            for name, value in self.headers.items()
        }


def region_from_host(url: str) -> str | None:
    """The region in an ``{api}.execute-api.{region}.amazonaws.com`` host name, else None."""
    match = _EXECUTE_API_HOST.match(urlsplit(url).hostname or "")
    return match[1] if match else None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_url(url: str, params: Params | None = None) -> str:
    """The URL exactly as it will be signed and sent.

    Path: dot segments and empty segments removed (as SigV4 canonicalisation does), each segment decoded and
    re-encoded with only unreserved characters left bare, so ``%7e``, ``~`` and a raw ``é`` all arrive in one
    spelling. Query: each key and value likewise; ``+`` is a literal plus (RFC 3986), sent as ``%2B``; order,
    repeated keys and keys without ``=`` are kept. ``params`` are appended as literal (unencoded) values.

    Raises RequestError for a URL that is not ``https://``, or ``http://`` to a loopback host.

    >>> normalize_url("https://h/a/./b//c%7e?q=a b&x=1+1&flag")
    'https://h/a/b/c~?q=a%20b&x=1%2B1&flag'
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise RequestError(
            "url", "the URL holds a control character (a raw CR, LF or tab); percent-encode it"
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # raises for a port outside 0-65535
    except ValueError as exc:
        raise RequestError("url", f"not a valid URL: {url!r} ({exc})") from exc
    if parts.scheme == "http":
        if not is_loopback(host):
            raise RequestError(
                "url", f"plain http:// is allowed only for loopback hosts, not {host!r}; use https://"
            )
    elif parts.scheme != "https":
        raise RequestError("url", f"expected an https:// URL, got {url!r}")
    if not host:
        raise RequestError("url", f"the URL has no host: {url!r}")
    if parts.username or parts.password:
        raise RequestError("url", "credentials in the URL are not allowed; use --profile or the environment")

    segments = [_encode(unquote_to_bytes(s)) for s in parts.path.split("/") if s not in ("", ".")]
    path_segments: list[str] = []
    for segment in segments:
        if segment == "..":
            if path_segments:
                path_segments.pop()
        else:
            path_segments.append(segment)
    path = "/" + "/".join(path_segments)
    if parts.path.endswith("/") and path_segments:
        path += "/"

    pairs = [_encode_pair(item) for item in parts.query.split("&") if item] if parts.query else []
    if params:
        items = params.items() if isinstance(params, Mapping) else params
        pairs += [f"{_encode(k.encode())}={_encode(v.encode())}" for k, v in items]
    return urlunsplit((parts.scheme, parts.netloc, path, "&".join(pairs), ""))


def sign_request(
    method: str,
    url: str,
    *,
    credentials: Credentials | ReadOnlyCredentials,
    region: str,
    service: str = "execute-api",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    params: Params | None = None,
) -> SignedRequest:
    """Sign one request with SigV4. The credentials are frozen once, so a refresh mid-signature cannot mix
    an old key with a new token. Raises RequestError for a bad URL and CredentialsError for no credentials."""
    if credentials is None:
        raise CredentialsError("no AWS credentials found (environment, shared files, SSO, or a role)")
    frozen = credentials.get_frozen_credentials() if isinstance(credentials, Credentials) else credentials
    final_url = normalize_url(url, params)
    aws_request = AWSRequest(method=method.upper(), url=final_url, data=body, headers=dict(headers or {}))
    signer = _RecordingSigner(frozen, service, region)
    signer.add_auth(aws_request)
    canonical = signer.signed_canonical_request
    if frozen.token:
        canonical = canonical.replace(frozen.token, REDACTED)  # whatever its shape; redact() catches the rest
    return SignedRequest(
        method=method.upper(),
        url=final_url,
        headers={k: str(v) for k, v in aws_request.headers.items()},
        body=body,
        canonical_request=redact(canonical),
        string_to_sign=signer.signed_string_to_sign,
    )


class _RecordingSigner(SigV4Auth):
    """botocore's signer, keeping the canonical request and string to sign it computed while signing: what
    ``-v`` shows is then exactly what was signed (recomputing it afterwards would include the new
    Authorization header), and nothing is computed twice."""

    signed_canonical_request = ""
    signed_string_to_sign = ""

    def canonical_request(self, request: AWSRequest) -> str:
        self.signed_canonical_request = str(super().canonical_request(request))
        return self.signed_canonical_request

    def string_to_sign(self, request: AWSRequest, canonical_request: str) -> str:
        self.signed_string_to_sign = str(super().string_to_sign(request, canonical_request))
        return self.signed_string_to_sign


def signed_call(
    method: str,
    url: str,
    *,
    credentials: Credentials | ReadOnlyCredentials,
    region: str | None = None,
    service: str = "execute-api",
    headers: Mapping[str, str] | None = None,
    body: bytes | str = b"",
    params: Params | None = None,
    timeout: tuple[float, float] = (5.0, 30.0),
    session: requests.Session | None = None,
) -> Reply:
    """Make one SigV4-signed call and return the response: the library API for Python code.

    >>> import boto3  # doctest: +SKIP
    >>> creds = boto3.Session(profile_name="app").get_credentials()  # doctest: +SKIP
    >>> signed_call("GET", "https://abc123.execute-api.us-east-1.amazonaws.com/prod/items",
    ...             params={"q": "a b"}, credentials=creds).status_code  # doctest: +SKIP
    200
    """
    region = region or region_from_host(url)
    if not region:
        raise RequestError("url", "cannot infer the region from the host name; pass region=")
    payload = body.encode() if isinstance(body, str) else body
    signed = sign_request(
        method,
        url,
        credentials=credentials,
        region=region,
        service=service,
        headers=headers,
        body=payload,
        params=params,
    )
    return send_signed(session or new_session(), signed, timeout=timeout)


def send_signed(session: requests.Session, signed: SignedRequest, **options: Any) -> Reply:
    """Send exactly what was signed; ``options`` are transport.send's (timeout, budget_s, max_body)."""
    return send(session, signed.method, signed.url, headers=signed.headers, body=signed.body, **options)


def _encode(raw: bytes) -> str:
    return quote(raw, safe=_UNRESERVED)


def _encode_pair(item: str) -> str:
    key, sep, value = item.partition("=")
    encoded = _encode(unquote_to_bytes(key))
    return f"{encoded}={_encode(unquote_to_bytes(value))}" if sep else encoded
