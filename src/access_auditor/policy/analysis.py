"""The drift verdict: the access matrix of the policy being judged against the expected policy's, every
difference explained as a finding. Comparing who can invoke what, rather than text, is what makes API
Gateway's rewrites on save harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from access_auditor.findings import Category, Finding, Severity, finding, flagged
from access_auditor.policy.document import ApiRef, Policy, canonicalize_policy, load_policy, parse_policy_text
from access_auditor.policy.evaluator import unmodelled_elements
from access_auditor.policy.expected import apply_command, render_expected_policy
from access_auditor.policy.matrix import (
    OTHER_STAGE,
    Access,
    CallerClass,
    Cell,
    Group,
    Matrix,
    Method,
    access_matrix,
    caller_classes,
    method_groups,
)

__all__ = [
    "OTHER_STAGE",
    "Method",
    "PolicyVerdict",
    "access_lost",
    "analyse_policy",
    "check_policy",
    "representative_methods",
]


@dataclass
class PolicyVerdict:
    drift: bool
    findings: list[Finding] = field(default_factory=list)
    expected: Matrix = field(default_factory=lambda: Matrix((), {}))
    saved: Matrix = field(default_factory=lambda: Matrix((), {}))
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


def analyse_policy(
    saved: Policy | None,
    expected: Policy,
    api: ApiRef,
    allowed_roles: Sequence[str],
    methods: Sequence[Method],
    private: bool = False,
) -> PolicyVerdict:
    """Compare what ``saved`` lets through with what ``expected`` lets through, and explain every difference.
    ``private``: the API is reached only through VPC endpoints (its endpoint type is PRIVATE).

    Findings: POLICY_MISSING, ACCESS_WEAKENED (critical when unconditional, high when conditional),
    ALLOWED_ROLE_LOCKED_OUT (high), ACCESS_CHANGED (medium), POLICY_NOT_MODELLED (medium: "cannot prove
    equivalence") and POLICY_REWRITTEN (info, no drift).
    """
    considered = [expected] + ([saved] if saved else [])
    callers = caller_classes(api, allowed_roles, considered, private)
    groups = method_groups(methods, api, considered)
    verdict = PolicyVerdict(
        drift=False,
        expected=access_matrix(expected, api, groups, callers),
        saved=access_matrix(saved, api, groups, callers),
    )
    findings = verdict.findings
    if saved is None:
        findings.append(
            finding(
                "POLICY_MISSING",
                f"API {api.api_id} has no resource policy: any principal whose own IAM policy allows "
                "execute-api:Invoke can call it, and NONE methods are public. Apply the expected policy and "
                f"deploy the stage: {apply_command(api, allowed_roles, methods[0].stage if methods else 'STAGE')}"
                ", then the same without --dry-run",
            )
        )
    else:
        verdict.structural_change = canonicalize_policy(saved) != canonicalize_policy(expected)
        findings.extend(
            finding("POLICY_NOT_MODELLED", f"cannot prove equivalence: {element}")
            for element in unmodelled_elements(saved)
        )
    findings.extend(_matrix_findings(callers.classes, verdict.expected, verdict.saved))
    verdict.drift = flagged(findings, Category.DRIFT)
    if not verdict.drift and verdict.structural_change:
        findings.append(
            finding(
                "POLICY_REWRITTEN",
                "the saved policy is written differently from the expected one but grants and denies exactly "
                "the same access",
            )
        )
    return verdict


def _matrix_findings(classes: Sequence[CallerClass], expected: Matrix, saved: Matrix) -> list[Finding]:
    findings: list[Finding] = []
    weakened: list[tuple[CallerClass, list[tuple[Group, Cell, Cell]]]] = []  # who gets in where: one finding
    for caller in classes:
        cells = [(group, expected.cells[(caller.name, i)], saved.cells[(caller.name, i)])
                 for i, group in enumerate(expected.groups)]  # fmt: skip
        changed = [(m, e, s) for m, e, s in cells if e.access != s.access]
        # A network the expected policy keeps a caller out of, and the saved one lets it in through (another
        # VPC endpoint, a wider VPC), is a weakening even where the caller could already call from elsewhere.
        wider = [(m, e, s) for m, e, s in cells if _new_networks(e, s) and s.access != Access.DENIED]
        narrower = [(m, e, s) for m, e, s in cells if _new_networks(s, e)]
        if not changed and not wider and not (narrower and caller.allowed_role):
            continue
        if caller.allowed_role:
            # Locked out: of a method it could always call, or of a network it could call through (a private
            # API's own endpoint).
            lost = [
                (m, e, s)
                for m, e, s in cells
                if e.access == Access.ALLOWED != s.access or (m, e, s) in narrower
            ]
            if lost:
                findings.append(_locked_out(caller, lost))
            gained = wider
        else:
            gained = [(m, e, s) for m, e, s in changed if e.access == Access.DENIED] + [
                item for item in wider if item[1].access != Access.DENIED]  # fmt: skip
        if gained:
            weakened.append((caller, gained))
        told = {id(item[0]) for item in gained + (lost if caller.allowed_role else [])}
        rest = [(m, e, s) for m, e, s in changed if not _reported(caller, e) and id(m) not in told]
        if rest:
            (method, *_), before, after = rest[0]
            findings.append(
                finding(
                    "ACCESS_CHANGED",
                    f"{caller.name}: access to {method} changed from {before.access.value} to "
                    f"{after.access.value}{_more(rest)}; {_why_allowed(after) if after.allowed_by or after.allow_reasons else _why_denied(after)}.",
                    subject=caller.name,
                )
            )
    return ([_weakened(weakened)] if weakened else []) + findings


def _new_networks(expected: Cell, saved: Cell) -> list[str]:
    return [n for n in saved.networks if n not in expected.networks]


def _weakened(callers: list[tuple[CallerClass, list[tuple[Group, Cell, Cell]]]]) -> Finding:
    """The weakening, once: one policy change lets several kinds of caller in, and it is one thing to fix.
    Told for the caller class that gets in most surely (always, rather than under some conditions); the
    others are named after it."""

    def how(gained: list[tuple[Group, Cell, Cell]]) -> tuple[bool, str, Cell]:
        always = [item for item in gained if item[2].access == Access.ALLOWED]
        (method, *_), before, cell = (always or gained)[0]
        verb = "can invoke" if always else "can, depending on who or where it calls from, invoke"
        return bool(always), f"{verb} {method}{_more(gained)}{_through(before, cell)}", cell

    told = sorted(((caller, *how(gained)) for caller, gained in callers), key=lambda told: not told[1])
    (caller, always, what, cell), others = told[0], told[1:]
    also = "; ".join(f"{other.name} {other_what}" for other, _, other_what, _ in others)
    return Finding(
        "ACCESS_WEAKENED",
        Severity.CRITICAL if always else Severity.HIGH,
        f"{caller.name} {what}, which the expected policy denies; {_why_allowed(cell)}. Restore the expected "
        f"Deny and deploy the stage." + (f" Also: {also}." if also else ""),
        ", ".join(
            sorted(c.name for c, _ in callers)
        ),  # every caller that gets in: a suppression must cover all
    )


def _through(expected: Cell, saved: Cell) -> str:
    """Where from, when it is more than "anywhere": the network origins the saved policy newly lets in."""
    new = _new_networks(expected, saved)
    if not new or new == ["the internet"]:
        return ""
    shown = ", ".join(new[:3]) + (f" and {len(new) - 3} more" if len(new) > 3 else "")
    return f" through {shown}"


def _reported(caller: CallerClass, expected: Cell) -> bool:
    return expected.access == (Access.ALLOWED if caller.allowed_role else Access.DENIED)


def _locked_out(caller: CallerClass, lost: list[tuple[Group, Cell, Cell]]) -> Finding:
    (method, *_), before, cell = lost[0]
    how = "can no longer invoke" if cell.access == Access.DENIED else "can only under some conditions invoke"
    gone = _new_networks(cell, before)
    where = f" through {', '.join(gone[:3])}" if gone and gone != ["the internet"] else ""
    return finding(
        "ALLOWED_ROLE_LOCKED_OUT",
        f"{caller.name} {how} {method}{_more(lost)}{where}; {_why_denied(cell)}. Fix the statement or restore the "
        "expected policy, then deploy the stage.",
        subject=caller.name,
    )


def _why_allowed(cell: Cell) -> str:
    if cell.allowed_by:
        return "allowed by " + ", ".join(cell.allowed_by)
    if "no-policy" in cell.allow_reasons:
        return "there is no resource policy"
    return "no statement of the policy denies it, so the caller's own IAM policy decides"


def _why_denied(cell: Cell) -> str:
    if cell.denied_by:
        return "denied by " + ", ".join(cell.denied_by)
    return "no statement of the policy allows it"


def _more(items: list[tuple[Group, Cell, Cell]]) -> str:
    others = sum(len(group) for group, _, _ in items) - 1
    return f" (and {others} more method(s))" if others else ""


GENERIC_CALLERS = ("anonymous caller", "another principal in account", "a principal in another account")


def access_lost(
    before: Policy | None, after: Policy, api: ApiRef, allowed_roles: Sequence[str], methods: Sequence[Method]
) -> list[tuple[str, Method, int]]:
    """Who can invoke something under ``before`` and cannot (or only under some conditions) under ``after``:
    (caller class, first method, how many more methods). The caller classes come from both policies, so a
    principal that ``before`` names is judged by name."""
    policies = [p for p in (before, after) if p is not None]
    callers = caller_classes(api, allowed_roles, policies)
    groups = method_groups(methods, api, policies)
    was, now = access_matrix(before, api, groups, callers), access_matrix(after, api, groups, callers)
    lost: dict[str, list[Method]] = {}
    for caller in callers.classes:
        for i, group in enumerate(groups):
            if was.cells[(caller.name, i)].access == Access.ALLOWED != now.cells[(caller.name, i)].access:
                lost.setdefault(caller.name, []).extend(group)
    return [(name, methods_lost[0], len(methods_lost) - 1) for name, methods_lost in lost.items()]


def check_policy(
    saved_text: str | None,
    api: ApiRef,
    allowed_roles: Sequence[str],
    methods: Sequence[Method],
    *,
    vpces: Sequence[str] = (),
    vpcs: Sequence[str] = (),
    private: bool = False,
) -> PolicyVerdict:
    """The one verdict used by the Lambda and by ``access-auditor policy check``.

    ``saved_text`` is the policy as API Gateway returns it (plain or escaped JSON), or None when the API has
    none. ``vpces``/``vpcs``: the endpoints or VPCs the expected policy admits (a private API); ``private``:
    the API's endpoint type is PRIVATE. Raises PolicyParseError when the text cannot be read as a policy.
    """
    expected_document = render_expected_policy(api, list(allowed_roles), vpces, vpcs)
    saved_document = parse_policy_text(saved_text) if saved_text is not None else None
    saved = load_policy(saved_document, api) if saved_document is not None else None
    verdict = analyse_policy(saved, load_policy(expected_document, api), api, allowed_roles, methods, private)
    verdict.expected_document = expected_document
    verdict.saved_document = saved_document
    if private and saved is not None:
        verdict.findings.extend(_any_endpoint(verdict))
        verdict.drift = flagged(verdict.findings, Category.DRIFT)
    return verdict


def _any_endpoint(verdict: PolicyVerdict) -> list[Finding]:
    """A private API that a caller can reach through any VPC endpoint, in any account: the policy names no
    endpoint or VPC that keeps the others out."""
    reached = sorted({caller for (caller, _), cell in verdict.saved.cells.items()
                      if any(n == "another VPC endpoint in another VPC" for n in cell.networks)})  # fmt: skip
    if not reached:
        return []
    return [finding("PRIVATE_API_ANY_ENDPOINT", f"{reached[0]} can reach this private API through any VPC endpoint "
                    f"in any account{' (and ' + str(len(reached) - 1) + ' more caller class(es))' if len(reached) > 1 else ''}: "
                    "its policy names no aws:SourceVpce or aws:SourceVpc. Lock it to your endpoints: "
                    "access-auditor policy apply --vpce vpce-...", subject=reached[0])]  # fmt: skip
