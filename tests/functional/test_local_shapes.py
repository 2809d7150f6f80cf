"""The local AWS answers in the shapes AWS answers in, as recorded in tests/fixtures/aws (documentation
samples and real captured shapes, each with its source), so that the product's parsing and the local AWS
cannot share a wrong belief."""

from __future__ import annotations

import json
import re
from typing import Any

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from access_auditor.local_aws.accounts import set_account_state
from tests.fixtures import recorded
from tests.harness import Harness

MASKED = re.compile(r"\*{8}\d{4}")


def _shape(answer: Any) -> tuple[int, str | None, list[str]]:
    """Status, error type and body keys: what the product reads of an answer."""
    body = json.loads(answer.text) if answer.text else {}
    return answer.status_code, answer.headers.get("x-amzn-ErrorType"), sorted(body)


def test_the_local_gateway_refuses_in_the_shapes_execute_api_refuses_in(harness: Harness) -> None:
    recorded_answers = {a["case"]: a for a in recorded("execute_api_answers")["answers"]}
    url = harness.url + "/health"
    # an unsigned call, GET and HEAD
    unsigned = requests.get(url, timeout=5)
    head = requests.head(url, timeout=5)
    # a call signed as a role the policy's Deny refuses
    creds = harness.credentials(harness.sample.outsider_role_arn)
    request = AWSRequest("GET", url)
    SigV4Auth(creds, "execute-api", harness.aws.region).add_auth(request)
    denied = requests.get(url, headers=dict(request.headers), timeout=5)
    for ours, case in ((unsigned, "unsigned call to an AWS_IAM method (or no such path)"),
                       (denied, "a caller the resource policy's Deny refuses, account masked")):  # fmt: skip
        theirs = recorded_answers[case]
        assert _shape(ours) == (
            theirs["status"],
            theirs["headers"]["x-amzn-ErrorType"],
            sorted(json.loads(theirs["body"])),
        )
        assert ours.headers.get("x-amzn-RequestId")
    assert MASKED.search(denied.json()["Message"]) and harness.aws.account not in denied.text
    assert head.status_code == 403 and head.content == b""
    assert (
        head.headers["x-amzn-ErrorType"]
        == recorded_answers["HEAD: the same refusal, no body (a HEAD answer carries no content)"]["headers"][
            "x-amzn-ErrorType"
        ]
    )


def test_organizations_answers_with_state_alone_as_aws_does_since_status_was_retired(
    harness: Harness,
) -> None:
    shape = recorded("organizations_list_accounts")
    allowed_keys = set().union(*(a.keys() for a in shape["answer"]["Accounts"]))
    orgs = harness.aws.client("organizations")
    orgs.create_organization(FeatureSet="ALL")
    made = {}
    for state in shape["states"]:
        account = orgs.create_account(Email=f"{state.lower()}@example.com", AccountName=state)
        made[account["CreateAccountStatus"]["AccountId"]] = state
        set_account_state(account["CreateAccountStatus"]["AccountId"], state)
    listed = [a for page in orgs.get_paginator("list_accounts").paginate() for a in page["Accounts"]]
    for account in listed:
        assert "Status" not in account and set(account) <= allowed_keys
    assert {a["Id"]: a["State"] for a in listed if a["Id"] in made} == made


def test_local_cloudtrail_records_are_shaped_as_real_ones(harness: Harness) -> None:
    shape = recorded("cloudtrail_apigateway_events")
    envelope_keys = set().union(*(e["event"].keys() for e in shape["events"]))
    apigw, api_id = harness.aws.client("apigateway"), harness.sample.api_id
    deployment = apigw.create_deployment(
        restApiId=api_id, stageName=harness.sample.stage, description="shapes"
    )
    trail = harness.aws.client("cloudtrail")
    # WHEN the API's events are looked up by its own id, as the product looks them up
    events = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": api_id}]
    )["Events"]
    assert events and all(set(e) <= envelope_keys | {"AccessKeyId"} for e in events)
    assert all(
        {"ResourceType": "AWS::ApiGateway::RestApi", "ResourceName": api_id} in e["Resources"] for e in events
    )
    create = json.loads(next(e for e in events if e["EventName"] == "CreateDeployment")["CloudTrailEvent"])
    # THEN the body is nested under createDeploymentInput, with template false, and the answer carries its link
    recorded_create = next(e for e in shape["events"] if e["event"]["EventName"] == "CreateDeployment")
    theirs = recorded_create["event"]["CloudTrailEvent"]
    assert set(create["requestParameters"]) == set(theirs["requestParameters"])
    assert create["requestParameters"]["createDeploymentInput"]["description"] == "shapes"
    assert create["responseElements"]["self"]["restApiId"] == api_id
    assert create["responseElements"]["id"] == deployment["id"]


def test_local_gateway_responses_are_shaped_as_real_ones(harness: Harness) -> None:
    # The local AWS (moto) lists only the customised types; AWS lists every type, defaults marked. The product
    # reads defaultResponse, so both read the same; each local item has the recorded shape.
    shape = recorded("apigateway_gateway_responses")
    keys = set().union(*(item.keys() for item in shape["answer"]["items"]))
    apigw, api_id = harness.aws.client("apigateway"), harness.sample.api_id
    apigw.put_gateway_response(restApiId=api_id, responseType="ACCESS_DENIED", statusCode="200")
    try:
        items = apigw.get_gateway_responses(restApiId=api_id)["items"]
    finally:
        apigw.delete_gateway_response(restApiId=api_id, responseType="ACCESS_DENIED")
    assert items and all(set(item) <= keys and item["defaultResponse"] is False for item in items)


