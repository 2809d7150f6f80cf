"""The checks: each is a unit that takes one target's Observation and returns findings, so that one check,
or one API, can be run alone (by a test, the CLI or an event) without the rest of the run.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from access_auditor.aws.accessanalyzer import AnalyzerPort
from access_auditor.aws.apigateway import StageState
from access_auditor.aws.cloudtrail import DELIVERY_LAG, EVENT_HISTORY, METHOD_EVENTS, POLICY_EVENTS
from access_auditor.aws.pacing import QuotaWait
from access_auditor.config import Target
from access_auditor.errors import AuditorError, CredentialsError, PolicyParseError
from access_auditor.findings import Category, Finding, Severity, finding
from access_auditor.observation import AlreadyReported, NoHealthIdentity, Observation
from access_auditor.policy.access_config import AccessConfig
from access_auditor.policy.analysis import PolicyVerdict, check_policy
from access_auditor.policy.expected import apply_command, tag_command
from access_auditor.policy.matrix import OTHER_STAGE, Access, Method
from access_auditor.probes import FORBIDDEN, CallResult, health_finding, probe_finding
from access_auditor.sources import ALLOWED_ROLES_TAG


class Skip(AuditorError):  # noqa: N818 - a signal, not a failure
    """The check has nothing to say this run and covers nothing (it did not apply); ``findings`` say why,
    when that is worth reporting."""

    def __init__(self, message: str, findings: tuple[Finding, ...] = ()) -> None:
        super().__init__(message)
        self.findings = findings


@dataclass(frozen=True)
class Check:
    name: str
    step: str  # what a deadline finding says the audit was doing
    covers: frozenset[Category]  # the categories whose metric this check vouches for when it completes
    run: Callable[[Observation], list[Finding]]


def _not_iam(state: AccessConfig) -> list[Method]:
    return [m for m in state.methods if m.authorization_type != "AWS_IAM"]


def _judge(obs: Observation, state: AccessConfig) -> PolicyVerdict:
    """The verdict on one access config; raises PolicyParseError for an unreadable policy."""
    target = obs.target
    methods = list(state.methods)
    analysed = methods + [Method(OTHER_STAGE, m.http_method, m.path, m.authorization_type) for m in methods]
    # A private API's callers come only through VPC endpoints: its endpoint type as the sweep read it (a
    # change of type is a change of the API, which the change path audits at once).
    private = obs.swept.private if obs.swept is not None else target.private
    return check_policy(state.policy, target.api, target.allowed_roles, analysed, vpces=target.allowed_vpces,
                        vpcs=target.allowed_vpcs, private=private)  # fmt: skip


def live_policy(obs: Observation) -> list[Finding]:
    """The verdict on what the stage serves: its deployment's policy and methods (PolicyDrift)."""
    target, stage = obs.target, obs.stage()
    if stage.deployed is None:
        return [finding("STAGE_NOT_DEPLOYED", f"stage {target.stage} has no deployment, so nothing is live to "
                        "judge; deploy it")]  # fmt: skip
    found: list[Finding] = []
    seen = obs.live()
    found += [seen.note] if seen.note else []
    config = seen.config or AccessConfig(
        None, stage.deployed.methods
    )  # unknown policy: the methods still count
    live: PolicyVerdict | None = None
    if seen.config is not None:
        try:
            live = _judge(obs, config)
        except PolicyParseError as exc:
            found.append(finding("POLICY_UNREADABLE", f"the resource policy stage {target.stage} serves cannot be "
                                 f"read: {exc}"))  # fmt: skip
    if live is not None:
        found.extend(live.findings)
        obs.live_verdict = live
    if live is not None or seen.config is None:
        for m in _not_iam(config):
            found.append(finding("METHOD_NOT_IAM",
                f"{m.http_method} {m.path} uses authorizationType {m.authorization_type} in the deployment stage "
                f"{target.stage} serves: no IAM identity reaches the resource policy, so the allowed role is "
                "locked out of it (and it is public if the policy goes). Set it to AWS_IAM and deploy the "
                "stage.", subject=f"{m.http_method} {m.path}"))  # fmt: skip
    if live is not None and obs.config.access_analyzer and obs.ports.analyzer and live.structural_change:
        found.extend(_analyzer(obs.ports.analyzer(obs.scope), live, target))
    if stage.canary_deployment_id and stage.canary_deployment_id != stage.deployment_id:
        found.append(finding("CANARY_DEPLOYMENT",
            f"stage {target.stage} sends {stage.canary_percent or 0}% of calls to deployment "
            f"{stage.canary_deployment_id}, which may serve another policy"))  # fmt: skip
    return found


