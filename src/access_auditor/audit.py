"""One audit run: every target checked concurrently, each outcome a result, never an exception.

``run_audit(config, ports)`` is what both the Lambda handler and ``access-auditor audit`` call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

import requests
from botocore.credentials import ReadOnlyCredentials

from access_auditor.aws.accessanalyzer import AnalyzerPort
from access_auditor.aws.apigateway import ControlPlane, StageState
from access_auditor.aws.cloudtrail import METHOD_EVENTS, POLICY_EVENTS, ChangeHistory
from access_auditor.aws.credentials import CredentialSource
from access_auditor.config import AuditConfig, Target
from access_auditor.errors import AuditorError, AwsCallError, CredentialsError, PolicyParseError
from access_auditor.findings import Finding, Severity
from access_auditor.policy.access_config import AccessConfig
from access_auditor.policy.analysis import PolicyVerdict, check_policy
from access_auditor.policy.matrix import OTHER_STAGE, Method
from access_auditor.probes import CallResult, health_finding, make_call, probe_finding

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ports:
    """Everything the audit talks to, injected. Factories take the target's region."""

    control_plane: Callable[[str], ControlPlane]
    credentials: CredentialSource
    session: requests.Session
    history: Callable[[str], ChangeHistory] | None = None
    analyzer: Callable[[str], AnalyzerPort] | None = None
    # Who made a pending change does not change while the change stays pending: looked up once per
    # (region, API, deployment, saved config) and kept across warm invocations.
    attributions: dict[tuple[str, ...], str] = field(default_factory=dict)


@dataclass
class TargetResult:
    target: Target
    healthy: bool = False
    status_code: int | None = None
    latency_ms: float | None = None
    drift: bool = False
    audit_error: bool = False
    unauthorized_call_allowed: bool | None = None
    undeployed_change: bool | None = None
    request_id: str | None = None
    error_type: str | None = None
    findings: list[Finding] = field(default_factory=list)
    step: str = "waiting to start"  # what the audit of this target is doing now, for a deadline finding
    # The stage and the saved config that differs from what it serves, for the attribution step.
    pending: tuple[StageState, AccessConfig] | None = None

    def add(self, code: str, severity: Severity, message: str) -> None:
        self.findings.append(Finding(code, severity, message))

    @property
    def ok(self) -> bool:
        return self.healthy and not self.drift and not self.audit_error and not self.unauthorized_call_allowed

    def summary(self) -> dict[str, Any]:
        return {
            "apiId": self.target.api_id,
            "stage": self.target.stage,
            "healthy": self.healthy,
            "statusCode": self.status_code,
            "latencyMs": self.latency_ms,
            "drift": self.drift,
            "auditError": self.audit_error,
            "unauthorizedCallAllowed": self.unauthorized_call_allowed,
            "undeployedPolicyChange": self.undeployed_change,
            "requestId": self.request_id,
            "errorType": self.error_type,
            "findings": [f.as_dict() for f in self.findings],
        }


@dataclass(frozen=True)
class Clock:
    """A target's time: its own slice of the run, never past the run's deadline (``time.monotonic()``)."""

    deadline: float

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def call_budget(self, config: AuditConfig) -> float:
        """One HTTP call: connect and the whole answer, within what the target has left."""
        return min(config.connect_timeout + config.read_timeout, self.remaining())


MIN_TARGET_SECONDS = 5.0


