"""The product's parsing against what AWS answers, as recorded in tests/fixtures/aws (documentation samples and
real captured shapes, each with its source). Expected values come from the recordings, not from the code."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
import requests
from botocore.response import StreamingBody
from botocore.stub import Stubber

from access_auditor.aws.apigateway import ApiGateway
from access_auditor.aws.cloudtrail import API_PAGES, CloudTrail
from access_auditor.aws.organizations import list_accounts
from access_auditor.changes import CHANGE_EVENTS, api_change
from access_auditor.errors import PolicyParseError
from access_auditor.policy.document import parse_policy_text
from access_auditor.probes import health_finding, make_call, probe_finding
from tests.fixtures import recorded


def test_accounts_are_planned_by_state_and_every_other_account_is_named_with_its_state() -> None:
    # GIVEN ListAccounts as AWS answers it since Status was retired: State alone, in each of its five values
    shape = recorded("organizations_list_accounts")
    client = boto3.client(
        "organizations", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:  # the Stubber checks the recorded answer against the SDK's model too
        stub.add_response("list_accounts", shape["answer"])
        # WHEN the planner lists the accounts
        accounts = list_accounts(client)
    # THEN only the auditable state is planned, and every other account is accounted for with its state
    listed = shape["answer"]["Accounts"]
    assert set(accounts.active) == {a["Id"] for a in listed if a["State"] in shape["auditable"]}
    assert dict(accounts.skipped) == {
        a["Id"]: a["State"] for a in listed if a["State"] not in shape["auditable"]
    }
    assert {a["State"] for a in listed} == set(shape["states"])


class _Replay(BaseHTTPRequestHandler):
    """Answers every request with the recorded answer it is given, byte for byte."""

    answer: dict[str, Any] = {}
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = self.answer["body"].encode()
        self.send_response(self.answer["status"])
        for name, value in self.answer["headers"].items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET


@pytest.fixture(scope="module")
def replay() -> Iterator[tuple[str, type[_Replay]]]:
    handler = type("Handler", (_Replay,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/a1b2c3d4e5/prod/health", handler
    server.shutdown()
    server.server_close()


EXECUTE_API = recorded("execute_api_answers")


@pytest.mark.parametrize("answer", EXECUTE_API["answers"], ids=lambda a: a["case"])
def test_live_answers_are_classified_by_what_a_customisation_cannot_change(
    replay: tuple[str, type[_Replay]], answer: dict[str, Any]
) -> None:
    # GIVEN execute-api's recorded answer, served over a socket
    url, handler = replay
    handler.answer = answer
    # WHEN the product calls and reads it
    result = make_call(requests.Session(), answer["method"], url, region="us-east-1", credentials=None,
                       timeout=(2, 2))  # fmt: skip
    means = answer["means"]
    # THEN it means what AWS documents, whatever status and body the API's customisation gave it
    assert result.request_id == answer["headers"]["x-amzn-RequestId"]
    assert result.got_in is (means == "got_in")
    assert result.missing_token is means.startswith("missing_token")
    assert result.explicit_deny is (means == "explicit_deny")
    assert result.implicit_deny is (means == "implicit_deny")
    assert result.customised is means.endswith("_customised")
    # and neither probe reads a refusal as a way in, nor the health call reads it as healthy
    for who in ("unsigned", "outsider"):
        got_in, said = probe_finding(result, who, url)
        assert got_in is (means == "got_in")
        # a 2xx naming a refusal may be a customised gateway response or a backend forging the header: the probe
        # says it proved nothing, rather than counting it as a refusal
        if means == "denied_customised":
            assert said is not None and said.code == "PROBE_INCONCLUSIVE"
    assert (health_finding(result, {200}, url) is None) is (means == "got_in")


def _lookup_event(recorded_event: dict[str, Any]) -> dict[str, Any]:
    """A recorded event as botocore hands it over: EventTime a datetime, CloudTrailEvent a JSON string."""
    event = dict(recorded_event)
    event["EventTime"] = dt.datetime.fromisoformat(event["EventTime"].replace("Z", "+00:00"))
    event["CloudTrailEvent"] = json.dumps(event["CloudTrailEvent"])
    return event


CLOUDTRAIL = recorded("cloudtrail_apigateway_events")


def _trail() -> Any:
    return boto3.client(
        "cloudtrail", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_recorded_cloudtrail_events_name_their_api_and_author_whatever_their_shape() -> None:
    events = CLOUDTRAIL["events"]
    newest_first = sorted(events, key=lambda e: e["event"]["EventTime"], reverse=True)
    names = sorted({e["event"]["EventName"] for e in events})
    with Stubber(_trail()) as stub:
        for name in names:
            page = [_lookup_event(e["event"]) for e in newest_first if e["event"]["EventName"] == name]
            stub.add_response("lookup_events", {"Events": page})
        changes = CloudTrail(stub.client).changes_since(dt.datetime(2015, 1, 1, tzinfo=dt.UTC), names)
    expected = [(e["expect"]["api"], e["event"]["EventName"], e["expect"]["actor"]) for e in newest_first
                if e["expect"]["write"]]  # fmt: skip
    assert [(c.api_id, c.event_name, c.actor) for c in changes] == expected


def test_the_author_of_a_pending_policy_change_is_looked_up_by_the_api_s_own_id() -> None:
    api = "a1b2c3d4e5"
    about = [e for e in CLOUDTRAIL["events"] if e["expect"]["api"] == api]
    page = [
        _lookup_event(e["event"]) for e in sorted(about, key=lambda e: e["event"]["EventTime"], reverse=True)
    ]
    since = dt.datetime(2026, 10, 2, 9, 15, 4, tzinfo=dt.UTC)
    with Stubber(_trail()) as stub:
        stub.add_response("lookup_events", {"Events": page}, expected_params={
            "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": api}],
            "StartTime": since, "MaxResults": 50})  # fmt: skip
        latest, complete = CloudTrail(stub.client).latest_change(api, since, ("UpdateRestApi", "PutRestApi"))
    # THEN the newest write that succeeded, named as CloudTrail names its author (a service by invokedBy)
    newest_write = next(e for e in sorted(about, key=lambda e: e["event"]["EventTime"], reverse=True)
                        if e["expect"]["write"] and e["event"]["EventName"] == "UpdateRestApi")  # fmt: skip
    assert latest is not None and complete
    assert (latest.event_name, latest.actor) == ("UpdateRestApi", newest_write["expect"]["actor"])


def test_a_lookup_bounded_by_its_pages_says_it_did_not_search_everything() -> None:
    read = _lookup_event(CLOUDTRAIL["events"][0]["event"])
    with Stubber(_trail()) as stub:
        for page in range(API_PAGES):
            stub.add_response("lookup_events", {"Events": [read] * 50, "NextToken": f"t{page}"})
        # no response is queued past the bound: one more call would fail the test
        latest, complete = CloudTrail(stub.client).latest_change(
            "3rbEXAMPLE", dt.datetime(2015, 1, 1, tzinfo=dt.UTC), ("UpdateRestApi",)
        )
    assert latest is None and not complete


@pytest.mark.parametrize("recorded_event", CLOUDTRAIL["events"], ids=lambda e: e["event"]["EventName"])
def test_a_recorded_change_delivered_by_eventbridge_names_the_api_and_its_author(
    recorded_event: dict[str, Any],
) -> None:
    detail = recorded_event["event"]["CloudTrailEvent"]
    envelope = {"version": "0", "id": "1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.apigateway",
                "account": "123456789012", "time": detail["eventTime"], "region": detail["awsRegion"],
                "resources": [], "detail": detail}  # fmt: skip
    change = api_change(envelope)
    expect = recorded_event["expect"]
    if not expect["write"] or detail["eventName"] not in CHANGE_EVENTS:
        assert change is None
    else:
        assert change is not None and (change.api_id, change.actor) == (expect["api"], expect["actor"])


EXPORT = recorded("apigateway_export")


def _apigw_stubbed(stub: Stubber, export: Any = None, refusal: dict[str, Any] | None = None) -> None:
    stub.add_response("get_stage", {"stageName": "prod", "deploymentId": "dep4567"})
    stub.add_response("get_deployment", {"id": "dep4567", "createdDate": dt.datetime(2026, 10, 2, tzinfo=dt.UTC),
                                         "apiSummary": {"/health": {"GET": {"authorizationType": "AWS_IAM"}}}})  # fmt: skip
    if refusal:
        stub.add_client_error("get_export", service_error_code=refusal["code"], service_message=refusal["message"],
                              http_status_code=refusal["status"])  # fmt: skip
    else:
        body = StreamingBody(io.BytesIO(export), len(export))
        stub.add_response("get_export", {"body": body, "contentType": "application/json"})


def test_the_policy_an_export_carries_is_read_as_the_live_policy() -> None:
    client = boto3.client(
        "apigateway", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        _apigw_stubbed(stub, export=json.dumps(EXPORT["export"]).encode())
        state = ApiGateway(client).stage_state("a1b2c3d4e5", "prod")
    assert state.export_problem is None and state.deployed is not None and state.deployed.policy is not None
    assert json.loads(state.deployed.policy) == EXPORT["export"]["x-amazon-apigateway-policy"]


def test_an_api_gateway_refusal_to_export_leaves_the_rest_of_the_stage_read() -> None:
    client = boto3.client(
        "apigateway", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        _apigw_stubbed(stub, refusal=EXPORT["refusal"])
        state = ApiGateway(client).stage_state("a1b2c3d4e5", "prod")
    assert state.export_problem is not None and state.export_problem.refused
    assert "JSON body models are not found" in state.export_problem.reason
    assert state.deployed is not None and [m.path for m in state.deployed.methods] == ["/health"]


def test_a_number_too_long_for_python_leaves_the_policy_unreadable_not_the_export() -> None:
    # GIVEN the recorded export, its policy holding a number of 5,000 digits
    text = json.dumps(EXPORT["export"]).replace('"2012-10-17"', '"2012-10-17", "Extra": ' + "9" * 5000)
    client = boto3.client(
        "apigateway", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        _apigw_stubbed(stub, export=text.encode())
        state = ApiGateway(client).stage_state("a1b2c3d4e5", "prod")
    # THEN the export was read, and the policy is the one that cannot be: its digits are all there
    assert (
        state.export_problem is None
        and state.deployed is not None
        and "9" * 5000 in str(state.deployed.policy)
    )
    with pytest.raises(PolicyParseError, match="4300 digits"):
        parse_policy_text(str(state.deployed.policy))


SSM_CHANGE = recorded("ssm_parameter_store_change")


@pytest.mark.parametrize("template", ["template.yaml", "organization/hub.yaml"])
def test_every_change_of_the_configuration_document_pages(template: str) -> None:
    from pathlib import Path

    from access_auditor.local_aws.alarms import load_template, resolver
    from access_auditor.local_aws.events import matches
    from access_auditor.notify import config_change

    # GIVEN the documented Parameter Store Change event, for the parameter the stack watches
    event = SSM_CHANGE["event"]
    doc = load_template(Path(__file__).resolve().parents[2] / template)
    function = "AuditorFunction" if template == "template.yaml" else "WorkerFunction"
    rule = doc["Resources"][function]["Properties"]["Events"]["ConfigChanged"]["Properties"]["Pattern"]
    overrides = {
        "ConfigParameterName": "/foo",
        "AWS::Region": event["region"],
        "AWS::AccountId": event["account"],
    }
    pattern = resolver(doc, overrides)(rule)
    # THEN the rule delivers it, every operation pages naming it, and another parameter's change does not
    assert matches(pattern, event)
    assert not matches(
        pattern, {**event, "resources": ["arn:aws:ssm:us-east-1:123456789012:parameter/other"]}
    )
    for operation in SSM_CHANGE["operations"]:
        page = config_change({**event, "detail": {**event["detail"], "operation": operation}}, "/foo")
        assert page is not None and operation in page[0] and "/foo" in page[0]
    assert config_change(event, "/other") is None


def test_only_the_gateway_responses_an_api_customised_are_named() -> None:
    shape = recorded("apigateway_gateway_responses")
    client = boto3.client(
        "apigateway", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_response("get_gateway_responses", shape["answer"])
        assert ApiGateway(client).customised_responses("a1b2c3d4e5") == shape["customised"]


WATCHED_WRITES = recorded("cloudtrail_watched_writes")


def _as_eventbridge_delivers(record: dict[str, Any]) -> dict[str, Any]:
    service = record["eventSource"].split(".")[0]
    return {"version": "0", "id": "1", "detail-type": "AWS API Call via CloudTrail", "source": f"aws.{service}",
            "account": record["recipientAccountId"], "time": record["eventTime"], "region": record["awsRegion"],
            "resources": [], "detail": record}  # fmt: skip


def _ours(record: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The template's names (references, attributes) that make the recorded call's resource the stack's own."""
    params, answer = record["requestParameters"], record.get("responseElements") or {}
    if record["eventSource"] == "lambda.amazonaws.com":
        name = answer.get("functionName") or params["functionName"].rsplit(":", 1)[-1]
        return {"AuditorFunction": name}, {}
    if record["eventSource"] == "iam.amazonaws.com":
        return {"AllowedRole": params["roleName"]}, {}
    if (
        record["eventSource"] == "monitoring.amazonaws.com"
    ):  # (the recorded name, as one of the stack's: below)
        return {"AWS::StackName": "stack"}, {}
    if record["eventSource"] == "events.amazonaws.com":
        return {"AuditorFunctionConfigChanged": params["name"]}, {}
    return {"AlarmTopicKey": params["keyId"]}, {"AlarmTopicKey.Arn": answer["keyId"]}


