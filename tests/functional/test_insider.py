"""What an insider with modest rights tries against the auditor, reproduced on the local AWS."""

from __future__ import annotations

import pytest
from moto.apigateway.models import apigateway_backends

from access_auditor.audit import run_audit
from access_auditor.config import load_config
from access_auditor.wiring import build_ports
from tests.harness import Harness


def test_a_stages_tag_does_not_take_an_open_stage_out_of_the_run(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the API tagged for discovery, prod weakened and deployed, and a dev stage; then the insider's tag
    # access-auditor:stages=dev, meant to drop prod from the run
    apigw, sample = harness.aws.client("apigateway"), harness.sample
    apigw.create_deployment(restApiId=sample.api_id, stageName="dev")
    harness.save_and_deploy(sample.weakened_policy())
    model = apigateway_backends[harness.aws.account][harness.aws.region].apis[sample.api_id]
    model.tags = {"access-auditor:allowed-roles": sample.allowed_role_arn, "access-auditor:stages": "dev"}
    env = harness.in_process(
        monkeypatch,
        API_ID="",
        API_STAGE="",
        DISCOVERY_REGIONS=harness.aws.region,
        AWS_ENDPOINT_URL_EXECUTE_API=harness.aws.gateway.url,
    )
    try:
        results = run_audit(load_config(env), build_ports(), budget_s=30)
    finally:
        model.tags = {}
        apigw.delete_stage(restApiId=sample.api_id, stageName="dev")
        harness.restore()
    # THEN prod is audited and its weakening reported, and the tag is a finding naming what it left out
    prod = next(r for r in results if r.target.stage == "prod")
    assert prod.drift and any(f.code == "ACCESS_WEAKENED" for f in prod.findings)
    narrowing = [f for r in results for f in r.findings if f.code == "STAGES_TAG_NARROWS"]
    assert narrowing and "leaves out prod" in narrowing[0].message
