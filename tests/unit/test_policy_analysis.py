"""The drift verdict on the policy classes users meet: rewrites pass, weakenings are critical or high,
lock-outs are high. Expected outcomes come from IAM's documented evaluation rules, not from the code."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from access_auditor.errors import PolicyParseError
from access_auditor.policy.analysis import check_policy, representative_methods
from access_auditor.policy.document import ApiRef

API = ApiRef("us-east-1", "123456789012", "abc123")
ROLE = "arn:aws:iam::123456789012:role/app"
ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123"
METHODS = representative_methods("prod")

BASE: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": f"{ARN}/*",
            "Condition": {"StringNotEquals": {"aws:PrincipalArn": ROLE}},
        }
    ],
}


def variant(**changes: Any) -> dict[str, Any]:
    """BASE with statement elements replaced; a None value removes the element."""
    doc = copy.deepcopy(BASE)
    doc["Statement"][0].update(changes)
    doc["Statement"][0] = {k: v for k, v in doc["Statement"][0].items() if v is not None}
    return doc


def escaped(doc: dict[str, Any]) -> str:
    """API Gateway's stored form: compact JSON with every quote and slash backslash-escaped."""
    return json.dumps(doc, separators=(",", ":")).replace('"', '\\"').replace("/", "\\/")


def verdict_for(policy: dict[str, Any] | str | None) -> tuple[bool, set[str], set[str]]:
    text = policy if isinstance(policy, str | None) else json.dumps(policy)
    verdict = check_policy(text, API, [ROLE], METHODS)
    return verdict.drift, {f.code for f in verdict.findings}, {f.severity.value for f in verdict.findings}


REWRITES = {
    "identical": BASE,
    "action as a one-element list": variant(Action=["execute-api:Invoke"]),
    "resource shorthand": variant(Resource="execute-api:/*"),
    "ArnNotEquals for StringNotEquals": variant(Condition={"ArnNotEquals": {"aws:PrincipalArn": ROLE}}),
    "role as a one-element list": variant(Condition={"StringNotEquals": {"aws:PrincipalArn": [ROLE]}}),
    "principal as AWS *": variant(Principal={"AWS": "*"}),
    "action wildcard": variant(Action="execute-api:*"),
    "with a Sid": variant(Sid="OnlyApp"),
    "StringNotEqualsIfExists": variant(Condition={"StringNotEqualsIfExists": {"aws:PrincipalArn": ROLE}}),
    "statement as an object": {"Version": "2012-10-17", "Statement": BASE["Statement"][0]},
}


@pytest.mark.parametrize("doc", REWRITES.values(), ids=REWRITES.keys())
def test_pure_rewrites_are_not_drift(doc: dict[str, Any]) -> None:
    # GIVEN a policy API Gateway or a person rewrote without changing its meaning
    # WHEN it is checked  THEN no drift, and at most an info finding
    drift, _, severities = verdict_for(doc)
    assert not drift
    assert severities <= {"info"}


@pytest.mark.parametrize("doc", [BASE, variant(Resource="execute-api:/*")], ids=["plain", "shorthand"])
def test_escaped_form_is_read_like_the_plain_one(doc: dict[str, Any]) -> None:
    drift, codes, _ = verdict_for(escaped(doc))
    assert not drift and "POLICY_NOT_MODELLED" not in codes