def _watch(doc: dict[str, Any], names: dict[str, str], attributes: dict[str, str] | None = None) -> Any:
    """Whether any of the template's watch rules, resolved with these names, matches an event."""
    from access_auditor.local_aws.alarms import resolver
    from access_auditor.local_aws.eventbridge import watch_rules
    from access_auditor.local_aws.events import matches

    resolve = resolver(doc, names, attributes=attributes or {})
    patterns = [resolve(doc["Resources"][rule]["Properties"]["EventPattern"]) for rule in watch_rules(doc)]
    return lambda event: any(matches(pattern, event) for pattern in patterns)


@pytest.mark.parametrize("case", WATCHED_WRITES["records"], ids=lambda c: c["record"]["eventName"])
def test_the_watch_rules_page_on_each_recorded_write_to_the_stack_s_own_resources(
    case: dict[str, Any],
) -> None:
    from pathlib import Path

    from access_auditor.local_aws.alarms import load_template

    # GIVEN a recorded write (a real capture or AWS's sample), and the stack whose resource it wrote to (the
    # stack names its alarms STACK-<logical id>: the sample's alarm, renamed so; the field is as recorded)
    record = case["record"]
    if record["eventSource"] == "monitoring.amazonaws.com":
        params = record["requestParameters"]
        record = {**record, "requestParameters": {**params, "alarmName": "stack-" + params["alarmName"]}}
    doc = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
    names, attributes = _ours(record)
    # THEN a watch rule matches it, and none matches the same write to another stack's resource
    assert _watch(doc, names, attributes)(_as_eventbridge_delivers(record))
    others = _watch(doc, {k: "another-stacks-" + v for k, v in names.items()},
                    {k: v + "-other" for k, v in attributes.items()})  # fmt: skip
    assert not others(_as_eventbridge_delivers(record))
    # and the same event sent by a caller (PutEvents, any source but AWS's own) pages nobody: a forged page
    # naming an innocent principal is refused by the pattern, as PutEvents refuses an aws. source
    forged = {**_as_eventbridge_delivers(record), "source": "com.attacker.audit"}
    assert not _watch(doc, names, attributes)(forged)


