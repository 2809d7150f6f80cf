"""The demo's watcher scenario: an insider tries to switch the auditor off quietly (the heartbeat's pages, the
schedule, a watch rule itself), a deployment of the stack changes an alarm, and the template's watch rules page
the alarm topic for the insider's writes only, naming who made them."""

from __future__ import annotations

from typing import Any, TextIO

from moto.sns.models import sns_backends

from access_auditor.local_aws.alarms import STACK_NAME
from access_auditor.local_aws.eventbridge import WatchRules
from access_auditor.local_aws.invoke import TEMPLATE
from access_auditor.local_aws.server import LocalAws
from access_auditor.local_aws.trail import client_as, insider


def run_watch_scenario(out: TextIO, paint: Any, aws: LocalAws, number: int, total: int) -> int:
    out.write(paint(f"[{number}/{total}] The watcher is watched: an insider switches the auditor off, quietly",
                    "bold") + "\n")  # fmt: skip
    stack = STACK_NAME
    names = {"AWS::StackName": stack, "AuditorFunctionAudit": f"{stack}-schedule",
             "HeartbeatAlarm": f"{stack}-HeartbeatAlarm", "PolicyDriftAlarm": f"{stack}-PolicyDriftAlarm"}  # fmt: skip
    # (every alarm of the stack is named STACK-<logical id>, as the template names them)
    topic = aws.client("sns").create_topic(Name=f"{stack}-alarms")["TopicArn"]
    sent = sns_backends[aws.account][aws.region].topics[topic].sent_notifications
    before = len(sent)  # the demo's earlier pages went to the same topic
    cloudwatch = aws.client("cloudwatch")
    for alarm in (names["HeartbeatAlarm"], names["PolicyDriftAlarm"]):
        cloudwatch.put_metric_alarm(AlarmName=alarm, MetricName="AuditHeartbeat", Namespace="ApiAccessAuditor",
                                    Statistic="Sum", Period=300, EvaluationPeriods=2, Threshold=1,
                                    ComparisonOperator="LessThanThreshold", AlarmActions=[topic])  # fmt: skip
    for rule in (f"{stack}-walarm", f"{stack}-wguard"):
        aws.client("events").put_rule(Name=rule, EventPattern='{"source": ["aws.cloudtrail"]}')
    schedule_role = aws.client("iam").create_role(
        RoleName=f"{stack}-scheduler", AssumeRolePolicyDocument="{}"
    )
    aws.client("scheduler").create_schedule(
        Name=names["AuditorFunctionAudit"], ScheduleExpression="rate(5 minutes)", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": f"arn:aws:lambda:{aws.region}:{aws.account}:function:{stack}-auditor",
                "RoleArn": schedule_role["Role"]["Arn"]})  # fmt: skip
    mallory = insider(aws, "mallory")
    with WatchRules(aws, TEMPLATE, topic, {**names, "AlarmTopic": topic}) as watch:
        out.write("      mallory: disable-alarm-actions on the heartbeat alarm, delete-schedule, disable-rule on the"
                  " alarms' watch rule\n      a stack update (CloudFormation): disable-alarm-actions on PolicyDriftAlarm\n")  # fmt: skip
        client_as(aws, "cloudwatch", mallory).disable_alarm_actions(AlarmNames=[names["HeartbeatAlarm"]])
        client_as(aws, "scheduler", mallory).delete_schedule(Name=names["AuditorFunctionAudit"])
        client_as(aws, "events", mallory).disable_rule(Name=f"{stack}-walarm")
        client_as(aws, "cloudwatch", mallory, via_cloudformation=True).disable_alarm_actions(
            AlarmNames=[names["PolicyDriftAlarm"]]
        )
    messages = [str(message) for _, message, *_ in sent[before:]]
    for (rule, _), message in zip(watch.pages, messages, strict=False):
        out.write(f"      page from {rule}: {message.split(' Only a deployment')[0]}\n")
    ok = (
        [rule for rule, _ in watch.pages] == ["WatchAlarmsRule", "WatchFunctionsRule", "WatchGuardRule"]
        and len(messages) == 3
        and all("assumed-role/mallory/mallory" in m for m in messages)
        and [m.split(" ")[2] for m in messages] == ["DisableAlarmActions", "DeleteSchedule", "DisableRule"]
    )
    out.write("      the stack's own update paged nobody\n" if ok else "")
    out.write("      " + (paint("as expected", "green") if ok else paint("NOT as expected", "red")) + "\n")
    return 0 if ok else 1
