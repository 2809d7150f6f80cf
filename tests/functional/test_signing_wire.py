"""Signed requests travel over a socket to the local gateway, which recomputes the SigV4 signature
independently of botocore. Every hard request shape must be accepted; tampering must be refused."""

from __future__ import annotations

import json

import pytest
import requests
from botocore.credentials import ReadOnlyCredentials

from access_auditor.signing import send_signed, sign_request, signed_call
from access_auditor.transport import new_session
from tests.harness import Harness

SHAPES = {
    "plain": ("GET", "/items", None, b""),
    "space in a value": ("GET", "/items?q=a b", None, b""),
    "plus, equals, slash, percent in values": ("GET", "/items?x=1+1&eq=a=b&p=a/b&pc=100%25", None, b""),
    "already-encoded values": ("GET", "/items?q=a%20b&s=%2F%3D", None, b""),
    "repeated keys": ("GET", "/items?tag=b&tag=a&tag=b", None, b""),
    "key without value": ("GET", "/items?flag&other=", None, b""),
    "non-ASCII value": ("GET", "/items?name=日本語&c=café", None, b""),
    "params given separately": ("GET", "/items", [("q", "a b"), ("q", "x+y=z/é")], b""),
    "unsorted keys with odd case": ("GET", "/items?Zeta=1&alpha=2&Alpha=3", None, b""),
    "dot segments": ("GET", "/x/./../items", None, b""),
    "double slash": ("GET", "//items", None, b""),
    "non-ASCII and space in the path": ("GET", "/files/日本語 file.txt", None, b""),
    "encoded characters in the path": ("GET", "/files/a%2Bb%3Dc%25d", None, b""),
    "JSON body": ("POST", "/items", None, json.dumps({"name": "a b", "emoji": "🙂"}).encode()),
    "binary body": ("POST", "/items?raw=1", None, bytes(range(256))),
}


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_every_hard_request_shape_is_accepted(
    harness: Harness, shape: tuple[str, str, object, bytes]
) -> None:
    method, path, params, body = shape
    creds = harness.credentials(harness.sample.allowed_role_arn)
    response = signed_call(method, harness.url + path, credentials=creds, region=harness.aws.region,
                           params=params, body=body, headers={"Content-Type": "application/octet-stream"})  # type: ignore[arg-type]  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["bodyBytes"] == len(body)


def test_the_server_receives_the_values_the_caller_meant(harness: Harness) -> None:
    # Accepted is not enough: the bytes must also mean what the caller wrote ('+' stays a plus).
    creds = harness.credentials(harness.sample.allowed_role_arn)
    response = signed_call("GET", harness.url + "/files/日本語 file.txt?x=1+1&ü=ö", credentials=creds,
                           region=harness.aws.region)  # fmt: skip
    assert response.status_code == 200
    assert response.json()["path"] == "/files/日本語 file.txt"
    assert response.json()["query"] == "x=1+1&ü=ö"


def test_tampered_query_is_refused_with_api_gateways_message(harness: Harness) -> None:
    creds = harness.credentials(harness.sample.allowed_role_arn)
    signed = sign_request(
        "GET", harness.url + "/items?amount=1", credentials=creds, region=harness.aws.region
    )
    forged = type(signed)(**{**signed.__dict__, "url": signed.url.replace("amount=1", "amount=9")})
    response = send_signed(new_session(), forged, timeout=(2, 5))
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert response.json()["message"].startswith("The request signature we calculated does not match")


def test_tampered_body_is_refused(harness: Harness) -> None:
    creds = harness.credentials(harness.sample.allowed_role_arn)
    signed = sign_request(
        "POST", harness.url + "/items", credentials=creds, region=harness.aws.region, body=b"1"
    )
    forged = type(signed)(**{**signed.__dict__, "body": b"2"})
    assert send_signed(new_session(), forged, timeout=(2, 5)).status_code == 403


def test_unknown_key_is_refused(harness: Harness) -> None:
    fake = ReadOnlyCredentials("AKIAUNKNOWNKEY000000", "not-a-real-secret", None)
    response = signed_call("GET", harness.url + "/health", credentials=fake, region=harness.aws.region)
    assert response.status_code == 403
    assert response.json()["message"] == "The security token included in the request is invalid."


def test_wrong_secret_is_refused(harness: Harness) -> None:
    real = harness.credentials(harness.sample.allowed_role_arn)
    changed = "y" if real.secret_key.endswith("x") else "x"  # a secret that already ends in x stays right
    wrong = ReadOnlyCredentials(real.access_key, real.secret_key[:-1] + changed, real.token)
    response = signed_call("GET", harness.url + "/health", credentials=wrong, region=harness.aws.region)
    assert response.status_code == 403 and response.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_unsigned_call_to_an_iam_method_gets_missing_token(harness: Harness) -> None:
    response = requests.get(harness.url + "/health", timeout=5)
    assert response.status_code == 403 and response.json() == {"message": "Missing Authentication Token"}


def test_plain_http_to_a_remote_host_is_refused_before_anything_is_sent() -> None:
    from access_auditor.errors import RequestError

    creds = ReadOnlyCredentials("AKIDEXAMPLE", "secret", None)
    with pytest.raises(RequestError, match="loopback"):
        signed_call("GET", "http://abc123.execute-api.us-east-1.amazonaws.com/prod/x", credentials=creds)
