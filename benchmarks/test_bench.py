"""Speed targets, measured (not asserted by the test suite): `make bench`.

Targets: a full policy verdict for a 50-method API in well under 100 ms (a Lambda run audits several APIs
within seconds); signing one request in under 1 ms.
"""

from __future__ import annotations

import json

from botocore.credentials import ReadOnlyCredentials
from pytest_benchmark.fixture import BenchmarkFixture

from access_auditor.policy.analysis import OTHER_STAGE, Method, check_policy, representative_methods
from access_auditor.policy.document import ApiRef
from access_auditor.signing import sign_request

API = ApiRef("us-east-1", "123456789012", "abc123")
ROLE = "arn:aws:iam::123456789012:role/app"
WEAK = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": f"{API.arn}/*",
    "Condition": {"StringNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*"},
                  "NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}}]})  # fmt: skip


def test_verdict_representative_methods(benchmark: BenchmarkFixture) -> None:
    verdict = benchmark(check_policy, WEAK, API, [ROLE], representative_methods("prod"))
    assert verdict.drift


def test_verdict_fifty_method_api(benchmark: BenchmarkFixture) -> None:
    methods = [
        Method(stage, verb, f"/r{i}") for i in range(25) for verb in ("GET", "POST") for stage in ("prod",)
    ]
    methods += [Method(OTHER_STAGE, m.http_method, m.path) for m in methods]
    verdict = benchmark(check_policy, WEAK, API, [ROLE], methods)
    assert verdict.drift


def test_sign_request(benchmark: BenchmarkFixture) -> None:
    creds = ReadOnlyCredentials("AKIDEXAMPLE", "secret", "token")
    signed = benchmark(sign_request, "GET", "https://abc123.execute-api.us-east-1.amazonaws.com/prod/items?q=a b&tag=x",
                       credentials=creds, region="us-east-1")  # fmt: skip
    assert "Signature=" in signed.headers["Authorization"]
