"""The evaluator against the IAM documentation, one rule at a time. Each test names the page and quotes or
states the rule it checks; the expected value comes from that page, never from the code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from access_auditor.errors import PolicyParseError
from access_auditor.policy.analysis import check_policy, representative_methods
from access_auditor.policy.document import ApiRef, Condition, load_policy
from access_auditor.policy.evaluator import RequestContext, condition_problem, decide_invoke, glob_match

API = ApiRef("us-east-1", "123456789012", "abc123")
ROLE = "arn:aws:iam::123456789012:role/app"
ROLE_SESSION = "arn:aws:sts::123456789012:assumed-role/app/nightly"
ROOT = "arn:aws:iam::123456789012:root"
ARN = API.arn
METHOD = f"{ARN}/prod/GET/health"
METHODS = representative_methods("prod")
EXPECTED_DENY: dict[str, Any] = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "execute-api:Invoke",
    "Resource": f"{ARN}/*",
    "Condition": {"StringNotEquals": {"aws:PrincipalArn": ROLE}},
}


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def verdict(*statements: dict[str, Any]) -> tuple[bool, dict[str, str]]:
    result = check_policy(policy(*statements), API, [ROLE], METHODS)
    return result.drift, {f.code: f.severity.value for f in result.findings}


def deny_with(condition: dict[str, Any]) -> dict[str, Any]:
    return {**EXPECTED_DENY, "Condition": {**EXPECTED_DENY["Condition"], **condition}}


def holds(operator: str, key: str, values: list[str], context: RequestContext) -> bool:
    """Whether a one-condition Deny applies to ``context`` (both ways of reading unknowns must agree)."""
    doc = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*",
        "Condition": {operator: {key: values}}}]}  # fmt: skip
    outcomes = {
        decide_invoke(load_policy(doc, API), "AWS_IAM", context, METHOD, API.account, identity_allowed=True,
                      unknown_as=unknown).reason == "explicit-deny"
        for unknown in (False, True)
    }  # fmt: skip
    assert len(outcomes) == 1, "the condition should be modelled exactly"
    return outcomes.pop()


SIGNED = RequestContext(
    principal_arn=ROLE, account=API.account, session_arn=ROLE_SESSION, source_ip="198.51.100.7"
)


# --- Set operators for multivalued context keys ---------------------------------------------------------


def test_for_any_value_is_false_when_the_key_is_absent_even_with_if_exists() -> None:
    """IAM, "Set operators for multivalued context keys": with ForAnyValue, "if the key ... is not present
    in the request context, the condition evaluates to false"."""
    assert holds("ForAnyValue:StringLikeIfExists", "aws:SourceVpce", ["vpce-*"], SIGNED) is False
    assert holds("ForAnyValue:StringLike", "aws:SourceVpce", ["vpce-*"], SIGNED) is False


def test_for_all_values_is_true_when_the_key_is_absent() -> None:
    """Same page: ForAllValues "returns true if ... the key is not present in the request"."""
    assert holds("ForAllValues:StringLike", "aws:SourceVpce", ["vpce-*"], SIGNED) is True


def test_a_deny_limited_by_for_any_value_if_exists_no_longer_covers_callers_outside_an_endpoint() -> None:
    # GIVEN the expected Deny narrowed by ForAnyValue:StringLikeIfExists on aws:SourceVpce
    drift, codes = verdict(deny_with({"ForAnyValue:StringLikeIfExists": {"aws:SourceVpce": "vpce-*"}}))
    # THEN everyone outside a VPC endpoint is no longer denied: drift, not a harmless rewrite
    assert drift and "ACCESS_WEAKENED" in codes and "POLICY_REWRITTEN" not in codes


# --- Null, and several values for one key ----------------------------------------------------------------


def test_null_values_are_ored() -> None:
    """IAM, "Condition with multiple context keys or values": several values for one key are ORed.
    So Null with both "true" and "false" holds whether or not the key is there."""
    assert holds("Null", "aws:SourceVpce", ["true", "false"], SIGNED) is True
    assert holds("Null", "aws:SourceIp", ["true", "false"], SIGNED) is True


def test_null_reads_true_whatever_its_case() -> None:
    """IAM, "Condition operator to check existence of condition keys": Null true means the key is absent."""
    assert holds("Null", "aws:SourceVpce", ["True"], SIGNED) is True
    assert holds("Null", "aws:SourceIp", ["TRUE"], SIGNED) is False


def test_a_deny_for_anonymous_callers_only_is_drift() -> None:
    # GIVEN the expected Deny limited to requests without aws:PrincipalArn ("True", not "true")
    drift, codes = verdict(deny_with({"Null": {"aws:PrincipalArn": "True"}}))
    # THEN signed callers other than the role are no longer denied
    assert drift and "ACCESS_WEAKENED" in codes


@pytest.mark.parametrize("value", ["yes", "1", "maybe", ""])
def test_a_null_value_that_is_not_a_boolean_is_not_modelled(value: str) -> None:
    assert condition_problem(Condition("Null", "aws:SourceVpce", (value,)))
    drift, codes = verdict(deny_with({"Null": {"aws:SourceVpce": value}}))
    assert drift and "POLICY_NOT_MODELLED" in codes


