"""The access evaluator: would API Gateway let this caller invoke this method? Pure code, no I/O.

It models the authorization workflow of REST APIs (API Gateway developer guide, "How API Gateway resource
policies affect authorization workflow"):

* ``AWS_IAM`` methods: an unsigned call is refused before any policy is read. For a signed call an explicit
  Deny wins; otherwise a caller in the API's account is let in when *either* its identity policy or the
  resource policy allows, and a caller from another account only when *both* do.
* ``NONE`` methods (and authorizer-based ones, as far as the resource policy goes): the caller is
  anonymous, so principal keys are absent; the resource policy must explicitly allow, and any explicit Deny
  refuses. With no resource policy at all the method is public.

Conditions follow IAM's rules, including the one this product rests on: negated operators
(``StringNotEquals``, ``ArnNotLike``, ...) are *true when the key is absent*, as are ``...IfExists`` forms.
An element the evaluator cannot model evaluates to the caller-chosen ``unknown_as``; callers evaluate both
ways and treat a difference as "conditional", so nothing unmodelled passes silently.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache

from access_auditor.policy.document import Condition, Policy, Statement

INVOKE = "execute-api:Invoke"

# Keys the evaluator models, by lower-cased name, mapped to RequestContext attributes.
_MODELLED_KEYS = {
    "aws:principalarn": "principal_arn",
    "aws:principalaccount": "account",
    "aws:principalorgid": "org_id",
    "aws:userid": "user_id",
    "aws:username": "username",
    "aws:sourceip": "source_ip",
    "aws:sourcevpce": "source_vpce",
    "aws:sourcevpc": "source_vpc",
}
_PRINCIPAL_KEYS = {
    "aws:principalarn",
    "aws:principalaccount",
    "aws:principalorgid",
    "aws:userid",
    "aws:username",
}
# Keys AWS does set on some requests but whose value the evaluator cannot know: unmodelled, never "absent".
_UNMODELLED_KEY = re.compile(
    r"^(aws:(currenttime|epochtime|securetransport|useragent|referer|principaltag/.*|principaltype|"
    r"principalorgpaths|principalisawsservice|principalservicename.*|resourcetag/.*|requesttag/.*|"
    r"resourceaccount|resourceorgid|resourceorgpaths|multifactorauth.*|tokenissuetime|sourcearn|"
    r"sourceaccount|sourceorgid|sourceorgpaths|vpcsourceip|calledvia.*|viaawsservice|requestedregion|"
    r"tagkeys|sourceidentity|federatedprovider|ec2instancesourcevpc|ec2instancesourceprivateipv4)|"
    r"execute-api:.*)$"
)
_STRING_OPS = {"StringEquals", "StringEqualsIgnoreCase", "StringLike"}
_ARN_OPS = {"ArnEquals", "ArnLike"}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NotIpAddress": "IpAddress",
}
_POSITIVE = _STRING_OPS | _ARN_OPS | {"IpAddress", "Bool"}


@dataclass(frozen=True)
class RequestContext:
    """What API Gateway knows about a request. ``principal_arn`` None means anonymous (unsigned, or a
    ``NONE`` method). For a role, ``principal_arn`` is the role ARN, path included."""

    principal_arn: str | None = None
    account: str | None = None
    org_id: str | None = None
    user_id: str | None = None
    username: str | None = None
    source_ip: str | None = None
    source_vpce: str | None = None
    source_vpc: str | None = None

    def value(self, key: str) -> str | None:
        attribute = _MODELLED_KEYS.get(key.lower())
        return getattr(self, attribute) if attribute else None

    def anonymous(self) -> RequestContext:
        return replace(self, principal_arn=None, account=None, org_id=None, user_id=None, username=None)


@dataclass(frozen=True)
class PolicyResult:
    denied_by: tuple[str, ...]
    allowed_by: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    """``reason`` is one of: explicit-deny, missing-token, implicit-deny, identity-policy, resource-policy,
    no-policy, authorizer. ``statements`` names the policy statements responsible."""

    allowed: bool
    reason: str
    statements: tuple[str, ...] = ()


def unmodelled_elements(policy: Policy) -> list[str]:
    """Everything in ``policy`` the evaluator cannot model; each becomes a 'cannot prove equivalence' finding."""
    found = list(policy.unmodelled)
    for statement in policy.statements:
        found.extend(statement.unmodelled)
        for condition in statement.conditions:
            reason = _unmodelled_condition(condition)
            if reason:
                found.append(f"{statement.label}: {reason}")
    return found


def evaluate_policy(
    policy: Policy,
    context: RequestContext,
    resource: str,
    *,
    action: str = INVOKE,
    check_principal: bool = True,
    unknown_as: bool = False,
) -> PolicyResult:
    """Which statements of ``policy`` deny and which allow ``action`` on ``resource`` for ``context``.

    ``check_principal`` is False for identity policies, which have no Principal element.
    """
    denied: list[str] = []
    allowed: list[str] = []
    for statement in policy.statements:
        if _applies(statement, context, action, resource, check_principal, unknown_as):
            (denied if statement.effect == "Deny" else allowed).append(statement.label)
    return PolicyResult(denied_by=tuple(denied), allowed_by=tuple(allowed))


def identity_allows(policies: Iterable[Policy], context: RequestContext, resource: str) -> bool:
    """Whether a principal's identity policies grant ``execute-api:Invoke`` on ``resource`` (no Deny)."""
    results = [evaluate_policy(p, context, resource, check_principal=False) for p in policies]
    return any(r.allowed_by for r in results) and not any(r.denied_by for r in results)