def run_audit(config: AuditConfig, ports: Ports, budget_s: float) -> list[TargetResult]:
    """Audit every target within ``budget_s`` seconds, at most ``config.max_concurrency`` at once.

    Each target gets a fair slice of the budget (the budget shared over the targets each worker will run,
    at least MIN_TARGET_SECONDS), so a slow target can never starve another. Whatever a target has
    established when the run's deadline comes is kept: a target still busy then is reported with the
    checks it finished and an AUDIT_DEADLINE finding naming the step it was in.
    """
    started = time.monotonic()
    run_deadline = started + max(0.0, budget_s)
    workers = min(config.max_concurrency, len(config.targets))
    share = max(MIN_TARGET_SECONDS, budget_s * workers / len(config.targets))
    results = [TargetResult(target) for target in config.targets]
    stop = threading.Event()

    def audit(result: TargetResult) -> None:
        now = time.monotonic()
        audit_target(result, config, ports, Clock(min(run_deadline, now + share)), stop)

    executor = ThreadPoolExecutor(max_workers=workers)
    futures = [executor.submit(audit, result) for result in results]
    wait(futures, timeout=max(0.0, run_deadline - time.monotonic()))
    stop.set()  # a worker still busy stops at its next step; nothing carries into the next invocation
    executor.shutdown(wait=False, cancel_futures=True)
    final = []
    for result, future in zip(results, futures, strict=True):
        if future.done() and not future.cancelled():
            final.append(result)
            continue
        late = replace(result, findings=list(result.findings))  # what it had established, frozen now
        late.audit_error = True
        step = f" while {result.step}" if future.running() else " before it could start"
        late.add("AUDIT_DEADLINE", Severity.HIGH,
                 f"the audit of this target ran out of time{step}; the checks it finished are reported. Raise "
                 "the function's timeout, or spread the targets over more functions")  # fmt: skip
        final.append(late)
    return final


def audit_target(
    result: TargetResult, config: AuditConfig, ports: Ports, clock: Clock, stop: threading.Event | None = None
) -> None:
    """Audit one target into ``result``, step by step, so that each finished step counts even if a later one
    never ends. Never raises: every failure becomes a finding on the result."""
    steps: list[tuple[str, Callable[[], None]]] = [
        ("reading the API and judging its policy", lambda: _control_plane_checks(result, config, ports)),
        ("calling the API", lambda: _live_checks(result, config, ports, clock)),
        ("asking CloudTrail who changed it", lambda: _attribution(result, config, ports)),
    ]
    for step, run in steps:
        if (stop is not None and stop.is_set()) or clock.remaining() <= 0:
            result.audit_error = True
            result.add("AUDIT_DEADLINE", Severity.HIGH,
                       f"no time was left for {step}; the checks before it are reported")  # fmt: skip
            return
        result.step = step
        try:
            run()
        except Exception as exc:  # a bug must not lose this target's other checks, nor the other targets
            log.exception("unexpected error auditing %s", result.target.api_id)
            result.audit_error = True
            result.add(
                "AUDIT_ERROR", Severity.HIGH, f"internal error while {step}: {type(exc).__name__}: {exc}"
            )
    result.step = "done"


def _live_checks(result: TargetResult, config: AuditConfig, ports: Ports, clock: Clock) -> None:
    target = result.target
    url = target.health_url

    def call_as(credentials: ReadOnlyCredentials | None) -> CallResult:
        timeout = (config.connect_timeout, config.read_timeout)
        return make_call(ports.session, target.health_method, url, region=target.region, credentials=credentials,
                         timeout=timeout, budget_s=clock.call_budget(config))  # fmt: skip

    try:
        credentials = ports.credentials.credentials(target.assume_role_arn)
    except CredentialsError as exc:
        result.audit_error = True
        result.add("CREDENTIALS_UNAVAILABLE", Severity.HIGH, f"no credentials to sign the health call: {exc}")
        return
    health = call_as(credentials)
    _record(result, health)
    failure = health_finding(health, target.expected_status, url)
    if failure:
        result.findings.append(failure)
    else:
        result.healthy = True
    # Negative probes only where the path is known to exist: API Gateway answers "Missing Authentication
    # Token" for an unknown path too, so only an answer that went past routing (a success, a policy or IAM
    # refusal, an integration error) makes an unsigned call's refusal mean "signature required".
    if health.status is None or health.missing_token:
        result.audit_error = True
        result.add("PROBES_NOT_RUN", Severity.MEDIUM,
                   f"the negative probes were not run: the health call's answer does not show that {url} exists, "
                   "so a refusal would prove nothing; nobody is shown to be kept out this run")  # fmt: skip
        return
    got_in = [_probe(result, call_as(None), "unsigned", url)]
    if target.outsider_role_arn:
        try:
            outsider = ports.credentials.credentials(target.outsider_role_arn)
        except CredentialsError as exc:
            result.audit_error = True
            result.add("PROBE_INCONCLUSIVE", Severity.MEDIUM, f"outsider probe skipped: {exc}")
        else:
            got_in.append(_probe(result, call_as(outsider), "outsider", url))
    result.unauthorized_call_allowed = any(got_in)


