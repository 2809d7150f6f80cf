"""Properties of the access decision that hold whatever the policy is, checked over generated policies,
callers and methods; and the fast access matrix checked against the plain per-request decision."""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from access_auditor.policy.document import Policy, load_policy
from access_auditor.policy.evaluator import Decision, RequestContext, decide_invoke, glob_match
from access_auditor.policy.matrix import Access, Method, access_matrix, caller_classes, method_groups
from tests.policies import API, METHOD_ARNS, ROLES, callers, policies, statements

AUTH = st.sampled_from(["AWS_IAM", "AWS_IAM", "NONE", "CUSTOM"])


def decide(
    doc: dict[str, Any] | None, auth: str, caller: RequestContext, arn: str, unknown: bool
) -> Decision:
    loaded = load_policy(doc, API) if doc is not None else None
    return decide_invoke(loaded, auth, caller, arn, API.account, identity_allowed=True, unknown_as=unknown)


def allowed(doc: dict[str, Any] | None, auth: str, caller: RequestContext, arn: str) -> set[bool]:
    return {decide(doc, auth, caller, arn, unknown).allowed for unknown in (False, True)}


@settings(max_examples=300, deadline=None)
@given(policies, statements(effect="Deny"), AUTH, callers(), st.sampled_from(METHOD_ARNS))
def test_adding_a_deny_never_grants_access(doc: dict[str, Any], deny: dict[str, Any], auth: str,
                                           caller: RequestContext, arn: str) -> None:  # fmt: skip
    before = allowed(doc, auth, caller, arn)
    after = allowed({**doc, "Statement": [*doc["Statement"], deny]}, auth, caller, arn)
    assert max(after) <= max(before)


@settings(max_examples=300, deadline=None)
@given(policies, AUTH, callers(), st.sampled_from(METHOD_ARNS), st.data())
def test_removing_an_allow_never_grants_access(doc: dict[str, Any], auth: str, caller: RequestContext, arn: str,
                                              data: st.DataObject) -> None:  # fmt: skip
    allows = [i for i, s in enumerate(doc["Statement"]) if s["Effect"] == "Allow"]
    if not allows:
        return
    drop = data.draw(st.sampled_from(allows))
    after = {**doc, "Statement": [s for i, s in enumerate(doc["Statement"]) if i != drop]}
    assert max(allowed(after, auth, caller, arn)) <= max(allowed(doc, auth, caller, arn))


@settings(max_examples=300, deadline=None)
@given(policies, AUTH, callers(), st.sampled_from(METHOD_ARNS), st.data())
def test_a_condition_that_always_holds_is_like_no_condition(doc: dict[str, Any], auth: str, caller: RequestContext,
                                                           arn: str, data: st.DataObject) -> None:  # fmt: skip
    if not doc["Statement"]:
        return
    index = data.draw(st.integers(0, len(doc["Statement"]) - 1))
    always = data.draw(st.sampled_from([
        ("StringLikeIfExists", "aws:PrincipalArn", "*"),  # absent: IfExists holds; present: "*" matches
        ("Null", "aws:NoSuchKeyAnywhere", "true"),  # a key no request carries is always null
        ("ForAllValues:StringEquals", "aws:NoSuchKeyAnywhere", "x"),  # ForAllValues on an absent key
    ]))  # fmt: skip
    statements = [dict(s) for s in doc["Statement"]]
    condition = {**statements[index].get("Condition", {})}
    operator, key, value = always
    condition[operator] = {**condition.get(operator, {}), key: value}
    statements[index]["Condition"] = condition
    with_condition = {**doc, "Statement": statements}
    assert allowed(with_condition, auth, caller, arn) == allowed(doc, auth, caller, arn)


METHODS = [
    Method("prod", "GET", "/health"),
    Method("prod", "POST", "/items"),
    Method("dev", "DELETE", "/items/7"),
    Method("prod", "GET", "/open", "NONE"),
    Method("prod", "PUT", "/custom", "CUSTOM"),
]


def brute_force(policy: Policy | None, method: Method, variants: list[RequestContext]) -> Access:
    decisions = [
        decide_invoke(policy, method.authorization_type, v, method.arn(API), API.account, identity_allowed=True,
                      unknown_as=unknown)
        for v in variants
        for unknown in (False, True)
    ]  # fmt: skip
    got_in = [d for d in decisions if d.allowed]
    if len(got_in) == len(decisions):
        return Access.CONDITIONAL if any(d.reason == "authorizer" for d in got_in) else Access.ALLOWED
    return Access.DENIED if not got_in else Access.CONDITIONAL


@settings(max_examples=200, deadline=None)
@given(policies, st.booleans())
def test_the_access_matrix_agrees_with_one_decision_per_request(doc: dict[str, Any], private: bool) -> None:
    # GIVEN any policy, on a regional or a private API (callers only through VPC endpoints)
    # WHEN the matrix is computed on masks
    policy = load_policy(doc, API)
    callers_ = caller_classes(API, [ROLES[0]], [policy], private)
    matrix = access_matrix(policy, API, method_groups(METHODS, API, [policy]), callers_)
    # THEN every cell is what deciding each (identity, network) request on its own gives
    for caller in callers_.classes:
        variants = [
            RequestContext(**{**vars(i), **{k: v for k, v in vars(n).items() if v is not None}})
            for i in caller.identities
            for n in callers_.networks
        ]
        for method in METHODS:
            assert matrix[(caller.name, method)].access == brute_force(policy, method, variants), (
                caller.name,
                method,
            )
    # AND a private API's every origin is an endpoint in a VPC, with no aws:SourceIp
    if private:
        assert all(n.source_vpce and n.source_vpc and n.source_ip is None for n in callers_.networks)


@settings(max_examples=500, deadline=None)
@given(st.text("ab*?/:", max_size=8), st.text("ab/:", max_size=10))
def test_wildcards_agree_with_the_standard_library(pattern: str, text: str) -> None:
    # fnmatch knows * and ? the way IAM does (and [...], which the alphabet leaves out)
    oracle = re.fullmatch(fnmatch.translate(pattern), text, re.DOTALL) is not None
    assert glob_match(pattern, text, True) is oracle
