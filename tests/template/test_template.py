"""template.yaml (and, for linting, the organization's two templates): linted, translated, and its alarms watch
metrics the handler really emits."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from access_auditor.local_aws.alarms import evaluate, load_template, template_alarms
from access_auditor.local_aws.invoke import TEMPLATE, invoke_auditor
from tests.harness import Harness

ROOT = TEMPLATE.parent
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert path, f"{name} is not installed; run `make test`, which installs it"
    return path


ALL_TEMPLATES = [TEMPLATE, ROOT / "organization" / "hub.yaml", ROOT / "organization" / "member.yaml"]


@pytest.mark.parametrize("path", ALL_TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_passes(path: Path) -> None:
    run = subprocess.run([tool("cfn-lint"), str(path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("path", ALL_TEMPLATES, ids=lambda p: p.name)
def test_sam_validate_lint_passes_offline(path: Path) -> None:
    run = subprocess.run([tool("sam"), "validate", "--lint", "--template", str(path)], cwd=ROOT,
                         capture_output=True, text=True, check=False, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.fixture(autouse=True)
def _region(monkeypatch: pytest.MonkeyPatch) -> None:
    # samtranslator resolves pseudo parameters such as AWS::Region from boto3's default region.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def translated(path: Path = TEMPLATE, parameters: dict[str, str] | None = None) -> dict[str, Any]:
    from access_auditor.local_aws.alarms import translate_template

    return translate_template(path, parameters)


def test_translation_yields_a_scheduled_function_with_least_privilege_statements() -> None:
    resources = translated()["Resources"]
    function = resources["AuditorFunction"]["Properties"]
    assert function["Runtime"] == "python3.13" and function["Architectures"] == ["arm64"]
    schedules = [r for r in resources.values() if r["Type"] == "AWS::Scheduler::Schedule"]
    assert len(schedules) == 1
    target = schedules[0]["Properties"]["Target"]
    assert "<aws.scheduler.execution-id>" in target["Input"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0


def _statements(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        docs = [props.get("PolicyDocument")] + [p.get("PolicyDocument") for p in props.get("Policies", [])]
        for doc in filter(None, docs):
            for statement in doc["Statement"]:
                if isinstance(statement, dict) and "Fn::If" in statement:
                    statement = statement["Fn::If"][1]
                if statement.get("Action") == "sts:AssumeRole" and "Principal" in statement:
                    continue  # a trust policy
                found.append((name, statement))
    return found


def test_every_wildcard_resource_carries_a_reason_in_the_template() -> None:
    text = TEMPLATE.read_text()
    for name, statement in _statements(translated()["Resources"]):
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        if "*" in resources:
            # THEN the template says why AWS needs it, right above the statement
            sid = statement.get("Sid", "")
            before = text[: text.index(f"Sid: {sid}")] if sid else ""
            assert "AWS requires" in "\n".join(before.splitlines()[-2:]), (
                f"{name}: * resource without a reason"
            )


def test_alarms_watch_exactly_what_the_handler_emits(harness: Harness) -> None:
    # GIVEN a captured healthy run and a captured bad run (every optional metric present)
    healthy = invoke_auditor(harness.function_env())
    doc = json.loads(harness.sample.expected_policy())
    doc["Statement"] = []
    harness.save_and_deploy(json.dumps(doc))
    try:
        bad = invoke_auditor(harness.function_env())
    finally:
        harness.restore()
    emitted = {(p.namespace, p.metric, p.dimensions) for p in healthy.points + bad.points}
    # THEN every alarm's namespace, metric name and whole dimension set is one the handler emitted
    for alarm in template_alarms(load_template(TEMPLATE)):
        if alarm.namespace == "AWS/SQS":
            continue  # the dead-letter queue's depth, which SQS measures (checked with the queue below)
        assert (alarm.namespace, alarm.metric, alarm.dimensions) in emitted, alarm.name
    assert {
        a.name for a in template_alarms(load_template(TEMPLATE)) if evaluate(a, healthy.points) == "ALARM"
    } == set()


def test_alarm_verdicts_follow_the_template_not_a_copy(harness: Harness, tmp_path: Path) -> None:
    run = invoke_auditor(harness.function_env())
    template = load_template(TEMPLATE)
    drift = next(a for a in template_alarms(template) if a.name == "PolicyDriftAlarm")
    assert evaluate(drift, run.points) == "OK"
    # WHEN the alarm's threshold is changed in the template, so that 0 breaches
    template["Resources"]["PolicyDriftAlarm"]["Properties"]["Threshold"] = 0
    changed = next(a for a in template_alarms(template) if a.name == "PolicyDriftAlarm")
    assert evaluate(changed, run.points) == "ALARM"
    # WHEN an alarm names a dimension set that is not emitted, it never sees data
    template["Resources"]["PolicyDriftAlarm"]["Properties"]["Dimensions"].append(
        {"Name": "ApiId", "Value": "x"}
    )
    orphan = next(a for a in template_alarms(template) if a.name == "PolicyDriftAlarm")
    assert evaluate(orphan, run.points) == "OK"  # notBreaching with no data: green forever


def test_a_silent_auditor_trips_the_heartbeat_alarm() -> None:
    alarms = {a.name: a for a in template_alarms(load_template(TEMPLATE))}
    # two periods with no heartbeat (its EvaluationPeriods), while one silent period is not yet an alarm
    assert evaluate(alarms["HeartbeatAlarm"], [], []) == "ALARM"
    assert evaluate(alarms["HeartbeatAlarm"], []) == "OK"


def test_the_published_version_is_the_package_version() -> None:
    from access_auditor import __version__

    application = load_template(TEMPLATE)["Metadata"]["AWS::ServerlessRepo::Application"]
    assert application["SemanticVersion"] == __version__
    assert (TEMPLATE.parent / application["LicenseUrl"]).exists() and (
        TEMPLATE.parent / application["ReadmeUrl"]
    ).exists()


def test_the_schedule_is_unnamed_and_lambda_does_not_retry_on_top_of_it() -> None:
    function = load_template(TEMPLATE)["Resources"]["AuditorFunction"]["Properties"]
    assert function["Events"]["Audit"]["Properties"]["OmitName"] is True
    assert function["EventInvokeConfig"]["MaximumRetryAttempts"] == 0


def test_the_samconfig_environments_can_share_an_account_and_region() -> None:
    import shlex
    import tomllib

    config = tomllib.loads((TEMPLATE.parent / "samconfig.toml").read_text())
    environments = [config[env]["deploy"]["parameters"] for env in ("staging", "production")]
    overrides = [
        dict(item.split("=", 1) for item in shlex.split(e["parameter_overrides"])) for e in environments
    ]
    # every name that must be unique in an account and region differs: the stack (and with it the function,
    # log group and dashboard), the created role, and the metric dimension the alarms watch
    for key in ("AllowedRoleName", "ServiceName"):
        assert overrides[0][key] != overrides[1][key], key
    assert environments[0]["stack_name"] != environments[1]["stack_name"]


NAME_PROPERTIES = ("RoleName", "FunctionName", "LogGroupName", "DashboardName", "TopicName", "AlarmName",
                   "ManagedPolicyName", "Name", "ScheduleName", "GroupName", "AliasName")  # fmt: skip


def physical_names(stack: str) -> set[tuple[str, str]]:
    from access_auditor.local_aws.alarms import resolver

    template = translated()
    resolve = resolver(template, stack=stack)
    names = set()
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        names |= {
            (resource["Type"], str(resolve(props[k])))
            for k in NAME_PROPERTIES
            if k in props
            and not (isinstance(props[k], dict) and props[k].get("Ref") in template["Resources"])
        }  # a Ref to another resource names that resource, not a new one
        if resource["Type"] == "AWS::Lambda::Function":
            variables = props["Environment"]["Variables"]
            names.add(("service dimension", str(resolve(variables["POWERTOOLS_SERVICE_NAME"]))))
    return names


def test_two_stacks_with_default_parameters_share_no_physical_name() -> None:
    # GIVEN the template translated as CloudFormation would deploy it, twice, into one account and region
    first, second = physical_names("auditor-team-a"), physical_names("auditor-team-b")
    # THEN every name that must be unique (role, function, log group, dashboard, the alarms' metric dimension)
    # differs, and nothing else is named at all (schedule, topic, key, alarms get generated names)
    assert first and not first & second, first & second
    assert {kind for kind, _ in first} >= {"AWS::IAM::Role", "AWS::Lambda::Function", "AWS::Logs::LogGroup",
                                           "AWS::CloudWatch::Dashboard", "service dimension"}  # fmt: skip


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use() -> None:
    resources = load_template(TEMPLATE)["Resources"]
    key_id = resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"]
    key = resources[key_id["Ref"]]["Properties"]["KeyPolicy"]["Statement"]
    granted = [s for s in key if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert granted and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(granted[0]["Action"])


def test_one_blip_does_not_page_but_drift_does() -> None:
    alarms = {a.name: a for a in template_alarms(load_template(TEMPLATE))}
    for name in ("HealthCheckFailedAlarm", "AuditErrorAlarm"):
        assert (alarms[name].datapoints_to_alarm, alarms[name].evaluation_periods) == (2, 3), name
    for name in ("PolicyDriftAlarm", "UnauthorizedCallAllowedAlarm"):
        assert alarms[name].datapoints_to_alarm == 1, name


def test_every_alarm_watches_a_metric_the_function_declares() -> None:
    from access_auditor.local_aws.alarms import template_math_alarms
    from access_auditor.publish import METRICS

    # (the metrics reference page is generated from METRICS when the site is built: tests/docs)
    template = load_template(TEMPLATE)
    ours = {a.metric for a in template_alarms(template) if not a.namespace.startswith("AWS/")}
    ours |= {metric[1] for m in template_math_alarms(template) for metric, _ in m.inputs.values()}
    assert ours <= set(METRICS)


def test_every_alarm_reaches_the_topic_directly_or_through_the_notifier() -> None:
    from access_auditor.local_aws.alarms import resolver
    from access_auditor.local_aws.events import alarm_state_change, matches

    template = load_template(TEMPLATE)
    resources = template["Resources"]
    alarms = [name for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"]
    arns = {name: f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}" for name in alarms}
    rule = resources["AuditorFunction"]["Properties"]["Events"]["AlarmRaised"]["Properties"]["Pattern"]
    pattern = resolver(template, attributes={f"{n}.Arn": a for n, a in arns.items()})(rule)
    for name in alarms:
        raised = alarm_state_change(
            name, arns[name], "m", "n", {}, "ALARM", "OK", "r", "123456789012", "us-east-1"
        )
        cleared = alarm_state_change(
            name, arns[name], "m", "n", {}, "OK", "ALARM", "r", "123456789012", "us-east-1"
        )
        direct = resources[name]["Properties"].get("AlarmActions")
        # THEN each ALARM goes one way only (never twice, never nowhere), and OK never wakes the function
        assert bool(direct) != matches(pattern, raised), name
        assert not matches(pattern, cleared), name
    # the per-API alarms are the ones the function names APIs for
    from access_auditor.findings import Category

    per_api = {template_alarm.name for template_alarm in template_alarms(template)
               if template_alarm.metric in {c.metric for c in Category}}  # fmt: skip
    assert {n for n in alarms if matches(pattern, alarm_state_change(n, arns[n], "m", "n", {}, "ALARM", "OK", "r",
                                                                       "123456789012", "us-east-1"))} == per_api  # fmt: skip
    # and when the notifier itself fails, Lambda's OnFailure destination still takes the page to the topic
    from access_auditor.local_aws.events import on_failure_destination

    assert on_failure_destination(template, "AuditorFunction") == "AlarmTopic"


def test_changes_queue_one_batch_at_a_time_after_the_settle_delay() -> None:
    resources = load_template(TEMPLATE)["Resources"]
    queue = resources["ChangeQueue"]["Properties"]
    target = resources["ChangeRule"]["Properties"]["Targets"][0]
    mapping = resources["ChangeEventSource"]["Properties"]
    # FIFO with one message group: one batch in flight, so audits started by changes never overlap; the delay
    # is the settle time; a FIFO event source takes at most 10 messages a batch; partial failures go back
    assert queue["FifoQueue"] is True and queue["DelaySeconds"] == {"Ref": "SettleSeconds"}
    assert isinstance(target["SqsParameters"]["MessageGroupId"], str)
    assert mapping["BatchSize"] <= 10 and mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert resources["ChangeDeadLetterQueue"]["Properties"]["FifoQueue"] is True
    dead = resources["ChangeDeadLetterAlarm"]["Properties"]
    assert (dead["Namespace"], dead["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dead["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["ChangeDeadLetterQueue", "QueueName"]}}
    ]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ChangeDeadLetterQueue", "Arn"]}


def test_the_dashboard_body_is_json_and_its_table_reads_the_functions_log_group() -> None:
    from access_auditor.local_aws.alarms import resolver

    template = load_template(TEMPLATE)
    resolve = resolver(template, stack="team-a")
    body = json.loads(resolve(template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]))
    [table] = [w for w in body["widgets"] if w["type"] == "log"]
    group = resolve(template["Resources"]["AuditorLogGroup"]["Properties"]["LogGroupName"])
    # CloudFormation's Ref to the log group is its name; the resolver names resources by logical id
    assert (
        table["properties"]["query"].startswith("SOURCE 'AuditorLogGroup' | filter")
        and group == "/aws/lambda/team-a-auditor"
    )
    metrics = [m for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]]
    metric_names = {m[1] for m in metrics if m[0] != "..."}
    from access_auditor.publish import METRICS

    assert metric_names <= set(METRICS)


@pytest.mark.parametrize("path", [TEMPLATE, ROOT / "organization" / "hub.yaml"], ids=lambda p: p.name)
def test_the_watch_rules_cover_everything_that_keeps_the_auditor_paging(path: Path) -> None:
    from access_auditor.local_aws.eventbridge import watch_rules

    # GIVEN the template's watch rules, every reference resolved to its logical id
    resources = load_template(path)["Resources"]
    rules = watch_rules({"Resources": resources})
    patterns = {rule: json.dumps(resources[rule]["Properties"]["EventPattern"]) for rule in rules}
    watched = " ".join(patterns[r] for r in rules if r != "WatchGuardRule")
    referenced = set(re.findall(r'"Ref": "([A-Za-z]+)"', watched)) | set(
        re.findall(r'"Fn::GetAtt": \["([A-Za-z]+)"', watched)
    )
    # THEN every rule (SAM's events too), function, schedule, key, role, managed policy and table of the stack,
    # and its topic, are watched by name...
    kinds = ("AWS::Events::Rule", "AWS::Serverless::Function", "AWS::KMS::Key", "AWS::IAM::Role",
             "AWS::IAM::ManagedPolicy", "AWS::DynamoDB::Table", "AWS::SNS::Topic")  # fmt: skip
    wanted = {n for n, r in resources.items() if r["Type"] in kinds} - set(rules)
    for name, resource in resources.items():
        for event, spec in (resource.get("Properties", {}).get("Events") or {}).items():
            if spec["Type"] in ("EventBridgeRule", "ScheduleV2"):
                wanted.add(name + event)
    assert wanted <= referenced, wanted - referenced
    # ... every alarm by the prefix all of them are named with...
    alarms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert all(a["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-") for a in alarms)
    assert '{"prefix": {"Fn::Sub": "${AWS::StackName}-"}}' in watched
    # ... the guard watches every other watch rule by name, and a watch rule watches the guard
    names = {r: resources[r]["Properties"]["Name"]["Fn::Sub"] for r in rules}
    assert all(names[r] in patterns["WatchGuardRule"] for r in rules if r != "WatchGuardRule")
    assert names["WatchGuardRule"] in watched
    # ... and each publishes to the topic, which lets EventBridge publish for them alone
    for rule in rules:
        [target] = resources[rule]["Properties"]["Targets"]
        assert target["Arn"] == {"Ref": "AlarmTopic"} and "RoleArn" not in target
    [publish, _] = resources["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert publish["Principal"] == {"Service": "events.amazonaws.com"}
    assert publish["Condition"]["ArnEquals"]["aws:SourceArn"] == [{"Fn::GetAtt": [r, "Arn"]} for r in rules]


@pytest.mark.parametrize("path", [TEMPLATE, ROOT / "organization" / "hub.yaml"], ids=lambda p: p.name)
def test_every_rule_fits_eventbridge_for_the_longest_stack_name(path: Path) -> None:
    from access_auditor.local_aws.alarms import resolver
    from access_auditor.local_aws.eventbridge import MAX_PATTERN_CHARS, pattern_text

    # GIVEN the longest stack name the template allows (its functions are named STACK-auditor, STACK-planner:
    # 64 characters at most) and every resource named as CloudFormation names it (STACK-LogicalId-RANDOM,
    # ARNs in full), every optional part on
    template = load_template(path)
    stack = "s" * 56
    arn = "arn:aws:{}:us-east-1:123456789012:{}"
    names = {name: f"{stack}-{name}-ABCDEFGHIJKL"[:64] for name in template["Resources"]}
    names |= {"AlarmTopic": arn.format("sns", f"{stack}-AlarmTopic-ABCDEFGHIJKL"), "ConfigParameterName": "/" + "p" * 200,
              "AuditorReadPolicy": f"arn:aws:iam::123456789012:policy/{stack}-AuditorReadPolicy-ABCDEFGHIJKL",
              "OutsiderProbePolicy": f"arn:aws:iam::123456789012:policy/{stack}-OutsiderProbePolicy-ABCDEFGHIJKL",
              "ApiId": "abcdefghij", "AllowedRoleName": "r" * 64}  # fmt: skip
    names |= {
        k: "1234abcd-12ab-34cd-56ef-1234567890ab"
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::KMS::Key"
    }
    attributes = {f"{k}.Arn": arn.format("kms", f"key/{v}") for k, v in names.items() if k.endswith("Key")}
    attributes["SharedCache.Arn"] = arn.format("dynamodb", f"table/{stack}-shared-cache")
    resolve = resolver(template, names, stack, attributes)
    # THEN every rule's pattern fits EventBridge's default quota, and every rule's name its 64 characters
    for name, resource in template["Resources"].items():
        props = resource["Properties"]
        patterns = [props["EventPattern"]] if resource["Type"] == "AWS::Events::Rule" else []
        patterns += [
            e["Properties"]["Pattern"]
            for e in (props.get("Events") or {}).values()
            if e["Type"] == "EventBridgeRule"
        ]
        for pattern in patterns:
            size = len(pattern_text(resolve(pattern)))
            assert size <= MAX_PATTERN_CHARS, f"{name}: {size} characters"
        if resource["Type"] == "AWS::Events::Rule" and "Name" in props:
            assert len(resolve(props["Name"])) <= 64, name


@pytest.mark.parametrize("path", [TEMPLATE, ROOT / "organization" / "hub.yaml"], ids=lambda p: p.name)
def test_the_configuration_document_has_a_key_of_its_own_that_only_reading_it_may_use(path: Path) -> None:
    from access_auditor.local_aws.alarms import resolver

    template = load_template(path)
    resolve = resolver(template, {"ConfigParameterName": "/apigw/fleet"})
    key = template["Resources"]["ConfigKey"]
    assert key["Condition"] == "HasConfigParameter" and key["Properties"]["EnableKeyRotation"] is True
    [_, read] = resolve(key["Properties"]["KeyPolicy"])["Statement"]
    # Parameter Store decrypts a SecureString for its reader, with the parameter's ARN as encryption context
    # ("How AWS Systems Manager Parameter Store uses AWS KMS"): only that, through SSM, for the stack's roles
    assert read["Action"] == "kms:Decrypt"
    assert read["Condition"]["StringEquals"] == {
        "kms:ViaService": "ssm.us-east-1.amazonaws.com",
        "kms:EncryptionContext:PARAMETER_ARN": "arn:aws:ssm:us-east-1:123456789012:parameter/apigw/fleet",
    }
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    for function in functions:
        if "CONFIG_PARAMETER" in function["Properties"]["Environment"]["Variables"]:
            assert (
                resolve(function["Properties"]["Environment"]["Variables"]["CONFIG_KEY"]) == "ConfigKey.Arn"
            )


def test_the_function_runs_in_a_vpc_only_when_subnets_are_given() -> None:
    from access_auditor.local_aws.alarms import resolver

    template = load_template(TEMPLATE)
    function = template["Resources"]["AuditorFunction"]["Properties"]
    policy = template["Resources"]["AuditorReadPolicy"]["Properties"]["PolicyDocument"]["Statement"]

    def sids(overrides: dict[str, str]) -> set[str]:
        return {s["Sid"] for s in resolver(template, overrides)(policy) if s}

    # GIVEN no subnets: no VPC configuration, and no EC2 permission at all
    assert resolver(template, {})(function["VpcConfig"]) == ""
    assert "RunInTheVpc" not in sids({})
    # GIVEN subnets and security groups: the function is placed there, with the network-interface actions
    inside = {"VpcSubnetIds": "subnet-0aaa,subnet-0bbb", "VpcSecurityGroupIds": "sg-0ccc"}
    assert resolver(template, inside)(function["VpcConfig"]) == {"SubnetIds": "subnet-0aaa,subnet-0bbb",
                                                                  "SecurityGroupIds": "sg-0ccc"}  # fmt: skip
    assert "RunInTheVpc" in sids(inside)