def undeployed_change(obs: Observation) -> list[Finding]:
    """Saved differs from deployed: what deploying it would do (UndeployedPolicyChange)."""
    target, stage = obs.target, obs.stage()
    if stage.deployed is None:
        raise Skip("no deployment: STAGE_NOT_DEPLOYED says it")
    saved, seen = obs.saved(), obs.live()
    if seen.config is None:
        return _pending_of_unknown(obs, saved)
    deployed = seen.config
    if not saved.differs_from(deployed, target.api):
        return [] if seen.inferred else _export_after_write(obs, stage)
    try:
        live: PolicyVerdict | None = _judge(obs, deployed)
    except PolicyParseError:
        live = None
    try:
        pending: PolicyVerdict | None = _judge(obs, saved)
    except PolicyParseError:
        pending = None
    newly_not_iam = set(_not_iam(saved)) - set(_not_iam(deployed))
    if pending is None:
        severity, effect = Severity.HIGH, "would make the live policy unreadable"
    elif pending.weakened or newly_not_iam:
        first = next((f.message for f in pending.findings if f.code == "ACCESS_WEAKENED"), None)
        detail = first or ", ".join(
            f"{m.http_method} {m.path} becomes {m.authorization_type}" for m in newly_not_iam
        )
        severity, effect = Severity.HIGH, f"would WEAKEN access: {detail}"
    else:
        live_drifted = live is None or live.drift or bool(_not_iam(deployed))
        pending_drifted = pending.drift or bool(_not_iam(saved))
        if live_drifted and not pending_drifted:
            severity, effect = Severity.MEDIUM, "would RESTORE the expected access"
        elif not live_drifted and not pending_drifted:
            severity, effect = Severity.LOW, "would not change who can invoke the API"
        else:
            first = next((f.message for f in pending.findings if f.severity != Severity.INFO), None)
            effect = (f"would CHANGE access: {first}" if first else
                      "would leave the methods that are not AWS_IAM as they are, and change nothing else")  # fmt: skip
            severity = Severity.MEDIUM
    what = " and ".join(
        part
        for part, changed in (
            ("the resource policy", saved.policy_differs(deployed, target.api)),
            ("method authorization", saved.methods_differ(deployed)),
        )
        if changed
    )
    return [finding("UNDEPLOYED_POLICY_CHANGE",
        f"{what} saved on API {target.api_id} differs from what stage {target.stage} serves (deployment "
        f"{stage.deployment_id}); it goes live with the next deployment, and deploying it {effect}", severity)]  # fmt: skip


def _pending_of_unknown(obs: Observation, saved: AccessConfig) -> list[Finding]:
    """The live policy cannot be known (LIVE_POLICY_UNKNOWN or POLICY_UNREADABLE says why): what the next
    deployment would serve, judged on its own."""
    problem = obs.stage().export_problem
    if problem is None or not problem.refused:
        raise Skip("the live policy is unreadable: POLICY_UNREADABLE says it")
    try:
        pending = _judge(obs, saved)
    except PolicyParseError as exc:
        return [finding("UNDEPLOYED_POLICY_CHANGE", f"the policy saved on API {obs.target.api_id} cannot be read ({exc}); "
                        "the next deployment would serve it", Severity.HIGH)]  # fmt: skip
    if pending.weakened or _not_iam(saved):
        first = next((f.message for f in pending.findings if f.code == "ACCESS_WEAKENED"), None)
        return [finding("UNDEPLOYED_POLICY_CHANGE", f"what is saved on API {obs.target.api_id} is what the next "
                        f"deployment serves, and it would WEAKEN access: {first or 'methods that are not AWS_IAM'}",
                        Severity.HIGH)]  # fmt: skip
    return []


