"""An organization through the hub, on the local AWS: 200 member accounts × 25 tagged APIs, one region, the
quotas enforced per account and region by the local control plane. One cycle goes planner -> shard queue ->
the worker's event source mapping (hub.yaml's BatchSize and MaximumConcurrency) -> worker processes started
cold, as Lambda starts them. Prints the cycle's wall time beside the quota floor, the peak share of any
account's control-plane quota, and the cost per API-month from the measured durations and log volume."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import pytest

from access_auditor.aws.pacing import APIGATEWAY_CALLS, GET_RESOURCES
from access_auditor.local_aws import emulation
from access_auditor.local_aws.organization import (
    create_organization,
    planner_function,
    run_cycle,
    worker_function,
)
from tests.harness import Harness

ACCOUNTS, APIS = 200, 25
WINDOW_S = 10  # the quota share is measured over any 10 s window: rate × 10 s + the burst
CYCLES_A_MONTH = 8640  # every 5 minutes
GB_SECOND, REQUEST, LOG_GB = 0.0000133334, 0.20 / 1e6, 0.50  # Lambda arm64, Lambda requests, Logs ingestion


def _peak_share(events: list[dict[str, object]]) -> tuple[float, str]:
    """The highest share of API Gateway's control-plane quota (10 a second, burst 40) any account and region
    used over any WINDOW_S seconds, and which."""
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in events:
        if e["EventSource"] == "apigateway.amazonaws.com":
            times[(str(e["account"]), str(e["region"]))].append(float(e["EventTime"]))  # type: ignore[arg-type]
    capacity = APIGATEWAY_CALLS.rate * WINDOW_S + APIGATEWAY_CALLS.burst
    best, where = 0.0, ""
    for key, stamps in times.items():
        stamps.sort()
        start = 0
        for end, stamp in enumerate(stamps):
            while stamp - stamps[start] >= WINDOW_S:
                start += 1
            if (end - start + 1) / capacity > best:
                best, where = (end - start + 1) / capacity, "/".join(key)
    return best, where


def test_an_organization_of_200_accounts_through_the_queue(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    org = create_organization(harness.aws, members=ACCOUNTS, regions=("us-east-1",), per_region=APIS)
    with worker_function(org) as worker:
        url, _, mapping = org.shard_queue(worker)
        first = len(emulation.EVENTS)
        cold = run_cycle(planner_function(org, url), mapping, timeout_s=1800)
        started_cold = worker.started
        since = len(emulation.EVENTS)
        cycle = run_cycle(planner_function(org, url), mapping, timeout_s=1800)
    events = emulation.EVENTS[since:]

    outcomes = Counter(r["outcome"] for r in cycle.reports)
    audited = sum(r["targets"] for r in cycle.reports)
    durations = [run.answer.duration_ms / 1000 for run in cycle.invocations]
    memory_gb = int(org.hub_value(org.hub["Resources"]["WorkerFunction"]["Properties"]["MemorySize"])) / 1024
    log_bytes = sum(len(line) + 1 for run in cycle.invocations for line in run.answer.stdout.splitlines())
    share, busiest = _peak_share(events)
    cold_share, cold_busiest = _peak_share(emulation.EVENTS[first:since])
    calls = Counter(e["EventName"] for e in events if e["EventSource"] == "apigateway.amazonaws.com")
    # The floor: each shard's calls at the quota share (each bucket starts full), the busiest shard setting
    # the pace, in waves of MaximumConcurrency x BatchSize shards (a batch's shards run side by side).
    share_setting = float(org.hub_value({"Ref": "ControlPlaneShare"}))
    per_shard: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for e in events:
        if e["EventSource"] == "apigateway.amazonaws.com":
            per_shard[(str(e["account"]), str(e["region"]))][str(e["EventName"])] += 1
    shard_floor = 0.0
    for names in per_shard.values():
        for quota, n in ((APIGATEWAY_CALLS, sum(names.values())), (GET_RESOURCES, names["GetResources"])):
            burst = max(1, int(quota.burst * share_setting))
            shard_floor = max(shard_floor, (n - burst) / (quota.rate * share_setting))
    waves = math.ceil(len(cycle.reports) / (mapping.max_concurrency * mapping.batch_size))
    floor = waves * shard_floor

    cpu_s = sum(run.answer.cpu_ms for run in cycle.invocations) / 1000
    vcpu = memory_gb * 1024 / 1769  # Lambda's CPU share: one vCPU at 1,769 MB
    apis = ACCOUNTS * APIS

    def per_api_month(billed_s: float) -> float:
        lambda_ = billed_s * memory_gb * GB_SECOND + len(durations) * REQUEST
        return (lambda_ + log_bytes / 1e9 * LOG_GB) * CYCLES_A_MONTH / apis

    with capsys.disabled():
        print(f"\norganization: {ACCOUNTS} accounts x {APIS} APIs (1 region), MaximumConcurrency {mapping.max_concurrency}, "
              f"BatchSize {mapping.batch_size}, quota share {share_setting:g}, worker {memory_gb * 1024:.0f} MB")  # fmt: skip
        print(f"  first cycle (every execution environment cold, {started_cold} started, nothing shared yet): "
              f"{cold.seconds:.1f} s, {len(cold.reports)} of {cold.planned} shards reported ({cold.unsent} not queued)")  # fmt: skip
        for failure in cold.failures() + cycle.failures():
            print(f"    {failure}")
        print(f"  second cycle (environments warm): {cycle.seconds:.1f} s wall ({cycle.planned} shards planned, "
              f"{len(cycle.reports)} reported: {dict(outcomes)}; {audited} APIs audited)")  # fmt: skip
        print(f"  quota floor: {waves} wave(s) x {shard_floor:.1f} s (the busiest shard's calls at the share) = "
              f"{floor:.1f} s; wall / floor = {cycle.seconds / max(floor, 0.001):.2f}x (this machine's 2 cores run the "
              "emulated control plane, every worker and every API)")  # fmt: skip
        print(f"  worker invocations: {len(durations)}, {sum(durations):.0f} s billed in all (max {max(durations):.1f} s), "
              f"{cpu_s:.0f} s of CPU ({cpu_s / apis * 1000:.1f} ms per API), peak {mapping.peak_concurrency} at once")  # fmt: skip
        print(f"  control-plane calls: {sum(calls.values())} ({dict(calls.most_common(6))}); throttled by the local "
              f"AWS: {dict(emulation.THROTTLED) or 'none'}")  # fmt: skip
        print(f"  peak share of any account's control-plane quota over {WINDOW_S} s: {share:.0%} ({busiest}); "
              f"first cycle {cold_share:.0%} ({cold_busiest})")  # fmt: skip
        print(f"  logs: {log_bytes / audited:.0f} bytes per API per cycle")
        print(f"  cost per API-month at a 5-minute cycle, before the hub's fixed cost: ${per_api_month(sum(durations)):.4f} "
              f"billed as measured here; ${per_api_month(max(cpu_s / vcpu, floor)):.4f} billed as the CPU work needs at "
              f"{memory_gb * 1024:.0f} MB ({vcpu:.2f} vCPU), or the quota floor if longer")  # fmt: skip

    assert cycle.planned == ACCOUNTS and len(cycle.reports) == ACCOUNTS  # every shard accounted for
    assert outcomes.get("failed", 0) == 0 and audited == apis
    assert not emulation.THROTTLED
    assert max(share, cold_share) <= share_setting + 0.05  # the configured share, whatever the fan-out
