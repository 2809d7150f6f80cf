"""Seconds, not minutes: from a change to the drift metric through CloudTrail's event, the template's rule
(its pattern read from template.yaml), the FIFO queue and the function, on the local AWS. Prints the
measured delays; asserts only what a user would call broken (no audit, or an audit started by the
auditor's own change)."""

from __future__ import annotations

import statistics
import time

import pytest

from access_auditor.local_aws.event_source import Invocation
from access_auditor.local_aws.eventbridge import ChangePipeline, invoke_with
from access_auditor.local_aws.invoke import TEMPLATE
from access_auditor.local_aws.sample import client_as, deploy, save_policy
from tests.harness import Harness

SETTLE_S = 2.0


def _delivery_of(pipe: ChangePipeline, after: int, event_name: str) -> Invocation:
    delivery = pipe.delivery_of(event_name, after)
    assert delivery is not None, f"no audit was started by {event_name}"
    return delivery


def pipeline(harness: Harness) -> ChangePipeline:
    role = harness.sample.allowed_role_arn.rsplit("/", 1)[1]
    return ChangePipeline(harness.aws, TEMPLATE, {"AllowedRoleName": role, "SettleSeconds": str(int(SETTLE_S))},
                          invoke_with(harness.function_env()))  # fmt: skip


def test_change_to_drift_metric(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    apigw = harness.aws.client("apigateway")
    delays, audits = [], []
    with pipeline(harness) as pipe:
        for _ in range(3):
            before = len(pipe.deliveries)
            save_policy(apigw, harness.sample.api_id, harness.sample.weakened_policy())
            deploy(apigw, harness.sample.api_id)
            written = time.monotonic()
            delivery = pipe.first_raising("PolicyDrift", before)
            assert delivery is not None, "no audit raised PolicyDrift"
            delays.append(delivery.ended - written - SETTLE_S)
            _delivery_of(pipe, before, "CreateDeployment")  # every batch of the burst handled
            settled = len(pipe.deliveries)
            harness.restore()
            _delivery_of(pipe, settled, "CreateDeployment")  # the restore's own audit, out of the way
        # A burst: 20 changes to one API within a few seconds
        before = len(pipe.deliveries)
        for n in range(19):
            save_policy(
                apigw,
                harness.sample.api_id,
                harness.sample.weakened_policy() if n % 2 else harness.sample.expected_policy(),
            )
        deploy(apigw, harness.sample.api_id)
        time.sleep(SETTLE_S + 6)
        audits.append(len(pipe.deliveries) - before)
        # As the auditor's own role
        as_role = client_as(harness.aws, harness.sample.allowed_role_arn, "apigateway")
        before, matched = len(pipe.deliveries), len(pipe.matched)
        save_policy(as_role, harness.sample.api_id, harness.sample.expected_policy())
        time.sleep(SETTLE_S + 3)
        own_audits, own_matched = len(pipe.deliveries) - before, len(pipe.matched) - matched
    harness.restore()
    with capsys.disabled():
        print(
            f"\nchange (UpdateRestApi + CreateDeployment) -> the first audit with PolicyDrift 1, through CloudTrail, the ChangeRule, the queue ({SETTLE_S:.0f} s settle) and the function:"
        )
        print(
            f"  excluding the settle delay: {', '.join(f'{d:.2f} s' for d in delays)} (median {statistics.median(delays):.2f} s; goal < 5 s)"
        )
        print(f"  a burst of 20 changes to one API: {audits[0]} audit(s) (goal: 1 or 2)")
        print(
            f"  a change made as the auditor's own role: {own_matched} event(s) matched, {own_audits} audit(s) (goal: 0)"
        )
    assert own_audits == 0 and own_matched == 0
