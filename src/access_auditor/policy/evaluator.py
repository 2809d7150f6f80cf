"""The access evaluator: would API Gateway let this caller invoke this method? Pure code, no I/O.

It models the authorization workflow of REST APIs (API Gateway developer guide, "How API Gateway resource
policies affect authorization workflow"):

* ``AWS_IAM`` methods: an unsigned call is refused before any policy is read. For a signed call an explicit
  Deny wins; otherwise a caller in the API's account is let in when *either* its identity policy or the
  resource policy allows, and a caller from another account only when *both* do.
* ``NONE`` methods (and authorizer-based ones, as far as the resource policy goes): the caller is
  anonymous, so principal keys are absent; the resource policy must explicitly allow, and any explicit Deny
  refuses. With no resource policy at all the method is public.

Conditions follow the IAM User Guide ("IAM JSON policy elements: Condition operators", "Set operators for
multivalued context keys", "Condition with multiple context keys or values"):

* negated operators (``StringNotEquals``, ``ArnNotLike``, ...) are true when the key is absent, as are
  ``...IfExists`` forms; ``ForAllValues:`` is true when the key is absent and ``ForAnyValue:`` is *false*,
  with or without ``IfExists``;
* several values for one key are ORed, for every operator, ``Null`` included;
* an operator of the wrong type for its key, a value that is not what the operator reads (a CIDR, an ARN,
  a boolean), a key whose value we cannot know and a policy variable are *not modelled*.

Anything not modelled evaluates to the caller-chosen ``unknown_as``; callers evaluate both ways and treat a
difference as "conditional", so nothing unmodelled passes silently.

Each statement splits into three independent tests (the request's *identity*, its *network* origin, and the
*method* it targets); ``matrix.access_matrix`` relies on that split to judge every caller and method
without enumerating their product.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from functools import lru_cache

from access_auditor.policy.document import Condition, Policy, Statement

INVOKE = "execute-api:Invoke"

# Keys the evaluator models, by lower-cased name: (RequestContext attribute, value type).
_MODELLED_KEYS = {
    "aws:principalarn": ("principal_arn", "arn"),
    "aws:principalaccount": ("account", "string"),
    "aws:principalorgid": ("org_id", "string"),
    "aws:userid": ("user_id", "string"),
    "aws:username": ("username", "string"),
    "aws:sourceip": ("source_ip", "ip"),
    "aws:sourcevpce": ("source_vpce", "string"),
    "aws:sourcevpc": ("source_vpc", "string"),
    # The caller's address inside its VPC: set, like the two above, only on a request through a VPC endpoint,
    # where aws:SourceIp is absent ("AWS global condition context keys").
    "aws:vpcsourceip": ("vpc_source_ip", "ip"),
}
NETWORK_KEYS = frozenset({"aws:sourceip", "aws:sourcevpce", "aws:sourcevpc", "aws:vpcsourceip"})
# Keys AWS does set on some requests but whose value the evaluator cannot know: unmodelled, never "absent".
_UNMODELLED_KEY = re.compile(
    r"^(aws:(currenttime|epochtime|securetransport|useragent|referer|principaltag/.*|principaltype|"
    r"principalorgpaths|principalisawsservice|principalservicename.*|resourcetag/.*|requesttag/.*|"
    r"resourceaccount|resourceorgid|resourceorgpaths|multifactorauth.*|tokenissuetime|sourcearn|"
    r"sourceaccount|sourceorgid|sourceorgpaths|calledvia.*|viaawsservice|requestedregion|"
    r"tagkeys|sourceidentity|federatedprovider|ec2instancesourcevpc|ec2instancesourceprivateipv4|"
    r"assumedroot)|execute-api:.*)$"
)
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NotIpAddress": "IpAddress",
}
# The value types each operator family may be applied to (IAM: "Condition operators").
_OPERATOR_TYPES = {
    "StringEquals": {"string", "arn"},
    "StringEqualsIgnoreCase": {"string", "arn"},
    "StringLike": {"string", "arn"},
    "ArnEquals": {"arn"},
    "ArnLike": {"arn"},
    "IpAddress": {"ip"},
    "Bool": {"bool"},
    "Null": {"string", "arn", "ip", "bool"},
}
_ARN_SHAPE = re.compile(r"^arn:[^:]*:[^:]*:[^:]*:[^:]*:.+$", re.DOTALL)


@dataclass(frozen=True)
class RequestContext:
    """What API Gateway knows about a request. ``principal_arn`` None means anonymous (unsigned, or a
    ``NONE`` method). For a role, ``principal_arn`` is the role ARN, path included (what
    ``aws:PrincipalArn`` holds), and ``session_arn`` is the assumed-role session ARN
    (``arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION``)."""

    principal_arn: str | None = None
    account: str | None = None
    org_id: str | None = None
    user_id: str | None = None
    username: str | None = None
    source_ip: str | None = None
    source_vpce: str | None = None
    source_vpc: str | None = None
    session_arn: str | None = None
    vpc_source_ip: str | None = None

    def value(self, key: str) -> str | None:
        modelled = _MODELLED_KEYS.get(key.lower())
        return getattr(self, modelled[0]) if modelled else None

    def anonymous(self) -> RequestContext:
        return replace(
            self, principal_arn=None, account=None, org_id=None, user_id=None, username=None, session_arn=None
        )


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
            reason = condition_problem(condition)
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
        if (
            targets(statement, action, resource, unknown_as)
            and identity_holds(statement, context, unknown_as, check_principal=check_principal)
            and network_holds(statement, context, unknown_as)
        ):
            (denied if statement.effect == "Deny" else allowed).append(statement.label)
    return PolicyResult(denied_by=tuple(denied), allowed_by=tuple(allowed))


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


# --- the three parts of a statement ------------------------------------------------------------------------


def targets(statement: Statement, action: str, resource: str, unknown_as: bool) -> bool:
    """Whether the statement's Action/NotAction and Resource/NotResource cover ``action`` on ``resource``."""
    if statement.opaque:
        return unknown_as
    if not covers_action(statement, action):
        return False
    if statement.resources is not None and not any(
        glob_match(r, resource, True) for r in statement.resources
    ):
        return False
    return not (
        statement.not_resources is not None
        and any(glob_match(r, resource, True) for r in statement.not_resources)
    )