def test_the_local_on_failure_record_is_shaped_as_lambda_s() -> None:
    from access_auditor.local_aws.events import failure_record

    theirs = recorded("lambda_async_failure_record")["record"]
    ours = failure_record({"source": "aws.cloudwatch"}, "boom")
    assert set(ours) == set(theirs)
    for part in ("requestContext", "responseContext"):
        assert set(ours[part]) == set(theirs[part])
    assert ours["requestContext"]["condition"] == theirs["requestContext"]["condition"]


def test_the_local_cloudtrail_records_watched_writes_as_aws_records_them(harness: Harness) -> None:
    import boto3

    from access_auditor.local_aws import emulation
    from access_auditor.local_aws.trail import traced

    shape = recorded("cloudtrail_watched_writes")
    theirs = {c["record"]["eventName"]: c["record"] for c in shape["records"]}
    aws = harness.aws
    heard: list[dict[str, Any]] = []
    emulation.LISTENERS.append(heard.append)

    def client(service: str, **how: bool) -> Any:
        raw = boto3.client(service, endpoint_url=aws.endpoint, region_name="eu-west-1", aws_access_key_id="testing",  # type: ignore[call-overload]
                           aws_secret_access_key="testing")  # fmt: skip
        return traced(raw, aws.account, **how)

    try:
        # GIVEN the resources, then the recorded calls made the way the captures made them
        iam = client("iam")
        trust = (
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},'
            '"Action":"sts:AssumeRole"}]}'
        )
        role = iam.create_role(RoleName="shape-role", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        lam = client("lambda")
        arn = lam.create_function(FunctionName="shape-fn", Runtime="python3.13", Role=role, Handler="h.h",
                                  Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})["FunctionArn"]  # fmt: skip
        key = client("kms").create_key()["KeyMetadata"]["KeyId"]
        heard.clear()
        lam.update_function_code(FunctionName=arn, ZipFile=b"PK\x05\x06" + b"\x00" * 18, Publish=True)
        lam.update_function_configuration(FunctionName=arn, Environment={"Variables": {}})
        lam.add_permission(
            FunctionName="shape-fn", StatementId="s", Action="lambda:InvokeFunction", Principal="*"
        )
        iam.update_assume_role_policy(RoleName="shape-role", PolicyDocument=trust)
        done = list(heard)
        everything = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
        admin = iam.create_policy(PolicyName="shape-admin", PolicyDocument=everything)["Policy"]["Arn"]
        heard.clear()
        iam.attach_role_policy(RoleName="shape-role", PolicyArn=admin)
        client("kms").schedule_key_deletion(KeyId=key, PendingWindowInDays=20)
        client("cloudwatch").put_metric_alarm(AlarmName="shape-alarm", MetricName="m", Namespace="n", Statistic="Sum",
                                              Period=60, EvaluationPeriods=3, Threshold=50, ComparisonOperator="GreaterThanThreshold")  # fmt: skip
        client("events").put_rule(Name="shape-rule", EventPattern='{"source": ["aws.ec2"]}', State="ENABLED")
        client("lambda", via_cloudformation=True).update_function_configuration(
            FunctionName="shape-fn", Timeout=5
        )
    finally:
        emulation.LISTENERS.remove(heard.append)
    # EventBridge's source is aws.<the eventSource's prefix> (aws.monitoring for CloudWatch), as documented
    assert shape["eventbridge_source"]["sources"]
    assert all(e["source"] == "aws." + e["detail"]["eventSource"].split(".")[0] for e in done + heard)
    ours = [e["detail"] for e in done + heard]
    # THEN each is recorded under the same event source and name, with the resource under the same parameter,
    # named as the caller gave it; IAM's in us-east-1 (a global service), the others in the caller's region
    for detail, name in zip(ours, theirs, strict=False):
        record = theirs[name]
        assert (detail["eventSource"], detail["eventName"]) == (record["eventSource"], record["eventName"])
        resource_keys = {"functionName", "roleName", "keyId", "alarmName", "name"} & set(
            record["requestParameters"]
        )
        assert resource_keys <= set(detail["requestParameters"]), name
        assert detail["awsRegion"] == (
            "us-east-1" if detail["eventSource"] == "iam.amazonaws.com" else "eu-west-1"
        )
        assert set(detail["userIdentity"]) >= {"type", "principalId", "arn", "accountId"}
    assert (
        ours[0]["requestParameters"]["functionName"] == arn
        and ours[2]["requestParameters"]["functionName"] == "shape-fn"
    )
    # and CloudFormation's call carries its name where the documented record does
    by_cfn = shape["by_cloudformation"]["record"]
    assert (
        ours[-1]["sourceIPAddress"] == by_cfn["sourceIPAddress"]
        and ours[-1]["userAgent"] == by_cfn["userAgent"]
    )
    assert ours[-1]["userIdentity"]["invokedBy"] == by_cfn["userIdentity"]["invokedBy"]