def _export_after_write(obs: Observation, stage: StageState) -> list[Finding]:
    """Saved equals exported: that is as expected unless CloudTrail showed a policy write after the stage's
    deployment, in which case the export may carry the saved copy rather than the deployment's (or the write
    left the policy as it was). The verdict on the live policy rests on the export, so this is reported."""
    write = obs.ports.memory.policy_writes.get(obs.target.api_key)
    if write is None or stage.deployed_at is None or write.event_time <= stage.deployed_at:
        return []
    return [finding("EXPORT_DISAGREES",
        f"CloudTrail shows {write.event_name} of API {obs.target.api_id}'s policy by {write.actor} at "
        f"{write.event_time:%Y-%m-%d %H:%M:%SZ}, after deployment {stage.deployment_id} of stage {obs.target.stage} "
        f"({stage.deployed_at:%Y-%m-%d %H:%M:%SZ}), yet the export carries exactly the saved policy: either that "
        "write left the policy as it was, or the export carries the saved copy, not the deployed one, and the "
        "live verdict cannot rest on it. Deploy the stage to make saved and live one; access-auditor doctor "
        "--experiment tells which holds in this account")]  # fmt: skip


def attribution(obs: Observation) -> list[Finding]:
    """Who made the pending change, from CloudTrail (once per pending change per warm function)."""
    target, ports = obs.target, obs.ports
    if not (obs.config.cloudtrail_lookup and ports.history):
        raise Skip("CloudTrail lookups are off")
    stage = obs.stage()
    if stage.deployed is None or stage.deployed_at is None:
        raise Skip("nothing deployed")
    saved, seen = obs.saved(), obs.live()
    if seen.config is None:
        raise Skip("the live policy cannot be known: LIVE_POLICY_UNKNOWN names the write, if any")
    deployed = seen.config
    if not saved.differs_from(deployed, target.api):
        return []
    names = POLICY_EVENTS if saved.policy_differs(deployed, target.api) else METHOD_EVENTS
    key = (*target.key, str(stage.deployment_id), repr(saved))
    who = ports.memory.attributions.get(key)
    if who is None:
        first_seen = ports.memory.pending_seen.setdefault(key, time.time())
        try:
            last, complete = ports.history(obs.scope).latest_change(target.api_id, stage.deployed_at, names)
        except QuotaWait:
            raise
        except AuditorError as exc:
            return [finding("ATTRIBUTION_FAILED",
                f"CloudTrail could not say who changed API {target.api_id}: {exc}. The undeployed change is "
                "reported regardless; grant cloudtrail:LookupEvents to name its author.")]  # fmt: skip
        if last is None:
            searched = "" if complete else " in the newest events CloudTrail holds about it"
            found = [finding("CHANGED_BY", f"CloudTrail names no {'/'.join(names)} call on API {target.api_id} since "
                             f"the deployment{searched}")]  # fmt: skip
            known = (
                complete and not seen.inferred and dt.datetime.now(dt.UTC) - stage.deployed_at < EVENT_HISTORY
            )
            if names == POLICY_EVENTS and known and time.time() - first_seen > DELIVERY_LAG.total_seconds():
                found.append(finding("EXPORT_DISAGREES",
                    f"the policy saved on API {target.api_id} differs from what the export of stage {target.stage} "
                    f"carries, yet CloudTrail shows no policy write since deployment {stage.deployment_id} "
                    f"({stage.deployed_at:%Y-%m-%d %H:%M:%SZ}): the export does not carry the deployment's copy as the "
                    "verdict assumes (or CloudTrail missed the write). Both verdicts are reported; run "
                    "access-auditor doctor --experiment, and deploy the stage to make saved and live one"))  # fmt: skip
            return found
        who = f"Changed by {last.actor} ({last.event_name} at {last.event_time:%Y-%m-%d %H:%M:%SZ})"
        ports.memory.attributions[key] = who
        ports.memory.pending_seen.pop(key, None)
    return [finding("CHANGED_BY", f"{who}: the undeployed change to API {target.api_id}")]


