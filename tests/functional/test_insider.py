"""What an insider with modest rights tries against the auditor, reproduced on the local AWS."""

from __future__ import annotations

from typing import Any

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


# The stack's resources as the local AWS names them for the watch rules (what the template's references resolve
# to once deployed as "stack").
WATCHED = {
    "AWS::StackName": "stack",
    "AuditorFunction": "stack-auditor",
    "AuditorFunctionAudit": "stack-schedule",
    "AuditorFunctionAlarmRaised": "stack-alarm-raised",
    "AuditorFunctionConfigChanged": "stack-config-changed",
    "ChangeRule": "stack-change-rule",
    "AllowedRole": "stack-allowed",
    "HeartbeatAlarm": "stack-HeartbeatAlarm",
    "PolicyDriftAlarm": "stack-PolicyDriftAlarm",
}


def _insider(harness: Harness, name: str) -> dict[str, str]:
    from access_auditor.local_aws.trail import insider

    return insider(harness.aws, name)


def _client(harness: Harness, service: str, creds: dict[str, str], **how: bool) -> Any:
    from access_auditor.local_aws.trail import client_as

    return client_as(harness.aws, service, creds, **how)


def test_a_change_to_the_auditor_s_own_stack_pages_naming_who_made_it(harness: Harness) -> None:
    # GIVEN the stack's alarms, schedule, rules and topic, and the template's two watch rules listening
    from moto.sns.models import sns_backends

    from access_auditor.local_aws.eventbridge import WatchRules
    from access_auditor.local_aws.invoke import TEMPLATE

    admin = harness.aws
    topic = admin.client("sns").create_topic(Name="stack-alarms")["TopicArn"]
    sent = sns_backends[admin.account][admin.region].topics[topic].sent_notifications
    cloudwatch, events = admin.client("cloudwatch"), admin.client("events")
    for alarm in ("stack-HeartbeatAlarm", "stack-PolicyDriftAlarm", "someone-elses-alarm"):
        cloudwatch.put_metric_alarm(AlarmName=alarm, MetricName="m", Namespace="n", Statistic="Sum", Period=60,
                                    EvaluationPeriods=1, Threshold=1, ComparisonOperator="LessThanThreshold")  # fmt: skip
    for rule in ("stack-walarm", "stack-wguard"):
        events.put_rule(Name=rule, EventPattern='{"source": ["aws.lambda"]}')
    names = {**WATCHED, "AlarmTopic": topic}
    mallory = _insider(harness, "mallory")
    with WatchRules(admin, TEMPLATE, topic, names) as watch:
        # WHEN mallory switches off the heartbeat's pages and disables the watch rule itself; a stack update
        # (CloudFormation, for whoever deploys) changes an alarm; and someone changes an alarm of another stack
        _client(harness, "cloudwatch", mallory).disable_alarm_actions(AlarmNames=["stack-HeartbeatAlarm"])
        _client(harness, "events", mallory).disable_rule(Name="stack-walarm")
        _client(harness, "cloudwatch", mallory, via_cloudformation=True).disable_alarm_actions(
            AlarmNames=["stack-PolicyDriftAlarm"]
        )
        _client(harness, "cloudwatch", mallory).disable_alarm_actions(AlarmNames=["someone-elses-alarm"])
    # THEN two pages reached the topic, published by EventBridge itself: the alarm's, through the watch rule, and
    # the rule's own, through the guard; each names the call and mallory's session
    assert [rule for rule, _ in watch.pages] == ["WatchAlarmsRule", "WatchGuardRule"]
    messages = [message for _, message, *_ in sent]
    assert len(messages) == 2
    assert messages[0].startswith("WATCHER CHANGED: DisableAlarmActions (monitoring.amazonaws.com)")
    assert messages[1].startswith("WATCHER CHANGED: DisableRule (events.amazonaws.com)")
    assert all("assumed-role/mallory/mallory" in m and "stack-w" not in m.split("by")[0] for m in messages)


