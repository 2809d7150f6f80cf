"""The product's parsing against what AWS answers, as recorded in tests/fixtures/aws (documentation samples and
real captured shapes, each with its source). Expected values come from the recordings, not from the code."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from access_auditor.aws.organizations import list_accounts
from tests.fixtures import recorded


def test_accounts_are_planned_by_state_and_every_other_account_is_named_with_its_state() -> None:
    # GIVEN ListAccounts as AWS answers it since Status was retired: State alone, in each of its five values
    shape = recorded("organizations_list_accounts")
    client = boto3.client("organizations", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:  # the Stubber checks the recorded answer against the SDK's model too
        stub.add_response("list_accounts", shape["answer"])
        # WHEN the planner lists the accounts
        accounts = list_accounts(client)
    # THEN only the auditable state is planned, and every other account is accounted for with its state
    listed = shape["answer"]["Accounts"]
    assert set(accounts.active) == {a["Id"] for a in listed if a["State"] in shape["auditable"]}
    assert dict(accounts.skipped) == {a["Id"]: a["State"] for a in listed if a["State"] not in shape["auditable"]}
    assert {a["State"] for a in listed} == set(shape["states"])