WEAKENED = {
    "deny removed": {"Version": "2012-10-17", "Statement": []},
    "StringNotLike role/*": variant(
        Condition={"StringNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*"}}
    ),
    "resource narrowed to prod GET": variant(Resource=f"{ARN}/prod/GET/*"),
    "key changed to PrincipalAccount": variant(
        Condition={"StringNotEquals": {"aws:PrincipalAccount": "123456789012"}}
    ),
    "effect flipped to Allow": variant(Effect="Allow"),
    "second role exempted": variant(
        Condition={"StringNotEquals": {"aws:PrincipalArn": [ROLE, "arn:aws:iam::123456789012:role/other"]}}
    ),
    "condition dropped, allow everyone added": {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": f"{ARN}/*"}
        ],
    },
    "exemption from an IP range": variant(
        Condition={
            "StringNotEquals": {"aws:PrincipalArn": ROLE},
            "NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"},
        }
    ),
}


@pytest.mark.parametrize("doc", WEAKENED.values(), ids=WEAKENED.keys())
def test_weakened_policies_are_critical_or_high(doc: dict[str, Any]) -> None:
    drift, codes, severities = verdict_for(doc)
    assert drift
    assert "ACCESS_WEAKENED" in codes
    assert severities & {"critical", "high"}


def test_missing_policy_is_critical() -> None:
    drift, codes, severities = verdict_for(None)
    assert drift and "POLICY_MISSING" in codes and "critical" in severities


def test_ip_exemption_is_conditional_so_high_not_critical() -> None:
    doc = WEAKENED["exemption from an IP range"]
    verdict = check_policy(json.dumps(doc), API, [ROLE], METHODS)
    weakened = [f for f in verdict.findings if f.code == "ACCESS_WEAKENED"]
    assert weakened and {f.severity.value for f in weakened} == {"high"}


LOCKED_OUT = {
    "misspelled condition key": variant(Condition={"StringNotEquals": {"aws:PrincipalArnn": ROLE}}),
    "extra unconditional deny on DELETE": {
        "Version": "2012-10-17",
        "Statement": [
            *BASE["Statement"],
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": f"{ARN}/*/DELETE/*",
            },
        ],
    },
    "a different role": variant(
        Condition={"StringNotEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/ap"}}
    ),
}


@pytest.mark.parametrize("doc", LOCKED_OUT.values(), ids=LOCKED_OUT.keys())
def test_lockouts_are_reported_high(doc: dict[str, Any]) -> None:
    drift, codes, severities = verdict_for(doc)
    assert drift and "ALLOWED_ROLE_LOCKED_OUT" in codes and "high" in severities


def test_unmodelled_condition_is_a_finding_never_a_silent_pass() -> None:
    doc = variant(
        Condition={"StringNotEquals": {"aws:PrincipalArn": ROLE}, "Bool": {"aws:SecureTransport": "true"}}
    )
    drift, codes, _ = verdict_for(doc)
    assert drift and "POLICY_NOT_MODELLED" in codes


def test_findings_name_the_caller_and_the_statement() -> None:
    doc = variant(
        Sid="Lax", Condition={"StringNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*"}}
    )
    verdict = check_policy(json.dumps(doc), API, [ROLE], METHODS)
    message = next(f.message for f in verdict.findings if f.code == "ACCESS_WEAKENED")
    assert "123456789012" in message and "on stage" in message


@pytest.mark.parametrize(
    "text", ["", "not json", "[1, 2]", '{"Version": "2012-10-17"}', '{"Statement": [{"Effect": "Maybe"}]}']
)
def test_unreadable_policies_raise_a_parse_error_naming_the_problem(text: str) -> None:
    with pytest.raises(PolicyParseError) as info:
        check_policy(text, API, [ROLE], METHODS)
    assert str(info.value)


def test_findings_blame_the_statement_that_lets_in_or_locks_out() -> None:
    opened = check_policy(
        json.dumps(WEAKENED["condition dropped, allow everyone added"]), API, [ROLE], METHODS
    )
    assert any("allowed by Statement[0]" in f.message for f in opened.findings if f.code == "ACCESS_WEAKENED")
    locked = check_policy(json.dumps(LOCKED_OUT["extra unconditional deny on DELETE"]), API, [ROLE], METHODS)
    message = next(f.message for f in locked.findings if f.code == "ALLOWED_ROLE_LOCKED_OUT")
    assert "DELETE" in message and "denied by Statement[1]" in message


def test_a_statement_with_an_unknown_element_is_neither_trusted_nor_ignored() -> None:
    # GIVEN the expected Deny carrying an element IAM may know but the evaluator does not
    doc = variant(Comment="rotated by the platform team")
    verdict = check_policy(json.dumps(doc), API, [ROLE], METHODS)
    codes = {f.code: f.severity.value for f in verdict.findings}
    # THEN it is reported, and the Deny counts as maybe-applying: others only conditionally kept out
    assert verdict.drift and codes["POLICY_NOT_MODELLED"] == "medium"
    assert codes["ACCESS_WEAKENED"] == "high" and "ALLOWED_ROLE_LOCKED_OUT" in codes


def test_a_service_principal_is_reported_but_does_not_blind_the_statement() -> None:
    doc = copy.deepcopy(BASE)
    doc["Statement"].append({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                             "Action": "execute-api:Invoke", "Resource": f"{ARN}/*"})  # fmt: skip
    verdict = check_policy(json.dumps(doc), API, [ROLE], METHODS)
    codes = {f.code for f in verdict.findings}
    assert codes == {"POLICY_NOT_MODELLED"}  # no caller class changed access


def test_one_weakening_that_lets_several_kinds_of_caller_in_is_one_finding() -> None:
    # GIVEN the console weakening: the Deny exempts every role of the account (StringNotLike role/*), so by
    # IAM's rules any role gets in unconditionally, and any other principal of the account depending on who
    weakened = variant(Condition={"StringNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*"}})
    verdict = check_policy(json.dumps(weakened), API, [ROLE], METHODS)
    # THEN it is reported once, critical (someone always gets in), naming both kinds of caller
    [finding] = [f for f in verdict.findings if f.code == "ACCESS_WEAKENED"]
    assert finding.severity.value == "critical"
    assert finding.message.startswith("any principal matching arn:aws:iam::123456789012:role/* can invoke")
    assert "Also: another principal in account 123456789012 can, depending on who" in finding.message
