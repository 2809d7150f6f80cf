"""The template's change rule against CloudTrail events shaped as AWS documents them (the API Gateway guide's
log entry example; CloudTrail's userIdentity reference for roles, root and users): each is matched or
ignored as intended, and a matched one names the REST API it changed."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from access_auditor.changes import CHANGE_EVENTS, api_change, settle
from access_auditor.local_aws.alarms import load_template, resolver
from access_auditor.local_aws.events import matches
from access_auditor.local_aws.invoke import TEMPLATE

ACCOUNT = "123456789012"
OWN_ROLE = "apigw-access-auditor-allowed"  # the template's default name for the role it creates (stack name -allowed)


def role_session(role: str) -> dict[str, Any]:
    return {"type": "AssumedRole", "principalId": f"AROAEXAMPLE:{role}-session",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/session", "accountId": ACCOUNT,
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                                                 "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "accountId": ACCOUNT,
                                                 "userName": role},
                               "attributes": {"creationDate": "2026-11-25T10:00:00Z", "mfaAuthenticated": "false"}}}  # fmt: skip


ROOT = {"type": "Root", "principalId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}
USER = {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accountId": ACCOUNT,
        "userName": "alice"}  # fmt: skip


def event(name: str, parameters: dict[str, Any] | None, identity: dict[str, Any], *, response: Any = None,
          error: str | None = None, read_only: bool = False) -> dict[str, Any]:  # fmt: skip
    detail: dict[str, Any] = {
        "eventVersion": "1.09", "userIdentity": identity, "eventTime": "2026-11-25T10:15:03Z",
        "eventSource": "apigateway.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.11", "userAgent": "example-user-agent-string",
        "requestParameters": parameters, "responseElements": response, "requestID": "6d9c4bfc-EXAMPLE",
        "eventID": "4d293154-EXAMPLE", "readOnly": read_only, "eventType": "AwsApiCall", "managementEvent": True,
        "recipientAccountId": ACCOUNT, "eventCategory": "Management",
    }  # fmt: skip
    if error:
        detail["errorCode"], detail["errorMessage"] = error, "not allowed"
    return {"version": "0", "id": "ee6f0e2b-EXAMPLE", "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.apigateway", "account": ACCOUNT, "time": "2026-11-25T10:15:03Z", "region": "us-east-1",
            "resources": [], "detail": detail}  # fmt: skip


def pattern(excluded: str = "") -> dict[str, Any]:
    template = load_template(TEMPLATE)
    return resolver(template, {"ExcludedRoleNames": excluded})(
        template["Resources"]["ChangeRule"]["Properties"]["EventPattern"]
    )  # type: ignore[no-any-return]


POLICY = {
    "restApiId": "a1b2c3d4e5",
    "patchOperations": [{"op": "replace", "path": "/policy", "value": "{...}"}],
}
CASES = {
    # name: (event, matched by the rule, REST API it changed)
    "policy edited in the console": (event("UpdateRestApi", POLICY, role_session("console")), True, "a1b2c3d4e5"),
    "deployment by root": (event("CreateDeployment", {"restApiId": "a1b2c3d4e5", "stageName": "prod"}, ROOT), True, "a1b2c3d4e5"),
    "method switched by an IAM user": (event("PutMethod", {"restApiId": "a1b2c3d4e5", "resourceId": "r1", "httpMethod": "GET",
                                                          "authorizationType": "NONE"}, USER), True, "a1b2c3d4e5"),
    "an import names the API in its answer": (event("ImportRestApi", {"mode": "overwrite"}, USER, response={"id": "f6g7h8i9j0", "name": "x"}), True, "f6g7h8i9j0"),
    "a tag names the API in its ARN": (event("TagResource", {"resourceArn": "arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5/stages/prod",
                                                            "tags": {"access-auditor:allowed-roles": "arn:..."}}, USER), True, "a1b2c3d4e5"),
    "a domain mapping nests the API": (event("CreateBasePathMapping", {"domainName": "api.example.com",
                                                                       "createBasePathMappingInput": {"restApiId": "a1b2c3d4e5", "stage": "prod"}}, USER), True, "a1b2c3d4e5"),
    "a failed call changed nothing": (event("UpdateRestApi", POLICY, role_session("console"), error="AccessDeniedException"), False, None),
    "the auditor's own role": (event("UpdateRestApi", POLICY, role_session(OWN_ROLE)), False, None),
    "a read": (event("GetRestApi", {"restApiId": "a1b2c3d4e5"}, USER, read_only=True), False, None),
    # HTTP APIs (v2) name their API apiId: a route's authorization, the API, a deployment start its audit
    "an HTTP API's route": (event("UpdateRoute", {"apiId": "h1t2t3p4a5", "routeId": "r1"}, USER), True, "h1t2t3p4a5"),
    "an HTTP API's own event name": (event("UpdateApi", {"apiId": "h1t2t3p4a5"}, USER), True, "h1t2t3p4a5"),
    "an HTTP API's deployment": (event("CreateDeployment", {"apiId": "h1t2t3p4a5", "stageName": "$default"}, USER), True, "h1t2t3p4a5"),
    "an HTTP API's tags": (event("TagResource", {"resourceArn": "arn:aws:apigateway:us-east-1::/apis/h1t2t3p4a5"}, USER), True, "h1t2t3p4a5"),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_the_rule_matches_or_ignores_as_intended(case: str) -> None:
    raw, matched, api = CASES[case]
    assert matches(pattern(), raw) is matched
    change = api_change(raw) if matched else None
    assert (change.api_id if change else None) == api


def test_a_remediation_role_can_be_excluded_too() -> None:
    raw = event("UpdateRestApi", POLICY, role_session("fixer"))
    assert matches(pattern(), raw) and not matches(pattern("fixer,other"), raw)
    assert not matches(pattern("fixer,other"), event("UpdateRestApi", POLICY, role_session(OWN_ROLE)))


def test_the_rule_lists_exactly_the_change_events() -> None:
    assert pattern()["detail"]["eventName"] == list(CHANGE_EVENTS)


def test_a_change_names_actor_event_and_time_and_a_burst_is_one_audit_per_api() -> None:
    first = api_change(CASES["policy edited in the console"][0])
    assert first is not None
    assert (
        first.describe()
        == f"UpdateRestApi by arn:aws:sts::{ACCOUNT}:assumed-role/console/session at 2026-11-25 10:15:03Z"
    )
    later = copy.deepcopy(CASES["deployment by root"][0])
    later["detail"]["eventTime"] = "2026-11-25T10:15:09Z"
    burst = [first, api_change(later), api_change(CASES["an import names the API in its answer"][0])]
    per_api = settle(c for c in burst if c)
    assert {key[2]: [c.event_name for c in changes] for key, changes in per_api.items()} == {
        "a1b2c3d4e5": ["UpdateRestApi", "CreateDeployment"], "f6g7h8i9j0": ["ImportRestApi"]}  # fmt: skip


def test_a_hostile_message_is_refused_before_it_is_parsed_and_names_why() -> None:
    from access_auditor.changes import MAX_MESSAGE_CHARS, UnreadableMessage, read_message

    deep = "[" * 100_000 + "]" * 100_000  # far past the interpreter's recursion limit
    for body, why in ((deep, "nests deeper"), ("x" * (MAX_MESSAGE_CHARS + 1), "characters"), ("not json", "not JSON"),
                      ("[1, 2]", "not a JSON object")):  # fmt: skip
        with pytest.raises(UnreadableMessage, match=why):
            read_message(body)
    # brackets inside strings are text, not nesting: a record quoting them is still read
    quoted = json.dumps({"source": "aws.s3", "detail-type": "x", "detail": {"note": "[" * 500}})
    assert read_message(quoted) is None