def health(obs: Observation) -> list[Finding]:
    """The allowed role's signed health call (HealthCheckFailed), and what its answer says of customised
    gateway responses."""
    found = health_call(obs)
    return found + customised_responses(obs, result) if (result := obs.health_result) else found


def health_call(obs: Observation) -> list[Finding]:
    """The allowed role's signed health call (HealthCheckFailed)."""
    try:
        result = obs.health()
    except CredentialsError as exc:
        return [finding("CREDENTIALS_UNAVAILABLE", f"no credentials to sign the health call: {exc}")]
    except NoHealthIdentity as exc:
        target, own = obs.target, str(obs.config.health_identity)
        roles = [*target.allowed_roles, own]
        raise Skip("no identity to sign as", (finding("HEALTH_IDENTITY_MISSING", f"{exc}. Add the member audit "
            f"role to the API's allowed roles, in the tag: {tag_command(target.api, ALLOWED_ROLES_TAG, roles)}; and "
            f"in the policy: {apply_command(target.api, roles, target.stage)}; or tag the API "
            "access-auditor:health-role with an allowed role that the member audit role may assume"),)) from exc  # fmt: skip
    target = obs.target
    failure = health_finding(
        result, target.expected_status, target.health_url, target.private, target.kind == "http"
    )
    return [failure] if failure else []


def customised_responses(obs: Observation, *results: CallResult) -> list[Finding]:
    """Once per target and run, when an answer shows a customised refusal: which gateway responses the API
    customised (GetGatewayResponses), so that nobody reads a changed status or message as a failure of ours."""
    if not any(r.customised for r in results) or "customised" in obs.reported:
        return []
    obs.reported.add("customised")
    try:
        kinds = ", ".join(obs.plane().customised_responses(obs.target.api_id)) or "none listed"
    except QuotaWait:
        raise
    except AuditorError as exc:
        kinds = f"GetGatewayResponses failed: {exc}"
    return [finding("GATEWAY_RESPONSES_CUSTOMISED", f"API {obs.target.api_id} answers refusals with a customised status "
                    f"or message ({kinds}); each answer was read by its x-amzn-ErrorType")]  # fmt: skip


def probes(obs: Observation) -> list[Finding]:
    """Negative probes (UnauthorizedCallAllowed): unsigned, and signed as the outsider role.

    Only where the path is known to exist: API Gateway answers "Missing Authentication Token" for an unknown
    path too, so only an answer that went past routing (a success, a policy or IAM refusal, an integration
    error) makes an unsigned call's refusal mean "signature required"."""
    target, url = obs.target, obs.target.health_url
    try:
        answer = obs.health()
    except AlreadyReported as exc:
        raise Skip("no health call: no probe can be placed") from exc
    if answer.status is None or answer.missing_token or answer.error_type == FORBIDDEN:
        return [finding("PROBES_NOT_RUN",
            f"the negative probes were not run: the health call's answer does not show that {url} exists, so a "
            "refusal would prove nothing; nobody is shown to be kept out this run")]  # fmt: skip
    found: list[Finding] = []
    answers = obs.probe_answers
    answers["unsigned"] = obs.call(None)
    _, unsigned = probe_finding(answers["unsigned"], "unsigned", url)
    found += [unsigned] if unsigned else []
    if target.outsider_role_arn:
        try:
            outsider = obs.ports.credentials.credentials(target.outsider_role_arn)
        except CredentialsError as exc:
            found.append(finding("OUTSIDER_ROLE_UNAVAILABLE", f"outsider probe skipped: {exc}"))
        else:
            answers["outsider"] = obs.call(outsider)
            _, signed = probe_finding(answers["outsider"], "outsider", url)
            found += [signed] if signed else []
    return found + customised_responses(obs, *answers.values())


