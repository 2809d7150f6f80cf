"""One audit run: a loop over targets and checks. Every outcome is a finding on a result, never an exception.

``run_audit(config, ports, budget_s)`` is what both the Lambda handler and ``access-auditor audit`` call;
``audit_target`` audits one target (with all checks, or some) and is what a test or an event calls.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from access_auditor.aws.pacing import APIGATEWAY_CALLS, QuotaWait, deadline
from access_auditor.checks import CHECKS, Check, Skip
from access_auditor.config import AuditConfig, Target
from access_auditor.errors import AwsCallError, CredentialsError
from access_auditor.findings import Category, Finding, finding, flagged
from access_auditor.http_apis import HTTP_CHECKS
from access_auditor.observation import AlreadyReported, Clock, Memory, Observation, Ports, Scope
from access_auditor.outputs.suppression import Suppression
from access_auditor.probes import CallResult
from access_auditor.sources import plan_targets

__all__ = ["AuditRun", "Clock", "Memory", "Ports", "Scope", "TargetResult", "audit_target", "run_audit"]

log = logging.getLogger(__name__)

MIN_TARGET_SECONDS = 5.0  # a target is started only with at least this much of the run left
MAX_WORKERS = 32  # threads (and sockets) at once, whatever the fleet: memory stays flat
DEFAULT_TARGET_SECONDS = 1.0  # the first run's guess of one target's time, before any was measured


@dataclass
class TargetResult:
    """What one target's audit established. Flags and metric values derive from the findings and from the
    categories the completed checks cover; nothing is stored beside them."""

    target: Target
    findings: list[Finding] = field(default_factory=list)
    covered: set[Category] = field(default_factory=set)
    call: CallResult | None = None  # the health call, for status, latency and request id
    step: str = "waiting to start"  # what the audit of this target is doing now, for a deadline finding
    seconds: float = 0.0
    trigger: str | None = None  # the change that started this audit, when an event did
    tags: dict[str, str] = field(default_factory=dict)  # the API's tags, as the sweep read them
    # Findings a suppression mutes: kept, logged and counted (Suppressed), never raising an alarm.
    suppressed: list[tuple[Finding, Suppression]] = field(default_factory=list)

    def has(self, category: Category) -> bool:
        return flagged(self.findings, category)

    def flag(self, category: Category) -> bool | None:
        """1/0 for the category's metric, or None when no completed check speaks for it."""
        if self.has(category):
            return True
        return False if category in self.covered else None

    @property
    def drift(self) -> bool:
        return self.has(Category.DRIFT)

    @property
    def audit_error(self) -> bool:
        return self.has(Category.AUDIT_ERROR)

    @property
    def deferred(self) -> bool:
        return self.has(Category.DEFERRED)

    @property
    def healthy(self) -> bool:
        return self.flag(Category.HEALTH) is False

    @property
    def unauthorized_call_allowed(self) -> bool | None:
        return self.flag(Category.EXPOSURE)

    @property
    def undeployed_change(self) -> bool | None:
        return self.flag(Category.UNDEPLOYED)

    @property
    def ok(self) -> bool:
        """Nothing any alarm watches is raised, and the health call was made and succeeded."""
        alarmed = [c for c in Category if c.metric and c is not Category.DEFERRED]
        return not any(self.has(c) for c in alarmed) and (self.healthy or self.deferred)

    def metric_values(self) -> dict[str, int]:
        """Each category's metric: 1 or 0 where a check spoke for it (or a finding raised it). AuditError and
        AuditDeferred are always emitted."""
        values = {}
        for category in Category:
            value = self.flag(category)
            if category in (Category.AUDIT_ERROR, Category.DEFERRED):
                value = self.has(category)
            if category.metric and value is not None:
                values[category.metric] = int(value)
        return values

    def raised_by(self) -> dict[str, str]:
        """Per metric at 1, the first finding that raised it ("CODE: message")."""
        reasons: dict[str, str] = {}
        for f in self.findings:
            for category in f.categories:
                if category.metric and category.metric not in reasons:
                    reasons[category.metric] = f"{f.code}: {f.message}"
        return reasons

    def summary(self) -> dict[str, Any]:
        call = self.call
        return {
            "apiId": self.target.api_id,
            "stage": self.target.stage,
            "region": self.target.region,
            "account": self.target.account,
            "source": self.target.source,
            "healthy": self.healthy,
            "statusCode": call.status if call else None,
            "latencyMs": round(call.latency_ms, 1) if call and call.status is not None else None,
            "drift": self.drift,
            "auditError": self.audit_error,
            "deferred": self.deferred,
            "unauthorizedCallAllowed": self.unauthorized_call_allowed,
            "undeployedPolicyChange": self.undeployed_change,
            "requestId": call.request_id if call else None,
            "errorType": call.error_type if call else None,
            "trigger": self.trigger,
            "flags": self.metric_values(),  # what the alarms saw from this target; the notifications query it
            "raisedBy": self.raised_by(),
            "findings": [f.as_dict() for f in self.findings],
            **(
                {"suppressed": [{**f.as_dict(), "suppression": why.describe()} for f, why in self.suppressed]}
                if self.suppressed
                else {}
            ),
        }


