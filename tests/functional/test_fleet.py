"""Fleet behaviour against the local AWS: the README's stack-creates-the-role mode, quotas that throttle, and
a fleet audited within its quota share."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from access_auditor.local_aws import emulation
from access_auditor.local_aws.alarms import load_template, resolver
from access_auditor.local_aws.invoke import TEMPLATE, invoke_auditor
from access_auditor.local_aws.sample import create_fleet, grant_fleet_invoke
from tests.harness import Harness


def test_the_stack_creates_the_role_mode_with_an_app_role_reports_no_drift(harness: Harness) -> None:
    # GIVEN the application's own role, and the policy applied as the README says: the stack's role AND the app's
    iam = harness.aws.client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                        "Principal": {"Service": "lambda.amazonaws.com"}}]})  # fmt: skip
    app = iam.create_role(RoleName="orders-app", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    own = harness.sample.allowed_role_arn
    cli = [sys.executable, "-m", "access_auditor", "policy", "apply", "--api-id", harness.sample.api_id,
           "--region", harness.aws.region, "--stage", "prod", "--role", own, "--role", app, "--force"]  # fmt: skip
    applied = subprocess.run(
        cli, env={**os.environ, **harness.aws.env}, capture_output=True, text=True, check=False
    )
    assert applied.returncode == 0, applied.stderr
    try:
        # WHEN the function runs with the environment the template gives it for AllowedRoleArns=<app role>
        variables = load_template(TEMPLATE)["Resources"]["AuditorFunction"]["Properties"]["Environment"][
            "Variables"
        ]
        resolve = resolver(
            load_template(TEMPLATE), {"AllowedRoleArns": app}, attributes={"AllowedRole.Arn": own}
        )
        allowed = resolve(variables["ALLOWED_ROLE_ARN"])
        quiet = invoke_auditor(harness.function_env(ALLOWED_ROLE_ARN=allowed))
        # (and, to show what the parameter fixes, with the stack's own role only)
        noisy = invoke_auditor(
            harness.function_env(ALLOWED_ROLE_ARN=resolve(variables["ALLOWED_ROLE_ARN"]["Fn::If"][2]))
        )
    finally:
        harness.restore()
    # THEN no drift, and without the parameter the app role's access would be reported as a weakening
    assert allowed == f"{own},{app}"
    assert quiet.result is not None and quiet.result["ok"] is True, quiet.result
    assert noisy.result is not None and noisy.result["targets"][0]["drift"] is True


def test_the_local_control_plane_throttles_at_the_documented_quotas(harness: Harness) -> None:
    apigw = boto3.client("apigateway", endpoint_url=harness.aws.endpoint, region_name="ap-south-1",
                         aws_access_key_id="testing", aws_secret_access_key="testing",
                         config=Config(retries={"total_max_attempts": 1}))  # fmt: skip
    api = apigw.create_rest_api(name="quota")["id"]
    # GIVEN a fresh account-and-region allowance: GetResources allows a burst of 5
    answers = []
    for _ in range(7):
        try:
            apigw.get_resources(restApiId=api)
            answers.append(200)
        except ClientError as exc:
            answers.append(exc.response["ResponseMetadata"]["HTTPStatusCode"])
            assert exc.response["Error"]["Code"] == "TooManyRequestsException"
    assert answers[:5] == [200] * 5 and 429 in answers[5:]


@pytest.mark.parametrize("apis_per_region", [8])
def test_a_fleet_is_audited_within_its_quota_share_with_no_throttling(
    harness: Harness, apis_per_region: int
) -> None:
    # GIVEN 16 tagged APIs in two regions, besides the sample API
    role = harness.sample.allowed_role_arn
    regions = ("us-west-2", "eu-central-1")
    create_fleet(harness.aws, role, regions, apis_per_region)
    grant_fleet_invoke(harness.aws, role)
    emulation.THROTTLED.clear()
    env = harness.function_env(
        DISCOVERY_REGIONS=",".join(regions), AWS_ENDPOINT_URL_EXECUTE_API=harness.aws.gateway.url
    )
    try:
        runs = [invoke_auditor(env)]
    finally:
        harness.restore()
    # THEN every API is audited, healthy, with no audit error, and the local AWS never throttled
    for run in runs:
        assert run.result is not None
        targets = run.result["targets"]
        assert len(targets) == 2 * apis_per_region + 1
        assert all(t["healthy"] and not t["auditError"] and not t["deferred"] for t in targets), targets
    assert not emulation.THROTTLED