def covers_action(statement: Statement, action: str) -> bool:
    """Whether Action/NotAction cover ``action`` (IAM matches action names without regard to case)."""
    if statement.actions is not None and not any(glob_match(a, action, False) for a in statement.actions):
        return False
    return not (
        statement.not_actions is not None and any(glob_match(a, action, False) for a in statement.not_actions)
    )


def identity_holds(
    statement: Statement, context: RequestContext, unknown_as: bool, *, check_principal: bool = True
) -> bool:
    """Whether the Principal/NotPrincipal element and every condition on a non-network key hold."""
    if statement.opaque:
        return unknown_as
    if check_principal and not _principal_matches(statement, context, unknown_as):
        return False
    return all(
        _condition_holds(c, context, unknown_as)
        for c in statement.conditions
        if c.key.lower() not in NETWORK_KEYS
    )


def network_holds(statement: Statement, context: RequestContext, unknown_as: bool) -> bool:
    """Whether every condition on a network key (source IP, VPC endpoint, VPC) holds."""
    if statement.opaque:
        return unknown_as
    return all(
        _condition_holds(c, context, unknown_as)
        for c in statement.conditions
        if c.key.lower() in NETWORK_KEYS
    )


# --- principals ------------------------------------------------------------------------------------------


def _principal_matches(statement: Statement, context: RequestContext, unknown_as: bool) -> bool:
    if statement.principals is not None:
        return any(_one_principal(p, context) for p in statement.principals)
    assert statement.not_principals is not None
    exempt = _not_principal_exempts(statement.not_principals, context)
    return unknown_as if exempt is None else not exempt