def test_the_watch_rules_let_the_stack_s_own_deployment_through() -> None:
    from pathlib import Path

    from access_auditor.local_aws.alarms import load_template

    # GIVEN the stack's function, rewritten by CloudFormation (a deployment of the stack)
    record = WATCHED_WRITES["by_cloudformation"]["record"]
    doc = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
    watch = _watch(doc, _ours(record)[0])
    # THEN it does not page; the same call made by a person does
    assert not watch(_as_eventbridge_delivers(record))
    by_hand = {**record, "sourceIPAddress": "192.0.2.10", "userAgent": "aws-cli/2",
               "userIdentity": {k: v for k, v in record["userIdentity"].items() if k != "invokedBy"}}  # fmt: skip
    assert watch(_as_eventbridge_delivers(by_hand))


CONFIG_EVENTS = recorded("config_rule_events")


def test_config_s_documented_invocations_are_read_and_one_outside_the_scope_is_refused_by_name() -> None:
    import json as _json

    from access_auditor.outputs.config_rule import read_config_event

    # Config's periodic invocation (the guide's sample) audits everything
    periodic = read_config_event(CONFIG_EVENTS["periodic"])
    assert periodic is not None and periodic.scheduled and periodic.token == "myResultToken"
    # its change sample is an EC2 instance: outside the rule's scope, refused naming the type
    with pytest.raises(ValueError, match="AWS::EC2::Instance"):
        read_config_event(CONFIG_EVENTS["change"])
    # the same shape for a stage names the API, the stage and Config's own resource id
    change = dict(CONFIG_EVENTS["change"])
    invoking = _json.loads(change["invokingEvent"])
    invoking["configurationItem"] = CONFIG_EVENTS["stage_item"]
    stage = read_config_event({**change, "invokingEvent": _json.dumps(invoking)})
    assert (
        stage is not None
        and stage.api == ("123456789012", "us-east-2", "a1b2c3d4e5")
        and stage.stage == "prod"
    )
    assert stage.resource_id == CONFIG_EVENTS["stage_item"]["resourceId"] and not stage.gone
    # a deleted stage is gone; an event that is not Config's is not read as one
    deleted = {**CONFIG_EVENTS["stage_item"], "configurationItemStatus": "ResourceDeleted"}
    invoking["configurationItem"] = deleted
    assert read_config_event({**change, "invokingEvent": _json.dumps(invoking)}).gone  # type: ignore[union-attr]
    assert read_config_event({"source": "aws.events"}) is None