class AuditRun(list[TargetResult]):
    """A run's results, with what the run could look at: the account-regions it swept (so a tracked finding
    whose target is missing there is gone, not unseen), every API those sweeps listed, and ``only`` (the APIs
    a change event restricted the run to)."""

    def __init__(self, results: Sequence[TargetResult] = (), swept: Collection[tuple[str, str]] = (),
                 apis: Collection[tuple[str, str, str]] = (),
                 only: Collection[tuple[str, str, str]] | None = None) -> None:  # fmt: skip
        super().__init__(results)
        self.swept = set(swept)
        self.apis = set(apis)
        self.only = set(only) if only is not None else None


def run_audit(
    config: AuditConfig, ports: Ports, budget_s: float, only: Collection[tuple[str, str, str]] | None = None
) -> AuditRun:
    """Audit every target within ``budget_s`` seconds; with ``only``, the targets of those APIs (account,
    region, id) alone, their saved methods re-read (what a change event calls).

    The targets come from the configuration and tag discovery (one sweep per account and region). Those
    deferred last run go first. Workers are as many as it takes to finish the live calls in the time the
    control-plane quota share needs anyway (at most MAX_WORKERS), unless MAX_CONCURRENCY caps them. A
    target's control-plane calls wait for their quota within the run; its live calls get a fair slice of the
    run, so a slow endpoint never starves another. A target the quota share or the deadline leaves no room for is
    deferred (AUDIT_DEFERRED, not an error) and goes first next run; a target still busy at the deadline
    keeps what it established and gets AUDIT_DEADLINE naming the step it was in.
    """
    started = time.monotonic()
    run_deadline = started + max(0.0, budget_s)
    with deadline(run_deadline):
        plan = plan_targets(config, ports, only)
    if only is not None:
        plan.methods_changed |= set(only)
    memory = ports.memory
    targets = sorted(plan.targets, key=lambda t: t.key not in memory.deferred)  # stable: deferred first
    results = [TargetResult(target, tags=_tags(plan, target)) for target in targets]
    problems = [TargetResult(target, [problem]) for target, problem in plan.problems]

    def done(final: Sequence[TargetResult]) -> AuditRun:
        return AuditRun(final, plan.scopes, set(plan.swept) | plan.http_apis, only)

    if not results:
        return done(problems)
    workers = _workers(config, memory, len(results), run_deadline - time.monotonic())
    share = max(MIN_TARGET_SECONDS, (run_deadline - time.monotonic()) * workers / len(results))
    stop = threading.Event()

    def audit(result: TargetResult) -> None:
        now = time.monotonic()
        if stop.is_set() or run_deadline - now < min(MIN_TARGET_SECONDS, budget_s / 2):
            _defer(result, "the run's time was used up before it could start")
            return
        swept = plan.swept.get(result.target.api_key)
        observation = Observation(result.target, config, ports, Clock(run_deadline), swept, share_s=share,
                                  quota_deadline=run_deadline - min(MIN_TARGET_SECONDS, budget_s / 4),
                                  methods_changed=result.target.api_key in plan.methods_changed)  # fmt: skip
        checks = HTTP_CHECKS if result.target.kind == "http" else CHECKS
        audit_target(result, observation, checks, stop=stop)

    executor = ThreadPoolExecutor(max_workers=workers)
    futures = [executor.submit(audit, result) for result in results]
    wait(futures, timeout=max(0.0, run_deadline - time.monotonic()))
    stop.set()  # a worker still busy stops at its next step; nothing carries into the next invocation
    executor.shutdown(wait=False, cancel_futures=True)
    final = []
    for result, future in zip(results, futures, strict=True):
        if future.done() and not future.cancelled():
            final.append(result)
        elif not future.running():
            final.append(
                _defer(TargetResult(result.target), "the run's time was used up before it could start")
            )
        else:  # what it had established, frozen now
            late = TargetResult(result.target, list(result.findings), set(result.covered), result.call,
                                tags=result.tags)  # fmt: skip
            late.findings.append(finding("AUDIT_DEADLINE",
                f"the audit of this target ran out of time while {result.step}; the checks it finished are "
                "reported. Raise the function's timeout, or spread the targets over more functions"))  # fmt: skip
            final.append(late)
    memory.deferred = {r.target.key for r in final if r.deferred}
    timed = [r.seconds for r in final if r.seconds]
    if timed:
        memory.target_seconds = sum(timed) / len(timed)
    return done(final + problems)


