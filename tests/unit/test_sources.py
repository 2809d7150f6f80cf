"""Targets from the configuration and from tags: explicit entries win, the allow-list holds, a bad tag or a
failed sweep loses nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from access_auditor.aws.apigateway import SweptApi
from access_auditor.config import load_config
from access_auditor.errors import AwsCallError, ConfigError
from access_auditor.observation import Ports
from access_auditor.sources import plan_targets

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
OTHER = f"arn:aws:iam::{ACCOUNT}:role/other"


class SweptPlane:
    def __init__(self, apis: list[SweptApi], fail: bool = False) -> None:
        self.apis, self.fail = apis, fail

    def sweep(self) -> list[SweptApi]:
        if self.fail:
            raise AwsCallError("GetRestApis", "AccessDeniedException", "no")
        return self.apis

    def stages(self, api_id: str) -> list[str]:
        return ["prod", "dev"]


def plan(env: dict[str, str], planes: dict[str, SweptPlane]):  # type: ignore[no-untyped-def]
    ports = Ports(
        control_plane=lambda scope: planes[scope.region], credentials=None, session=requests.Session()
    )  # type: ignore[arg-type,return-value]
    return plan_targets(load_config(env), ports)


def tagged(api_id: str, roles: str, **tags: str) -> SweptApi:
    return SweptApi(api_id, f"name-{api_id}", None, {"access-auditor:allowed-roles": roles, **tags})


BASE = {"AWS_REGION": "us-east-1", "API_ACCOUNT": ACCOUNT, "DISCOVERY_REGIONS": "us-east-1,eu-west-1"}


def test_tagged_apis_become_targets_and_an_explicit_entry_wins(tmp_path: Path) -> None:
    # GIVEN a configuration document naming api1 with ROLE only, and api1 tagged to also allow OTHER
    document = tmp_path / "fleet.yaml"
    document.write_text(f"targets:\n  - API_ID: api1\n    API_STAGE: prod\n    ALLOWED_ROLE_ARN: [{ROLE}]\n")
    planes = {"us-east-1": SweptPlane([tagged("api1", f"{ROLE} {OTHER}"), tagged("api2", f"{ROLE} {OTHER}"),
                                       SweptApi("api3", "untagged", None, {})]),
              "eu-west-1": SweptPlane([tagged("api4", ROLE, **{"access-auditor:stages": "live"})])}  # fmt: skip
    result = plan({**BASE, "CONFIG_FILE": str(document)}, planes)
    targets = {(t.api_id, t.stage): t for t in result.targets}
    # THEN the entry's expectation stands for api1; api2 has its tag's roles on every stage; api3 is not opted
    # in; api4's stages tag narrows nothing: every stage is audited, and the tag is a finding
    assert targets[("api1", "prod")].allowed_roles == (ROLE,) and targets[("api1", "prod")].source == "config"
    assert targets[("api2", "prod")].allowed_roles == (ROLE, OTHER) and ("api2", "dev") in targets
    assert ("api3", "prod") not in targets and {("api4", "prod"), ("api4", "dev")} <= set(targets)
    assert [(t.api_id, f.code) for t, f in result.problems] == [("api4", "STAGES_TAG_NARROWS")]


def test_a_stages_tag_cannot_drop_a_stage_from_the_run() -> None:
    # GIVEN an insider tags the API access-auditor:stages=dev, leaving out prod (where the policy is open)
    planes = {"us-east-1": SweptPlane([tagged("api1", ROLE, **{"access-auditor:stages": "dev"})]),
              "eu-west-1": SweptPlane([])}  # fmt: skip
    result = plan(BASE, planes)
    # THEN prod is audited all the same, and the tag is reported, naming what it left out
    assert sorted(t.stage for t in result.targets) == ["dev", "prod"]
    [(_, narrowing)] = result.problems
    assert narrowing.code == "STAGES_TAG_NARROWS" and "leaves out prod" in narrowing.message


def test_the_allow_list_ignores_other_tags_and_a_bad_tag_is_one_finding() -> None:
    document = {"discovery": {"regions": ["us-east-1"], "apis": ["api1", "api2"]}}
    planes = {
        "us-east-1": SweptPlane([tagged("api1", ROLE), tagged("api2", "not-an-arn"), tagged("api9", ROLE)])
    }
    env = {**BASE, "DISCOVERY_REGIONS": "", "AUDIT_TARGETS": "", "CONFIG_PARAMETER": "/fleet"}
    ports = Ports(
        control_plane=lambda scope: planes[scope.region], credentials=None, session=requests.Session()
    )  # type: ignore[arg-type,return-value]
    result = plan_targets(load_config(env, lambda name, key: json.dumps(document)), ports)
    assert [t.api_id for t in result.targets] == ["api1", "api1"]
    problems = {t.api_id: f.code for t, f in result.problems}
    assert problems == {"api2": "TARGET_INVALID", "api9": "TAG_IGNORED"}


def test_a_region_that_cannot_be_swept_is_a_finding_and_the_other_region_still_counts() -> None:
    planes = {"us-east-1": SweptPlane([], fail=True), "eu-west-1": SweptPlane([tagged("api4", ROLE)])}
    result = plan(BASE, planes)
    assert [t.api_id for t in result.targets] == ["api4", "api4"]
    [(where, problem)] = result.problems
    assert (
        problem.code == "DISCOVERY_FAILED"
        and where.region == "us-east-1"
        and "AccessDenied" in problem.message
    )


@pytest.mark.parametrize(
    ("document", "named"),
    [
        (
            "targets:\n  - API_ID: abc\n    API_STAGE: prod\n    HEALTH_PAHT: /x\n",
            "targets[0]: unknown setting(s) HEALTH_PAHT",
        ),
        (
            "targets:\n  - API_ID: abc\n    API_STAGE: prod\n    ALLOWED_ROLE_ARN: [nope]\n",
            "targets[0].ALLOWED_ROLE_ARN",
        ),
        ("defaults: {API_STAGE: 7}\n", "defaults.API_STAGE: expected a string"),
        ("discovery: {regions: [mars-1]}\n", "discovery.regions"),
        ("target: []\n", "unknown key(s) target"),
        ("[: nope", "neither JSON nor YAML"),
    ],
)
def test_a_bad_configuration_document_names_the_entry_and_field(
    tmp_path: Path, document: str, named: str
) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(document)
    with pytest.raises(ConfigError) as info:
        load_config({**BASE, "DISCOVERY_REGIONS": "", "CONFIG_FILE": str(path), "ALLOWED_ROLE_ARN": ROLE})
    assert named in str(info.value) and str(path) in str(info.value)


def test_the_documented_example_matches_the_schema() -> None:
    import jsonschema
    import yaml

    from access_auditor.config import target_schema

    example = Path(__file__).parents[2] / "events" / "fleet.yaml"
    document = yaml.safe_load(example.read_text())
    jsonschema.validate(document, target_schema())
    load_config({"AWS_REGION": "us-east-1", "API_ACCOUNT": ACCOUNT, "CONFIG_FILE": str(example)})


def test_a_networks_tag_is_read_as_the_expectation_and_a_forged_one_fails_closed(tmp_path: Path) -> None:
    from access_auditor.aws.apigatewayv2 import SweptHttpApi

    # GIVEN a private API tagged with its endpoint, one tagged with a value that is no endpoint, and an HTTP
    # API tagged with a stages tag that leaves out a stage (its tags are read as a REST API's are)
    endpoint = "vpce-0a1b2c3d4e5f60718"
    planes = {"us-east-1": SweptPlane([tagged("api1", ROLE, **{"access-auditor:allowed-networks": endpoint}),
                                       tagged("api2", ROLE, **{"access-auditor:allowed-networks": "vpce-*"})]),
              "eu-west-1": SweptPlane([])}  # fmt: skip

    class HttpPlane(SweptPlane):
        def sweep(self) -> list[SweptHttpApi]:  # type: ignore[override]
            return [SweptHttpApi("http1", "quotes", {"access-auditor:allowed-roles": ROLE,
                                                      "access-auditor:stages": "prod"})]  # fmt: skip

    ports = Ports(control_plane=lambda scope: planes[scope.region], credentials=None, session=requests.Session(),
                  http_apis=lambda scope: HttpPlane([]))  # type: ignore[arg-type,return-value]  # fmt: skip
    result = plan_targets(load_config(BASE), ports)
    targets = {(t.api_id, t.stage): t for t in result.targets}
    # THEN api1 expects its endpoint; api2's forged value is one finding, never a target expecting "vpce-*"
    assert targets[("api1", "prod")].allowed_vpces == (endpoint,) and targets[("api1", "prod")].private
    assert ("api2", "prod") not in targets
    problems = sorted((t.api_id, f.code) for t, f in result.problems)
    assert ("api2", "TARGET_INVALID") in problems
    # AND the HTTP API is audited on every stage, of kind http, its narrowing tag reported
    assert {targets[("http1", s)].kind for s in ("prod", "dev")} == {"http"}
    assert ("http1", "STAGES_TAG_NARROWS") in problems
