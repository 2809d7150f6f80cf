"""The local AWS answers in the shapes AWS answers in, as recorded in tests/fixtures/aws (documentation
samples and real captured shapes, each with its source), so that the product's parsing and the local AWS
cannot share a wrong belief."""

from __future__ import annotations

from access_auditor.local_aws.accounts import set_account_state
from access_auditor.local_aws.server import LocalAws
from tests.fixtures import recorded


def test_organizations_answers_with_state_alone_as_aws_does_since_status_was_retired() -> None:
    shape = recorded("organizations_list_accounts")
    allowed_keys = set().union(*(a.keys() for a in shape["answer"]["Accounts"]))
    with LocalAws() as aws:
        orgs = aws.client("organizations")
        orgs.create_organization(FeatureSet="ALL")
        made = {}
        for state in shape["states"]:
            account = orgs.create_account(Email=f"{state.lower()}@example.com", AccountName=state)
            made[account["CreateAccountStatus"]["AccountId"]] = state
            set_account_state(account["CreateAccountStatus"]["AccountId"], state)
        listed = [a for page in orgs.get_paginator("list_accounts").paginate() for a in page["Accounts"]]
    for account in listed:
        assert "Status" not in account and set(account) <= allowed_keys
    assert {a["Id"]: a["State"] for a in listed if a["Id"] in made} == made
