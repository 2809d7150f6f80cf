"""A change reaches the function as the template wires it (CloudTrail's event, the ChangeRule's pattern read
from template.yaml, the FIFO queue, the event source mapping) and becomes one whole audit of that API."""

from __future__ import annotations

from access_auditor.local_aws.eventbridge import ChangePipeline, invoke_with
from access_auditor.local_aws.invoke import TEMPLATE
from access_auditor.local_aws.sample import deploy, save_policy
from tests.harness import Harness


def test_a_deployed_weakening_is_audited_within_seconds_and_names_who_changed_it(harness: Harness) -> None:
    role = harness.sample.allowed_role_arn.rsplit("/", 1)[1]
    apigw = harness.aws.client("apigateway")
    pipe = ChangePipeline(harness.aws, TEMPLATE, {"AllowedRoleName": role, "SettleSeconds": "1"},
                          invoke_with(harness.function_env()))  # fmt: skip
    with pipe:
        # WHEN the policy is weakened and deployed, and messages that are no event land in the queue too: one not
        # JSON, one nested far deeper than any record
        bad = {pipe.sqs.send_message(QueueUrl=pipe.url, MessageBody=body, MessageGroupId=pipe.group, MessageDeduplicationId=str(n))["MessageId"]
               for n, body in enumerate(("not json", "[" * 100_000 + "]" * 100_000))}  # fmt: skip
        save_policy(apigw, harness.sample.api_id, harness.sample.weakened_policy())
        deploy(apigw, harness.sample.api_id)
        assert pipe.delivery_of("CreateDeployment") is not None
    harness.restore()
    runs = [d.answer for d in pipe.deliveries]
    audited = [line["audit"] for run in runs for line in run.logs if line.get("message") == "target audited"]
    # THEN each bad message failed alone (to the dead-letter queue, which alarms); no invocation crashed
    failed = {
        item["itemIdentifier"] for run in runs for item in (run.result or {}).get("batchItemFailures", [])
    }
    assert runs and all(run.error is None for run in runs) and failed == bad
    # and the last audit is the whole audit of that API: drift, the live probe got in, and who changed it
    last = audited[-1]
    codes = {f["code"]: f["message"] for f in last["findings"]}
    assert last["apiId"] == harness.sample.api_id and last["drift"] and last["unauthorizedCallAllowed"]
    assert "CreateDeployment by arn:aws:sts::123456789012:assumed-role/console/alice" in codes["CHANGED_BY"]
    assert last["trigger"].startswith("CreateDeployment by ")
    # and no heartbeat: the schedule's heartbeat says the schedule runs
    assert not [p for run in runs for p in run.points if p.metric == "AuditHeartbeat"]
