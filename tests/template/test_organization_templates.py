"""organization/hub.yaml and organization/member.yaml (linted in test_template.py): translated, least privilege, and wired the way
the product relies on (the member role trusts the hub's worker role from inside the organization only; the
queue, its mapping and its alarms; every alarm reaches the topic exactly one way)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from access_auditor.local_aws.alarms import (
    alarm_arn,
    load_template,
    parameter_defaults,
    resolver,
    template_alarms,
    template_math_alarms,
)
from access_auditor.local_aws.events import alarm_state_change, matches
from access_auditor.local_aws.organization import HUB_STACK, HUB_TEMPLATE, MEMBER_TEMPLATE
from tests.template.test_template import ROOT, _statements, translated

TEMPLATES = [HUB_TEMPLATE, MEMBER_TEMPLATE]


@pytest.fixture(autouse=True)
def _region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def hub_translated() -> dict[str, Any]:
    return translated(HUB_TEMPLATE, {"OrganizationId": "o-abcdefghij"})


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_wildcard_resource_carries_a_reason(path: Path) -> None:
    resources = hub_translated()["Resources"] if path == HUB_TEMPLATE else load_template(path)["Resources"]
    text = path.read_text()
    for name, statement in _statements(resources):
        listed = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if "*" in listed:
            before = text[: text.index(f"Sid: {statement['Sid']}")]
            assert "AWS requires" in "\n".join(before.splitlines()[-3:]), (
                f"{name}: * resource without a reason"
            )


def test_the_member_role_trusts_the_hub_worker_role_from_inside_the_organization_only() -> None:
    member = load_template(MEMBER_TEMPLATE)
    hub = load_template(HUB_TEMPLATE)
    overrides = {
        "HubAccountId": "111111111111",
        "OrganizationId": "o-abcdefghij",
        "AWS::AccountId": "222222222222",
    }
    role = resolver(member, overrides)(member["Resources"]["AuditRole"]["Properties"])
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    worker = resolver(hub, stack=HUB_STACK)(hub["Resources"]["WorkerRole"]["Properties"]["RoleName"])
    assert trust["Principal"] == {"AWS": "arn:aws:iam::111111111111:root"}
    assert trust["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": "o-abcdefghij"}
    # THEN the default names meet: the hub stack's worker role is the one the member template trusts
    assert trust["Condition"]["ArnEquals"] == {"aws:PrincipalArn": f"arn:aws:iam::111111111111:role/{worker}"}
    assert parameter_defaults(member)["AuditRoleName"] == parameter_defaults(hub)["MemberRoleName"]
    # and the role only reads: no API Gateway action but GET, no write anywhere...
    actions = {s["Action"] for p in role["Policies"] if p for s in p["PolicyDocument"]["Statement"]}
    assert actions == {"apigateway:GET", "cloudtrail:LookupEvents", "execute-api:Invoke", "sts:AssumeRole"}
    # ... but, with SecurityHub, the import of this account's own findings as its own default product
    role = resolver(member, {**overrides, "SecurityHub": "true"})(
        member["Resources"]["AuditRole"]["Properties"]
    )
    statements = [s for p in role["Policies"] if p for s in p["PolicyDocument"]["Statement"]]
    (imported,) = [s for s in statements if s["Action"] not in actions]
    assert imported["Action"] == "securityhub:BatchImportFindings"
    assert imported["Resource"] == "arn:aws:securityhub:*:222222222222:product/222222222222/default"


def test_the_shard_queue_and_its_mapping_follow_lambdas_rules() -> None:
    hub = load_template(HUB_TEMPLATE)
    resources = hub["Resources"]
    params = hub["Parameters"]
    source = resources["WorkerFunction"]["Properties"]["Events"]["Shards"]["Properties"]
    queue = resources["ShardQueue"]["Properties"]
    # MaximumConcurrency must be 2..1000; a batch of at most 10; partial failures go back to the queue
    assert (params["MaximumConcurrency"]["MinValue"], params["MaximumConcurrency"]["MaxValue"]) == (2, 1000)
    assert source["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "MaximumConcurrency"}
    assert params["BatchSize"]["MaxValue"] <= 10 and source["FunctionResponseTypes"] == [
        "ReportBatchItemFailures"
    ]
    # the visibility timeout is at least six times the longest worker timeout allowed (Lambda's guidance)
    assert queue["VisibilityTimeout"] >= 6 * params["WorkerTimeout"]["MaxValue"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ShardDeadLetterQueue", "Arn"]}
    dead = resources["ShardDeadLetterAlarm"]["Properties"]
    assert dead["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["ShardDeadLetterQueue", "QueueName"]}}
    ]


def test_every_hub_metric_is_declared_and_every_hub_alarm_reaches_the_topic_one_way() -> None:
    from access_auditor.findings import Category
    from access_auditor.publish import METRICS

    hub = load_template(HUB_TEMPLATE)
    resources = hub["Resources"]
    ours = {a.metric for a in template_alarms(hub, stack=HUB_STACK) if not a.namespace.startswith("AWS/")}
    ours |= {metric[1] for m in template_math_alarms(hub, stack=HUB_STACK) for metric, _ in m.inputs.values()}
    assert ours <= set(METRICS) and {"ShardsPlanned", "ShardReported"} <= ours
    names = [n for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"]
    # when the worker fails on an alarm's state change, Lambda's OnFailure destination takes the page to the topic
    from access_auditor.local_aws.events import on_failure_destination

    assert on_failure_destination(hub, "WorkerFunction") == "AlarmTopic"
    rule = resources["WorkerFunction"]["Properties"]["Events"]["AlarmRaised"]["Properties"]["Pattern"]
    pattern = resolver(hub, stack=HUB_STACK, attributes={f"{n}.Arn": alarm_arn(n) for n in names})(rule)
    per_api = {
        a.name for a in template_alarms(hub, stack=HUB_STACK) if a.metric in {c.metric for c in Category}
    }
    for name in names:
        raised = alarm_state_change(
            name, alarm_arn(name), "m", "n", {}, "ALARM", "OK", "r", "123456789012", "us-east-1"
        )
        direct = bool(resources[name]["Properties"].get("AlarmActions"))
        assert direct != matches(pattern, raised), name
        assert matches(pattern, raised) == (name in per_api), name


def test_the_hub_translates_to_a_scheduled_planner_and_a_capped_worker() -> None:
    resources = hub_translated()["Resources"]
    mappings = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(mappings) == 1 and mappings[0]["ScalingConfig"] == {
        "MaximumConcurrency": {"Ref": "MaximumConcurrency"}
    }
    schedules = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Scheduler::Schedule"]
    assert len(schedules) == 1 and schedules[0]["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 0
    assert resources["PlannerFunction"]["Properties"]["Handler"] == "access_auditor.hub.plan_handler"
    assert resources["WorkerFunction"]["Properties"]["Handler"] == "access_auditor.hub.work_handler"


@pytest.fixture(scope="module")
def built_hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil
    import sys

    build_dir = tmp_path_factory.mktemp("sam-build-hub")
    sam = shutil.which("sam", path=str(Path(sys.executable).parent)) or "sam"
    run = subprocess.run([sam, "build", "--template", str(HUB_TEMPLATE), "--build-dir", str(build_dir)], cwd=ROOT,
                         capture_output=True, text=True, check=False, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return build_dir


def test_the_built_worker_audits_a_shard_under_the_runtime_interpreter(
    built_hub: Path, tmp_path: Path
) -> None:
    import datetime as dt
    import json
    import shutil

    from access_auditor.local_aws.alarms import function_spec
    from access_auditor.local_aws.invoke import invoke_auditor
    from access_auditor.local_aws.organization import create_organization, shard_event
    from access_auditor.local_aws.server import LocalAws
    from access_auditor.org import Shard

    python313 = shutil.which("python3.13")
    assert python313, "python3.13 (the Lambda runtime) must be on PATH; `make test` puts pyenv's there"
    for function in ("PlannerFunction", "WorkerFunction"):
        assert (built_hub / function / "access_auditor" / "hub.py").exists()
        assert not (built_hub / function / "access_auditor" / "local_aws").exists()
        for service in ("organizations", "sqs", "sts", "apigateway", "apigatewayv2", "kms", "dynamodb", "securityhub",
                        "config"):  # fmt: skip
            assert (built_hub / function / "botocore" / "data" / service).is_dir(), (function, service)
    with LocalAws() as aws:
        org = create_organization(aws, members=1, regions=("us-east-1",), per_region=2)
        event = tmp_path / "shard.json"
        event.write_text(
            json.dumps(
                shard_event(
                    Shard(org.members[0], "us-east-1", dt.datetime.now(dt.UTC).replace(microsecond=0))
                )
            )
        )
        run = invoke_auditor(org.worker_env(), python=python313, code_dir=built_hub / "WorkerFunction", event=event,
                             spec=function_spec(org.hub, "WorkerFunction", stack=HUB_STACK))  # fmt: skip
    assert run.error is None, run.error
    (report,) = run.result["shards"]
    assert (report["outcome"], report["targets"]) == ("audited", 2)


def test_only_the_planner_plans_and_the_worker_assumes_roles_only_in_the_organization() -> None:
    resources = load_template(HUB_TEMPLATE)["Resources"]
    # the shard queue refuses every sender but the planner's role, whatever their own IAM policies allow
    [deny] = resources["ShardQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:SendMessage")
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["PlannerRole", "Arn"]}}}
    assert resources["PlannerFunction"]["Properties"]["Role"] == {"Fn::GetAtt": ["PlannerRole", "Arn"]}
    # the planner writes its own log group only; the worker assumes member roles only in the organization
    planner = resources["PlannerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    logs = next(s for s in planner if isinstance(s, dict) and s.get("Sid") == "WriteOwnLogs")
    assert logs["Resource"] == {"Fn::Sub": "${PlannerLogGroup.Arn}:*"}
    worker = resources["WorkerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assume = next(s for s in worker if isinstance(s, dict) and s.get("Sid") == "AssumeMemberAuditRoles")
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}}
    # and the shared table and its MAC key admit the worker role alone
    table = resources["SharedCache"]["Properties"]
    [only] = table["ResourcePolicy"]["PolicyDocument"]["Statement"]
    assert only["Effect"] == "Deny" and only["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["WorkerRole", "Arn"]}}
    }
    assert table["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": ["CacheKey", "Arn"]}
    key = resources["CacheMacKey"]["Properties"]["KeyPolicy"]["Statement"]
    users = [
        s
        for s in key
        if {"kms:GenerateMac", "kms:VerifyMac"}
        & set(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    assert [u["Principal"] for u in users] == [{"AWS": {"Fn::GetAtt": ["WorkerRole", "Arn"]}}]
