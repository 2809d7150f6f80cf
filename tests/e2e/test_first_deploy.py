"""The README's five deploy steps, walked on the local AWS as a new user would: every command as the README
writes it, with the user's values in; `sam deploy` replaced by the template translated onto the local AWS,
and the aws CLI by the same calls. It must end with a quiet audit."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from access_auditor.cli.main import main
from access_auditor.local_aws.invoke import invoke_auditor
from access_auditor.local_aws.sample import STAGE, deploy
from access_auditor.local_aws.stack import STACK, deploy_stack
from tests.harness import Harness

ROOT = Path(__file__).resolve().parents[2]


def readme_steps() -> list[list[str]]:
    """Each numbered step of the README's "Deploy to one account", as the commands it gives (in backticks, on
    a line of their own)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Deploy to one account", 1)[1].split("\n## ", 1)[0]
    steps = re.split(r"\n(?=\d\. )", section)[1:]
    return [re.findall(r"^\s+`([^`]+)`(?:, then)?$", step, flags=re.M) for step in steps]


def test_the_readme_has_five_steps_each_with_its_commands() -> None:
    steps = readme_steps()
    assert [len(s) for s in steps] == [1, 2, 1, 2, 1], steps
    assert steps[0][0].startswith("access-auditor doctor") and steps[1][1].startswith("sam deploy")
    assert steps[2][0].startswith("aws cloudformation describe-stacks") and steps[4][0].startswith(
        "aws lambda invoke"
    )


def test_the_readme_deploy_steps_end_in_a_quiet_audit(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    aws, sample = harness.aws, harness.sample
    for key, value in aws.env.items():  # the user's shell: an administrator of the (local) account
        monkeypatch.setenv(key, value)
    # GIVEN an API as a first deploy finds it: AWS_IAM methods, a GET /health, and no resource policy yet
    apigw = aws.client("apigateway")
    apigw.update_rest_api(
        restApiId=sample.api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": ""}]
    )
    deploy(apigw, sample.api_id)
    app_role = (
        sample.outsider_role_arn
    )  # the application's own role (it may invoke the API by its IAM policy)
    values = {"ID": sample.api_id, "R": aws.region, "APP_ROLE": app_role}

    def command(text: str) -> list[str]:
        for name, value in values.items():
            text = re.sub(rf"\b{name}\b", value, text)
        return shlex.split(text)

    (doctor,), (build, sam_deploy), (describe,), (dry_run, apply), (invoke,) = readme_steps()
    try:
        # 1. doctor: one line per check, and what holds
        main(command(doctor)[1:])
        assert re.search(r"\d+ of \d+ checks hold", capsys.readouterr().out)
        # 2. deploy, with the parameters the README gives
        assert build == "make build" and "--guided" in sam_deploy
        overrides = command(sam_deploy.split("--parameter-overrides", 1)[1])
        stack = deploy_stack(aws, dict(o.split("=", 1) for o in overrides))
        first = invoke_auditor(stack.function_env)
        assert (
            first.result is not None and not first.result["ok"]
        )  # it pages until step 4, as the README says
        # 3. the role the policy must exempt, from the stack's outputs
        query = re.search(r"OutputKey=='(\w+)'", describe)
        assert query and STACK in describe
        values["AUDITOR_ROLE"] = stack.outputs[query[1]]
        assert (
            values["AUDITOR_ROLE"] == f"arn:aws:iam::{aws.account}:role/apigw-access-auditor/{STACK}-allowed"
        )
        # 4. the dry run, then the apply
        code, plan = main(command(dry_run)[1:]), capsys.readouterr().out
        # the operator is told that the lock denies them too (everyone but the roles is), not stopped by it
        assert code == 0 and "will be denied too, as everyone but the allowed roles is" in plan, plan
        assert main(command(apply)[1:]) == 0, capsys.readouterr()
        assert (
            f"saved the expected policy on {sample.api_id} and deployed stage {STAGE}"
            in capsys.readouterr().out
        )
        # 5. the function, invoked as the README invokes it: quiet
        assert f"--function-name {STACK}-auditor" in invoke
        run = invoke_auditor(stack.function_env)
        assert run.error is None and run.result is not None
        assert run.result["ok"] is True, json.dumps(run.result["targets"], indent=1)[:3000]
        assert [t["findings"] for t in run.result["targets"]] == [[]]
    finally:
        harness.restore()