def test_an_endpoint_change_of_a_private_api_starts_an_audit_of_it() -> None:
    # GIVEN the recorded UpdateRestApi event, as the endpoint-type change and an endpoint association send it
    # (the patch operations the developer guide documents; CloudTrail leaves them out of requestParameters,
    # as the recorded shape shows: the API alone is named)
    recorded_update = next(e for e in recorded("cloudtrail_apigateway_events")["events"]
                           if e["event"]["CloudTrailEvent"]["eventName"] == "UpdateRestApi")  # fmt: skip
    detail = recorded_update["event"]["CloudTrailEvent"]
    envelope = {"version": "0", "id": "1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.apigateway",
                "account": "123456789012", "time": detail["eventTime"], "region": detail["awsRegion"],
                "resources": [], "detail": detail}  # fmt: skip
    # THEN it is a change of that API, which the change path audits whole (the sweep reads the new type)
    change = api_change(envelope)
    assert change is not None and change.api_id == "a1b2c3d4e5" and change.event_name == "UpdateRestApi"


SECURITY_HUB = recorded("securityhub_batch_import_findings")


def test_a_documented_refusal_of_one_finding_is_named_and_the_others_count_as_imported() -> None:
    from botocore.session import get_session

    from access_auditor.aws.securityhub import import_findings
    from access_auditor.outputs.formats import asff
    from access_auditor.outputs.lifecycle import Record, State

    client = get_session().create_client("securityhub", region_name="us-east-1", aws_access_key_id="x",
                                         aws_secret_access_key="x")  # fmt: skip
    refused = SECURITY_HUB["answer"]["FailedFindings"][0]["Id"]
    stamp = "2026-12-04T00:00:00+00:00"
    findings = [item for fid in (refused.split("/", 1)[1], "123456789012/us-east-1/a1b2c3d4e5/prod/ROUTE_NOT_IAM")
                for item in asff(Record(fid, "123456789012", "us-east-1", "a1b2c3d4e5", "prod", fid.rsplit("/", 1)[1], "",
                                        "high", "m", State.NEW, stamp, stamp, stamp), None, dt.datetime.now(dt.UTC))]  # fmt: skip
    other = findings[1]["Id"]
    with Stubber(client) as stub:
        stub.add_response("batch_import_findings", SECURITY_HUB["answer"])
        imported, problems = import_findings(client, lambda operation: None, findings)
    # the refused one is named with AWS's reason and sent again next run; the other is imported
    assert imported == {other}
    assert problems == [f"{refused}: InvalidInput: Finding size exceeded 240 KB."]
    with Stubber(client) as stub:
        stub.add_client_error("batch_import_findings", service_error_code=SECURITY_HUB["not_enabled"]["code"],
                              http_status_code=SECURITY_HUB["not_enabled"]["status"])  # fmt: skip
        imported, problems = import_findings(client, lambda operation: None, findings)
    assert imported == set() and "InvalidAccessException" in problems[0]
