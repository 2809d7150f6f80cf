"""One target's state as a run sees it: each piece (the stage, what is live, what is saved, the health call)
read at most once per target and run, whichever check asks first, so that checks share reads without
depending on each other's order; and the ports and memory every read goes through.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import requests

from access_auditor.aws.accessanalyzer import AnalyzerPort
from access_auditor.aws.apigateway import ControlPlane, StageState, SweptApi
from access_auditor.aws.apigatewayv2 import HttpApiPlane
from access_auditor.aws.cloudtrail import DELIVERY_LAG, EVENT_HISTORY, POLICY_EVENTS, Change, ChangeHistory
from access_auditor.aws.credentials import CredentialSource
from access_auditor.aws.pacing import QuotaWait
from access_auditor.config import AuditConfig, Target
from access_auditor.errors import AuditorError
from access_auditor.findings import Finding, finding
from access_auditor.policy.access_config import AccessConfig
from access_auditor.policy.analysis import PolicyVerdict
from access_auditor.policy.matrix import Method
from access_auditor.probes import CallResult, make_call

__all__ = ["AlreadyReported", "Clock", "Live", "Memory", "NoHealthIdentity", "Observation", "Ports", "Scope"]

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
    http_apis: Callable[[Scope], HttpApiPlane] | None = None  # HTTP APIs (v2): their routes and stages


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
        self.reported: set[str] = set()  # what is said once per target and run, whichever check sees it first

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
            known, lasting = self._infer(stage, saved, problem.reason)
            # Kept only once CloudTrail has had time to deliver a write made just before this saved policy was
            # first seen; until then it is asked again every run (a write it has not delivered yet would
            # otherwise let a saved fix pass for the live policy for as long as the function stays warm).
            first = self.ports.memory.pending_seen.setdefault(("inference", *key), time.time())
            if lasting and time.time() - first > DELIVERY_LAG.total_seconds():
                self.ports.memory.inferences[key] = known
        return known

    def _infer(self, stage: StageState, saved: AccessConfig, refusal: str) -> tuple[Live, bool]:
        """The live policy of an API that cannot be exported: the saved one, if CloudTrail shows no policy
        write since the deployment (a saved policy takes effect only with a deployment); and whether the
        answer lasts for this deployment and saved policy (not when CloudTrail could not be asked)."""
        target, history = self.target, self.ports.history
        assert stage.deployed is not None and stage.deployed_at is not None
        head = f"API {target.api_id} cannot be exported ({refusal})"
        why, lasting = None, True
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
                why, lasting = (
                    f"CloudTrail could not be asked whether the policy was written since: {exc}",
                    False,
                )
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
                "serves. Deploy the stage to make the two one")), lasting  # fmt: skip
        older = dt.datetime.now(dt.UTC) - stage.deployed_at > EVENT_HISTORY
        window = (f"in the {EVENT_HISTORY.days} days CloudTrail keeps (the {since} is older, so a write before "
                  "then is not ruled out; redeploy to make it certain)") if older else f"since {since}"  # fmt: skip
        note = finding("LIVE_POLICY_INFERRED", f"{head}; the policy stage {target.stage} serves is taken to be the saved "
                       f"one, because CloudTrail shows no policy write {window}")  # fmt: skip
        return Live(AccessConfig(saved.policy, stage.deployed.methods), note, inferred=True), True

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
                         budget_s=self.live_clock().call_budget(config), headers=target.call_headers)  # fmt: skip


class NoHealthIdentity(AuditorError):
    """No identity the API's policy exempts is available to sign the health call as."""
