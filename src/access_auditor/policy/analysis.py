"""Who can invoke what: access matrices for the expected and the saved policy, and the drift verdict.

A matrix has one cell per (caller class, method). Each class stands for a set of concrete request contexts
(its *variants*: network origins and identities that the policies themselves mention), and a cell is
``allowed`` when every variant gets in, ``denied`` when none does, and ``conditional`` otherwise. Drift
means the saved policy's matrix differs from the expected one; comparing matrices instead of text is
what makes API Gateway's rewrites on save harmless.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from access_auditor.findings import Finding, Severity
from access_auditor.policy.document import ApiRef, Policy, canonicalize_policy, load_policy, parse_policy_text
from access_auditor.policy.evaluator import RequestContext, decide_invoke, unmodelled_elements
from access_auditor.policy.expected import render_expected_policy, role_account

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
    name: str
    variants: tuple[RequestContext, ...]
    allowed_role: bool = False


@dataclass(frozen=True)
class Cell:
    """``allowed_by``/``denied_by``: statements behind the variants that got in / were refused;
    ``allow_reasons``: how the variants that got in got in (resource-policy, identity-policy, ...)."""

    access: Access
    allowed_by: tuple[str, ...]
    denied_by: tuple[str, ...]
    allow_reasons: tuple[str, ...]


Matrix = dict[tuple[str, Method], Cell]


@dataclass
class PolicyVerdict:
    drift: bool
    findings: list[Finding] = field(default_factory=list)
    expected: Matrix = field(default_factory=dict)
    saved: Matrix = field(default_factory=dict)
    structural_change: bool = False
    # The decoded documents behind the verdict, for a second opinion (Access Analyzer) without re-reading.
    expected_document: dict[str, Any] = field(default_factory=dict)
    saved_document: dict[str, Any] | None = None

    @property
    def weakened(self) -> bool:
        """Someone other than the allowed roles can get in (or there is no policy at all)."""
        return any(f.code in {"ACCESS_WEAKENED", "POLICY_MISSING"} for f in self.findings)


def representative_methods(stage: str) -> list[Method]:
    """Methods to analyse when the API itself cannot be read (offline ``policy check``)."""
    return [
        Method(s, verb, path)
        for s in (stage, OTHER_STAGE)
        for verb in ("GET", "POST", "PUT", "DELETE")
        for path in ("/", "/health", "/items/{id}")
    ]


def caller_classes(
    api: ApiRef, allowed_roles: Sequence[str], policies: Iterable[Policy]
) -> list[CallerClass]:
    """The caller classes to analyse, with witnesses drawn from everything ``policies`` mention."""
    policies = list(policies)
    networks = _network_variants(policies)
    named_principals, org_ids = _named_identities(policies)

    def contexts(arn: str | None, account: str | None) -> tuple[RequestContext, ...]:
        base = [RequestContext(principal_arn=arn, account=account, source_ip=_BASE_IP)]
        base += [RequestContext(principal_arn=arn, account=account, org_id=org) for org in org_ids if arn]
        return tuple(
            RequestContext(
                principal_arn=b.principal_arn,
                account=b.account,
                org_id=b.org_id,
                source_ip=n.source_ip or _BASE_IP,
                source_vpce=n.source_vpce,
                source_vpc=n.source_vpc,
            )
            for b in base
            for n in networks
        )

    classes = [CallerClass("anonymous caller", contexts(None, None))]
    classes += [
        CallerClass(f"allowed role {arn}", contexts(arn, role_account(arn)), True) for arn in allowed_roles
    ]
    same = f"arn:aws:iam::{api.account}"
    classes.append(
        CallerClass(
            f"another principal in account {api.account}",
            contexts(f"{same}:role/{_WITNESS}", api.account)
            + contexts(f"{same}:user/{_WITNESS}", api.account),
        )
    )
    classes.append(
        CallerClass(
            "a principal in another account",
            contexts(f"arn:aws:iam::{_OUTSIDE_ACCOUNT}:role/{_WITNESS}", _OUTSIDE_ACCOUNT),
        )
    )
    for arn, written in sorted(named_principals.items()):
        if arn in allowed_roles:
            continue
        label = (
            f"any principal matching {written}"
            if arn != written
            else f"principal {arn} (named in the policy)"
        )
        classes.append(CallerClass(label, contexts(arn, arn.split(":")[4])))
    return classes


def access_matrix(
    policy: Policy | None, api: ApiRef, methods: Sequence[Method], classes: Sequence[CallerClass]
) -> Matrix:
    """Evaluate every (class, method) cell. Callers are assumed to hold an identity policy that grants
    execute-api:Invoke (the worst case: administrators have it), so the matrix shows what the resource policy
    and the method's authorization type alone let through."""
    matrix: Matrix = {}
    for caller in classes:
        for method in methods:
            arn = method.arn(api)
            decisions = [
                decide_invoke(policy, method.authorization_type, ctx, arn, api.account, identity_allowed=True,
                              unknown_as=unknown)
                for ctx in caller.variants
                for unknown in (False, True)
            ]  # fmt: skip
            allowed = [d for d in decisions if d.allowed]
            if len(allowed) == len(decisions):
                access = (
                    Access.CONDITIONAL if any(d.reason == "authorizer" for d in allowed) else Access.ALLOWED
                )
            else:
                access = Access.DENIED if not allowed else Access.CONDITIONAL
            matrix[(caller.name, method)] = Cell(
                access=access,
                allowed_by=tuple(sorted({s for d in allowed for s in d.statements})),
                denied_by=tuple(sorted({s for d in decisions if not d.allowed for s in d.statements})),
                allow_reasons=tuple(sorted({d.reason for d in allowed})),
            )
    return matrix


