"""The documentation site: built strictly (a broken link or anchor fails), its runbook complete against the
templates, its generated reference pages and deployer policies derived from their declarations."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from access_auditor.local_aws.alarms import load_template

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
TEMPLATES = ("template.yaml", "organization/hub.yaml", "organization/member.yaml")
# Pages a stack sends that are not alarms; the runbook has an entry for each.
NOT_ALARMS = {"WATCHER CHANGED", "CONFIG CHANGED", "A failed invocation record"}


def hooks() -> Any:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    # GIVEN mkdocs.yml (strict, every kind of link validated); WHEN the site is built as `make docs` builds it
    mkdocs = Path(sys.executable).parent / "mkdocs"
    run = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    # THEN it builds, with every generated table in place of its marker
    assert run.returncode == 0, run.stderr[-3000:]
    findings = (tmp_path / "site" / "reference" / "findings" / "index.html").read_text()
    assert "POLICY_MISSING" in findings and "generated:" not in findings
    from access_auditor.publish import METRICS

    metrics = (tmp_path / "site" / "reference" / "metrics" / "index.html").read_text()
    assert all(name in metrics for name in METRICS)


def test_the_runbook_has_an_entry_for_every_alarm_and_no_other() -> None:
    entries = set(re.findall(r"^### (.+)$", (DOCS / "runbook.md").read_text(), flags=re.M))
    alarms = {name for template in TEMPLATES for name, resource in load_template(ROOT / template)["Resources"].items()
              if resource["Type"] == "AWS::CloudWatch::Alarm"}  # fmt: skip
    assert alarms - entries == set(), f"alarms with no runbook entry: {sorted(alarms - entries)}"
    assert entries - alarms == NOT_ALARMS, (
        f"runbook entries for no alarm: {sorted(entries - alarms - NOT_ALARMS)}"
    )


def test_every_page_is_in_the_navigation() -> None:
    import yaml

    nav = json.dumps(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert {p for p in pages if f'"{p}"' not in nav} == set()


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_deployer_policy_covers_every_resource_type_and_is_scoped_to_the_stack(template: str) -> None:
    module = hooks()
    # GIVEN the resource types the template creates once SAM has transformed it
    types = module.deployed_types(ROOT / template)
    # THEN the generator knows each (a new type fails here until its deployment is described)...
    assert types <= set(module.DEPLOY), sorted(types - set(module.DEPLOY))
    policy = module.deployer_policy(types)
    # ... and every statement names the stack's resources, but the three that AWS allows only on "*"
    for statement in policy["Statement"]:
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        if "*" in resources:
            assert statement["Sid"] in {"CreateTheStacksKeys", "ListLogGroups"} and (
                statement.get("Condition") or statement["Action"] == ["logs:DescribeLogGroups"]
            ), statement
        else:
            # a name from the stack's, SAM's own bucket and transform, or an id AWS chooses, under a condition
            assert all("STACK" in r or "aws-sam-cli-managed" in r or "transform/" in r
                       or (r.endswith(("/*", ":*")) and statement.get("Condition")) for r in resources), statement  # fmt: skip
        for action in statement["Action"]:
            assert re.fullmatch(r"[a-z0-9-]+:[A-Z][A-Za-z]+", action), action


def test_the_deployer_policies_are_valid_iam_policies() -> None:
    from access_auditor.policy.document import load_policy

    module = hooks()
    for template in TEMPLATES:
        policy = module.deployer_policy(module.deployed_types(ROOT / template))
        # the product's own policy reader takes it whole (effects, actions, resources, conditions)
        assert load_policy(policy, None, resource_policy=False).statements


def test_every_variable_a_template_gives_a_function_is_documented() -> None:
    from access_auditor.config import TARGET_SETTINGS

    page = (DOCS / "reference" / "environment.md").read_text()
    variables = {name for template in TEMPLATES for resource in load_template(ROOT / template)["Resources"].values()
                 if resource["Type"] == "AWS::Serverless::Function"
                 for name in resource["Properties"].get("Environment", {}).get("Variables", {})}  # fmt: skip
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", page))
    assert (variables | set(TARGET_SETTINGS)) - documented == set()


def test_the_first_deploy_tutorial_gives_the_readme_s_commands() -> None:
    from tests.e2e.test_first_deploy import readme_steps

    tutorial = (DOCS / "tutorials" / "first-deploy.md").read_text()
    for step in readme_steps():
        for command in step:
            assert command in tutorial, command
