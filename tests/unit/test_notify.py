"""Alarm notifications name the APIs: the event CloudWatch sends EventBridge is read as AWS documents it, the
query finds the APIs whose latest run raises the metric, and a failed query still notifies."""

from __future__ import annotations

import datetime as dt
import json

from access_auditor.errors import AwsCallError
from access_auditor.local_aws.events import alarm_state_change, matches
from access_auditor.local_aws.insights import run_query
from access_auditor.notify import AlarmChange, notify, per_api_query

# The single-metric example of "Alarm events and EventBridge" (CloudWatch User Guide), trimmed.
DOCUMENTED = {
    "version": "0", "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92", "detail-type": "CloudWatch Alarm State Change",
    "source": "aws.cloudwatch", "account": "123456789012", "time": "2019-10-02T17:04:40Z", "region": "us-east-1",
    "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh"],
    "detail": {
        "alarmName": "ServerCpuTooHigh",
        "configuration": {"description": "Goes into alarm when server CPU utilization is too high!", "metrics": [
            {"id": "30b6c6b2-a864-43a2-4877-c09a1afc3b87", "metricStat": {"metric": {
                "dimensions": {"InstanceId": "i-12345678901234567"}, "name": "CPUUtilization", "namespace": "AWS/EC2"},
                "period": 300, "stat": "Average"}, "returnData": True}]},
        "previousState": {"reason": "Threshold Crossed", "timestamp": "2019-10-02T17:04:40.985+0000", "value": "OK"},
        "state": {"reason": "Threshold Crossed: 1 out of the last 1 datapoints [0.0666851903306472 (01/10/19 13:46:00)] "
                  "was greater than the threshold (50.0) (minimum 1 datapoint for OK -> ALARM transition).",
                  "timestamp": "2019-10-02T17:04:40.989+0000", "value": "ALARM"},
    },
}  # fmt: skip


def test_the_documented_event_is_read() -> None:
    change = AlarmChange.from_event(DOCUMENTED)
    assert change is not None
    assert (change.alarm, change.state, change.metric, change.region) == (
        "ServerCpuTooHigh",
        "ALARM",
        "CPUUtilization",
        "us-east-1",
    )
    assert change.at == dt.datetime(2019, 10, 2, 17, 4, 40, 989000, tzinfo=dt.UTC)
    assert AlarmChange.from_event({"source": "aws.apigateway"}) is None


def test_the_local_event_has_the_documented_shape() -> None:
    local = alarm_state_change("ServerCpuTooHigh", DOCUMENTED["resources"][0], "CPUUtilization", "AWS/EC2",
                               {"InstanceId": "i-1"}, "ALARM", "OK", "Threshold Crossed", "123456789012", "us-east-1")  # fmt: skip

    def shape(value: object) -> object:
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items() if k not in {"description", "reason"}}
        if isinstance(value, list):
            return [shape(v) for v in value]
        return type(value).__name__

    assert shape(local) == shape(DOCUMENTED)


def test_event_patterns_match_as_eventbridge_documents() -> None:
    # "Event patterns": values are alternatives, objects descend, prefix / anything-but / exists filters
    event = {
        "source": "aws.cloudwatch",
        "detail": {"state": {"value": "ALARM"}, "alarmName": "PolicyDriftAlarm"},
    }
    assert matches({"source": ["aws.cloudwatch"], "detail": {"state": {"value": ["ALARM"]}}}, event)
    assert not matches({"detail": {"state": {"value": ["OK"]}}}, event)
    assert matches({"detail": {"alarmName": [{"prefix": "Policy"}]}}, event)
    assert not matches({"detail": {"alarmName": [{"anything-but": ["PolicyDriftAlarm"]}]}}, event)
    assert matches({"detail": {"errorCode": [{"exists": False}]}}, event)
    assert not matches({"detail": {"alarmName": [{"exists": False}]}}, event)
    assert matches({"resources": ["b"]}, {"resources": ["a", "b"]})


def lines(*runs: dict[str, int]) -> list[dict[str, object]]:
    """target audited records, one run per dict of api -> PolicyDrift value, oldest first."""
    out = []
    for t, run in enumerate(runs):
        for api, drift in run.items():
            out.append({"message": "target audited", "timestamp": t, "audit": {
                "apiId": api, "stage": "prod", "region": "us-east-1", "flags": {"PolicyDrift": drift},
                "raisedBy": {"PolicyDrift": "ACCESS_WEAKENED: ..."} if drift else {}}})  # fmt: skip
    return out


class Records:
    def __init__(self, records: list[dict[str, object]], fail: bool = False) -> None:
        self.records, self.fail = records, fail

    def query(
        self, group: str, query: str, start: dt.datetime, end: dt.datetime, deadline: float
    ) -> list[dict[str, str]]:
        if self.fail:
            raise AwsCallError("StartQuery", "AccessDeniedException", "no")
        return [{k: str(v) for k, v in row.items()} for row in run_query(query, self.records)]  # type: ignore[arg-type]


def test_the_notification_names_the_apis_whose_latest_run_raises_it() -> None:
    # GIVEN api1 drifted then recovered, api2 drifted in the latest run, api3 never drifted
    records = lines({"api1": 1, "api2": 0, "api3": 0}, {"api1": 0, "api2": 1, "api3": 0})
    change = AlarmChange.from_event({**DOCUMENTED, "detail": {**DOCUMENTED["detail"], "alarmName": "PolicyDriftAlarm",
        "configuration": {"metrics": [{"metricStat": {"metric": {"name": "PolicyDrift"}}}]}}})  # fmt: skip
    assert change is not None
    sent: list[tuple[str, str]] = []
    subject, message = notify(change, Records(records), lambda s, m: sent.append((s, m)), "group", 300, 1e12)
    assert sent == [(subject, message)]
    assert "api2 (prod, us-east-1)" in subject and "api1" not in message and "api3" not in message
    assert "- api2 stage prod in us-east-1: ACCESS_WEAKENED" in message and len(subject) <= 100
    # WHEN the query fails THEN the notification still goes out and says so
    _, failed = notify(change, Records(records, fail=True), lambda s, m: None, "group", 300, 1e12)
    assert "could not be listed" in failed and "AccessDenied" in failed


def test_the_query_reads_the_fields_the_log_line_has() -> None:
    from access_auditor.audit import TargetResult
    from access_auditor.config import Target
    from access_auditor.findings import Category, finding

    result = TargetResult(
        Target("api9", "prod", "us-east-1", "123456789012", ("arn:aws:iam::123456789012:role/a",))
    )
    result.findings.append(finding("ACCESS_WEAKENED", "someone else can invoke GET /x"))
    result.covered.add(Category.DRIFT)
    record = json.loads(json.dumps({"message": "target audited", "timestamp": 1, "audit": result.summary()}))
    [row] = run_query(per_api_query("PolicyDrift"), [record])
    assert (row["api"], row["raised"], row["finding"]) == (
        "api9",
        1,
        "ACCESS_WEAKENED: someone else can invoke GET /x",
    )
