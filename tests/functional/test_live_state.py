"""What is live is what is judged: the stage's deployment, read from the local AWS, which serves, exports
and records exactly as API Gateway and CloudTrail do (AWS_NOTES.md, "Reading what is live")."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from access_auditor.audit import run_audit
from access_auditor.config import load_config
from access_auditor.local_aws.invoke import invoke_auditor
from access_auditor.local_aws.sample import add_method, save_policy
from access_auditor.wiring import build_ports
from tests.functional.test_handler import metric
from tests.harness import Harness


def post_only_deny(harness: Harness) -> str:
    doc = json.loads(harness.sample.expected_policy())
    del doc["Statement"][0]["Resource"]
    doc["Statement"][0]["NotResource"] = f"{harness.sample.api.arn}/*/POST/*"  # POST is no longer denied
    return json.dumps(doc)


@pytest.fixture
def hidden_weakening(harness: Harness) -> Iterator[Harness]:
    # GIVEN a POST-only weakening deployed, then the expected policy saved back without deploying
    harness.save_and_deploy(post_only_deny(harness))
    save_policy(harness.aws.client("apigateway"), harness.sample.api_id, harness.sample.expected_policy())
    yield harness
    harness.restore()


def test_a_deployed_weakening_hidden_behind_a_good_saved_policy_is_drift(hidden_weakening: Harness) -> None:
    run = invoke_auditor(hidden_weakening.function_env())
    assert run.result is not None
    findings = {f["code"]: f["message"] for f in run.result["targets"][0]["findings"]}
    # THEN the live verdict names the method and who gets in; the pending change says deploying restores
    assert (
        "POST /items" in findings["ACCESS_WEAKENED"]
        and "another principal in account" in findings["ACCESS_WEAKENED"]
    )
    assert "RESTORE" in findings["UNDEPLOYED_POLICY_CHANGE"]
    assert metric(run, "PolicyDrift") == [1] and metric(run, "UndeployedPolicyChange") == [1]


def test_an_undeployed_change_is_still_reported_after_thirty_runs(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a weakening saved but not deployed, and the auditor running in this process as the allowed role
    env = harness.in_process(monkeypatch)
    save_policy(harness.aws.client("apigateway"), harness.sample.api_id, harness.sample.weakened_policy())
    try:
        config, ports = load_config(env), build_ports()
        # WHEN it runs thirty times, each run adding its own read events to CloudTrail's history
        runs = [run_audit(config, ports, budget_s=30)[0] for _ in range(30)]
        trail = harness.aws.client("cloudtrail")
        newest = trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventSource",
                                                        "AttributeValue": "apigateway.amazonaws.com"}])  # fmt: skip
    finally:
        harness.restore()
    # THEN every run reports the change, HIGH, and names who made it
    for result in runs:
        undeployed = [f for f in result.findings if f.code == "UNDEPLOYED_POLICY_CHANGE"]
        changed_by = [f.message for f in result.findings if f.code == "CHANGED_BY"]
        assert result.undeployed_change and undeployed and undeployed[0].severity == "high"
        assert changed_by and changed_by[0].startswith("Changed by arn:") and not result.audit_error
    # ... although the newest 50 API Gateway events are by now the auditor's own reads
    assert len(newest["Events"]) == 50 and "NextToken" in newest
    assert all(e["EventName"].startswith("Get") for e in newest["Events"])


def test_the_local_export_and_deployment_are_the_deployed_ones(harness: Harness) -> None:
    apigw = harness.aws.client("apigateway")
    api_id = harness.sample.api_id
    save_policy(apigw, api_id, post_only_deny(harness))  # saved, not deployed
    try:
        export = json.loads(apigw.get_export(restApiId=api_id, stageName="prod", exportType="oas30",
                                             parameters={"extensions": "apigateway"})["body"].read())  # fmt: skip
        stage = apigw.get_stage(restApiId=api_id, stageName="prod")
        deployment = apigw.get_deployment(
            restApiId=api_id, deploymentId=stage["deploymentId"], embed=["apisummary"]
        )
    finally:
        harness.restore()
    assert "NotResource" not in export["x-amazon-apigateway-policy"]["Statement"][0]  # the deployed one
    assert deployment["apiSummary"]["/health"]["GET"]["authorizationType"] == "AWS_IAM"


def test_local_cloudtrail_pages_newest_first_and_throttles_like_cloudtrail(harness: Harness) -> None:
    apigw = harness.aws.client("apigateway")
    # botocore retries a throttled call by itself; this client must show the throttle
    trail = boto3.client("cloudtrail", endpoint_url=harness.aws.endpoint, region_name=harness.aws.region,
                         aws_access_key_id="testing", aws_secret_access_key="testing",
                         config=Config(retries={"total_max_attempts": 1}))  # fmt: skip
    for _ in range(60):
        apigw.get_rest_api(restApiId=harness.sample.api_id)
    by_read = [{"AttributeKey": "ReadOnly", "AttributeValue": "true"}]
    time.sleep(1.1)  # a second of its own: earlier tests' lookups count against the same quota
    first = trail.lookup_events(LookupAttributes=by_read)
    second = trail.lookup_events(LookupAttributes=by_read, NextToken=first["NextToken"])
    times = [e["EventTime"] for e in first["Events"] + second["Events"]]
    assert len(first["Events"]) == 50 and times == sorted(times, reverse=True)
    # a third call within the same second is over CloudTrail's 2 calls a second
    with pytest.raises(ClientError) as info:
        trail.lookup_events(LookupAttributes=by_read, NextToken=first["NextToken"])
    assert info.value.response["Error"]["Code"] == "ThrottlingException"


@pytest.mark.parametrize("cloudtrail", [True, False])
def test_a_warm_auditor_sees_an_undeployed_method_change_through_cloudtrail(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, cloudtrail: bool
) -> None:
    # GIVEN a warm auditor that has read the saved methods once (they are then trusted for an hour)
    env = harness.in_process(monkeypatch, CLOUDTRAIL_LOOKUP=str(cloudtrail).lower())
    config, ports = load_config(env), build_ports()
    [first] = run_audit(config, ports, budget_s=30)
    # WHEN POST /items is switched to NONE and saved, not deployed
    apigw = harness.aws.client("apigateway")
    items = next(
        r for r in apigw.get_resources(restApiId=harness.sample.api_id)["items"] if r["path"] == "/items"
    )

    def set_post(authorization: str) -> None:
        apigw.delete_method(restApiId=harness.sample.api_id, resourceId=items["id"], httpMethod="POST")
        add_method(apigw, harness.sample.api_id, items["id"], "POST", authorization)

    set_post("NONE")
    # the next scheduled run comes five minutes later
    for scope, at in list(ports.memory.method_lookups.items()):
        ports.memory.method_lookups[scope] = at - dt.timedelta(minutes=5)
    try:
        [second] = run_audit(config, ports, budget_s=30)
    finally:
        set_post("AWS_IAM")
    # THEN with CloudTrail the next run re-reads that API's methods and reports what deploying would do;
    # without it the change waits for SAVED_METHODS_MAX_AGE (the documented bound)
    assert not first.undeployed_change
    pending = [f.message for f in second.findings if f.code == "UNDEPLOYED_POLICY_CHANGE"]
    if cloudtrail:
        assert pending and "WEAKEN" in pending[0] and "POST /items becomes NONE" in pending[0]
    else:
        assert not pending
