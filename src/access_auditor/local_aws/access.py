"""The local gateway's own access decision, written apart from the product's evaluator on purpose.

The product's evaluator is built for analysis (unknown elements, statements split into parts, bit masks).
This is the opposite: one request, one plain walk through the IAM rules as the documentation states them,
no shared code with ``access_auditor.policy``. The tests run both over generated policies; a disagreement
is a bug in one of them, to be settled against the documentation.

Sources: API Gateway developer guide, "How API Gateway resource policies affect authorization workflow";
IAM User Guide, "Condition operators", "Set operators for multivalued context keys", "Condition with
multiple context keys or values", "Principal" and "NotPrincipal".
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

INVOKE = "execute-api:invoke"
ASSUME_ROLE = "sts:assumerole"
NETWORK_KEYS = frozenset(
    {"aws:sourceip", "aws:sourcevpce", "aws:sourcevpc", "aws:vpcsourceip", "aws:securetransport"}
)


@dataclass(frozen=True)
class Caller:
    """Who is calling. ``arn`` is aws:PrincipalArn (a role's ARN with its path); ``session`` the assumed-role
    session ARN; ``keys`` every other context key the request carries, by lower-case name."""

    arn: str | None = None
    account: str | None = None
    session: str | None = None
    keys: dict[str, str] = field(default_factory=dict)


def read_stored_policy(text: str) -> dict[str, Any]:
    """The policy as API Gateway stores it (quotes and slashes backslash-escaped), or plain JSON. Numbers are
    kept as their text (conditions compare text here), so a number of any length reads."""
    try:
        return dict(json.loads(text, parse_int=str))
    except ValueError:
        return dict(json.loads(json.loads(f'"{text}"'), parse_int=str))


def decide(
    policy: dict[str, Any] | None,
    authorization_type: str,
    caller: Caller,
    method_arn: str,
    api_account: str,
    identity_allows: bool,
) -> tuple[bool, str]:
    """(allowed, reason) for one call. Reasons: missing-token, explicit-deny, implicit-deny, allowed."""
    if authorization_type == "AWS_IAM":
        if caller.arn is None:
            return False, "missing-token"
        who = caller
    else:
        # No IAM identity reaches the policy: only what the network says about the request is known.
        who = Caller(keys={k: v for k, v in caller.keys.items() if k in NETWORK_KEYS})
        if policy is None:
            return True, "allowed"
    denied = allowed = False
    for statement in _statements(policy):
        if _statement_applies(statement, who, method_arn):
            if statement["Effect"] == "Deny":
                denied = True
            else:
                allowed = True
    if denied:
        return False, "explicit-deny"
    if authorization_type != "AWS_IAM":
        return (True, "allowed") if allowed else (False, "implicit-deny")
    if caller.account == api_account:
        return (True, "allowed") if (allowed or identity_allows) else (False, "implicit-deny")
    return (True, "allowed") if (allowed and identity_allows) else (False, "implicit-deny")


def identity_grants(
    policies: list[dict[str, Any]], caller: Caller, resource: str, action: str = INVOKE
) -> bool:
    """Whether the caller's own IAM policies allow ``action`` on ``resource`` and none denies it."""
    applying = [
        s for p in policies for s in _statements(p) if _statement_applies(s, caller, resource, action)
    ]
    return any(s["Effect"] == "Allow" for s in applying) and not any(s["Effect"] == "Deny" for s in applying)


def trust_admits(trust: dict[str, Any], caller: Caller) -> bool:
    """Whether a role's trust policy lets ``caller`` call sts:AssumeRole ("Principal" and "Condition"
    pages: the account's root principal stands for every principal of that account)."""
    applying = [s for s in _statements(trust) if _statement_applies(s, caller, "", ASSUME_ROLE)]
    return any(s["Effect"] == "Allow" for s in applying) and not any(s["Effect"] == "Deny" for s in applying)


def _statements(policy: dict[str, Any] | None) -> list[dict[str, Any]]:
    if policy is None:
        return []
    statements = policy.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statement_applies(
    statement: dict[str, Any], caller: Caller, method_arn: str, action: str = INVOKE
) -> bool:
    if "Principal" in statement and not _principal_listed(statement["Principal"], caller):
        return False
    if "NotPrincipal" in statement and _exempt_by_not_principal(statement["NotPrincipal"], caller):
        return False
    if "Action" in statement and not any(_wildcard(a.lower(), action) for a in _as_list(statement["Action"])):
        return False
    if "NotAction" in statement and any(
        _wildcard(a.lower(), action) for a in _as_list(statement["NotAction"])
    ):
        return False
    # A trust policy names no resource (it is the role's own): method_arn is empty and these do not apply.
    if (
        method_arn
        and "Resource" in statement
        and not any(_wildcard(r, method_arn) for r in _as_list(statement["Resource"]))
    ):
        return False
    if (
        method_arn
        and "NotResource" in statement
        and any(_wildcard(r, method_arn) for r in _as_list(statement["NotResource"]))
    ):
        return False
    for operator, block in statement.get("Condition", {}).items():
        for key, values in block.items():
            if not _condition(operator, key, [_text(v) for v in _as_list(values)], caller):
                return False
    return True


def _text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def _aws_entries(principal: Any) -> list[str]:
    if principal == "*":
        return ["*"]
    entries = []
    for entry in _as_list(principal.get("AWS", [])):
        entries.append(f"arn:aws:iam::{entry}:root" if entry.isdigit() and len(entry) == 12 else entry)
    return entries


def _principal_listed(principal: Any, caller: Caller) -> bool:
    for entry in _aws_entries(principal):
        if entry == "*":
            return True
        if caller.arn is None:
            continue
        if entry == caller.arn or entry == caller.session or entry == f"arn:aws:iam::{caller.account}:root":
            return True
    return False


def _exempt_by_not_principal(principal: Any, caller: Caller) -> bool:
    # "NotPrincipal" page: AWS may check the account, then the role or user, then the session; a caller is
    # left out of the Deny only when its account and its role (or user) are both listed.
    entries = _aws_entries(principal)
    if "*" in entries:
        return True
    if caller.arn is None:
        return False
    return f"arn:aws:iam::{caller.account}:root" in entries and caller.arn in entries


def _context_value(key: str, caller: Caller) -> str | None:
    key = key.lower()
    if key == "aws:principalarn":
        return caller.arn
    if key == "aws:principalaccount":
        return caller.account
    return caller.keys.get(key)


def _condition(operator: str, key: str, values: list[str], caller: Caller) -> bool:
    qualifier = ""
    if ":" in operator:
        qualifier, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    if if_exists:
        operator = operator[: -len("IfExists")]
    present = _context_value(key, caller)
    if operator == "Null":
        return any((present is None) == (v.lower() == "true") for v in values)
    if present is None:
        if qualifier == "ForAnyValue":
            return False
        if qualifier == "ForAllValues" or if_exists:
            return True
        return operator.startswith("StringNot") or operator.startswith("ArnNot") or operator == "NotIpAddress"
    negate = operator.startswith("StringNot") or operator.startswith("ArnNot") or operator == "NotIpAddress"
    base = operator.replace("Not", "", 1) if negate else operator
    hit = any(_compare(base, present, v) for v in values)
    return not hit if negate else hit


def _compare(operator: str, actual: str, wanted: str) -> bool:
    if operator == "StringEquals":
        return actual == wanted
    if operator == "StringEqualsIgnoreCase":
        return actual.lower() == wanted.lower()
    if operator == "StringLike":
        return _wildcard(wanted, actual)
    if operator in ("ArnEquals", "ArnLike"):
        want, have = wanted.split(":", 5), actual.split(":", 5)
        return (
            len(want) == 6
            and len(have) == 6
            and all(_wildcard(w, h) for w, h in zip(want, have, strict=True))
        )
    if operator == "IpAddress":
        try:
            return ipaddress.ip_address(actual) in ipaddress.ip_network(wanted, strict=False)
        except ValueError:
            return False
    if operator == "Bool":
        return actual.lower() == wanted.lower()
    return False  # an operator this gateway does not know never matches


def _wildcard(pattern: str, text: str) -> bool:
    """Textbook dynamic programming: ``*`` any run, ``?`` one character."""
    row = [True] + [False] * len(text)
    for p in pattern:
        if p == "*":
            for i in range(1, len(text) + 1):
                row[i] = row[i] or row[i - 1]
        else:
            new = [False] * (len(text) + 1)
            for i in range(1, len(text) + 1):
                new[i] = row[i - 1] and (p == "?" or p == text[i - 1])
            row = new
    return row[len(text)]
