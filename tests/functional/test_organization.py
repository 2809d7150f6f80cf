"""An organization through the hub on the local AWS: accounts reached only through their member audit role,
the planner, the shard queue and the worker as hub.yaml deploys them, each worker a process of its own."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from access_auditor.local_aws import accounts
from access_auditor.local_aws.demo_org import EXPECTED_ALARMS, org_scenario
from access_auditor.local_aws.event_source import EventSourceMapping
from access_auditor.local_aws.organization import (
    LocalOrganization,
    create_organization,
    shard_event,
    worker_function,
)
from access_auditor.local_aws.sample import create_fleet
from access_auditor.local_aws.server import LocalAws
from access_auditor.org import Shard


@pytest.fixture(scope="module")
def org() -> Iterator[LocalOrganization]:
    with LocalAws() as aws:
        # the regions the tests below audit must be the hub's: a shard for any other region is outside the plan
        yield create_organization(
            aws,
            members=2,
            per_region=2,
            regions=("us-east-1", "eu-west-1", "ap-southeast-2", "ap-northeast-1"),
        )


def audit_shard(org: LocalOrganization, account: str, region: str) -> dict[str, Any]:
    """One shard, handed to the worker as the event source mapping would hand it."""
    shard = Shard(account, region, dt.datetime.now(dt.UTC).replace(microsecond=0))
    with worker_function(org) as worker:
        run = worker(shard_event(shard))
    assert run.error is None, run.error
    return {"result": run.result, "logs": run.logs, "points": run.points}


def test_an_organization_is_audited_end_to_end_through_the_queue() -> None:
    # GIVEN 3 member accounts x 2 regions x 20 tagged APIs; one API weakened and deployed, one account without
    # its audit role; and two accounts that are not ACTIVE (one suspended, one closed)
    with LocalAws() as aws:
        outcome = org_scenario(aws)
    last = outcome.cycles[-1]
    # THEN every shard of the cycle is reported on, and only the role-less account's shards failed, saying so
    assert last.planned == len(last.reports) == 6
    # and the planner planned neither inactive account, naming each with its state
    assert sorted(last.skipped.values()) == ["CLOSED", "SUSPENDED"] and last.skipped == outcome.org.inactive
    assert not {r["account"] for r in last.reports} & set(last.skipped)
    failed = [r for r in last.reports if r["outcome"] == "failed"]
    assert {r["account"] for r in failed} == {outcome.roleless} and len(failed) == 2
    assert all(r["reason"].startswith("MEMBER_ROLE_UNAVAILABLE") for r in failed)
    assert sum(r["targets"] for r in last.reports) == 80
    # and the drifted API is the one the dashboard's table shows drifted, the alarms fire, and the
    # notifications name the API and the account
    drifted = [r["api"] for r in outcome.api_rows if str(r.get("drift")) == "True"]
    assert drifted == [outcome.weak_api]
    assert outcome.firing == EXPECTED_ALARMS and outcome.states["ShardsMissingAlarm"] == "OK"
    subjects = " ".join(subject for subject, _ in outcome.notifications)
    assert outcome.weak_api in subjects and f"account {outcome.roleless}" in subjects
    assert sum(v for p in last.points if p.metric == "ShardReported" for v in p.values) == 6
    assert sum(v for p in last.points if p.metric == "ShardsPlanned" for v in p.values) == 6


def test_the_health_call_is_made_only_as_a_role_the_policy_exempts(org: LocalOrganization) -> None:
    aws, account, region = org.aws, org.members[0], "ap-southeast-2"
    iam = aws.client("iam", account=account)
    # GIVEN an API that exempts only its app role, and one whose health role the member role may assume
    (bare,) = create_fleet(aws, f"arn:aws:iam::{account}:role/orders-app", (region,), 1, account=account)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"AWS": org.member_role_arn(account)}}]}  # fmt: skip
    health_role = iam.create_role(RoleName="orders-health", Path="/apigw-access-auditor/health/",
                                  AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]  # fmt: skip
    iam.put_role_policy(RoleName="orders-health", PolicyName="invoke", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke",
                                                "Resource": f"arn:aws:execute-api:*:{account}:*/*/GET/health"}]}))  # fmt: skip
    tag = {"access-auditor:health-role": "apigw-access-auditor/health/orders-health"}
    (delegated,) = create_fleet(aws, health_role, (region,), 1, account=account, tags=tag)
    # WHEN the shard is audited
    run = audit_shard(org, account, region)
    targets = {t["apiId"]: t for t in run_targets(run)}
    # THEN the first is not called at all, and says why; the second is called as its health role
    assert targets[bare.api_id]["statusCode"] is None
    assert [f["code"] for f in targets[bare.api_id]["findings"]] == ["HEALTH_IDENTITY_MISSING"]
    # and says exactly what to run: the tag, with the API's roles and the member role, and the policy
    message = targets[bare.api_id]["findings"][0]["message"]
    roles = f"arn:aws:iam::{account}:role/orders-app {org.member_role_arn(account)}"
    assert (f"aws apigateway tag-resource --region {region} --resource-arn arn:aws:apigateway:{region}::/restapis/"
            f"{bare.api_id} --tags 'access-auditor:allowed-roles={roles}'") in message  # fmt: skip
    assert (f"access-auditor policy apply --api-id {bare.api_id} --region {region} --stage prod "
            f"--role arn:aws:iam::{account}:role/orders-app --role {org.member_role_arn(account)} --dry-run") in message  # fmt: skip
    assert (
        targets[bare.api_id]["flags"]["AuditError"] == 1
        and "HealthCheckFailed" not in targets[bare.api_id]["flags"]
    )
    assert targets[delegated.api_id]["statusCode"] == 200 and targets[delegated.api_id]["healthy"]


def run_targets(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [line["audit"] for line in run["logs"] if line.get("message") == "target audited"]


def test_a_region_the_account_has_not_enabled_fails_its_shard_with_the_reason(org: LocalOrganization) -> None:
    account, region = org.members[1], "ap-northeast-1"
    accounts.DISABLED_REGIONS.add((account, region))
    try:
        run = audit_shard(org, account, region)
    finally:
        accounts.DISABLED_REGIONS.discard((account, region))
    (report,) = run["result"]["shards"]
    assert report["outcome"] == "failed" and report["reason"].startswith("DISCOVERY_FAILED")
    assert "not enabled" in report["reason"]


def test_a_message_that_is_not_a_shard_ends_in_the_dead_letter_queue_and_the_batch_still_reports(
    org: LocalOrganization,
) -> None:
    # GIVEN a queue as the template declares it (its visibility timeout shortened) holding garbage and a shard
    sqs = org.aws.client("sqs")
    with worker_function(org) as worker:
        url, dlq, mapping = org.shard_queue(worker, visibility_s=6, name="shards-dlq-test")
        sqs.send_message(QueueUrl=url, MessageBody="{not json")
        shard = Shard(org.members[0], "us-east-1", dt.datetime.now(dt.UTC).replace(microsecond=0))
        sqs.send_message(QueueUrl=url, MessageBody=shard.body())
        mapping.drain(timeout_s=120, idle_s=8)
    # THEN the shard was reported once, and the garbage went to the dead-letter queue after maxReceiveCount
    reports = [
        s
        for run in mapping.invocations
        for s in (getattr(run.answer, "result", None) or {}).get("shards", [])
    ]
    assert [r["outcome"] for r in reports] == ["audited"]
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in dead] == ["{not json"]
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
        "ApproximateNumberOfMessages"] == "0"  # fmt: skip


def test_the_mapping_never_runs_more_than_its_maximum_concurrency(org: LocalOrganization) -> None:
    import threading
    import time

    sqs = org.aws.client("sqs")
    url = sqs.create_queue(QueueName="cap-test", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    for n in range(8):
        sqs.send_message(QueueUrl=url, MessageBody=str(n))
    seen: list[str] = []
    lock = threading.Lock()

    def slow(event: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.3)
        with lock:
            seen.extend(r["body"] for r in event["Records"])
        return {"batchItemFailures": []}

    mapping = EventSourceMapping(sqs, url, slow, batch_size=1, max_concurrency=2)
    mapping.drain(timeout_s=30)
    assert sorted(seen) == [str(n) for n in range(8)] and mapping.peak_concurrency == 2


def test_sts_refuses_what_sts_refuses(org: LocalOrganization) -> None:
    from botocore.exceptions import ClientError

    from access_auditor.local_aws.accounts import lambda_credentials

    aws, member = org.aws, org.members[0]

    def assume(credentials: dict[str, str] | None, role_arn: str) -> str:
        import boto3

        keys = ({"aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
                 "aws_session_token": credentials["AWS_SESSION_TOKEN"]} if credentials else
                {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"})  # fmt: skip
        sts = boto3.client("sts", endpoint_url=aws.endpoint, region_name="us-east-1", **keys)
        try:
            return str(sts.assume_role(RoleArn=role_arn, RoleSessionName="test")["AssumedRoleUser"]["Arn"])
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])

    worker = lambda_credentials(org.worker_role_arn, "worker")
    # the hub's worker may; a role that does not exist may not be assumed by anyone
    assert assume(worker, org.member_role_arn(member)).startswith(f"arn:aws:sts::{member}:assumed-role/")
    assert assume(None, f"arn:aws:iam::{member}:role/no-such-role") == "AccessDenied"
    # a role outside the organization, even one allowed to call sts:AssumeRole anywhere, is not trusted
    stranger_iam = aws.client("iam", account="999999999999")
    stranger_iam.create_role(RoleName=org.worker_role_arn.rsplit("/", 1)[1], AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))  # fmt: skip
    stranger_iam.put_role_policy(RoleName=org.worker_role_arn.rsplit("/", 1)[1], PolicyName="any", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))  # fmt: skip
    stranger = lambda_credentials(org.worker_role_arn.replace(org.management, "999999999999"), "stranger")
    assert assume(stranger, org.member_role_arn(member)) == "AccessDenied"


def test_a_cold_environment_reads_what_another_environment_already_read(org: LocalOrganization) -> None:
    from collections import Counter

    from access_auditor.local_aws import emulation

    # GIVEN one execution environment audited a shard (and wrote what it read to the hub's shared table)
    account = org.members[0]
    shard = Shard(account, "us-east-1", dt.datetime.now(dt.UTC).replace(microsecond=0))
    with worker_function(org) as first:
        first(shard_event(shard))
    since = len(emulation.EVENTS)
    # WHEN a new environment (another Lambda instance) gets the same shard
    with worker_function(org) as second:
        run = second(shard_event(shard))
    calls = Counter(e["EventName"] for e in emulation.EVENTS[since:] if e["account"] == account)
    # THEN it reads no deployment, export or saved methods again: one GetStages per API and the sweeps (REST
    # APIs, and HTTP APIs)
    (report,) = run.result["shards"]
    assert (report["outcome"], report["targets"]) == ("audited", 2)
    assert calls == Counter({"GetRestApis": 1, "GetApis": 1, "GetStages": 2})


def test_a_forged_shared_cache_entry_cannot_make_a_weakened_api_read_as_clean(org: LocalOrganization) -> None:
    from access_auditor.local_aws.demo_org import weaken
    from access_auditor.local_aws.sample import STAGE
    from access_auditor.policy.expected import render_expected_policy

    # GIVEN an API weakened and deployed in a member account
    account = org.members[1]
    api_id = weaken(org, account, 0)
    api = next(a for a in org.apis[account] if a.api_id == api_id)
    apigw = org.aws.client("apigateway", api.region, account=account)
    deployment = apigw.get_stage(restApiId=api_id, stageName=STAGE)["deploymentId"]
    # and an insider who may write to the hub's table writes what "the deployment serves": the expected policy
    clean = json.dumps(
        render_expected_policy(api, [f"arn:aws:iam::{account}:role/orders-app", org.member_role_arn(account)])
    )
    methods = [[STAGE, "GET", "/health", "AWS_IAM"]]
    table = str(org.hub_value({"Ref": "SharedCache"}))
    key = f"v2/deployment/{account}/{api.region}/{api_id}/{STAGE}/{deployment}"
    for value in (json.dumps([None, clean, methods, None]),  # unauthenticated
                  json.dumps({"expires": 2**40, "value": json.dumps([None, clean, methods, None]), "mac": "AAAA"})):  # fmt: skip
        org.aws.client("dynamodb").put_item(TableName=table, Item={"pk": {"S": key}, "v": {"S": value}})
        # WHEN the worker audits the shard
        shard = Shard(account, api.region, dt.datetime.now(dt.UTC).replace(microsecond=0))
        with worker_function(org) as worker:
            run = worker(shard_event(shard))
        audited = [line["audit"] for line in run.logs if line.get("message") == "target audited"]
        # THEN the forged entry is a miss: the weakening is read from API Gateway and reported
        weak = next(a for a in audited if a["apiId"] == api_id)
        assert weak["drift"] and any(f["code"] == "ACCESS_WEAKENED" for f in weak["findings"]), value


def test_a_shard_the_planner_could_not_have_planned_is_refused_and_never_counted(
    org: LocalOrganization,
) -> None:
    # GIVEN a batch holding a real shard and three forged ones: an account outside the organization, the excluded
    # management account, and a cycle from yesterday
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    real = Shard(org.members[0], "us-east-1", now)
    forged = [Shard("999999999999", "us-east-1", now), Shard(org.management, "us-east-1", now),
              Shard(org.members[1], "us-east-1", now - dt.timedelta(days=1))]  # fmt: skip
    with worker_function(org) as worker:
        run = worker(shard_event(real, *forged))
    # THEN only the real shard is audited and counted; each forged one is a batch item failure, said why
    assert run.error is None
    assert [s["account"] for s in run.result["shards"]] == [real.account]
    assert {f["itemIdentifier"] for f in run.result["batchItemFailures"]} == {"m-1", "m-2", "m-3"}
    assert sum(sum(p.values) for p in run.points if p.metric == "ShardReported") == 1
    refused = [
        line["reason"] for line in run.logs if line.get("message") == "a shard outside the plan was refused"
    ]
    assert len(refused) == 3 and any("not an active account" in r for r in refused)


def test_the_organization_config_rule_is_answered_in_the_member_account_through_its_role(
    org: LocalOrganization,
) -> None:
    from access_auditor.local_aws.demo_org import weaken

    # GIVEN an API weakened in a member account, and Config's change notification for its stage there
    account = org.members[0]
    api_id = weaken(org, account, 1)
    api = next(a for a in org.apis[account] if a.api_id == api_id)
    arn = f"arn:aws:apigateway:{api.region}::/restapis/{api_id}/stages/prod"
    item = {"awsAccountId": account, "configurationItemStatus": "OK", "resourceId": arn, "ARN": arn,
            "awsRegion": api.region, "resourceType": "AWS::ApiGateway::Stage"}  # fmt: skip
    event = {"invokingEvent": json.dumps({"configurationItem": item, "messageType": "ConfigurationItemChangeNotification"}),
             "resultToken": "org-api-access", "configRuleName": "org-api-access", "accountId": account,
             "eventLeftScope": False, "version": "1.0"}  # fmt: skip
    # WHEN Config (in the API's region) invokes the hub's worker
    with worker_function(org) as worker:
        worker.env["AWS_REGION"] = api.region
        run = worker(event)
        # and a forged invocation names an account outside the organization
        stranger = worker({**event, "accountId": "999999999999"})
    assert run.error is None, run.error
    # THEN the member account's Config holds the stage NON_COMPLIANT, the finding in the annotation
    answer = org.aws.client("config", api.region, account=account).get_compliance_details_by_config_rule(
        ConfigRuleName="org-api-access"
    )
    (evaluation,) = [e for e in answer["EvaluationResults"]
                     if e["EvaluationResultIdentifier"]["EvaluationResultQualifier"]["ResourceId"] == arn]  # fmt: skip
    assert evaluation["ComplianceType"] == "NON_COMPLIANT" and evaluation["Annotation"].startswith(
        "ACCESS_WEAKENED"
    )
    # AND the stranger's invocation fails, naming why; nothing is evaluated for it
    assert stranger.error is not None and "not an audited member" in stranger.error
