"""``policy apply`` is safe by construction, tried the way an insider or a slip would try it on the local AWS:
it never ships what nobody reviewed, never creates a stage, never redeploys for nothing, never guesses a role,
and never leaves a policy saved but undeployed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from access_auditor.cli.main import main
from access_auditor.local_aws.sample import add_method, role_env
from tests.harness import Harness


def apply(harness: Harness, monkeypatch: pytest.MonkeyPatch, *extra: str, as_role: str | None = None) -> int:
    env = {**harness.aws.env, **role_env(harness.aws, as_role or harness.sample.allowed_role_arn, "operator")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return main(["policy", "apply", "--api-id", harness.sample.api_id, "--region", harness.aws.region,
                 "--stage", harness.sample.stage, "--role", harness.sample.allowed_role_arn, *extra])  # fmt: skip


def deployments(harness: Harness) -> int:
    return len(harness.aws.client("apigateway").get_deployments(restApiId=harness.sample.api_id)["items"])


def saved_policy(harness: Harness) -> dict[str, object]:
    from access_auditor.policy.document import parse_policy_text

    return parse_policy_text(
        harness.aws.client("apigateway").get_rest_api(restApiId=harness.sample.api_id)["policy"]
    )


@pytest.fixture
def weakened(harness: Harness) -> Iterator[Harness]:
    # GIVEN the weakening deployed: apply has something to fix
    harness.save_and_deploy(harness.sample.weakened_policy())
    yield harness
    harness.restore()


@pytest.fixture
def staged_none(weakened: Harness) -> Iterator[Harness]:
    # and someone else has staged a method open to anyone (NONE), not deployed
    apigw, api_id = weakened.aws.client("apigateway"), weakened.sample.api_id
    root = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    add_method(apigw, api_id, root, "DELETE", "NONE")
    yield weakened
    apigw.delete_method(restApiId=api_id, resourceId=root, httpMethod="DELETE")


def test_apply_refuses_to_ship_a_change_someone_else_staged_and_lists_it(
    staged_none: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = deployments(staged_none)
    # WHEN the fix is dry-run, then applied
    dry = apply(staged_none, monkeypatch, "--dry-run")
    shown = capsys.readouterr().out
    code = apply(staged_none, monkeypatch)
    said = capsys.readouterr().err
    # THEN the dry run shows the staged method and the refusal; apply refuses, deploys nothing, and lists it
    assert dry == 2 and "DELETE / NONE (only saved)" in shown and "refusing:" in shown
    assert code == 2 and "DELETE / NONE" in said and "--include-pending" in said
    assert deployments(staged_none) == before


def test_apply_ships_a_pending_change_only_when_told_to(
    staged_none: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = deployments(staged_none)
    assert apply(staged_none, monkeypatch, "--include-pending") == 0
    assert deployments(staged_none) == before + 1 and "deployed stage" in capsys.readouterr().out


def test_apply_never_creates_a_stage_from_a_typo(harness: Harness, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    env = {**harness.aws.env, **role_env(harness.aws, harness.sample.allowed_role_arn, "operator")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["policy", "apply", "--api-id", harness.sample.api_id, "--region", harness.aws.region,
                 "--stage", "prdo", "--role", harness.sample.allowed_role_arn])  # fmt: skip
    stages = harness.aws.client("apigateway").get_stages(restApiId=harness.sample.api_id)["item"]
    assert code == 2 and "--stage prdo: API" in capsys.readouterr().err
    assert "prdo" not in {s["stageName"] for s in stages}


def test_apply_does_not_redeploy_when_nothing_changes(harness: Harness, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    harness.restore()
    before = deployments(harness)
    assert apply(harness, monkeypatch) == 0
    assert deployments(harness) == before and "nothing to do" in capsys.readouterr().out


def test_a_failed_deployment_restores_the_policy_it_replaced(
    weakened: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a method saved without an integration, so API Gateway refuses the next deployment
    apigw, api_id = weakened.aws.client("apigateway"), weakened.sample.api_id
    root = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    apigw.put_method(restApiId=api_id, resourceId=root, httpMethod="PATCH", authorizationType="AWS_IAM")
    previous = saved_policy(weakened)
    try:
        code = apply(weakened, monkeypatch, "--include-pending")
    finally:
        apigw.delete_method(restApiId=api_id, resourceId=root, httpMethod="PATCH")
    # THEN apply says the deployment failed and that the policy it replaced is back; nothing is left half-done
    err = capsys.readouterr().err
    assert code == 3 and "No integration defined for method" in err and "saved back" in err
    assert saved_policy(weakened) == previous


def test_apply_fails_closed_when_it_cannot_read_the_operator_s_role(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an operator whose role cannot be read (here: deleted after its session was issued)
    iam = harness.aws.client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                        "Principal": {"AWS": f"arn:aws:iam::{harness.aws.account}:root"}}]})  # fmt: skip
    arn = iam.create_role(RoleName="ops", Path="/team/", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    env = role_env(harness.aws, arn, "operator")
    iam.delete_role(RoleName="ops")
    harness.save_and_deploy(harness.sample.weakened_policy())
    try:
        for name, value in {**harness.aws.env, **env}.items():
            monkeypatch.setenv(name, value)
        code = main(["policy", "apply", "--api-id", harness.sample.api_id, "--region", harness.aws.region,
                     "--stage", harness.sample.stage, "--role", harness.sample.allowed_role_arn])  # fmt: skip
    finally:
        harness.restore()
    assert code == 2 and "your own role cannot be read" in capsys.readouterr().err


def test_apply_names_every_principal_the_current_policy_lets_in_that_it_would_lock_out(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the live policy exempts the allowed role and a second team's role
    from access_auditor.policy.expected import render_expected_policy

    team = f"arn:aws:iam::{harness.aws.account}:role/payments-app"
    harness.save_and_deploy(
        json.dumps(render_expected_policy(harness.sample.api, [harness.sample.allowed_role_arn, team]))
    )
    try:
        code = apply(harness, monkeypatch)
    finally:
        harness.restore()
    err = capsys.readouterr().err
    assert code == 2 and f"loses access: principal {team}" in err