def test_a_rewritten_function_or_a_deleted_schedule_pages(harness: Harness) -> None:
    # GIVEN the stack's function (named by its ARN, as a caller may name it) and its schedule
    from moto.sns.models import sns_backends

    from access_auditor.local_aws.eventbridge import WatchRules
    from access_auditor.local_aws.invoke import TEMPLATE

    admin = harness.aws
    topic = admin.client("sns").create_topic(Name="stack-alarms-2")["TopicArn"]
    sent = sns_backends[admin.account][admin.region].topics[topic].sent_notifications
    role = admin.client("iam").create_role(RoleName="stack-fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    arn = admin.client("lambda").create_function(FunctionName="stack-auditor", Runtime="python3.13", Role=role,
                                                 Handler="h.h", Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})["FunctionArn"]  # fmt: skip
    admin.client("scheduler").create_schedule(Name="stack-schedule", ScheduleExpression="rate(5 minutes)",
                                              FlexibleTimeWindow={"Mode": "OFF"}, Target={"Arn": arn, "RoleArn": role})  # fmt: skip
    trudy = _insider(harness, "trudy")
    with WatchRules(admin, TEMPLATE, topic, {**WATCHED, "AlarmTopic": topic}) as watch:
        # WHEN trudy points the function at a topic of her own, then deletes the schedule
        _client(harness, "lambda", trudy).update_function_configuration(
            FunctionName=arn,
            Environment={"Variables": {"ALARM_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:mine"}},
        )
        _client(harness, "scheduler", trudy).delete_schedule(Name="stack-schedule")
    # THEN each pages, naming Lambda's versioned call and the schedule's deletion, and trudy
    assert [rule for rule, _ in watch.pages] == ["WatchFunctionsRule", "WatchFunctionsRule"]
    first, second = (message for _, message, *_ in sent)
    assert first.startswith("WATCHER CHANGED: UpdateFunctionConfiguration20150331v2 (lambda.amazonaws.com)")
    assert second.startswith("WATCHER CHANGED: DeleteSchedule (scheduler.amazonaws.com)")
    assert "assumed-role/trudy/trudy" in first and "assumed-role/trudy/trudy" in second


def test_fewer_targets_than_the_run_before_raises_the_targets_dropped_alarm(harness: Harness) -> None:
    # GIVEN discovery audits the tagged API's prod stage
    from access_auditor.local_aws.alarms import evaluate_math, load_template, template_math_alarms
    from access_auditor.local_aws.invoke import TEMPLATE, invoke_auditor

    model = apigateway_backends[harness.aws.account][harness.aws.region].apis[harness.sample.api_id]
    env = harness.function_env(API_ID="", API_STAGE="", DISCOVERY_REGIONS=harness.aws.region)
    model.tags = {"access-auditor:allowed-roles": harness.sample.allowed_role_arn}
    try:
        before = invoke_auditor(env)
        # WHEN an insider removes the tag, and the next scheduled run finds nothing to audit
        model.tags = {}
        after = invoke_auditor(env)
    finally:
        model.tags = {}
    # THEN each run says how many targets it audited, and the template's alarm goes to ALARM on the drop only
    counts = [
        [v for p in run.points if p.metric == "TargetsAudited" for v in p.values] for run in (before, after)
    ]
    assert counts == [[1.0], [0.0]]
    [alarm] = [a for a in template_math_alarms(load_template(TEMPLATE)) if a.name == "TargetsDroppedAlarm"]
    assert evaluate_math(alarm, before.points, after.points) == "ALARM"
    assert evaluate_math(alarm, before.points, before.points) == "OK"
    assert evaluate_math(alarm, after.points, before.points) == "OK"


def test_a_configuration_document_not_under_the_stack_s_key_is_not_obeyed(harness: Harness) -> None:
    # GIVEN the configuration document as the stack asks for it: a SecureString under the stack's key
    from access_auditor.aws.ssm import parameter_reader
    from access_auditor.errors import ConfigError

    ssm = harness.aws.client("ssm")
    key = harness.aws.client("kms").create_key()["KeyMetadata"]["Arn"]
    document = "defaults:\n  API_STAGE: prod\n"
    ssm.put_parameter(Name="/apigw/doc", Type="SecureString", KeyId=key, Value=document)
    read = lambda name: parameter_reader(ssm)(name, key)  # noqa: E731
    assert read("/apigw/doc") == document
    # WHEN someone who may write the parameter but not use the key rewrites it: as a String, or a SecureString
    # under the account's default key
    refusals = []
    for how in ({"Type": "String"}, {"Type": "SecureString"}):
        ssm.put_parameter(Name="/apigw/doc", Value="targets: []\n", Overwrite=True, **how)
        with pytest.raises(ConfigError) as refused:
            read("/apigw/doc")
        refusals.append(str(refused.value))
    # THEN neither is obeyed, and the error says what it is and how to write it again
    assert refusals[0].startswith(
        "CONFIG_PARAMETER /apigw/doc: is a String, not a SecureString encrypted with"
    )
    assert "is a SecureString encrypted with alias/aws/ssm" in refusals[1]
    assert all(f"--type SecureString --key-id {key}" in r for r in refusals)
    # and the key's id, as a writer may give it, names the same key
    ssm.put_parameter(
        Name="/apigw/doc", Type="SecureString", KeyId=key.rsplit("/", 1)[-1], Value=document, Overwrite=True
    )
    assert read("/apigw/doc") == document
