"""The verdict on a private REST API: only these roles, only through these VPC endpoints (or VPCs). The
expected policy is the developer guide's documented form for private APIs; each weakening names the caller
and the network that gets in."""

from __future__ import annotations

import copy
import json

import pytest

from access_auditor.errors import ConfigError
from access_auditor.policy.analysis import check_policy, representative_methods
from access_auditor.policy.expected import render_expected_policy
from tests.policies import API, ROLES

ROLE = ROLES[0]
ENDPOINT, OTHER_ENDPOINT = "vpce-0a1b2c3d", "vpce-0e5f6a7b"
VPC, OTHER_VPC = "vpc-0a11aaaa", "vpc-0b22bbbb"
METHODS = representative_methods("prod")


def verdict(saved: dict | None, *, vpces=(ENDPOINT,), vpcs=(), private=True):  # type: ignore[no-untyped-def]
    text = json.dumps(saved) if saved is not None else None
    return check_policy(text, API, [ROLE], METHODS, vpces=vpces, vpcs=vpcs, private=private)


def codes(v) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.code for f in v.findings}


def test_the_expected_private_policy_is_the_documented_form_and_audits_clean() -> None:
    doc = render_expected_policy(API, [ROLE], [ENDPOINT])
    network = doc["Statement"][1]
    assert network["Effect"] == "Deny" and network["Principal"] == "*"
    assert network["Condition"] == {"StringNotEquals": {"aws:SourceVpce": ENDPOINT}}
    result = verdict(doc)
    assert not result.drift and codes(result) == set()


def test_dropping_the_endpoint_condition_is_a_weakening_naming_the_role_and_the_network() -> None:
    roles_only = render_expected_policy(API, [ROLE])
    result = verdict(roles_only)
    weakened = next(f for f in result.findings if f.code == "ACCESS_WEAKENED")
    assert f"allowed role {ROLE}" in weakened.message and "another VPC endpoint" in weakened.message
    assert "PRIVATE_API_ANY_ENDPOINT" in codes(result) and result.drift


def test_another_endpoint_added_is_a_weakening_through_that_endpoint() -> None:
    wider = render_expected_policy(API, [ROLE], [ENDPOINT, OTHER_ENDPOINT])
    result = verdict(wider)
    weakened = next(f for f in result.findings if f.code == "ACCESS_WEAKENED")
    assert f"VPC endpoint {OTHER_ENDPOINT}" in weakened.message and "PRIVATE_API_ANY_ENDPOINT" not in codes(
        result
    )


@pytest.mark.parametrize("widened", [[VPC, OTHER_VPC], "vpc-*"])
def test_a_widened_source_vpc_is_a_weakening_through_the_wider_vpcs(widened: object) -> None:
    saved = render_expected_policy(API, [ROLE], vpcs=[VPC])
    condition = saved["Statement"][1]["Condition"]
    if isinstance(widened, str):
        condition["StringNotLike"] = {"aws:SourceVpc": widened}
        del condition["StringNotEquals"]
    else:
        condition["StringNotEquals"]["aws:SourceVpc"] = widened
    result = verdict(saved, vpces=(), vpcs=(VPC,))
    weakened = next(f for f in result.findings if f.code == "ACCESS_WEAKENED")
    assert "in VPC" in weakened.message and "through" in weakened.message


def test_an_endpoint_or_vpc_in_the_expected_policy_lets_either_through() -> None:
    doc = render_expected_policy(API, [ROLE], [ENDPOINT], [VPC])
    assert doc["Statement"][1]["Condition"] == {
        "StringNotEquals": {"aws:SourceVpce": ENDPOINT, "aws:SourceVpc": VPC}
    }
    result = verdict(doc, vpces=(ENDPOINT,), vpcs=(VPC,))
    assert codes(result) == set()
    cell = result.saved.cells[(f"allowed role {ROLE}", 0)]
    assert any(ENDPOINT in n for n in cell.networks) and any(f"in VPC {VPC}" in n for n in cell.networks)
    assert "another VPC endpoint in another VPC" not in cell.networks


def test_a_private_api_locked_to_roles_only_is_reachable_through_any_endpoint() -> None:
    result = verdict(render_expected_policy(API, [ROLE]), vpces=())
    assert codes(result) == {"PRIVATE_API_ANY_ENDPOINT"}
    # the same policy on a regional API says nothing about endpoints
    assert codes(verdict(render_expected_policy(API, [ROLE]), vpces=(), private=False)) == set()


def test_a_bad_endpoint_id_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="not a VPC endpoint id"):
        render_expected_policy(API, [ROLE], ["vpce-XYZ"])


def test_a_role_weakening_behind_the_endpoint_names_the_endpoint_it_gets_in_through() -> None:
    # GIVEN the role Deny opened to every role of the account, the endpoint Deny kept
    opened = copy.deepcopy(render_expected_policy(API, [ROLE], [ENDPOINT]))
    del opened["Statement"][0]["Condition"]["StringNotEquals"]
    opened["Statement"][0]["Condition"]["StringNotLike"] = {
        "aws:PrincipalArn": [ROLE, "arn:aws:iam::123456789012:role/*"]
    }
    result = verdict(opened)
    # THEN the weakening names those roles, and the one endpoint they get in through; no other endpoint
    weakened = next(f for f in result.findings if f.code == "ACCESS_WEAKENED")
    assert "role/*" in weakened.message and f"through VPC endpoint {ENDPOINT}" in weakened.message
    assert "another VPC endpoint" not in weakened.message and "PRIVATE_API_ANY_ENDPOINT" not in codes(result)


def test_the_endpoint_swapped_for_another_locks_the_role_out_of_its_own_and_lets_it_in_through_the_other() -> (
    None
):
    # GIVEN the role kept, but the endpoint condition naming another endpoint instead of the expected one
    swapped = render_expected_policy(API, [ROLE], [OTHER_ENDPOINT])
    result = verdict(swapped)
    found = {f.code: f.message for f in result.findings}
    # THEN both are told, each naming its endpoint: locked out through its own, let in through the other
    assert f"through VPC endpoint {ENDPOINT}" in found["ALLOWED_ROLE_LOCKED_OUT"]
    assert f"through VPC endpoint {OTHER_ENDPOINT}" in found["ACCESS_WEAKENED"]
    assert "ACCESS_CHANGED" not in found and result.drift
