"""``access-auditor doctor`` against the local AWS: each check says what holds, what does not and the fix;
the export experiment tells the two copies of the policy apart and leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from access_auditor import preflight
from access_auditor.cli.main import main
from access_auditor.local_aws import emulation
from tests.harness import Harness


@pytest.fixture
def clients(harness: Harness) -> Iterator[preflight.Clients]:
    yield lambda service, region: harness.aws.client(service, region)
    emulation.EXPORT_CARRIES = "deployment"


def scratch_apis(harness: Harness) -> list[str]:
    apis = harness.aws.client("apigateway").get_rest_apis(limit=500)["items"]
    return [a["id"] for a in apis if a["name"].startswith(preflight.EXPERIMENT_PREFIX)]


def test_the_trail_check_fails_with_its_fix_until_a_trail_logs(
    harness: Harness, clients: preflight.Clients
) -> None:
    [before] = preflight.check_trail(clients, harness.aws.region)
    assert before.status == "fail" and "start-logging" in before.fix
    trail = harness.aws.client("cloudtrail")
    harness.aws.client("s3").create_bucket(Bucket="trail-bucket")
    trail.create_trail(Name="org-trail", S3BucketName="trail-bucket", IsMultiRegionTrail=True)
    trail.start_logging(Name="org-trail")
    try:
        [after] = preflight.check_trail(clients, harness.aws.region)
    finally:
        trail.delete_trail(Name="org-trail")
    assert after.status == "ok" and "org-trail" in after.detail


def test_stacksets_trusted_access_is_checked(harness: Harness, clients: preflight.Clients) -> None:
    orgs = harness.aws.client("organizations")
    orgs.create_organization(FeatureSet="ALL")
    [before] = preflight.check_organization(clients, harness.aws.region)
    orgs.enable_aws_service_access(ServicePrincipal=preflight.STACKSETS_PRINCIPAL)
    [after] = preflight.check_organization(clients, harness.aws.region)
    assert before.status == "fail" and "activate-organizations-access" in before.fix and after.status == "ok"


def test_a_member_account_without_its_audit_role_is_named(harness: Harness) -> None:
    [outcome] = preflight.check_member_roles(
        harness.aws.client("sts"), ["111122223333"], "apigw-access-auditor-member", None
    )
    assert outcome.status == "fail" and "111122223333" in outcome.check and "--via-role" in outcome.detail


def test_per_api_the_export_the_gateway_responses_and_the_health_identity_are_told(
    harness: Harness, clients: preflight.Clients
) -> None:
    apigw, api_id = harness.aws.client("apigateway"), harness.sample.api_id
    apigw.create_model(restApiId=api_id, name="Order", contentType="application/xml", schema="<order/>")
    apigw.put_gateway_response(restApiId=api_id, responseType="ACCESS_DENIED", statusCode="404")
    try:
        found = {
            o.check: o
            for o in preflight.check_apis(clients, harness.aws.region, [api_id], "arn:aws:iam::1:role/x")
        }
    finally:
        apigw.delete_model(restApiId=api_id, modelName="Order")
        apigw.delete_gateway_response(restApiId=api_id, responseType="ACCESS_DENIED")
    assert (
        found[f"API {api_id} export"].status == "warn"
        and "JSON body models" in found[f"API {api_id} export"].detail
    )
    assert "ACCESS_DENIED (404)" in found[f"API {api_id} gateway responses"].detail
    assert found[f"API {api_id} health identity"].status == "fail"


@pytest.mark.parametrize("copy", ["deployment", "saved"])
def test_the_experiment_tells_which_copy_the_export_carries_and_leaves_nothing(
    harness: Harness, clients: preflight.Clients, copy: str
) -> None:
    emulation.EXPORT_CARRIES = copy
    said: list[str] = []
    [outcome] = preflight.export_experiment(clients, harness.aws.region, harness.aws.account, said.append)
    assert outcome.status == ("ok" if copy == "deployment" else "fail")
    assert said[0].startswith("created REST API") and said[-1].startswith("deleted REST API")
    assert scratch_apis(harness) == []


def test_an_interrupted_experiment_still_deletes_what_it_made(
    harness: Harness, clients: preflight.Clients
) -> None:
    class Interrupting:
        def __init__(self, client: Any) -> None:
            self._client = client

        def __getattr__(self, name: str) -> Any:
            if name == "get_export":
                raise KeyboardInterrupt  # Ctrl-C in the middle of the experiment
            return getattr(self._client, name)

    def interrupting(service: str, region: str) -> Any:
        return Interrupting(clients(service, region))

    with pytest.raises(KeyboardInterrupt):
        preflight.export_experiment(interrupting, harness.aws.region, harness.aws.account, lambda _: None)
    assert scratch_apis(harness) == []


def test_a_scratch_api_left_by_a_killed_run_is_deleted_by_the_next(
    harness: Harness, clients: preflight.Clients
) -> None:
    apigw = harness.aws.client("apigateway")
    left = apigw.create_rest_api(
        name=preflight.EXPERIMENT_PREFIX + "dead", tags={preflight.EXPERIMENT_TAG: "experiment"}
    )["id"]
    said: list[str] = []
    preflight.export_experiment(clients, harness.aws.region, harness.aws.account, said.append)
    assert (
        said[0] == f"deleted REST API {left}, left by an earlier experiment" and scratch_apis(harness) == []
    )


def test_doctor_on_the_command_line(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in harness.aws.env.items():
        monkeypatch.setenv(name, value)
    code = main(["doctor", "--region", harness.aws.region, "--api-id", harness.sample.api_id, "--experiment"])
    out = capsys.readouterr().out
    assert code == 1  # no trail in the local account
    assert "FAIL  trail in us-east-1" in out and "OK    export carries the deployment's policy" in out
    assert out.strip().endswith("checks hold; 1 to fix")
