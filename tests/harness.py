"""Shared end-to-end fixtures: the local AWS with the sample API, and credentials it issued."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from botocore.credentials import ReadOnlyCredentials

from local_aws.sample import STAGE, SampleApi, create_sample_api, save_policy
from local_aws.server import LocalAws


@dataclass
class Harness:
    aws: LocalAws
    session: boto3.Session
    sample: SampleApi

    @property
    def url(self) -> str:
        return self.aws.invoke_url(self.sample.api_id, STAGE)

    def credentials(self, role_arn: str) -> ReadOnlyCredentials:
        c = self.session.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="tests")["Credentials"]
        return ReadOnlyCredentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])

    def function_env(self, **overrides: str) -> dict[str, str]:
        c = self.credentials(self.sample.allowed_role_arn)
        env = {
            **self.aws.env,
            "AWS_ACCESS_KEY_ID": c.access_key, "AWS_SECRET_ACCESS_KEY": c.secret_key, "AWS_SESSION_TOKEN": c.token,
            "API_ID": self.sample.api_id, "API_STAGE": STAGE, "API_REGION": self.aws.region,
            "API_ACCOUNT": self.aws.account, "ALLOWED_ROLE_ARN": self.sample.allowed_role_arn,
            "OUTSIDER_ROLE_ARN": self.sample.outsider_role_arn, "API_ENDPOINT": self.url,
        }  # fmt: skip
        env.update(overrides)
        return env

    def save_and_deploy(self, policy_json: str) -> None:
        apigw = self.session.client("apigateway")
        save_policy(apigw, self.sample.api_id, policy_json)
        apigw.create_deployment(restApiId=self.sample.api_id, stageName=STAGE)

    def restore(self) -> None:
        self.save_and_deploy(self.sample.expected_policy())


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    saved = dict(os.environ)
    with LocalAws() as aws:
        os.environ.update(aws.env)
        try:
            # Explicit emulator credentials: tests run with no AWS credentials in their environment.
            session = boto3.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing", region_name=aws.region
            )
            yield Harness(aws, session, create_sample_api(session, aws.account))
        finally:
            os.environ.clear()
            os.environ.update(saved)