def _probe(result: TargetResult, call: CallResult, who: str, url: str) -> bool:
    got_in, finding = probe_finding(call, who, url)
    if finding:
        result.findings.append(finding)
    return got_in


def _record(result: TargetResult, call: CallResult) -> None:
    result.status_code = call.status
    result.latency_ms = round(call.latency_ms, 1) if call.status is not None else None
    result.request_id = call.request_id
    result.error_type = call.error_type


def _control_plane_checks(result: TargetResult, config: AuditConfig, ports: Ports) -> None:
    target = result.target
    try:
        plane = ports.control_plane(target.region)
        stage = plane.stage_state(target.api_id, target.stage)
        saved = plane.saved(target.api_id, target.stage)
    except (AwsCallError, CredentialsError) as exc:
        result.audit_error = True
        throttled = isinstance(exc, AwsCallError) and exc.throttled
        detail = (
            "API Gateway throttled the audit; the policy's state is unknown, not drifted"
            if throttled
            else str(exc)
        )
        result.add("AUDIT_ERROR", Severity.HIGH, f"could not read API {target.api_id}: {detail}")
        return
    if stage.deployed is None:
        result.drift = result.undeployed_change = True  # whatever is saved, none of it is live
        result.add("STAGE_NOT_DEPLOYED", Severity.HIGH,
                   f"stage {target.stage} has no deployment, so nothing is live to judge; deploy it")  # fmt: skip
        return
    result.undeployed_change = saved.differs_from(stage.deployed, target.api)
    # The live verdict: what the stage's deployment serves. This is what PolicyDrift reports.
    live = _judge(result, stage.deployed, "deployed")
    if live is None:  # unreadable: drift, reported by _judge; a pending change is still worth saying
        if result.undeployed_change:
            _undeployed_change(result, stage, saved, None)
        return
    result.findings.extend(live.findings)
    not_iam = _not_iam(stage.deployed)
    for m in not_iam:
        result.add("METHOD_NOT_IAM", Severity.HIGH,
                   f"{m.http_method} {m.path} uses authorizationType {m.authorization_type} in the deployment "
                   f"stage {target.stage} serves: no IAM identity reaches the resource policy, so the allowed role "
                   "is locked out of it (and it is public if the policy goes). Set it to AWS_IAM and deploy the "
                   "stage.")  # fmt: skip
    result.drift = live.drift or bool(not_iam)
    if config.access_analyzer and ports.analyzer and live.structural_change:
        _analyzer_check(result, ports.analyzer(target.region), live)
    if stage.canary_deployment_id and stage.canary_deployment_id != stage.deployment_id:
        result.add("CANARY_DEPLOYMENT", Severity.MEDIUM,
                   f"stage {target.stage} sends {stage.canary_percent or 0}% of calls to deployment "
                   f"{stage.canary_deployment_id}, which may serve another policy")  # fmt: skip
    if result.undeployed_change:
        _undeployed_change(result, stage, saved, live)


def _judge(result: TargetResult, state: AccessConfig, which: str) -> PolicyVerdict | None:
    """The verdict on one access config (deployed or saved); None, with a finding, when the policy cannot be
    read: an unreadable live policy is drift, because nobody can prove who it lets in."""
    target = result.target
    methods = list(state.methods)
    analysed = methods + [Method(OTHER_STAGE, m.http_method, m.path, m.authorization_type) for m in methods]
    try:
        return check_policy(state.policy, target.api, target.allowed_roles, analysed)
    except PolicyParseError as exc:
        if which == "deployed":
            result.drift = True
            result.add("POLICY_UNREADABLE", Severity.CRITICAL,
                       f"the resource policy stage {target.stage} serves cannot be read: {exc}")  # fmt: skip
        return None


def _not_iam(state: AccessConfig) -> list[Method]:
    return [m for m in state.methods if m.authorization_type != "AWS_IAM"]