def agreement(obs: Observation) -> list[Finding]:
    """The verdict and the live evidence must agree: a probe that got in where the verdict says its caller is
    refused (or was refused where the verdict says it gets in) means one of the two is wrong about what the
    stage serves. Only where the verdict is certain (not conditional on the network, an authorizer or the
    caller's own IAM policy)."""
    verdict, target = obs.live_verdict, obs.target
    if verdict is None or not obs.probe_answers:
        raise Skip("no verdict on the live policy, or no probe, to compare")
    method = _health_method(verdict, target)
    if method is None:
        return []
    callers = {"unsigned": "anonymous caller"}
    if target.outsider_role_arn:
        named = f"principal {target.outsider_role_arn} (named in the policy)"
        labels = {c for c, _ in verdict.saved.cells}
        same = f"another principal in account {target.account}"
        callers["outsider"] = named if named in labels else same if target.outsider_role_arn.split(":")[4] == target.account \
            else "a principal in another account"  # fmt: skip
    found = []
    for who, label in callers.items():
        answer = obs.probe_answers.get(who)
        try:
            cell = verdict.saved[(label, method)]
        except (KeyError, StopIteration):
            continue
        if answer is None or answer.failure:
            continue
        probe = "an unsigned call" if who == "unsigned" else f"a call signed as {target.outsider_role_arn}"
        if cell.access is Access.DENIED and answer.got_in:
            found.append(finding("VERDICT_CONTRADICTED",
                f"the verdict on the policy stage {target.stage} serves says the {label} is refused on {method}, yet "
                f"{probe} got in ({answer.status}): what is live is not what was judged. Treat the API as open", Severity.CRITICAL))  # fmt: skip
        elif (
            cell.access is Access.ALLOWED
            and answer.refused
            and not {"authorizer", "identity-policy"} & set(cell.allow_reasons)
        ):
            found.append(finding("VERDICT_CONTRADICTED",
                f"the verdict on the policy stage {target.stage} serves says the {label} gets in on {method}, yet "
                f"{probe} was refused ({answer.error_type or answer.status}): what is live is not what was judged",
                Severity.MEDIUM))  # fmt: skip
    return found


def _health_method(verdict: PolicyVerdict, target: Target) -> Method | None:
    """The analysed method the health URL reaches on the target's stage (templates like {id} match)."""
    path = "/" + target.health_path.strip("/")
    for group in verdict.saved.groups:
        for method in group:
            if method.stage != target.stage or method.http_method not in (target.health_method, "ANY"):
                continue
            pattern = re.sub(
                r"\\\{[^/]+\\\+\\\}", ".+", re.sub(r"\\\{[^/+]+\\\}", "[^/]+", re.escape(method.path))
            )
            if re.fullmatch(pattern, path):
                return method
    return None


def _analyzer(analyzer: AnalyzerPort, verdict: PolicyVerdict, target: Target) -> list[Finding]:
    """Only on a structural change, so that a steady state costs no Access Analyzer checks."""
    assert verdict.saved_document is not None  # a structural change needs a saved policy
    try:
        second = analyzer.cross_check(verdict.saved_document, verdict.expected_document, target.api)
    except AuditorError as exc:
        return [finding("ANALYZER_UNAVAILABLE", f"IAM Access Analyzer could not be asked ({exc}); the local "
                        "verdict stands")]  # fmt: skip
    summary = f"no new access: {second.no_new_access}, no public access: {second.no_public_access}"
    if second.weakened != verdict.weakened:
        return [finding("ANALYZER_DISAGREES",
            f"IAM Access Analyzer ({summary}) disagrees with the local verdict (weakened: {verdict.weakened}); "
            "review the policy by hand. " + "; ".join(second.reasons))]  # fmt: skip
    return [finding("ANALYZER_AGREES", f"IAM Access Analyzer agrees ({summary})")]


C = Category
CHECKS = (
    Check("live-policy", "reading the API and judging its policy", frozenset({C.DRIFT}), live_policy),
    Check("undeployed", "comparing what is saved with what is deployed", frozenset({C.UNDEPLOYED}), undeployed_change),
    Check("health", "calling the API", frozenset({C.HEALTH}), health),
    Check("probes", "probing the API as outsiders", frozenset({C.EXPOSURE}), probes),
    Check("attribution", "asking CloudTrail who changed it", frozenset(), attribution),
    Check("agreement", "comparing the verdict with the live probes", frozenset(), agreement),
)  # fmt: skip
del C