def _account_root(entry: str, account: str | None) -> bool:
    return account is not None and re.fullmatch(rf"arn:aws[a-z-]*:iam::{account}:root", entry) is not None


def _one_principal(entry: str, context: RequestContext) -> bool:
    """IAM "Principal" element: ``*``; the role (every session of it) or user ARN; a specific role session
    ARN; or an account, which delegates to every principal of that account."""
    if entry == "*":
        return True
    if context.principal_arn is None:
        return False
    if entry in (context.principal_arn, context.session_arn):
        return True
    return _account_root(entry, context.account)


def _not_principal_exempts(entries: tuple[str, ...], context: RequestContext) -> bool | None:
    """Whether a NotPrincipal list exempts the caller; None when the IAM page leaves it open.

    IAM "NotPrincipal": AWS may validate the account first, then the role (or user), then the role session,
    so the caller is exempt only when its account *and* its role or user are listed. With the account left
    out, the whole account is denied. A session listed without its role "might" be denied: unknown.
    """
    if "*" in entries:
        return True
    if context.principal_arn is None:
        return False
    if not any(_account_root(entry, context.account) for entry in entries):
        return False
    if context.principal_arn in entries:
        return True
    if context.session_arn is not None and context.session_arn in entries:
        return None
    return False


# --- conditions ------------------------------------------------------------------------------------------


def _split_operator(operator: str) -> tuple[str | None, str, bool]:
    """(set prefix, base operator, IfExists) for ``ForAnyValue:StringLikeIfExists`` and the like."""
    prefix = None
    for candidate in ("ForAnyValue:", "ForAllValues:"):
        if operator.startswith(candidate):
            prefix, operator = candidate[:-1], operator[len(candidate) :]
    if_exists = operator.endswith("IfExists")
    return prefix, operator.removesuffix("IfExists"), if_exists


@lru_cache(maxsize=4096)
def condition_problem(condition: Condition) -> str | None:
    """Why ``condition`` cannot be evaluated exactly, or None when it can."""
    prefix, base, if_exists = _split_operator(condition.operator)
    positive = _NEGATED.get(base, base)
    if positive not in _OPERATOR_TYPES or (base == "Null" and (prefix or if_exists)):
        return f"condition operator {condition.operator}"
    key = condition.key.lower()
    if any("${" in value for value in condition.values):
        return f"policy variable in {condition.operator} {condition.key}"
    if _UNMODELLED_KEY.match(key) and key not in _MODELLED_KEYS:
        return f"condition key {condition.key}"
    if base == "Null":
        bad = [v for v in condition.values if v.lower() not in {"true", "false"}]
        return f"Null {condition.key} value {bad[0]!r} is not true or false" if bad else None
    modelled = _MODELLED_KEYS.get(key)
    if modelled and modelled[1] not in _OPERATOR_TYPES[positive]:
        return f"operator {condition.operator} does not apply to {condition.key} (a {modelled[1]} key)"
    for value in condition.values:
        if positive == "IpAddress" and _ip_range(value) is None:
            return f"{condition.operator} {condition.key} value {value!r} is not an IP address or CIDR range"
        if positive in {"ArnEquals", "ArnLike"} and not _ARN_SHAPE.match(value):
            return f"{condition.operator} {condition.key} value {value!r} is not an ARN"
        if positive == "Bool" and value.lower() not in {"true", "false"}:
            return f"Bool {condition.key} value {value!r} is not true or false"
    return None


def _condition_holds(condition: Condition, context: RequestContext, unknown_as: bool) -> bool:
    if condition_problem(condition):
        return unknown_as
    prefix, base, if_exists = _split_operator(condition.operator)
    # A key outside the modelled set that is not known to exist (a typo such as aws:PrincipalArnn) is
    # absent from every request, as it is in AWS.
    value = context.value(condition.key)
    if base == "Null":
        # "true": the key must be absent; "false": present. Several values are ORed.
        return any((value is None) == (v.lower() == "true") for v in condition.values)
    if value is None:
        if prefix == "ForAnyValue":
            return False
        if prefix == "ForAllValues" or if_exists:
            return True
        return base in _NEGATED
    # Every modelled key is single-valued, so a set operator on a present key reads its one value.
    positive = _NEGATED.get(base, base)
    matched = any(_value_matches(positive, value, expected) for expected in condition.values)
    return not matched if base in _NEGATED else matched