def _undeployed_change(
    result: TargetResult, stage: StageState, saved: AccessConfig, live: PolicyVerdict | None
) -> None:
    """Saved differs from deployed: say what deploying would do (who made the change is a later step)."""
    target = result.target
    assert stage.deployed is not None
    pending = _judge(result, saved, "saved")
    newly_not_iam = set(_not_iam(saved)) - set(_not_iam(stage.deployed))
    if pending is None:
        severity, effect = Severity.HIGH, "would make the live policy unreadable"
    elif pending.weakened or newly_not_iam:
        first = next((f.message for f in pending.findings if f.code == "ACCESS_WEAKENED"), None)
        detail = first or ", ".join(
            f"{m.http_method} {m.path} becomes {m.authorization_type}" for m in newly_not_iam
        )
        severity, effect = Severity.HIGH, f"would WEAKEN access: {detail}"
    else:
        live_drifted = live is None or live.drift or bool(_not_iam(stage.deployed))
        pending_drifted = pending.drift or bool(_not_iam(saved))
        if live_drifted and not pending_drifted:
            severity, effect = Severity.MEDIUM, "would RESTORE the expected access"
        elif not live_drifted and not pending_drifted:
            severity, effect = Severity.LOW, "would not change who can invoke the API"
        else:
            first = next((f.message for f in pending.findings if f.severity != Severity.INFO), None)
            effect = (
                f"would CHANGE access: {first}"
                if first
                else "would leave the methods that are not AWS_IAM as they are, and change nothing else"
            )
            severity = Severity.MEDIUM
    what = " and ".join(
        part
        for part, changed in (
            ("the resource policy", saved.policy_differs(stage.deployed, target.api)),
            ("method authorization", saved.methods_differ(stage.deployed)),
        )
        if changed
    )
    result.pending = stage, saved
    result.add("UNDEPLOYED_POLICY_CHANGE", severity,
               f"{what} saved on API {target.api_id} differs from what stage {target.stage} serves "
               f"(deployment {stage.deployment_id}); it goes live with the next deployment, and deploying it "
               f"{effect}")  # fmt: skip


def _attribution(result: TargetResult, config: AuditConfig, ports: Ports) -> None:
    """Name who made a pending change, from CloudTrail, in the UNDEPLOYED_POLICY_CHANGE finding."""
    if result.pending is None or not (config.cloudtrail_lookup and ports.history):
        return
    target, (stage, saved) = result.target, result.pending
    if stage.deployed is None or stage.deployed_at is None:
        return
    names = POLICY_EVENTS if saved.policy_differs(stage.deployed, target.api) else METHOD_EVENTS
    key = (target.region, target.api_id, str(stage.deployment_id), repr(saved))
    who = ports.attributions.get(key)
    if who is None:
        try:
            changes = ports.history(target.region).changes_since(target.api_id, stage.deployed_at, names)
        except AuditorError as exc:
            result.audit_error = True
            result.add("ATTRIBUTION_FAILED", Severity.HIGH,
                       f"CloudTrail could not say who changed API {target.api_id}: {exc}. The undeployed change is "
                       "reported regardless; grant cloudtrail:LookupEvents to name its author.")  # fmt: skip
            return
        if not changes:
            who = f"CloudTrail names no {'/'.join(names)} call on it since the deployment."
        else:
            last = changes[0]
            who = f"Changed by {last.actor} ({last.event_name} at {last.event_time:%Y-%m-%d %H:%M:%SZ})."
            ports.attributions[key] = who
    result.findings = [
        replace(f, message=f"{f.message.rstrip('.')}. {who}") if f.code == "UNDEPLOYED_POLICY_CHANGE" else f
        for f in result.findings
    ]


def _analyzer_check(result: TargetResult, analyzer: AnalyzerPort, verdict: PolicyVerdict) -> None:
    """Only on a structural change, so that a steady state costs no Access Analyzer checks."""
    assert verdict.saved_document is not None  # a structural change needs a saved policy
    try:
        second = analyzer.cross_check(verdict.saved_document, verdict.expected_document, result.target.api)
    except AuditorError as exc:
        result.add("ANALYZER_UNAVAILABLE", Severity.INFO,
                   f"IAM Access Analyzer could not be asked ({exc}); the local verdict stands")  # fmt: skip
        return
    summary = f"no new access: {second.no_new_access}, no public access: {second.no_public_access}"
    if second.weakened != verdict.weakened:
        result.add("ANALYZER_DISAGREES", Severity.MEDIUM,
                   f"IAM Access Analyzer ({summary}) disagrees with the local verdict (weakened: {verdict.weakened}); "
                   "review the policy by hand. " + "; ".join(second.reasons))  # fmt: skip
    else:
        result.add("ANALYZER_AGREES", Severity.INFO, f"IAM Access Analyzer agrees ({summary})")
