"""The product's evaluator against the local gateway's own decision (access_auditor.local_aws.access), which shares no code
with it. Over generated policies and callers, wherever the product is certain the two must agree; each
disagreement found so far was settled against the IAM documentation."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from access_auditor.local_aws import access
from access_auditor.policy.document import load_policy
from access_auditor.policy.evaluator import RequestContext, decide_invoke
from tests.policies import API, METHOD_ARNS, callers, policies


def reference_caller(context: RequestContext) -> access.Caller:
    network = {"aws:sourceip": context.source_ip, "aws:sourcevpce": context.source_vpce,
               "aws:sourcevpc": context.source_vpc, "aws:vpcsourceip": context.vpc_source_ip}  # fmt: skip
    keys = {k: v for k, v in network.items() if v}
    return access.Caller(context.principal_arn, context.account, context.session_arn, keys)


@settings(max_examples=1500, deadline=None)
@given(
    policies,
    st.sampled_from(["AWS_IAM", "NONE", "CUSTOM"]),
    callers(),
    st.sampled_from(METHOD_ARNS),
    st.booleans(),
)
def test_the_product_and_the_gateway_decide_alike(doc: dict[str, Any], auth: str, caller: RequestContext,
                                                  arn: str, identity_allowed: bool) -> None:  # fmt: skip
    loaded = load_policy(doc, API)
    product = {
        decide_invoke(loaded, auth, caller, arn, API.account, identity_allowed=identity_allowed, unknown_as=u)
        for u in (False, True)
    }
    if len({d.allowed for d in product}) > 1:
        return  # the product reports this as conditional ("cannot prove"); nothing to compare
    allowed, reason = access.decide(doc, auth, reference_caller(caller), arn, API.account, identity_allowed)
    assert {d.allowed for d in product} == {allowed}, json.dumps(doc)
    explicit = {d.reason == "explicit-deny" for d in product}
    if not allowed and auth == "AWS_IAM" and len(explicit) == 1:  # the product is certain of the reason too
        assert explicit == {reason == "explicit-deny"}, json.dumps(doc)


def test_the_gateway_reads_api_gateways_stored_form() -> None:
    stored = '{\\"Version\\":\\"2012-10-17\\",\\"Statement\\":[{\\"Resource\\":\\"arn:aws:execute-api:r:1:a\\/*\\"}]}'
    assert access.read_stored_policy(stored)["Statement"][0]["Resource"] == "arn:aws:execute-api:r:1:a/*"
