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
        # WHEN the policy is weakened and deployed, and a message that is no event lands in the queue too
        pipe.sqs.send_message(QueueUrl=pipe.url, MessageBody="not json", MessageGroupId=pipe.group)
        save_policy(apigw, harness.sample.api_id, harness.sample.weakened_policy())
        deploy(apigw, harness.sample.api_id)
        assert pipe.delivery_of("CreateDeployment") is not None
    harness.restore()
    runs = [d.answer for d in pipe.deliveries]
    audited = [line["audit"] for run in runs for line in run.logs if line.get("message") == "target audited"]
    # THEN the last audit is the whole audit of that API: drift, the live probe got in, and who changed it
    assert runs and all(run.error is None and run.result == {"batchItemFailures": []} for run in runs)
    last = audited[-1]
    codes = {f["code"]: f["message"] for f in last["findings"]}
    assert last["apiId"] == harness.sample.api_id and last["drift"] and last["unauthorizedCallAllowed"]
    assert "CreateDeployment by arn:aws:sts::123456789012:assumed-role/console/alice" in codes["CHANGED_BY"]
    assert last["trigger"].startswith("CreateDeployment by ")
    # and no heartbeat: the schedule's heartbeat says the schedule runs
    assert not [p for run in runs for p in run.points if p.metric == "AuditHeartbeat"]
