"""The checks: each is a unit that takes one target's Observation and returns findings, so that one check,
or one API, can be run alone (by a test, the CLI or an event) without the rest of the run.

An Observation reads each piece of state at most once per target and run (the stage, what is saved, the
health call), whichever check asks first; so checks share reads without depending on each other's order.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import requests

from access_auditor.aws.accessanalyzer import AnalyzerPort
from access_auditor.aws.apigateway import ControlPlane, StageState, SweptApi
from access_auditor.aws.cloudtrail import (
    DELIVERY_LAG,
    EVENT_HISTORY,
    METHOD_EVENTS,
    POLICY_EVENTS,
    Change,
    ChangeHistory,
)
from access_auditor.aws.credentials import CredentialSource
from access_auditor.aws.pacing import QuotaWait
from access_auditor.config import AuditConfig, Target
from access_auditor.errors import AuditorError, CredentialsError, PolicyParseError
from access_auditor.findings import Category, Finding, Severity, finding
from access_auditor.policy.access_config import AccessConfig
from access_auditor.policy.analysis import PolicyVerdict, check_policy
from access_auditor.policy.matrix import OTHER_STAGE, Access, Method
from access_auditor.probes import CallResult, health_finding, make_call, probe_finding

T = TypeVar("T")


@dataclass(frozen=True)
class Live:
    """What the stage serves, as far as it can be known. ``config`` is its deployment's access config: the
    policy from the stage's export, or, when API Gateway refuses to export the API, the saved policy where
    CloudTrail shows no policy write since the deployment (``inferred``). None when the policy cannot be
    known; ``note`` then says why (and, when inferred, how it was known)."""

    config: AccessConfig | None
    note: Finding | None = None
    inferred: bool = False


class Scope(NamedTuple):
    """Where a client works: clients, credentials and quotas are per account and region."""

    account: str
    region: str


@dataclass
class Memory:
    """What a warm function keeps between runs. Losing it (a cold start) costs calls, never correctness."""

    # Who made a pending change does not change while the change stays pending.
    attributions: dict[tuple[str, ...], str] = field(default_factory=dict)
    # Saved methods per target: (deployment id when read, monotonic time, methods).
    saved_methods: dict[tuple[str, ...], tuple[str | None, float, tuple[Method, ...]]] = field(
        default_factory=dict
    )
    deferred: set[tuple[str, ...]] = field(default_factory=set)  # audited first in the next run
    # Per API (account, region, id): its newest policy write CloudTrail showed (the region-wide look).
    policy_writes: dict[tuple[str, str, str], Change] = field(default_factory=dict)
    # Per stage deployment and saved policy of an API that cannot be exported: what CloudTrail let be inferred.
    inferences: dict[tuple[str, ...], Live] = field(default_factory=dict)
    # Per pending change: when this function first saw it (an absence in CloudTrail is believed only later).
    pending_seen: dict[tuple[str, ...], float] = field(default_factory=dict)
    # Per account and region: until when CloudTrail was asked which APIs' methods changed.
    method_lookups: dict[Scope, dt.datetime] = field(default_factory=dict)
    target_seconds: float | None = None  # how long a target took, on average, last run


@dataclass(frozen=True)
class Ports:
    """Everything the audit talks to, injected. Factories take the Scope (account, region)."""

    control_plane: Callable[[Scope], ControlPlane]
    credentials: CredentialSource
    session: requests.Session
    history: Callable[[Scope], ChangeHistory] | None = None
    analyzer: Callable[[Scope], AnalyzerPort] | None = None
    memory: Memory = field(default_factory=Memory)


@dataclass(frozen=True)
class Clock:
    """A target's time: its own slice of the run, never past the run's deadline (``time.monotonic()``)."""

    deadline: float

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def call_budget(self, config: AuditConfig) -> float:
        """One HTTP call: connect and the whole answer, within what the target has left."""
        return min(config.connect_timeout + config.read_timeout, self.remaining())


class AlreadyReported(AuditorError):
    """A read another check already failed on (and reported): the check asking again is skipped."""


class Observation:
    """One target's state as this run sees it, each piece read once, on first use."""

    def __init__(
        self,
        target: Target,
        config: AuditConfig,
        ports: Ports,
        clock: Clock,
        swept: SweptApi | None = None,
        share_s: float | None = None,
        quota_deadline: float | None = None,
        methods_changed: bool = False,
    ) -> None:
        """``clock`` bounds everything; control-plane calls wait for their quota until ``quota_deadline``
        (default: the clock's), which leaves the live calls time to finish; ``share_s``, when given, is this
        target's fair slice for its live calls, counted from the first of them."""
        self.target, self.config, self.ports, self.clock, self.swept = target, config, ports, clock, swept
        self.quota_deadline = quota_deadline if quota_deadline is not None else clock.deadline
        self.methods_changed = (
            methods_changed  # CloudTrail saw a method write to this API since the last look
        )
        self._share_s = share_s
        self._live: Clock | None = None
        self._memo: dict[str, Any] = {}
        self.probe_answers: dict[str, CallResult] = {}  # "unsigned" / "outsider": what each probe got
        self.live_verdict: PolicyVerdict | None = None  # the verdict on what the stage serves, once judged

    def live_clock(self) -> Clock:
        if self._live is None:
            slice_end = time.monotonic() + self._share_s if self._share_s is not None else self.clock.deadline
            self._live = Clock(min(self.clock.deadline, slice_end))
        return self._live

    @property
    def scope(self) -> Scope:
        return Scope(self.target.account, self.target.region)

    def _once(self, name: str, read: Callable[[], T]) -> T:
        if name in self._memo:
            value = self._memo[name]
            if isinstance(value, BaseException):
                raise AlreadyReported(name) from value
            return value  # type: ignore[no-any-return]
        try:
            self._memo[name] = read()
        except AuditorError as exc:
            self._memo[name] = exc
            raise
        return self._memo[name]  # type: ignore[no-any-return]

    def plane(self) -> ControlPlane:
        return self.ports.control_plane(self.scope)

    def stage(self) -> StageState:
        """GetStage; the deployment it names is read once per warm function (deployments never change)."""
        return self._once("stage", lambda: self.plane().stage_state(self.target.api_id, self.target.stage))

    def live(self) -> Live:
        """What the stage serves (see Live); its deployment must exist."""
        return self._once("live", self._read_live)

    def _read_live(self) -> Live:
        stage, target = self.stage(), self.target
        assert stage.deployed is not None
        problem = stage.export_problem
        if problem is None:
            return Live(stage.deployed)
        if not problem.refused:
            return Live(None, finding("POLICY_UNREADABLE", f"the resource policy stage {target.stage} serves cannot "
                                      f"be read from its export: {problem.reason}"))  # fmt: skip
        saved = self.saved()
        key = (*target.key, str(stage.deployment_id), saved.policy or "")
        known = self.ports.memory.inferences.get(key)
        if known is None:
            known = self._infer(stage, saved, problem.reason)
            if (
                known.config is not None
                or known.note is None
                or "CloudTrail could not" not in known.note.message
            ):
                self.ports.memory.inferences[key] = known
        return known

    def _infer(self, stage: StageState, saved: AccessConfig, refusal: str) -> Live:
        """The live policy of an API that cannot be exported: the saved one, if CloudTrail shows no policy
        write since the deployment (a saved policy takes effect only with a deployment)."""
        target, history = self.target, self.ports.history
        assert stage.deployed is not None and stage.deployed_at is not None
        head = f"API {target.api_id} cannot be exported ({refusal})"
        why = None
        if not (self.config.cloudtrail_lookup and history):
            why = "CloudTrail lookups are off, so no policy write since the deployment can be ruled out"
        else:
            try:
                # From the second after the deployment's: a save takes effect only with a deployment, and one
                # made in the deployment's own second (policy apply: save, then deploy) went live with it.
                after = stage.deployed_at + dt.timedelta(seconds=1)
                last, complete = history(self.scope).latest_change(target.api_id, after, POLICY_EVENTS)
            except QuotaWait:
                raise
            except AuditorError as exc:
                why = f"CloudTrail could not be asked whether the policy was written since: {exc}"
            else:
                if last is not None:
                    why = (f"CloudTrail shows {last.event_name} by {last.actor} at {last.event_time:%Y-%m-%d %H:%M:%SZ}, "
                           "after the deployment")  # fmt: skip
                elif not complete:
                    why = "CloudTrail holds too many events about the API since the deployment to rule out a policy write"
        since = f"deployment {stage.deployment_id} ({stage.deployed_at:%Y-%m-%d %H:%M:%SZ})"
        if why is not None:
            return Live(None, finding("LIVE_POLICY_UNKNOWN", f"{head}, and {why}: the policy stage {target.stage} serves "
                "cannot be read. Its deployed methods are judged; the saved policy is judged as what the next deployment "
                "serves. Deploy the stage to make the two one"))  # fmt: skip
        older = dt.datetime.now(dt.UTC) - stage.deployed_at > EVENT_HISTORY
        window = (f"in the {EVENT_HISTORY.days} days CloudTrail keeps (the {since} is older, so a write before "
                  "then is not ruled out; redeploy to make it certain)") if older else f"since {since}"  # fmt: skip
        note = finding("LIVE_POLICY_INFERRED", f"{head}; the policy stage {target.stage} serves is taken to be the saved "
                       f"one, because CloudTrail shows no policy write {window}")  # fmt: skip
        return Live(AccessConfig(saved.policy, stage.deployed.methods), note, inferred=True)

    def saved(self) -> AccessConfig:
        """The saved policy (from the region's sweep when there was one, else GetRestApi) and methods
        (GetResources, whose quota is the tightest: re-read when the stage's deployment changed, when
        CloudTrail shows a method write to the API, when none were read yet, or when older than
        SAVED_METHODS_MAX_AGE)."""
        return self._once("saved", self._read_saved)

    def _read_saved(self) -> AccessConfig:
        target, plane = self.target, self.plane()
        policy = self.swept.policy if self.swept is not None else plane.get_policy(target.api_id)
        stage = self._memo.get("stage")
        deployment = stage.deployment_id if isinstance(stage, StageState) else None
        known = self.ports.memory.saved_methods.get(target.key)
        now = time.time()  # wall time: the hub shares these entries between execution environments
        fresh = now - known[1] < self.config.saved_methods_max_age_s if known else False
        if known and known[0] == deployment and fresh and not self.methods_changed:
            methods = known[2]
        else:
            methods = tuple(plane.list_methods(target.api_id, target.stage))
            self.ports.memory.saved_methods[target.key] = (deployment, now, methods)
        return AccessConfig(policy, methods)

    def health(self) -> CallResult:
        """The signed health call as the allowed role: ASSUME_ROLE_ARN when set, else this run's own
        credentials. Raises CredentialsError without credentials, and NoHealthIdentity when the run's own
        identity is known (an organization's member audit role) and the target's allowed roles leave it out:
        the call is then not made, rather than made as an identity the policy is meant to refuse."""
        own = self.config.health_identity
        target = self.target

        def read() -> CallResult:
            if own and not target.assume_role_arn and own not in target.allowed_roles:
                raise NoHealthIdentity(f"the health call would be signed as {own}, which API {target.api_id}'s "
                                       f"allowed roles ({', '.join(target.allowed_roles)}) do not include")  # fmt: skip
            return self.call(self.ports.credentials.credentials(target.assume_role_arn))

        return self._once("health", read)

    @property
    def health_result(self) -> CallResult | None:
        """The health call's answer if it was made."""
        value = self._memo.get("health")
        return value if isinstance(value, CallResult) else None

    def call(self, credentials: Any) -> CallResult:
        target, config = self.target, self.config
        return make_call(self.ports.session, target.health_method, target.health_url, region=target.region,
                         credentials=credentials, timeout=(config.connect_timeout, config.read_timeout),
                         budget_s=self.live_clock().call_budget(config))  # fmt: skip