def decide_invoke(
    resource_policy: Policy | None,
    authorization_type: str,
    context: RequestContext,
    method_arn: str,
    api_account: str,
    *,
    identity_allowed: bool,
    unknown_as: bool = False,
) -> Decision:
    """Decide one invocation the way API Gateway does. ``identity_allowed``: the caller's own IAM policies
    grant execute-api:Invoke on ``method_arn``.

    >>> decide_invoke(None, "AWS_IAM", RequestContext(), "arn:...", "123456789012", identity_allowed=False)
    Decision(allowed=False, reason='missing-token', statements=())
    """
    if authorization_type == "AWS_IAM":
        if context.principal_arn is None:
            return Decision(False, "missing-token")
        result = _evaluate(resource_policy, context, method_arn, unknown_as)
        if result.denied_by:
            return Decision(False, "explicit-deny", result.denied_by)
        if context.account == api_account:
            if result.allowed_by:
                return Decision(True, "resource-policy", result.allowed_by)
            return Decision(identity_allowed, "identity-policy" if identity_allowed else "implicit-deny")
        if identity_allowed and result.allowed_by:
            return Decision(True, "resource-policy", result.allowed_by)
        return Decision(False, "implicit-deny")

    # NONE, CUSTOM, COGNITO_USER_POOLS: no IAM identity reaches the policy.
    anonymous = context.anonymous()
    via_authorizer = authorization_type != "NONE"
    if resource_policy is None:
        return Decision(True, "authorizer" if via_authorizer else "no-policy")
    result = _evaluate(resource_policy, anonymous, method_arn, unknown_as)
    if result.denied_by:
        return Decision(False, "explicit-deny", result.denied_by)
    if result.allowed_by:
        return Decision(True, "authorizer" if via_authorizer else "resource-policy", result.allowed_by)
    return Decision(False, "implicit-deny")


def _evaluate(
    policy: Policy | None, context: RequestContext, resource: str, unknown_as: bool
) -> PolicyResult:
    if policy is None:
        return PolicyResult((), ())
    return evaluate_policy(policy, context, resource, unknown_as=unknown_as)


def _applies(
    statement: Statement,
    context: RequestContext,
    action: str,
    resource: str,
    check_principal: bool,
    unknown_as: bool,
) -> bool:
    if statement.opaque:
        return unknown_as
    if check_principal and not _principal_matches(statement, context, unknown_as):
        return False
    if statement.actions is not None and not any(_glob(a, action, False) for a in statement.actions):
        return False
    if statement.not_actions is not None and any(_glob(a, action, False) for a in statement.not_actions):
        return False
    if statement.resources is not None and not any(_glob(r, resource, True) for r in statement.resources):
        return False
    if statement.not_resources is not None and any(_glob(r, resource, True) for r in statement.not_resources):
        return False
    return all(_condition_holds(c, context, unknown_as) for c in statement.conditions)


