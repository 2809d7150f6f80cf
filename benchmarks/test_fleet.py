"""The fleet against the local AWS with API Gateway's and CloudTrail's quotas enforced as token buckets in
the local control plane, and a health endpoint that takes 200 ms. Prints; asserts only what a user would
call broken (a throttling-induced error, an API never audited)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from access_auditor.audit import run_audit
from access_auditor.aws.pacing import APIGATEWAY_CALLS, GET_RESOURCES
from access_auditor.config import load_config
from access_auditor.local_aws import emulation
from access_auditor.local_aws.sample import create_fleet, grant_fleet_invoke
from access_auditor.wiring import build_ports
from tests.harness import Harness

HEALTH_LATENCY_S = 0.2
BUDGET_S = 117.0  # the template's default 120 s timeout less the margin


def _calls(since: int) -> Counter[tuple[str, str]]:
    """Control-plane calls the local AWS recorded after event ``since``, per (region, operation)."""
    return Counter((e["region"], e["EventName"]) for e in emulation.EVENTS[since:])


def _floor_s(calls: Counter[tuple[str, str]], share: float) -> float:
    """The least time the quota share allows for ``calls``, in the busiest region: each bucket starts full."""
    worst = 0.0
    for region in {r for r, _ in calls}:
        total = sum(n for (r, _), n in calls.items() if r == region)
        resources = calls[(region, "GetResources")]
        for quota, n in ((APIGATEWAY_CALLS, total), (GET_RESOURCES, resources)):
            rate, burst = quota.rate * share, max(1, int(quota.burst * share))
            worst = max(worst, (n - burst) / rate)
    return max(0.0, worst)


@pytest.fixture
def fleet_env(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = harness.in_process(
        monkeypatch, AWS_ENDPOINT_URL_EXECUTE_API=harness.aws.gateway.url, OUTSIDER_ROLE_ARN=""
    )
    grant_fleet_invoke(harness.aws, harness.sample.allowed_role_arn)
    harness.aws.gateway.latency_s = HEALTH_LATENCY_S
    yield env
    harness.aws.gateway.latency_s = 0.0


def _run(env: dict[str, str], regions: tuple[str, ...], ports=None):  # type: ignore[no-untyped-def]
    config = load_config({**env, "API_ID": "", "DISCOVERY_REGIONS": ",".join(regions)})
    ports = ports or build_ports(share=config.control_plane_share)
    since = len(emulation.EVENTS)
    started = time.monotonic()
    results = run_audit(config, ports, budget_s=BUDGET_S)
    return results, time.monotonic() - started, _calls(since), ports, config


def test_fifty_apis_against_one(
    harness: Harness, fleet_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    create_fleet(harness.aws, harness.sample.allowed_role_arn, ("ap-northeast-1",), 1)
    create_fleet(harness.aws, harness.sample.allowed_role_arn, ("sa-east-1",), 50)
    emulation.THROTTLED.clear()
    lines = []
    timings = {}
    for label, region in (("1 API", "ap-northeast-1"), ("50 APIs", "sa-east-1")):
        results, cold_s, cold_calls, ports, config = _run(fleet_env, (region,))
        results, warm_s, warm_calls, _, _ = _run(fleet_env, (region,), ports)
        assert all(r.healthy and not r.audit_error and not r.deferred for r in results)
        floor = _floor_s(warm_calls, config.control_plane_share)
        timings[label] = (warm_s, floor)
        lines.append(f"{label:8}: cold {cold_s:5.2f} s ({sum(cold_calls.values()) / len(results):.1f} calls/API), "
                     f"steady state {warm_s:5.2f} s ({sum(warm_calls.values()) / len(results):.2f} calls/API: "
                     f"{dict(Counter(op for _, op in warm_calls.elements()))}), quota floor {floor:.2f} s")  # fmt: skip
    one, fifty = timings["1 API"][0], timings["50 APIs"][0]
    floor = timings["50 APIs"][1]
    with capsys.disabled():
        print("\nfleet, steady state (health 200 ms, unsigned probe included, quota share "
              f"{load_config({**fleet_env}).control_plane_share:.0%}):")  # fmt: skip
        for line in lines:
            print("  " + line)
        print(f"  50 APIs / 1 API = {fifty / one:.1f}x (goal <= 3x); quota floor = max over regions of "
              f"(calls - burst x share) / (rate x share) = {floor:.2f} s; 50 APIs / max(3 x 1 API, floor) = "
              f"{fifty / max(3 * one, floor):.2f}x (goal <= 1.5x)")  # fmt: skip
        print(f"  calls the local AWS throttled: {dict(emulation.THROTTLED) or 'none'}")
    assert not emulation.THROTTLED


def test_five_hundred_discovered_apis(
    harness: Harness, fleet_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    regions = ("us-west-1", "ca-central-1")
    create_fleet(harness.aws, harness.sample.allowed_role_arn, regions, 250)
    emulation.THROTTLED.clear()
    audited: set[tuple[str, ...]] = set()
    ports = None
    with capsys.disabled():
        print(f"\n500 discovered APIs in {' and '.join(regions)}, health 200 ms, {BUDGET_S:.0f} s per run:")
        for number in range(1, 13):
            results, seconds, calls, ports, _ = _run(fleet_env, regions, ports)
            errors = [r for r in results if r.audit_error]
            done = [r for r in results if not r.deferred]
            audited |= {r.target.key for r in done}
            print(f"  run {number}: {seconds:5.1f} s, {len(done)} audited, {len(results) - len(done)} deferred, "
                  f"{len(errors)} audit errors, {sum(calls.values()) / max(1, len(done)):.2f} control-plane calls "
                  f"per audited API; {len(audited)}/500 audited so far")  # fmt: skip
            assert not errors, errors[0].findings
            if len(audited) == 500 and not [r for r in results if r.deferred]:
                break
        print(f"  calls the local AWS throttled: {dict(emulation.THROTTLED) or 'none'}")
    assert len(audited) == 500 and not emulation.THROTTLED