class Skip(AuditorError):  # noqa: N818 - a signal, not a failure
    """The check has nothing to say this run and covers nothing (it did not apply); ``findings`` say why,
    when that is worth reporting."""

    def __init__(self, message: str, findings: tuple[Finding, ...] = ()) -> None:
        super().__init__(message)
        self.findings = findings


class NoHealthIdentity(AuditorError):
    """No identity the API's policy exempts is available to sign the health call as."""


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
    return check_policy(state.policy, target.api, target.allowed_roles, analysed)


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
                "stage."))  # fmt: skip
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
    """The allowed role's signed health call (HealthCheckFailed)."""
    try:
        result = obs.health()
    except CredentialsError as exc:
        return [finding("CREDENTIALS_UNAVAILABLE", f"no credentials to sign the health call: {exc}")]
    except NoHealthIdentity as exc:
        raise Skip("no identity to sign as", (finding("HEALTH_IDENTITY_MISSING", f"{exc}. Add the member audit "
            "role to the API's allowed roles (tag and policy), or tag the API access-auditor:health-role with "
            "an allowed role that the member audit role may assume"),)) from exc  # fmt: skip
    failure = health_finding(result, obs.target.expected_status, obs.target.health_url)
    return ([failure] if failure else []) + customised_responses(obs, result)


def customised_responses(obs: Observation, *results: CallResult) -> list[Finding]:
    """Once per target and run, when an answer shows a customised refusal: which gateway responses the API
    customised (GetGatewayResponses), so that nobody reads a changed status or message as a failure of ours."""
    if not any(r.customised for r in results) or "customised" in obs._memo:
        return []
    obs._memo["customised"] = True
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
    if answer.status is None or answer.missing_token:
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
