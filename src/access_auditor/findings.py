"""Findings: what an audit reports. Every finding code is declared here, once, with its default severity,
the categories it counts in and what it means.

Everything else derives from this registry: a result's flags and metric values (a target drifted when it
has a finding in the DRIFT category), the alarms' metric names, the CLI's table and the documentation's
findings table (``access-auditor findings --markdown`` prints it; the site generates its page from it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, StrEnum

from access_auditor.redact import redact

__all__ = ["CODES", "Category", "Code", "Finding", "Severity", "finding", "flagged"]


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


class Category(Enum):
    """What a finding counts as, and the metric (one value per target per run) that says so."""

    EXPOSURE = ("exposure", "UnauthorizedCallAllowed", "a live probe got in: the API is open now")
    DRIFT = ("drift", "PolicyDrift", "what the stage serves does not enforce exactly the expected access")
    UNDEPLOYED = ("undeployed", "UndeployedPolicyChange", "what is saved differs from what the stage serves")
    HEALTH = ("health", "HealthCheckFailed", "the allowed role's signed health call failed")
    AUDIT_ERROR = ("audit error", "AuditError", "the auditor could not establish part of the state")
    DEFERRED = (
        "deferred",
        "AuditDeferred",
        "not audited this run for lack of time or quota; audited first next run",
    )
    NOTE = ("note", None, "information; counts in no metric")  # fmt: skip

    def __init__(self, label: str, metric: str | None, meaning: str) -> None:
        self.label = label
        self.metric = metric
        self.meaning = meaning


@dataclass(frozen=True)
class Code:
    name: str
    severity: Severity
    categories: frozenset[Category]
    meaning: str
    severities: str = ""  # when it varies: "high / medium / low"


CODES: dict[str, Code] = {}


def _code(
    name: str, severity: Severity, categories: Iterable[Category], meaning: str, severities: str = ""
) -> None:
    CODES[name] = Code(name, severity, frozenset(categories), meaning, severities)


S, C = Severity, Category
# The verdict on the policy the stage serves.
_code("POLICY_MISSING", S.CRITICAL, [C.DRIFT], "no resource policy at all")
_code(
    "POLICY_UNREADABLE",
    S.CRITICAL,
    [C.DRIFT],
    "the live policy cannot be read: nobody can prove who it lets in",
)
_code("LIVE_POLICY_INFERRED", S.LOW, [C.NOTE], "the API cannot be exported, so the live policy is taken to be "
      "the saved one: CloudTrail shows no policy write since the stage's deployment")  # fmt: skip
_code("LIVE_POLICY_UNKNOWN", S.HIGH, [C.UNDEPLOYED], "the API cannot be exported and a policy write since the "
      "deployment (or no CloudTrail answer) leaves the live policy unknown: deployed methods and the saved policy "
      "are judged; deploying makes them one")  # fmt: skip
_code("ACCESS_WEAKENED", S.CRITICAL, [C.DRIFT], "someone other than the allowed roles can invoke something "
      "(high when only under some identities or networks)", "critical / high")  # fmt: skip
_code(
    "ALLOWED_ROLE_LOCKED_OUT",
    S.HIGH,
    [C.DRIFT],
    "the allowed role (or one of its sessions) lost access somewhere",
)
_code("ACCESS_CHANGED", S.MEDIUM, [C.DRIFT], "any other difference in who can invoke what")
_code(
    "POLICY_NOT_MODELLED",
    S.MEDIUM,
    [C.DRIFT],
    "an element the evaluator does not model: equivalence cannot be proved",
)
_code("POLICY_REWRITTEN", S.INFO, [C.NOTE], "written differently, same access: not drift")
_code("VERDICT_CONTRADICTED", S.CRITICAL, [C.DRIFT], "a live probe and the verdict disagree about a caller: what "
      "is live is not what was judged (critical when the probe got in)", "critical / medium")  # fmt: skip
_code("PRIVATE_API_ANY_ENDPOINT", S.HIGH, [C.DRIFT], "a private API whose policy names no VPC endpoint or VPC: "
      "every VPC endpoint, in any account, reaches it (set ALLOWED_VPCE or ALLOWED_VPC)")  # fmt: skip
_code("ROUTE_NOT_IAM", S.HIGH, [C.DRIFT], "an HTTP API's route whose authorizationType is not AWS_IAM: with no "
      "resource policy, it answers whoever that authorization lets in")  # fmt: skip
_code("METHOD_NOT_IAM", S.HIGH, [C.DRIFT], "a deployed method's authorizationType is not AWS_IAM")
_code(
    "STAGE_NOT_DEPLOYED",
    S.HIGH,
    [C.DRIFT, C.UNDEPLOYED],
    "the stage has no deployment: nothing live to judge",
)
_code("CANARY_DEPLOYMENT", S.MEDIUM, [C.NOTE], "part of the stage's traffic goes to another deployment")
_code("ANALYZER_AGREES", S.INFO, [C.NOTE], "IAM Access Analyzer agrees with the verdict (opt-in)")
_code(
    "ANALYZER_DISAGREES", S.MEDIUM, [C.NOTE], "IAM Access Analyzer disagrees with the verdict: review by hand"
)
_code(
    "ANALYZER_UNAVAILABLE",
    S.INFO,
    [C.NOTE],
    "IAM Access Analyzer could not be asked; the local verdict stands",
)
# Saved but not deployed.
_code("UNDEPLOYED_POLICY_CHANGE", S.HIGH, [C.UNDEPLOYED], "saved differs from deployed; says what deploying "
      "would do: WEAKEN (high), RESTORE or CHANGE (medium), nothing (low)", "high / medium / low")  # fmt: skip
_code("CHANGED_BY", S.INFO, [C.NOTE], "who made the undeployed change and when, from CloudTrail")
_code("EXPORT_DISAGREES", S.HIGH, [C.AUDIT_ERROR], "saved, exported and CloudTrail do not agree on what the "
      "stage serves: the export may not carry the deployment's policy, so the live verdict is unproven")  # fmt: skip
_code(
    "ATTRIBUTION_FAILED", S.HIGH, [C.AUDIT_ERROR], "CloudTrail could not be asked who made a pending change"
)
# The live calls.
_code("UNSIGNED_CALL_ALLOWED", S.CRITICAL, [C.EXPOSURE], "an unsigned call got in")
_code("OUTSIDER_CALL_ALLOWED", S.CRITICAL, [C.EXPOSURE], "a call signed as the outsider role got in")
_code("OUTSIDER_DENIED_IMPLICITLY", S.LOW, [C.NOTE],
      "the outsider was refused, but not by the policy's Deny, so the probe did not test the policy")  # fmt: skip
_code("GATEWAY_RESPONSES_CUSTOMISED", S.LOW, [C.NOTE], "the API customises how API Gateway refuses callers "
      "(status, message): answers are read by their x-amzn-ErrorType, not their text")  # fmt: skip
_code("PROBE_INCONCLUSIVE", S.MEDIUM, [C.NOTE], "a probe's answer proves nothing either way")
_code(
    "OUTSIDER_ROLE_UNAVAILABLE",
    S.MEDIUM,
    [C.AUDIT_ERROR],
    "the outsider role could not be assumed: no outsider probe",
)
_code("PROBES_NOT_RUN", S.MEDIUM, [C.AUDIT_ERROR],
      "the health call's answer does not show the path exists, so no probe could prove anything")  # fmt: skip
_code("CREDENTIALS_UNAVAILABLE", S.HIGH, [C.HEALTH, C.AUDIT_ERROR], "no credentials to sign the health call")
_code("HEALTH_EXPLICIT_DENY", S.HIGH, [C.HEALTH], "the resource policy refused the allowed role")
_code(
    "HEALTH_NOT_AUTHORIZED", S.HIGH, [C.HEALTH], "not authorized: the role's IAM policy, or a method now NONE"
)
_code("HEALTH_MISSING_TOKEN", S.HIGH, [C.HEALTH], "Missing Authentication Token: no such path or stage")
_code("HEALTH_CREDENTIALS_REJECTED", S.HIGH, [C.HEALTH], "the signing credentials were refused")
_code("HEALTH_SIGNATURE_REJECTED", S.HIGH, [C.HEALTH], "the signature was refused")
_code("HEALTH_THROTTLED", S.MEDIUM, [C.HEALTH], "the health call was throttled (429) after retries")
_code("HEALTH_SERVER_ERROR", S.HIGH, [C.HEALTH], "the API answered 5xx")
_code("HEALTH_UNEXPECTED_STATUS", S.MEDIUM, [C.HEALTH], "a status outside EXPECTED_STATUS")
_code("HEALTH_NOT_THROUGH_ENDPOINT", S.HIGH, [C.HEALTH], "403 ForbiddenException: a private API called from outside "
      "an execute-api VPC endpoint (or a regional API through one)")  # fmt: skip
_code("HEALTH_TIMEOUT", S.HIGH, [C.HEALTH], "no whole answer within the call's budget")
_code("HEALTH_DNS_FAILURE", S.HIGH, [C.HEALTH], "the host name does not resolve")
_code("HEALTH_TLS_FAILURE", S.HIGH, [C.HEALTH], "TLS failed (certificate, handshake)")
_code("HEALTH_UNREACHABLE", S.HIGH, [C.HEALTH], "no connection, or a URL that cannot be called")
# The audit itself.
_code(
    "AUDIT_ERROR",
    S.HIGH,
    [C.AUDIT_ERROR],
    "a state could not be read (throttling, AccessDenied, not found, a bug)",
)
_code(
    "AUDIT_DEADLINE", S.HIGH, [C.AUDIT_ERROR], "the run's deadline came while this target was being audited"
)
_code("TARGET_INVALID", S.HIGH, [C.AUDIT_ERROR], "a discovered API's tags do not make a valid target")
_code("TAG_IGNORED", S.MEDIUM, [C.NOTE], "an API tagged for discovery that discovery.apis does not list")
_code("STAGES_TAG_NARROWS", S.MEDIUM, [C.NOTE], "an API's stages tag leaves out one of its stages: tags narrow "
      "nothing, so every stage is audited anyway")  # fmt: skip
_code("DISCOVERY_FAILED", S.HIGH, [C.AUDIT_ERROR], "a region could not be swept for tagged APIs")
_code("MEMBER_ROLE_UNAVAILABLE", S.HIGH, [C.AUDIT_ERROR], "an organization account's audit role could not be "
      "assumed (role missing, trust denied, region disabled): nothing in that account and region is audited")  # fmt: skip
_code("HEALTH_IDENTITY_MISSING", S.MEDIUM, [C.AUDIT_ERROR], "no role the API's policy exempts is available to "
      "sign the health call as (organization): the call is not made rather than made as the wrong identity")  # fmt: skip
_code(
    "AUDIT_DEFERRED",
    S.INFO,
    [C.DEFERRED],
    "not audited this run (the quota share or the deadline); first next run",
)
del S, C


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    subject: str = (
        ""  # whom or what it is about, when a target can have several of a code (a caller, a method)
    )

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"undeclared finding code {self.code!r}: declare it in findings.py")
        # Messages quote upstream answers and error texts; no credential may ride along into logs.
        object.__setattr__(self, "message", redact(self.message))

    @property
    def categories(self) -> frozenset[Category]:
        return CODES[self.code].categories

    def as_dict(self) -> dict[str, str]:
        subject = {"subject": self.subject} if self.subject else {}
        return {"code": self.code, "severity": self.severity.value, "message": self.message, **subject}


def finding(code: str, message: str, severity: Severity | None = None, subject: str = "") -> Finding:
    """A finding with its code's declared severity unless ``severity`` says otherwise."""
    declared = CODES.get(code)
    return Finding(code, severity or (declared.severity if declared else Severity.HIGH), message, subject)


def flagged(findings: Iterable[Finding], category: Category) -> bool:
    return any(category in f.categories for f in findings)


def markdown_table() -> str:
    """The findings table (docs/reference/findings.md), from the registry."""
    rows = ["| code | severity | counts as (metric) | meaning |", "| --- | --- | --- | --- |"]
    for code in CODES.values():
        counts = ", ".join(
            f"{c.label} (`{c.metric}`)" if c.metric else c.label
            for c in sorted(code.categories, key=lambda c: list(Category).index(c))
        )
        rows.append(
            f"| `{code.name}` | {code.severities or code.severity.value} | {counts} | {code.meaning} |"
        )
    return "\n".join(rows)
