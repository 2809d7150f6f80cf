"""Shared end-to-end fixtures: the local AWS with the sample API, and credentials it issued."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from botocore.credentials import ReadOnlyCredentials

from access_auditor.local_aws.sample import (
    STAGE,
    SampleApi,
    auditor_env,
    create_sample_api,
    deploy,
    role_env,
    save_policy,
)
from access_auditor.local_aws.server import LocalAws


@dataclass
class Harness:
    aws: LocalAws
    sample: SampleApi

    @property
    def url(self) -> str:
        return self.aws.invoke_url(self.sample.api_id, STAGE)

    def credentials(self, role_arn: str) -> ReadOnlyCredentials:
        env = role_env(self.aws, role_arn, "tests")
        return ReadOnlyCredentials(
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]
        )

    def function_env(self, **overrides: str) -> dict[str, str]:
        return {**auditor_env(self.aws, self.sample), **overrides}

    def in_process(self, monkeypatch: pytest.MonkeyPatch, **overrides: str) -> dict[str, str]:
        """The function's environment, with the AWS settings botocore reads also set in this process, for a
        run_audit in process (warm ports across runs) as the allowed role."""
        env = self.function_env(**overrides)
        for name in (
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_REGION",
        ):
            monkeypatch.setenv(name, env[name])
        return env

    def save_and_deploy(self, policy_json: str) -> None:
        apigw = self.aws.client("apigateway")
        save_policy(apigw, self.sample.api_id, policy_json)
        deploy(apigw, self.sample.api_id)

    def restore(self) -> None:
        self.save_and_deploy(self.sample.expected_policy())


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with LocalAws() as aws:
        yield Harness(aws, create_sample_api(aws))