def _principal_matches(statement: Statement, context: RequestContext, unknown_as: bool) -> bool:
    if statement.principals is not None:
        return any(_one_principal(p, context) for p in statement.principals)
    assert statement.not_principals is not None
    return not any(_one_principal(p, context) for p in statement.not_principals)


def _one_principal(entry: str, context: RequestContext) -> bool:
    if entry == "*":
        return True
    if context.principal_arn is None:
        return False
    if entry == context.principal_arn:
        return True
    # An account's root in a resource policy delegates to every principal of that account.
    return context.account is not None and entry.endswith(f":iam::{context.account}:root")


def _unmodelled_condition(condition: Condition) -> str | None:
    operator = condition.operator
    for prefix in ("ForAnyValue:", "ForAllValues:"):
        operator = operator.removeprefix(prefix)
    base = operator.removesuffix("IfExists")
    if base != "Null" and base not in _POSITIVE and base not in _NEGATED:
        return f"condition operator {condition.operator}"
    if _UNMODELLED_KEY.match(condition.key.lower()) and condition.key.lower() not in _MODELLED_KEYS:
        return f"condition key {condition.key}"
    if any("${" in value for value in condition.values):
        return f"policy variable in {condition.operator} {condition.key}"
    return None


def _condition_holds(condition: Condition, context: RequestContext, unknown_as: bool) -> bool:
    if _unmodelled_condition(condition):
        return unknown_as
    operator = condition.operator
    for_all = operator.startswith("ForAllValues:")
    for_any = operator.startswith("ForAnyValue:")
    operator = operator.split(":", 1)[1] if (for_all or for_any) else operator
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    # A key outside both sets (a typo such as aws:PrincipalArnn) is simply absent from every request.
    value = context.value(condition.key)

    if base == "Null":
        wants_absent = condition.values[:1] == ("true",)
        return (value is None) == wants_absent
    if value is None:
        if if_exists or for_all:
            return True
        if for_any:
            return False
        return base in _NEGATED  # the negated operators are true when the key is absent
    positive = _NEGATED.get(base, base)
    matched = any(_value_matches(positive, value, expected) for expected in condition.values)
    return not matched if base in _NEGATED else matched


def _value_matches(operator: str, actual: str, expected: str) -> bool:
    if operator == "StringEquals":
        return actual == expected
    if operator == "StringEqualsIgnoreCase":
        return actual.lower() == expected.lower()
    if operator == "StringLike":
        return _glob(expected, actual, True)
    if operator in _ARN_OPS:
        return _arn_like(expected, actual)
    if operator == "Bool":
        return actual.lower() == expected.lower()
    if operator == "IpAddress":
        try:
            return ipaddress.ip_address(actual) in ipaddress.ip_network(expected, strict=False)
        except ValueError:
            return False
    raise AssertionError(f"unreachable operator {operator}")


def _arn_like(pattern: str, arn: str) -> bool:
    # ArnEquals and ArnLike compare each of the six colon-separated parts on its own; a wildcard in one part
    # does not reach into the next (IAM User Guide, "Amazon Resource Name (ARN) condition operators").
    pattern_parts = pattern.split(":", 5)
    arn_parts = arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return False
    return all(_glob(p, a, True) for p, a in zip(pattern_parts, arn_parts, strict=True))


def _glob(pattern: str, text: str, case_sensitive: bool) -> bool:
    return _compile_glob(pattern, case_sensitive).fullmatch(text) is not None


@lru_cache(maxsize=4096)
def _compile_glob(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    # In IAM patterns '*' matches any run of characters, '/' and the empty string included; '?' one.
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.DOTALL if case_sensitive else re.IGNORECASE | re.DOTALL)
