"""What an insider with modest rights tries against the auditor, reproduced on the local AWS."""

from __future__ import annotations

import pytest
from moto.apigateway.models import apigateway_backends

from access_auditor.audit import run_audit
from access_auditor.config import load_config
from access_auditor.wiring import build_ports
from tests.harness import Harness


def test_a_stages_tag_does_not_take_an_open_stage_out_of_the_run(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the API tagged for discovery, prod weakened and deployed, and a dev stage; then the insider's tag
    # access-auditor:stages=dev, meant to drop prod from the run
    apigw, sample = harness.aws.client("apigateway"), harness.sample
    apigw.create_deployment(restApiId=sample.api_id, stageName="dev")
    harness.save_and_deploy(sample.weakened_policy())
    model = apigateway_backends[harness.aws.account][harness.aws.region].apis[sample.api_id]
    model.tags = {"access-auditor:allowed-roles": sample.allowed_role_arn, "access-auditor:stages": "dev"}
    env = harness.in_process(
        monkeypatch,
        API_ID="",
        API_STAGE="",
        DISCOVERY_REGIONS=harness.aws.region,
        AWS_ENDPOINT_URL_EXECUTE_API=harness.aws.gateway.url,
    )
    try:
        results = run_audit(load_config(env), build_ports(), budget_s=30)
    finally:
        model.tags = {}
        apigw.delete_stage(restApiId=sample.api_id, stageName="dev")
        harness.restore()
    # THEN prod is audited and its weakening reported, and the tag is a finding naming what it left out
    prod = next(r for r in results if r.target.stage == "prod")
    assert prod.drift and any(f.code == "ACCESS_WEAKENED" for f in prod.findings)
    narrowing = [f for r in results for f in r.findings if f.code == "STAGES_TAG_NARROWS"]
    assert narrowing and "leaves out prod" in narrowing[0].message


def test_an_alarm_page_arrives_even_when_the_notifier_fails(harness: Harness) -> None:
    # GIVEN the alarm topic, and a function whose enriched notification fails: the topic it was told to publish
    # to (ALARM_TOPIC_ARN, which whoever may update the function's configuration can rewrite) does not exist
    from moto.sns.models import sns_backends

    from access_auditor.local_aws.alarms import alarm_arn, load_template, resolver, template_alarms
    from access_auditor.local_aws.eventbridge import invoke_with
    from access_auditor.local_aws.events import deliver_alarm_change, on_failure_destination, publish_to
    from access_auditor.local_aws.invoke import TEMPLATE

    topic = harness.aws.client("sns").create_topic(Name="pages")["TopicArn"]
    sent = sns_backends[harness.aws.account][harness.aws.region].topics[topic].sent_notifications
    template = load_template(TEMPLATE)
    alarm = next(a for a in template_alarms(template) if a.name == "PolicyDriftAlarm")
    rule = template["Resources"]["AuditorFunction"]["Properties"]["Events"]["AlarmRaised"]["Properties"][
        "Pattern"
    ]
    pattern = resolver(
        template, attributes={f"{a.name}.Arn": alarm_arn(a.name) for a in template_alarms(template)}
    )(rule)
    failing = invoke_with(harness.function_env(ALARM_TOPIC_ARN=topic + "-gone"))
    # and the function's OnFailure destination as the template declares it
    assert on_failure_destination(template, "AuditorFunction") == "AlarmTopic"
    # WHEN PolicyDriftAlarm goes to ALARM
    delivered = deliver_alarm_change(
        alarm, "ALARM", "OK", pattern, failing, sent, publish_to(harness.aws.client("sns"), topic)
    )
    # THEN the function failed, and the page reached the topic all the same, naming the alarm
    assert delivered is not None and delivered[0].error
    assert (
        len(sent) == 1
        and "PolicyDriftAlarm" in sent[0][1]
        and '"condition": "RetriesExhausted"' in sent[0][1]
    )


def test_a_rewritten_configuration_document_pages(harness: Harness) -> None:
    # GIVEN the function watches its configuration document, and an insider rewrites it to silence the audit
    from moto.sns.models import sns_backends

    from access_auditor.local_aws.eventbridge import invoke_with
    from tests.fixtures import recorded

    topic = harness.aws.client("sns").create_topic(Name="config-pages")["TopicArn"]
    sent = sns_backends[harness.aws.account][harness.aws.region].topics[topic].sent_notifications
    event = recorded("ssm_parameter_store_change")["event"]
    event = {**event, "resources": [event["resources"][0].replace("/foo", "/apigw/fleet")],
             "detail": {**event["detail"], "name": "/apigw/fleet", "operation": "Update"}}  # fmt: skip
    function = invoke_with(harness.function_env(ALARM_TOPIC_ARN=topic, CONFIG_PARAMETER="/apigw/fleet"))
    # WHEN EventBridge hands the function the change
    run = function(event)
    # THEN the topic is paged, naming the document and the operation
    assert run.error is None and run.result["notified"]
    [(_, message, subject, *_)] = sent
    assert subject == "CONFIG CHANGED: Update of /apigw/fleet" and "silence" in message