def _value_matches(operator: str, actual: str, expected: str) -> bool:
    if operator == "StringEquals":
        return actual == expected
    if operator == "StringEqualsIgnoreCase":
        return actual.lower() == expected.lower()
    if operator == "StringLike":
        return glob_match(expected, actual, True)
    if operator in {"ArnEquals", "ArnLike"}:
        return _arn_like(expected, actual)
    if operator == "Bool":
        return actual.lower() == expected.lower()
    if operator == "IpAddress":
        address, network = _ip_value(actual), _ip_range(expected)
        return (
            address is not None
            and network is not None
            and address[0] == network[0]
            and network[1] <= address[1] <= network[2]
        )
    raise AssertionError(f"unreachable operator {operator}")


@lru_cache(maxsize=8192)
def _ip_range(text: str) -> tuple[int, int, int] | None:
    """(IP version, first address, last address) of a CIDR range or address, as integers."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    return network.version, int(network.network_address), int(network.broadcast_address)


@lru_cache(maxsize=4096)
def _ip_value(text: str) -> tuple[int, int] | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return address.version, int(address)


def _arn_like(pattern: str, arn: str) -> bool:
    # ArnEquals and ArnLike compare each of the six colon-separated parts on its own; a wildcard in one part
    # does not reach into the next (IAM User Guide, "Amazon Resource Name (ARN) condition operators").
    pattern_parts = pattern.split(":", 5)
    arn_parts = arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return False
    return all(glob_match(p, a, True) for p, a in zip(pattern_parts, arn_parts, strict=True))


# --- wildcards -------------------------------------------------------------------------------------------


def glob_match(pattern: str, text: str, case_sensitive: bool) -> bool:
    """IAM wildcard matching: ``*`` matches any run of characters (``/`` and the empty string included),
    ``?`` exactly one. Never backtracks: the pattern splits at ``*`` into fixed-length pieces, the first
    anchored at the start, the last at the end, and each middle piece taken at its leftmost fit, which is
    always safe because a later piece can only gain room from an earlier fit.

    >>> glob_match("arn:aws:iam::*:role/app-?", "arn:aws:iam::123456789012:role/app-1", True)
    True
    """
    if not case_sensitive:
        pattern, text = pattern.lower(), text.lower()
    pieces = _pieces(pattern)
    if len(pieces) == 1:
        return len(pattern) == len(text) and _fits(pattern, text, 0)
    first, last = pieces[0], pieces[-1]
    end = len(text) - len(last)
    if end < len(first) or not _fits(first, text, 0) or not _fits(last, text, end):
        return False
    position = len(first)
    for piece in pieces[1:-1]:
        if piece:
            found = _find(piece, text, position, end)
            if found < 0:
                return False
            position = found + len(piece)
    return True


@lru_cache(maxsize=4096)
def _pieces(pattern: str) -> tuple[str, ...]:
    return tuple(pattern.split("*"))


def _fits(piece: str, text: str, at: int) -> bool:
    if "?" not in piece:
        return text.startswith(piece, at)
    return at + len(piece) <= len(text) and all(p in ("?", t) for p, t in zip(piece, text[at:], strict=False))


def _find(piece: str, text: str, start: int, end: int) -> int:
    if "?" not in piece:
        return text.find(piece, start, end)
    match = _fixed_length_regex(piece).search(text, start, end)
    return match.start() if match else -1


@lru_cache(maxsize=4096)
def _fixed_length_regex(piece: str) -> re.Pattern[str]:
    # Literals and single-character wildcards only: no quantifier, so no backtracking.
    return re.compile("".join("." if ch == "?" else re.escape(ch) for ch in piece), re.DOTALL)
