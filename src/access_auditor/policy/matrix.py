"""Who can invoke what: the access matrix of one policy, one cell per (caller class, method group).

Each class stands for concrete request contexts: identities (principals, role sessions, organisations the
policies name) combined with network origins (IP ranges, VPC endpoints, VPCs they name). A cell is
``allowed`` when every combination gets in, ``denied`` when none does, and ``conditional`` otherwise.
Pure code, no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from access_auditor.policy.document import ApiRef, Policy, Statement
from access_auditor.policy.evaluator import (
    INVOKE,
    RequestContext,
    covers_action,
    glob_match,
    identity_holds,
    network_holds,
    targets,
)
from access_auditor.policy.expected import role_account

OTHER_STAGE = "<any-other-stage>"
_WITNESS = "apigw-auditor-witness"
_BASE_IP = "203.0.113.10"  # TEST-NET-3: an address no policy names
_OUTSIDE_ACCOUNT = "000000000000"


class Access(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    CONDITIONAL = "conditional"


@dataclass(frozen=True)
class Method:
    """One method of the API. ``path`` is the resource path (``/health``, ``/items/{id}``)."""

    stage: str
    http_method: str
    path: str
    authorization_type: str = "AWS_IAM"

    def arn(self, api: ApiRef) -> str:
        return f"{api.arn}/{self.stage}/{self.http_method}/{self.path.lstrip('/')}"

    def __str__(self) -> str:
        return f"{self.http_method} {self.path} on stage {self.stage}"


@dataclass(frozen=True)
class CallerClass:
    """A kind of caller. ``identities`` hold identity attributes only (principal, session, account,
    organisation); every identity is combined with every network origin of ``Callers.networks``."""

    name: str
    identities: tuple[RequestContext, ...]
    allowed_role: bool = False


@dataclass(frozen=True)
class Callers:
    classes: tuple[CallerClass, ...]
    networks: tuple[RequestContext, ...]  # network attributes only (source IP, VPC endpoint, VPC)
    network_names: tuple[str, ...] = ()  # what each network origin is, for a finding to say where


@dataclass(frozen=True)
class Cell:
    """``allowed_by``/``denied_by``: statements behind the variants that got in / were refused;
    ``allow_reasons``: how the variants that got in got in (resource-policy, identity-policy, ...)."""

    access: Access
    allowed_by: tuple[str, ...]
    denied_by: tuple[str, ...]
    allow_reasons: tuple[str, ...]
    networks: tuple[str, ...] = ()  # the network origins through which some caller of the class got in


Group = tuple[Method, ...]


@dataclass(frozen=True)
class Matrix:
    """Who can invoke what. Methods that no statement tells apart share a group and a cell, so a matrix
    holds one cell per (caller class, group), however many methods the API has."""

    groups: tuple[Group, ...]
    cells: dict[tuple[str, int], Cell]

    def __getitem__(self, key: tuple[str, Method]) -> Cell:
        caller, method = key
        return next(self.cells[(caller, i)] for i, group in enumerate(self.groups) if method in group)


def method_groups(
    methods: Sequence[Method], api: ApiRef, policies: Iterable[Policy | None]
) -> tuple[Group, ...]:
    """Methods grouped so that within a group the authorization type is the same and every statement of
    every policy targets all of them or none (both ways of reading an unknown element)."""
    # Only the resource patterns of statements about execute-api:Invoke can tell two methods apart (an opaque
    # statement targets every method or none, whatever the method).
    patterns = sorted(
        {
            pattern
            for p in policies
            if p is not None
            for s in p.statements
            if not s.opaque and covers_action(s, INVOKE)
            for pattern in (s.resources or ()) + (s.not_resources or ())
        }
    )
    groups: dict[tuple[object, ...], list[Method]] = {}
    for method in methods:
        arn = method.arn(api)
        key = (method.authorization_type, *(glob_match(pattern, arn, True) for pattern in patterns))
        groups.setdefault(key, []).append(method)
    return tuple(tuple(group) for group in groups.values())


def session_arn(role_arn: str, session: str = _WITNESS) -> str | None:
    """The assumed-role session ARN of ``role_arn`` (the path is not part of it), or None for a non-role."""
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return None
    return f"arn:{parts[1]}:sts::{parts[4]}:assumed-role/{parts[5].rsplit('/', 1)[1]}/{session}"


def caller_classes(
    api: ApiRef, allowed_roles: Sequence[str], policies: Iterable[Policy], private: bool = False
) -> Callers:
    """The caller classes to analyse and the network origins, with witnesses drawn from everything
    ``policies`` mention: IP ranges, VPC endpoints and VPCs, organisation ids, principals, role sessions.
    ``private``: the API is reached only through VPC endpoints, so every origin is an endpoint in a VPC."""
    policies = list(policies)
    named, org_ids, sessions = _named_identities(policies)

    def identities(arn: str, account: str) -> tuple[RequestContext, ...]:
        session = session_arn(arn)
        base = [RequestContext(principal_arn=arn, account=account, session_arn=session)]
        # A role session the policy names is a caller of its own: a policy may single it out.
        base += [
            RequestContext(principal_arn=arn, account=account, session_arn=s)
            for s in sessions
            if session and s.rsplit("/", 1)[0] == session.rsplit("/", 1)[0] and s != session
        ]
        return tuple(base) + tuple(replace(b, org_id=org) for b in base for org in org_ids)

    classes = [CallerClass("anonymous caller", (RequestContext(),))]
    classes += [
        CallerClass(f"allowed role {arn}", identities(arn, role_account(arn)), True) for arn in allowed_roles
    ]
    same = f"arn:aws:iam::{api.account}"
    classes.append(
        CallerClass(
            f"another principal in account {api.account}",
            identities(f"{same}:role/{_WITNESS}", api.account)
            + identities(f"{same}:user/{_WITNESS}", api.account),
        )
    )
    classes.append(
        CallerClass(
            "a principal in another account",
            identities(f"arn:aws:iam::{_OUTSIDE_ACCOUNT}:role/{_WITNESS}", _OUTSIDE_ACCOUNT),
        )
    )
    # Role names are unique in an account whatever the path, so a named role with an allowed role's account
    # and name is that role (its sessions are covered above).
    allowed_names = {session_arn(arn) for arn in allowed_roles}
    for arn, written in sorted(named.items()):
        if arn in allowed_roles or (session_arn(arn) and session_arn(arn) in allowed_names):
            continue
        label = (
            f"any principal matching {written}"
            if arn != written
            else f"principal {arn} (named in the policy)"
        )
        classes.append(CallerClass(label, identities(arn, arn.split(":")[4])))
    variants = _private_variants(policies) if private else _network_variants(policies)
    return Callers(tuple(classes), tuple(v for v, _ in variants), tuple(n for _, n in variants))


def access_matrix(policy: Policy | None, api: ApiRef, groups: Sequence[Group], callers: Callers) -> Matrix:
    """Evaluate every (class, method group) cell; ``groups`` come from ``method_groups`` over this policy (and
    any other it will be compared with). Callers are assumed to hold an identity policy that grants
    execute-api:Invoke (the worst case: administrators have it), so the matrix shows what the resource policy
    and the method's authorization type alone let through.

    A statement applies when its method test, its identity test and its network test all hold, and the three
    are independent. So each test is run once per method group, identity or network origin, networks are
    kept as bit masks, and a cell combines masks: the cost grows with the sum of the policy's parts, not
    with their product.
    """
    statements = policy.statements if policy else ()
    networks = callers.networks
    full = (1 << len(networks)) - 1
    passes = []
    for unknown in (False, True):
        masks = [
            sum(1 << k for k, n in enumerate(networks) if network_holds(s, n, unknown)) for s in statements
        ]
        passes.append((unknown, masks, _IdentityCache(statements, unknown)))

    cells: dict[tuple[str, int], Cell] = {}
    for index, group in enumerate(groups):
        representative = group[0]
        arn = representative.arn(api)
        targeted = {
            unknown: [targets(s, INVOKE, arn, unknown) for s in statements] for unknown in (False, True)
        }
        for caller in callers.classes:
            tally = _Tally()
            for unknown, masks, identity_ok in passes:
                for identity in caller.identities:
                    _judge(tally, policy, representative.authorization_type, identity, api.account, statements,
                           targeted[unknown], masks, identity_ok, full)  # fmt: skip
            cell = tally.cell(len(networks) * len(caller.identities) * len(passes))
            names = callers.network_names
            reached = tuple(names[k] for k in range(len(names)) if tally.reached >> k & 1)
            cells[(caller.name, index)] = replace(cell, networks=reached)
    return Matrix(tuple(groups), cells)


class _IdentityCache:
    """identity_holds for each (statement, identity), computed once per analysis pass."""

    def __init__(self, statements: Sequence[Statement], unknown: bool) -> None:
        self._statements = statements
        self._unknown = unknown
        self._seen: dict[RequestContext, list[bool]] = {}

    def __call__(self, identity: RequestContext) -> list[bool]:
        if identity not in self._seen:
            self._seen[identity] = [identity_holds(s, identity, self._unknown) for s in self._statements]
        return self._seen[identity]


@dataclass
class _Tally:
    allowed: int = 0
    allowed_by: set[str] = field(default_factory=set)
    denied_by: set[str] = field(default_factory=set)
    reasons: set[str] = field(default_factory=set)
    reached: int = 0  # the network origins (bits) through which some identity got in

    def cell(self, total: int) -> Cell:
        if self.allowed == total:
            access = Access.CONDITIONAL if "authorizer" in self.reasons else Access.ALLOWED
        else:
            access = Access.DENIED if self.allowed == 0 else Access.CONDITIONAL
        return Cell(
            access, tuple(sorted(self.allowed_by)), tuple(sorted(self.denied_by)), tuple(sorted(self.reasons))
        )


def _judge(
    tally: _Tally,
    policy: Policy | None,
    authorization_type: str,
    identity: RequestContext,
    api_account: str,
    statements: Sequence[Statement],
    targeted: list[bool],
    masks: list[int],
    identity_ok: _IdentityCache,
    full: int,
) -> None:
    """Add one identity's decisions over every network origin to ``tally`` (decide_invoke's rules, on masks)."""
    iam = authorization_type == "AWS_IAM"
    if iam and identity.principal_arn is None:
        return  # missing-token: refused before any policy
    if not iam:
        identity = identity.anonymous()
        if policy is None:
            tally.allowed += full.bit_count()
            tally.reached |= full
            tally.reasons.add("authorizer" if authorization_type != "NONE" else "no-policy")
            return
    holds = identity_ok(identity)
    applying = [i for i, s in enumerate(statements) if targeted[i] and holds[i] and masks[i]]
    deny = allow = 0
    for i in applying:
        if statements[i].effect == "Deny":
            deny |= masks[i]
        else:
            allow |= masks[i]
    # Same account: the identity policy allows (the worst case) unless a Deny applies. Otherwise both sides
    # must allow.
    same_account = iam and identity.account == api_account
    allowed = (full if same_account else allow) & ~deny
    tally.allowed += allowed.bit_count()
    tally.reached |= allowed
    tally.denied_by.update(statements[i].label for i in applying if statements[i].effect == "Deny")
    tally.allowed_by.update(
        statements[i].label for i in applying if statements[i].effect == "Allow" and masks[i] & allowed
    )
    if allow & allowed:
        tally.reasons.add("authorizer" if not iam and authorization_type != "NONE" else "resource-policy")
    if allowed & ~allow:
        tally.reasons.add("identity-policy")


def _named(policies: list[Policy], key: str) -> list[str]:
    """The values ``policies`` give the condition key ``key`` (lower case), wildcards instantiated."""
    values = [value.replace("*", "x").replace("?", "x") for policy in policies for statement in policy.statements
              for condition in statement.conditions if condition.key.lower() == key for value in condition.values]  # fmt: skip
    return list(dict.fromkeys(values))


def _addresses(ranges: list[str]) -> list[str]:
    out = []
    for value in ranges:
        try:
            out.append(str(ipaddress.ip_network(value.replace("x", "0"), strict=False).network_address))
        except ValueError:
            continue
    return out


def _network_variants(policies: list[Policy]) -> list[tuple[RequestContext, str]]:
    """One context per network origin a policy names, plus a plain public origin."""
    variants = [(RequestContext(source_ip=_BASE_IP), "the internet")]
    variants += [
        (RequestContext(source_ip=a), f"address {a}") for a in _addresses(_named(policies, "aws:sourceip"))
    ]
    variants += [(RequestContext(source_ip=_BASE_IP, source_vpce=e), f"VPC endpoint {e}")
                 for e in _named(policies, "aws:sourcevpce")]  # fmt: skip
    variants += [
        (RequestContext(source_ip=_BASE_IP, source_vpc=v), f"VPC {v}")
        for v in _named(policies, "aws:sourcevpc")
    ]
    return list(dict(variants).items())


OTHER_ENDPOINT, OTHER_VPC, _VPC_ADDRESS = "vpce-0other0endpoint", "vpc-0other0vpc", "10.255.255.10"


def _private_variants(policies: list[Policy]) -> list[tuple[RequestContext, str]]:
    """A private API is reached only through an execute-api VPC endpoint: every origin has an endpoint, its
    VPC and an address in it (aws:VpcSourceIp), and no aws:SourceIp. Each endpoint and VPC the policies
    name is combined with every other, and with an endpoint and a VPC they do not name: a policy that names
    no endpoint lets every endpoint in, in any account."""
    endpoints = [*_named(policies, "aws:sourcevpce"), OTHER_ENDPOINT]
    vpcs = [*_named(policies, "aws:sourcevpc"), OTHER_VPC]
    addresses = [*_addresses(_named(policies, "aws:vpcsourceip")), _VPC_ADDRESS]
    variants = []
    for e in endpoints:
        for v in vpcs:
            for a in addresses:
                where = "another VPC endpoint" if e == OTHER_ENDPOINT else f"VPC endpoint {e}"
                where += " in another VPC" if v == OTHER_VPC else f" in VPC {v}"
                where += "" if a == _VPC_ADDRESS else f" from {a}"
                variants.append((RequestContext(source_vpce=e, source_vpc=v, vpc_source_ip=a), where))
    return variants


def _named_identities(policies: list[Policy]) -> tuple[dict[str, str], list[str], list[str]]:
    """Principal ARNs the policies mention (witness ARN -> as written; wildcards and account roots are
    instantiated as a concrete principal, a role session as its role), organisation ids, and the role
    session ARNs named."""
    principals: dict[str, str] = {}
    orgs: list[str] = []
    sessions: list[str] = []

    def witness(pattern: str) -> str | None:
        arn = pattern.replace("*", _WITNESS).replace("?", "x")
        if arn.endswith(":root"):
            arn = arn.removesuffix(":root") + f":role/{_WITNESS}"
        parts = arn.split(":", 5)
        if len(parts) < 6 or not parts[4].isdigit():
            return None
        if parts[2] == "sts" and parts[5].startswith("assumed-role/") and parts[5].count("/") == 2:
            sessions.append(arn)
            return f"arn:{parts[1]}:iam::{parts[4]}:role/{parts[5].split('/')[1]}"
        return arn if parts[2] == "iam" else None

    for policy in policies:
        for statement in policy.statements:
            for entry in (statement.principals or ()) + (statement.not_principals or ()):
                if entry != "*" and (arn := witness(entry)):
                    principals.setdefault(arn, entry)
            for condition in statement.conditions:
                key = condition.key.lower()
                for value in condition.values:
                    if key == "aws:principalarn" and (arn := witness(value)):
                        principals.setdefault(arn, value)
                    elif key == "aws:principalaccount" and value.isdigit():
                        principals.setdefault(f"arn:aws:iam::{value}:role/{_WITNESS}", f"account {value}")
                    elif key == "aws:principalorgid":
                        orgs.append(value.replace("*", "x"))
    return principals, list(dict.fromkeys(orgs)), list(dict.fromkeys(sessions))
