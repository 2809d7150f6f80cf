"""Speed targets, measured (not asserted by the test suite): `make bench`.

Targets: any policy up to API Gateway's 8,192 characters, adversarial ones included, judged in well under a
second (the 1 s budget below) for the representative API and for 1,000 methods; signing one request in
under 1 ms. Read the Max column against the budget.
"""

from __future__ import annotations

import json

import pytest
from botocore.credentials import ReadOnlyCredentials
from pytest_benchmark.fixture import BenchmarkFixture

from access_auditor.policy.analysis import check_policy, representative_methods
from access_auditor.policy.document import ApiRef
from access_auditor.policy.matrix import OTHER_STAGE, Method
from access_auditor.signing import sign_request
from tests.adversarial import adversarial_policies

API = ApiRef("us-east-1", "123456789012", "abc123")
ROLE = "arn:aws:iam::123456789012:role/app"
BUDGET_S = 1.0
WEAK = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": f"{API.arn}/*",
    "Condition": {"StringNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*"},
                  "NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}}]})  # fmt: skip
POLICIES = {"weakened (representative)": WEAK, **adversarial_policies(API, ROLE)}
THOUSAND = [Method("prod", verb, f"/r{i}") for i in range(250) for verb in ("GET", "POST")]
THOUSAND += [Method(OTHER_STAGE, m.http_method, m.path) for m in THOUSAND]
METHOD_SETS = {"24 methods": representative_methods("prod"), "1,000 methods": THOUSAND}


@pytest.mark.parametrize("methods", METHOD_SETS.values(), ids=METHOD_SETS.keys())
@pytest.mark.parametrize("policy", POLICIES.values(), ids=POLICIES.keys())
def test_verdict(benchmark: BenchmarkFixture, policy: str, methods: list[Method]) -> None:
    verdict = benchmark.pedantic(check_policy, (policy, API, [ROLE], methods), rounds=3, iterations=1)
    assert verdict.findings  # drift, or at least a rewrite: a real verdict was reached
    assert benchmark.stats.stats.max < BUDGET_S * 10  # not the target: a sanity bound against a hang


def test_sign_request(benchmark: BenchmarkFixture) -> None:
    creds = ReadOnlyCredentials("AKIDEXAMPLE", "secret", "token")
    signed = benchmark(sign_request, "GET", "https://abc123.execute-api.us-east-1.amazonaws.com/prod/items?q=a b&tag=x",
                       credentials=creds, region="us-east-1")  # fmt: skip
    assert "Signature=" in signed.headers["Authorization"]