def analyse_policy(
    saved: Policy | None,
    expected: Policy,
    api: ApiRef,
    allowed_roles: Sequence[str],
    methods: Sequence[Method],
) -> PolicyVerdict:
    """Compare what ``saved`` lets through with what ``expected`` lets through, and explain every difference.

    Findings: POLICY_MISSING, ACCESS_WEAKENED (critical when unconditional, high when conditional),
    ALLOWED_ROLE_LOCKED_OUT (high), ACCESS_CHANGED (medium), POLICY_NOT_MODELLED (medium: "cannot prove
    equivalence") and POLICY_REWRITTEN (info, no drift).
    """
    considered = [expected] + ([saved] if saved else [])
    classes = caller_classes(api, allowed_roles, considered)
    verdict = PolicyVerdict(
        drift=False,
        expected=access_matrix(expected, api, methods, classes),
        saved=access_matrix(saved, api, methods, classes),
    )
    findings = verdict.findings
    if saved is None:
        findings.append(
            Finding(
                "POLICY_MISSING",
                Severity.CRITICAL,
                f"API {api.api_id} has no resource policy: any principal whose own IAM policy allows "
                "execute-api:Invoke can call it, and NONE methods are public. Apply the expected policy "
                "(access-auditor policy apply) and deploy the stage.",
            )
        )
    else:
        verdict.structural_change = canonicalize_policy(saved) != canonicalize_policy(expected)
        findings.extend(
            Finding("POLICY_NOT_MODELLED", Severity.MEDIUM, f"cannot prove equivalence: {element}")
            for element in unmodelled_elements(saved)
        )
    findings.extend(_matrix_findings(classes, methods, verdict.expected, verdict.saved))
    verdict.drift = any(f.severity != Severity.INFO for f in findings)
    if not verdict.drift and verdict.structural_change:
        findings.append(
            Finding(
                "POLICY_REWRITTEN",
                Severity.INFO,
                "the saved policy is written differently from the expected one but grants and denies exactly "
                "the same access",
            )
        )
    return verdict


def _matrix_findings(
    classes: Sequence[CallerClass], methods: Sequence[Method], expected: Matrix, saved: Matrix
) -> list[Finding]:
    findings: list[Finding] = []
    for caller in classes:
        changed = [
            (m, expected[(caller.name, m)], saved[(caller.name, m)])
            for m in methods
            if expected[(caller.name, m)].access != saved[(caller.name, m)].access
        ]
        if not changed:
            continue
        if caller.allowed_role:
            lost = [(m, e, s) for m, e, s in changed if e.access == Access.ALLOWED]
            if lost:
                findings.append(_locked_out(caller, lost))
        else:
            gained = [(m, e, s) for m, e, s in changed if e.access == Access.DENIED]
            if gained:
                findings.append(_weakened(caller, gained))
        rest = [(m, e, s) for m, e, s in changed if not _reported(caller, e)]
        if rest:
            method, before, after = rest[0]
            findings.append(
                Finding(
                    "ACCESS_CHANGED",
                    Severity.MEDIUM,
                    f"{caller.name}: access to {method} changed from {before.access.value} to "
                    f"{after.access.value}{_more(rest)}; {_why_allowed(after) if after.allowed_by or after.allow_reasons else _why_denied(after)}.",
                )
            )
    return findings