# --- Operators of the wrong type -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "key", "value"),
    [
        ("IpAddress", "aws:PrincipalArn", "10.0.0.0/8"),  # an IP operator on an ARN key
        ("NotIpAddress", "aws:PrincipalAccount", "10.0.0.0/8"),  # ... on a string key
        ("ArnLike", "aws:SourceVpce", "arn:aws:ec2:*:*:vpc-endpoint/*"),  # an ARN operator on a string key
        ("ArnNotEquals", "aws:PrincipalArn", "app"),  # an ARN operator on a value that is not an ARN
        ("Bool", "aws:PrincipalArn", "true"),  # a boolean operator on an ARN key
        ("IpAddress", "aws:SourceIp", "10.0.0.300/8"),  # not a CIDR range
        ("StringEquals", "aws:SourceIp", "10.0.0.1"),  # IAM: aws:SourceIp takes the IP address operators
    ],
)
def test_an_operator_of_the_wrong_type_is_not_modelled(operator: str, key: str, value: str) -> None:
    """IAM, "Condition operators": each operator family applies to one type of key and value."""
    assert condition_problem(Condition(operator, key, (value,)))
    drift, codes = verdict(deny_with({operator: {key: value}}))
    assert drift and "POLICY_NOT_MODELLED" in codes


# --- Principal: role sessions ----------------------------------------------------------------------------


def test_a_role_session_principal_matches_that_session_only() -> None:
    """IAM, "AWS JSON policy elements: Principal", role session principals: an assumed-role session ARN
    names that one session."""
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": {"AWS": ROLE_SESSION}, "Action": "execute-api:Invoke", "Resource": "*"}]}  # fmt: skip
    loaded = load_policy(doc, API)
    other = RequestContext(
        principal_arn=ROLE, account=API.account, session_arn=ROLE_SESSION.replace("nightly", "x")
    )
    assert (
        decide_invoke(loaded, "AWS_IAM", SIGNED, METHOD, API.account, identity_allowed=True).reason
        == "explicit-deny"
    )
    assert decide_invoke(loaded, "AWS_IAM", other, METHOD, API.account, identity_allowed=True).allowed


def test_a_deny_naming_one_session_of_the_allowed_role_locks_that_session_out() -> None:
    extra = {
        "Effect": "Deny",
        "Principal": {"AWS": ROLE_SESSION},
        "Action": "execute-api:Invoke",
        "Resource": "*",
    }
    drift, codes = verdict(EXPECTED_DENY, extra)
    assert drift and "ALLOWED_ROLE_LOCKED_OUT" in codes


# --- NotPrincipal with Deny ------------------------------------------------------------------------------


def not_principal_deny(*entries: str) -> dict[str, Any]:
    return {"Effect": "Deny", "NotPrincipal": {"AWS": list(entries)}, "Action": "execute-api:Invoke",
            "Resource": f"{ARN}/*"}  # fmt: skip


def test_not_principal_listing_the_role_and_its_account_exempts_the_role() -> None:
    """IAM, "NotPrincipal": "we strongly recommend that you ... include both the ARN for a role and the ARN
    for the account containing that role". That pattern denies everyone else and leaves the role in."""
    drift, codes = verdict(not_principal_deny(ROLE, ROOT))
    assert "ACCESS_WEAKENED" not in codes and "ALLOWED_ROLE_LOCKED_OUT" not in codes
    assert not drift


def test_not_principal_without_the_account_denies_the_role() -> None:
    """IAM, "NotPrincipal": "if the NotPrincipal element was missing the ARN of the AWS account that the role
    belongs to, the effect of the policy might be to explicitly deny access to the AWS account and all
    entities in that account"."""
    drift, codes = verdict(not_principal_deny(ROLE))
    assert drift and "ALLOWED_ROLE_LOCKED_OUT" in codes


def test_not_principal_listing_a_session_without_its_role_is_not_certain() -> None:
    """IAM, "NotPrincipal": without the role's ARN "the effect of the policy might be to explicitly deny
    access to the role": the page does not settle it, so the role is only conditionally kept in."""
    drift, codes = verdict(not_principal_deny(ROLE_SESSION, ROOT))
    assert drift and "ALLOWED_ROLE_LOCKED_OUT" in codes


# --- Hostile documents -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"Version":' + "1" * 5000 + ',"Statement":[]}',  # a number too long to convert
        "[" * 100_000 + "]" * 100_000,  # nesting deeper than the stack
        '{"Version": NaN, "Statement": []}',  # not JSON
        '{"Version": 2012, "Statement": []}',  # Version is a string
        '{"Statement": [{"Effect": "Deny", "Principal": "*", "Action": [[]], "Resource": "*"}]}',
        "x" * 30_000,  # longer than API Gateway stores
    ],
    ids=["huge number", "deep nesting", "NaN", "numeric version", "nested action", "oversized"],
)
def test_hostile_documents_are_unreadable_never_an_internal_error(text: str) -> None:
    with pytest.raises(PolicyParseError) as info:
        check_policy(text, API, [ROLE], METHODS)
    assert str(info.value)


# --- Wildcards -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("arn:aws:execute-api:*:*:abc/*", "arn:aws:execute-api:us-east-1:1:abc/prod/GET/", True),
        ("*", "", True),
        ("a*b*c", "abc", True),
        ("a*b*c", "acb", False),
        ("?", "", False),
        ("a?c", "abc", True),
        ("*?", "", False),
        ("*?*?" * 10 + "Z", "a" * 197 + "Y", False),  # the adversarial Resource
        ("*a" * 285, "a" * 284 + "b", False),  # ... and its ArnNotLike
    ],
)
def test_wildcards_follow_iam_and_never_backtrack(pattern: str, text: str, expected: bool) -> None:
    """IAM: in ARN and StringLike patterns "*" matches any run of characters and "?" exactly one."""
    assert glob_match(pattern, text, True) is expected