def _tags(plan: Any, target: Target) -> dict[str, str]:
    swept = plan.swept.get(target.api_key)
    return dict(swept.tags) if swept is not None else {}


def _workers(config: AuditConfig, memory: Memory, targets: int, budget_s: float) -> int:
    """Enough workers that the live calls take no longer than the control-plane quota share needs anyway
    (about one GetStage per target in a steady state, four more for a deployment not seen before)."""
    if config.max_concurrency:
        return max(1, min(targets, config.max_concurrency))
    rate = APIGATEWAY_CALLS.rate * config.control_plane_share
    burst = math.floor(APIGATEWAY_CALLS.burst * config.control_plane_share)
    calls = targets * (1 if memory.target_seconds is not None else 4)
    floor_s = max(1.0, (calls - burst) / rate)
    per_target = memory.target_seconds or DEFAULT_TARGET_SECONDS
    wanted = math.ceil(targets * per_target / min(floor_s, max(1.0, budget_s * 0.8)))
    return max(1, min(targets, MAX_WORKERS, wanted))


def _defer(result: TargetResult, why: str) -> TargetResult:
    result.findings.append(finding("AUDIT_DEFERRED", f"API {result.target.api_id} stage {result.target.stage} "
                                   f"was not audited this run: {why}; it goes first in the next run"))  # fmt: skip
    return result


def audit_target(
    result: TargetResult,
    obs: Observation,
    checks: Sequence[Check] = CHECKS,
    stop: threading.Event | None = None,
) -> TargetResult:
    """Run ``checks`` on one target into ``result``, each on its own, so that each finished check counts
    even if a later one never ends. Never raises: every failure becomes a finding."""
    started = time.monotonic()
    done: list[str] = []
    with deadline(obs.quota_deadline):
        for check in checks:
            if (stop is not None and stop.is_set()) or obs.clock.remaining() <= 0:
                result.findings.append(finding("AUDIT_DEADLINE",
                    f"no time was left for {check.step}; the checks before it are reported"))  # fmt: skip
                break
            result.step = check.step
            try:
                result.findings.extend(check.run(obs))
                result.covered |= check.covers
                done.append(check.name)
            except Skip as exc:
                result.findings.extend(exc.findings)
                continue
            except AlreadyReported:
                continue
            except QuotaWait as exc:
                finished = f" (finished: {', '.join(done)})" if done else ""
                _defer(result, f"the {exc.quota} quota share had no room left while {check.step}{finished}")
                break
            except (AwsCallError, CredentialsError) as exc:
                throttled = isinstance(exc, AwsCallError) and exc.throttled
                detail = ("API Gateway throttled the audit; the policy's state is unknown, not drifted"
                          if throttled else str(exc))  # fmt: skip
                result.findings.append(
                    finding("AUDIT_ERROR", f"could not read API {obs.target.api_id}: {detail}")
                )
            except Exception as exc:  # a bug must not lose this target's other checks, nor the other targets
                log.exception("unexpected error auditing %s", obs.target.api_id)
                result.findings.append(finding("AUDIT_ERROR",
                    f"internal error while {check.step}: {type(exc).__name__}: {exc}"))  # fmt: skip
    result.call = obs.health_result
    result.step = "done"
    result.seconds = time.monotonic() - started
    return result
