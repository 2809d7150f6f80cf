"""Findings that open, stay and resolve, as the function delivers them to Security Hub, AWS Config and the
alarm topic, run as Lambda runs it against the local AWS (moto serves Security Hub and Config, with AWS's
documented limits: local_aws/findings_services.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.sns.models import sns_backends

from access_auditor.local_aws.invoke import Invocation, invoke_auditor
from tests.harness import Harness

RULE = "apigw-access-auditor-api-access"


@pytest.fixture(scope="module")
def outputs(harness: Harness) -> dict[str, str]:
    aws = harness.aws
    aws.client("dynamodb").create_table(TableName="findings", BillingMode="PAY_PER_REQUEST",
                                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])  # fmt: skip
    key = aws.client("kms").create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"][
        "Arn"
    ]
    aws.client("securityhub").enable_security_hub()
    topic = aws.client("sns").create_topic(Name="alarms")["TopicArn"]
    return {"FINDINGS_TABLE": "findings", "FINDINGS_MAC_KEY": key, "SECURITY_HUB": "true",
            "ALARM_TOPIC_ARN": topic, "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/auditor"}  # fmt: skip


def hub_findings(harness: Harness) -> dict[str, dict[str, Any]]:
    pages = harness.aws.client("securityhub").get_paginator("get_findings").paginate()
    return {f["Id"]: f for page in pages for f in page["Findings"]}


def pages(harness: Harness, topic: str) -> list[str]:
    """The subjects of the finding pages the alarm topic received."""
    sent = sns_backends[harness.aws.account][harness.aws.region].topics[topic].sent_notifications
    return [str(subject) for _, _, subject, *_ in sent if str(subject).startswith("FINDINGS")]


def transitions(run: Invocation) -> list[str]:
    return [line["finding"]["transition"] + " " + line["finding"]["code"] for line in run.logs
            if line.get("message") == "finding transition"]  # fmt: skip


def evaluations(harness: Harness) -> dict[str, dict[str, Any]]:
    answer = harness.aws.client("config").get_compliance_details_by_config_rule(ConfigRuleName=RULE)
    return {
        e["EvaluationResultIdentifier"]["EvaluationResultQualifier"]["ResourceId"]: e
        for e in answer["EvaluationResults"]
    }


def config_event(harness: Harness) -> dict[str, Any]:
    arn = f"arn:aws:apigateway:{harness.aws.region}::/restapis/{harness.sample.api_id}/stages/prod"
    item = {"configurationItemCaptureTime": "2026-12-04T10:00:00.000Z", "awsAccountId": harness.aws.account,
            "configurationItemStatus": "OK", "resourceId": arn, "ARN": arn, "awsRegion": harness.aws.region,
            "resourceType": "AWS::ApiGateway::Stage", "configuration": {}}  # fmt: skip
    return {"invokingEvent": json.dumps({"configurationItem": item, "messageType": "ConfigurationItemChangeNotification"}),
            "ruleParameters": "{}", "resultToken": RULE, "eventLeftScope": False, "configRuleName": RULE,
            "accountId": harness.aws.account, "version": "1.0"}  # fmt: skip


def test_a_weakening_opens_a_finding_and_restoring_resolves_it(
    harness: Harness, outputs: dict[str, str], tmp_path: Any
) -> None:
    env = harness.function_env(**outputs)
    # GIVEN a locked API audited once: nothing open
    first = invoke_auditor(env)
    assert first.result is not None and first.result["ok"] is True
    # WHEN the policy is weakened and the auditor runs twice
    harness.save_and_deploy(harness.sample.weakened_policy())
    try:
        opened = invoke_auditor(env)
        again = invoke_auditor(env)
    finally:
        harness.restore()
    # THEN Security Hub holds an ACTIVE, FAILED, NEW-workflow finding for the weakening
    found = hub_findings(harness)
    weakened = [f for f in found.values() if f["GeneratorId"].endswith("ACCESS_WEAKENED")]
    assert len(weakened) == 1
    assert weakened[0]["RecordState"] == "ACTIVE" and weakened[0]["Compliance"]["Status"] == "FAILED"
    assert weakened[0]["Workflow"]["Status"] == "NEW"
    assert weakened[0]["Resources"][0]["Type"] == "AwsApiGatewayStage"
    assert opened.result is not None and opened.result["ok"] is False
    # AND the transition paged once: the second identical run sent no notification
    assert "opened ACCESS_WEAKENED" in transitions(opened) and transitions(again) == []
    assert len(pages(harness, outputs["ALARM_TOPIC_ARN"])) == 1
    # WHEN the policy is restored (above) and the auditor runs again
    resolved = invoke_auditor(env)
    # THEN the finding is archived and PASSED
    after = hub_findings(harness)[weakened[0]["Id"]]
    assert after["RecordState"] == "ARCHIVED" and after["Compliance"]["Status"] == "PASSED"
    assert "resolved ACCESS_WEAKENED" in transitions(resolved)
    assert len(pages(harness, outputs["ALARM_TOPIC_ARN"])) == 2


def test_config_invokes_the_rule_and_gets_non_compliant_then_compliant(harness: Harness, outputs: dict[str, str],
                                                                       tmp_path: Any) -> None:  # fmt: skip
    # GIVEN Config's change notification for the sample stage (the documented event shape)
    event = tmp_path / "config.json"
    event.write_text(json.dumps(config_event(harness)))
    arn = f"arn:aws:apigateway:{harness.aws.region}::/restapis/{harness.sample.api_id}/stages/prod"
    env = harness.function_env(**outputs)
    # WHEN the policy is weakened and Config invokes the rule
    harness.save_and_deploy(harness.sample.weakened_policy())
    try:
        invoke_auditor(env, event=event)
    finally:
        harness.restore()
    # THEN the stage is NON_COMPLIANT, the finding named in the annotation
    weakened = evaluations(harness)[arn]
    assert weakened["ComplianceType"] == "NON_COMPLIANT" and weakened["Annotation"].startswith(
        "ACCESS_WEAKENED"
    )
    # WHEN the policy is restored and Config invokes the rule again: COMPLIANT
    invoke_auditor(env, event=event)
    assert evaluations(harness)[arn]["ComplianceType"] == "COMPLIANT"


def test_a_deleted_apis_finding_is_resolved_and_archived(harness: Harness, outputs: dict[str, str]) -> None:
    from moto.apigateway.models import apigateway_backends

    from access_auditor.local_aws.sample import create_fleet

    aws = harness.aws
    region = "eu-west-1"
    aws.client("securityhub", region=region).enable_security_hub()
    (ref,) = create_fleet(aws, harness.sample.allowed_role_arn, (region,), 1)
    backend = apigateway_backends[aws.account][region]
    backend.update_rest_api(
        ref.api_id, [{"op": "replace", "path": "/policy", "value": harness.sample.weakened_policy(ref)}]
    )
    backend.create_deployment(ref.api_id, "prod")
    env = harness.function_env(**outputs, DISCOVERY_REGIONS=region)
    # GIVEN a tagged API in another region whose policy is weakened: its finding opens
    opened = invoke_auditor(env)
    assert "opened ACCESS_WEAKENED" in transitions(opened)
    found = hub_findings_in(harness, region)
    (weak,) = [f for f in found.values() if f["GeneratorId"].endswith("ACCESS_WEAKENED")]
    assert weak["RecordState"] == "ACTIVE"
    # WHEN the API is deleted and the auditor runs
    aws.client("apigateway", region=region).delete_rest_api(restApiId=ref.api_id)
    closed = invoke_auditor(env)
    # THEN its findings are resolved, saying why, and archived in Security Hub
    reasons = [line["finding"]["reason"] for line in closed.logs if line.get("message") == "finding transition"
               and line["finding"]["code"] == "ACCESS_WEAKENED"]  # fmt: skip
    assert reasons == [f"API {ref.api_id} no longer exists"]
    assert hub_findings_in(harness, region)[weak["Id"]]["RecordState"] == "ARCHIVED"


def hub_findings_in(harness: Harness, region: str) -> dict[str, dict[str, Any]]:
    pages = harness.aws.client("securityhub", region=region).get_paginator("get_findings").paginate()
    return {f["Id"]: f for page in pages for f in page["Findings"]}


def test_a_suppressed_finding_stays_suppressed_until_its_expiry_then_comes_back(
    harness: Harness, outputs: dict[str, str], tmp_path: Any
) -> None:
    import datetime as dt
    import time

    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=25)
    document = tmp_path / "auditor.yaml"
    document.write_text(json.dumps({"suppressions": [{
        "apis": [harness.sample.api_id], "codes": ["ACCESS_WEAKENED", "OUTSIDER_CALL_ALLOWED"],
        "justification": "a migration window agreed with the security team", "expires": expires.isoformat()}]}))  # fmt: skip
    env = harness.function_env(**outputs, CONFIG_FILE=str(document))
    harness.save_and_deploy(harness.sample.weakened_policy())
    try:
        # GIVEN a weakening that a suppression covers: it is kept as SUPPRESSED, counted, and raises no drift
        muted = invoke_auditor(env)
        assert muted.result is not None
        target = muted.result["targets"][0]
        assert {f["code"] for f in target["suppressed"]} >= {"ACCESS_WEAKENED"}
        assert metric(muted, "Suppressed") == [2] and metric(muted, "PolicyDrift") == [0]
        suppressed = [f for f in hub_findings(harness).values()
                      if f["GeneratorId"].endswith("ACCESS_WEAKENED") and "/suppressed/" in f["Id"]]  # fmt: skip
        assert [f["Workflow"]["Status"] for f in suppressed] == ["SUPPRESSED"]
        # WHEN the expiry passes
        time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds() + 1))
        back = invoke_auditor(env)
    finally:
        harness.restore()
    # THEN the finding comes back by itself and raises drift again
    assert "returned ACCESS_WEAKENED" in transitions(back)
    assert metric(back, "PolicyDrift") == [1]
    found = hub_findings(harness)
    assert found[suppressed[0]["Id"]]["RecordState"] == "ARCHIVED"


def metric(run: Invocation, name: str) -> list[float]:
    return [
        v
        for p in run.points
        if p.metric == name and p.dimensions == (("service", "apigw-access-auditor"),)
        for v in p.values
    ]


def test_150_findings_go_in_two_batches(harness: Harness) -> None:
    import datetime as dt

    from access_auditor.aws.pacing import QUOTAS, Pacer
    from access_auditor.aws.securityhub import import_findings
    from access_auditor.local_aws import findings_services
    from access_auditor.outputs.formats import asff
    from access_auditor.outputs.lifecycle import Record, State

    now = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    stamp = now.isoformat()
    records = [Record(f"{harness.aws.account}/{harness.aws.region}/api{n:03d}/prod/METHOD_NOT_IAM", harness.aws.account,
                      harness.aws.region, f"api{n:03d}", "prod", "METHOD_NOT_IAM", "", "high", "GET / is NONE",
                      State.NEW, stamp, stamp, stamp) for n in range(150)]  # fmt: skip
    before = len(findings_services.IMPORTS)
    client = harness.aws.client("securityhub")
    client.enable_security_hub() if not _enabled(client) else None
    imported, problems = import_findings(client, Pacer(QUOTAS["securityhub"], 1.0),
                                         [item for r in records for item in asff(r, None, now)])  # fmt: skip
    assert problems == [] and len(imported) == 150
    assert [n for _, _, n in findings_services.IMPORTS[before:]] == [100, 50]


def _enabled(client: Any) -> bool:
    try:
        client.describe_hub()
    except client.exceptions.ClientError:
        return False
    return True


def test_a_forged_state_entry_is_not_believed_and_the_findings_open_again(
    harness: Harness, outputs: dict[str, str]
) -> None:
    # GIVEN a weakening the auditor has already told about (its state entry says ACTIVE)
    env = harness.function_env(**outputs)
    harness.save_and_deploy(harness.sample.weakened_policy())
    try:
        invoke_auditor(env)
        # WHEN someone who can write the table rewrites the entry: the same findings, suppressed until 2099
        import base64
        import zlib

        table = harness.aws.client("dynamodb")
        key = {"pk": {"S": f"v1/findings/{harness.aws.account}/{harness.aws.region}"}}
        item = table.get_item(TableName="findings", Key=key)["Item"]
        entry = json.loads(item["v"]["S"])
        kept = json.loads(zlib.decompress(base64.b64decode(entry["value"])))
        for record in kept["records"]:
            record.update(state="SUPPRESSED", reason="forged", until="2099-01-01T00:00:00+00:00")
        entry["value"] = base64.b64encode(zlib.compress(json.dumps(kept).encode())).decode()
        table.put_item(TableName="findings", Item={**item, "v": {"S": json.dumps(entry)}})
        after = invoke_auditor(env)
    finally:
        harness.restore()
    # THEN the entry does not verify, so it reads as none: the weakening opens again (were the forgery
    # believed, it would read "returned", a suppression ending), and it still raises drift
    assert "opened ACCESS_WEAKENED" in transitions(after)
    assert metric(after, "PolicyDrift") == [1]


def test_the_local_security_hub_refuses_as_aws_documents(harness: Harness) -> None:
    from tests.unit.test_recorded_shapes import SECURITY_HUB

    client = harness.aws.client("securityhub")
    if not _enabled(client):
        client.enable_security_hub()
    documented = SECURITY_HUB["answer"]
    good = {"SchemaVersion": "2018-10-08", "Id": "x/1", "GeneratorId": "g", "AwsAccountId": harness.aws.account,
            "ProductArn": f"arn:aws:securityhub:{harness.aws.region}:{harness.aws.account}:product/{harness.aws.account}/default",
            "CreatedAt": "2026-12-04T00:00:00Z", "UpdatedAt": "2026-12-04T00:00:00Z", "Title": "t",
            "Description": "d", "Resources": [{"Type": "Other", "Id": "r"}]}  # fmt: skip
    answer = client.batch_import_findings(
        Findings=[good, {**good, "Id": "x/2", "AwsAccountId": "999999999999"}]
    )
    # the answer has the documented fields, the refused finding named alone
    assert set(documented) <= set(answer) and (answer["FailedCount"], answer["SuccessCount"]) == (1, 1)
    assert set(answer["FailedFindings"][0]) == set(documented["FailedFindings"][0])
    assert answer["FailedFindings"][0]["Id"] == "x/2"
    # and an account that has not enabled Security Hub is refused as a whole, with the documented code
    other = harness.aws.client("securityhub", region="ap-south-1")
    with pytest.raises(other.exceptions.ClientError, match=SECURITY_HUB["not_enabled"]["code"]):
        other.batch_import_findings(Findings=[good])
