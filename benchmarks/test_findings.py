"""Findings to Security Hub against the local AWS (its documented BatchImportFindings limits enforced):
how many findings a second the export reaches, and how many Security Hub calls 1,000 APIs cost in a steady
state. Prints; asserts only what a user would call broken (a finding lost, calls for unchanged findings)."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import time

import pytest

from access_auditor.audit import AuditRun, TargetResult
from access_auditor.aws.pacing import IMPORT_FINDINGS, QUOTAS, Pacer
from access_auditor.aws.securityhub import import_findings
from access_auditor.config import Target
from access_auditor.findings import finding
from access_auditor.local_aws import findings_services
from access_auditor.outputs.sinks import FindingState, SecurityHubSink, deliver
from tests.harness import Harness
from tests.unit.test_shared_memory import Table

APIS = 1_000
WITH_FINDINGS = 150  # APIs with an open finding (two each)


def _run(account: str, region: str) -> AuditRun:
    results = []
    for n in range(APIS):
        target = Target(f"api{n:04d}", "prod", region, account, (f"arn:aws:iam::{account}:role/app",))
        found = [finding("METHOD_NOT_IAM", f"GET /{n} uses NONE", subject=f"GET /{n}"),
                 finding("ACCESS_WEAKENED", "anonymous caller can invoke GET /", subject="anonymous caller")]  # fmt: skip
        results.append(TargetResult(target, found if n < WITH_FINDINGS else []))
    return AuditRun(results, {(account, region)}, {t.target.api_key for t in results})


def test_findings_to_security_hub(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    aws = harness.aws
    client = aws.client("securityhub")
    with contextlib.suppress(client.exceptions.ClientError):  # enabled by another test of this local AWS
        client.enable_security_hub()
    pacer = Pacer(QUOTAS["securityhub"], 1.0)
    calls: list[int] = []

    def importer(account: str, region: str, items: list[dict]) -> tuple[set[str], list[str]]:  # type: ignore[type-arg]
        before = len(findings_services.IMPORTS)
        outcome = import_findings(client, pacer, items)
        calls.append(len(findings_services.IMPORTS) - before)
        return outcome

    state = FindingState(Table())
    sink = SecurityHubSink(importer)
    now = dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC)
    started = time.monotonic()
    first = deliver(_run(aws.account, aws.region), (), state, [sink], now)
    seconds = time.monotonic() - started
    exported = sum(1 for r in first.records.values() if r.exported_at)
    steady = []
    for minutes in (5, 10, 15):
        calls.clear()
        deliver(_run(aws.account, aws.region), (), state, [sink], now + dt.timedelta(minutes=minutes))
        steady.append(sum(calls))
    calls.clear()
    deliver(_run(aws.account, aws.region), (), state, [sink], now + dt.timedelta(days=1, minutes=5))
    refresh = sum(calls)
    floor = math.ceil(exported / 100)
    with capsys.disabled():
        print(f"\nSecurity Hub, {APIS} APIs ({WITH_FINDINGS} with two open findings each), BatchImportFindings at "
              f"{IMPORT_FINDINGS.rate:.0f}/s burst {IMPORT_FINDINGS.burst:.0f}:")  # fmt: skip
        print(f"  first run: {exported} findings exported in {seconds:.2f} s = {exported / seconds:.0f} findings/s, "
              f"in {floor} request(s) (100 a request; AWS's quota allows {IMPORT_FINDINGS.rate * 100:.0f} a second "
              f"sustained, {IMPORT_FINDINGS.burst * 100:.0f} in a burst)")  # fmt: skip
        print(f"  steady state: {steady} BatchImportFindings calls per {APIS} APIs per run (goal: 0)")
        print(f"  daily refresh: {refresh} call(s) for {exported} open findings (Security Hub expires a finding "
              "not updated for 90 days)")  # fmt: skip
    assert exported == 2 * WITH_FINDINGS
    assert steady == [0, 0, 0] and refresh == floor