def _reported(caller: CallerClass, expected: Cell) -> bool:
    return expected.access == (Access.ALLOWED if caller.allowed_role else Access.DENIED)


def _weakened(caller: CallerClass, gained: list[tuple[Method, Cell, Cell]]) -> Finding:
    always = [item for item in gained if item[2].access == Access.ALLOWED]
    method, _, cell = (always or gained)[0]
    how = "can invoke" if always else "can, depending on who or where it calls from, invoke"
    return Finding(
        "ACCESS_WEAKENED",
        Severity.CRITICAL if always else Severity.HIGH,
        f"{caller.name} {how} {method}{_more(gained)}, which the expected policy denies; "
        f"{_why_allowed(cell)}. Restore the expected Deny and deploy the stage.",
    )


def _locked_out(caller: CallerClass, lost: list[tuple[Method, Cell, Cell]]) -> Finding:
    method, _, cell = lost[0]
    how = "can no longer invoke" if cell.access == Access.DENIED else "can only under some conditions invoke"
    return Finding(
        "ALLOWED_ROLE_LOCKED_OUT",
        Severity.HIGH,
        f"{caller.name} {how} {method}{_more(lost)}; {_why_denied(cell)}. Fix the statement or restore the "
        "expected policy, then deploy the stage.",
    )


def _why_allowed(cell: Cell) -> str:
    if cell.allowed_by:
        return "allowed by " + ", ".join(cell.allowed_by)
    if "no-policy" in cell.allow_reasons:
        return "there is no resource policy"
    return "no statement of the saved policy denies it, so the caller's own IAM policy decides"


def _why_denied(cell: Cell) -> str:
    if cell.denied_by:
        return "denied by " + ", ".join(cell.denied_by)
    return "no statement of the saved policy allows it"


def _more(items: list[tuple[Method, Cell, Cell]]) -> str:
    return f" (and {len(items) - 1} more method(s))" if len(items) > 1 else ""


def _network_variants(policies: list[Policy]) -> list[RequestContext]:
    """One context per network origin a policy names, plus a plain public origin."""
    variants = [RequestContext()]
    for policy in policies:
        for statement in policy.statements:
            for condition in statement.conditions:
                key = condition.key.lower()
                for value in condition.values:
                    if key == "aws:sourceip":
                        try:
                            network = ipaddress.ip_network(value, strict=False)
                        except ValueError:
                            continue
                        variants.append(RequestContext(source_ip=str(next(iter(network), network[0]))))
                    elif key == "aws:sourcevpce":
                        variants.append(RequestContext(source_vpce=value.replace("*", "x")))
                    elif key == "aws:sourcevpc":
                        variants.append(RequestContext(source_vpc=value.replace("*", "x")))
    return list(dict.fromkeys(variants))


def _named_identities(policies: list[Policy]) -> tuple[dict[str, str], list[str]]:
    """Principal ARNs the policies mention (witness ARN -> as written; wildcards and account roots are
    instantiated as a concrete principal) and organisation ids."""
    principals: dict[str, str] = {}
    orgs: list[str] = []

    def witness(pattern: str) -> str | None:
        arn = pattern.replace("*", _WITNESS).replace("?", "x")
        if arn.endswith(":root"):
            arn = arn.removesuffix(":root") + f":role/{_WITNESS}"
        parts = arn.split(":")
        return arn if len(parts) >= 6 and parts[2] in {"iam", "sts"} and parts[4].isdigit() else None

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
    return principals, list(dict.fromkeys(orgs))


def check_policy(
    saved_text: str | None, api: ApiRef, allowed_roles: Sequence[str], methods: Sequence[Method]
) -> PolicyVerdict:
    """The one verdict used by the Lambda and by ``access-auditor policy check``.

    ``saved_text`` is the policy as API Gateway returns it (plain or escaped JSON), or None when the API has
    none. Raises PolicyParseError when the text cannot be read as a policy.
    """
    expected_document = render_expected_policy(api, list(allowed_roles))
    saved_document = parse_policy_text(saved_text) if saved_text is not None else None
    saved = load_policy(saved_document, api) if saved_document is not None else None
    verdict = analyse_policy(saved, load_policy(expected_document, api), api, allowed_roles, methods)
    verdict.expected_document = expected_document
    verdict.saved_document = saved_document
    return verdict
