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
    key = aws.client("kms").create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["Arn"]
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
    return {e["EvaluationResultIdentifier"]["EvaluationResultQualifier"]["ResourceId"]: e for e in answer["EvaluationResults"]}


def config_event(harness: Harness) -> dict[str, Any]:
    arn = f"arn:aws:apigateway:{harness.aws.region}::/restapis/{harness.sample.api_id}/stages/prod"
    item = {"configurationItemCaptureTime": "2026-12-04T10:00:00.000Z", "awsAccountId": harness.aws.account,
            "configurationItemStatus": "OK", "resourceId": arn, "ARN": arn, "awsRegion": harness.aws.region,
            "resourceType": "AWS::ApiGateway::Stage", "configuration": {}}  # fmt: skip
    return {"invokingEvent": json.dumps({"configurationItem": item, "messageType": "ConfigurationItemChangeNotification"}),
            "ruleParameters": "{}", "resultToken": RULE, "eventLeftScope": False, "configRuleName": RULE,
            "accountId": harness.aws.account, "version": "1.0"}  # fmt: skip


def test_a_weakening_opens_a_finding_and_restoring_resolves_it(harness: Harness, outputs: dict[str, str], tmp_path: Any) -> None:
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
