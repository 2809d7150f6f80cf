"""Control-plane failures are audit errors, never drift; calls the emulator cannot serve use Stubber."""

from __future__ import annotations

import json
import threading
import time

import boto3
import requests
from botocore.credentials import ReadOnlyCredentials
from botocore.stub import Stubber

from access_auditor.audit import Ports, run_audit
from access_auditor.aws.apigateway import ApiGateway, StageState
from access_auditor.aws.pacing import TokenBucket
from access_auditor.config import load_config
from access_auditor.policy.access_config import AccessConfig
from access_auditor.policy.matrix import Method

ENV = {"API_ID": "abc123", "API_STAGE": "prod", "AWS_REGION": "us-east-1",
       "ALLOWED_ROLE_ARN": "arn:aws:iam::123456789012:role/app", "API_ENDPOINT": "http://127.0.0.1:9/abc123/prod",
       "HTTP_CONNECT_TIMEOUT": "0.5"}  # fmt: skip


class FixedCredentials:
    def credentials(self, role_arn: str | None) -> ReadOnlyCredentials:
        return ReadOnlyCredentials("AKIDEXAMPLE", "secret", None)


def client(service: str) -> object:
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")


def test_throttling_is_an_audit_error_not_drift() -> None:
    apigw = client("apigateway")
    with Stubber(apigw) as stub:
        stub.add_response("get_rest_apis", {"items": []}, expected_params={"limit": 500})
        stub.add_client_error("get_stage", "TooManyRequestsException", "Too Many Requests", 429,
                              expected_params={"restApiId": "abc123", "stageName": "prod"})  # fmt: skip
        ports = Ports(
            control_plane=lambda scope: ApiGateway(apigw),
            credentials=FixedCredentials(),
            session=requests.Session(),
        )
        [result] = run_audit(load_config(ENV), ports, budget_s=30)
    assert result.audit_error and not result.drift
    message = next(f.message for f in result.findings if f.code == "AUDIT_ERROR")
    assert "throttled" in message and "not drifted" in message


def test_access_denied_names_the_operation() -> None:
    apigw = client("apigateway")
    with Stubber(apigw) as stub:
        stub.add_response("get_rest_apis", {"items": []})
        stub.add_client_error("get_stage", "AccessDeniedException", "not allowed", 403)
        ports = Ports(
            control_plane=lambda scope: ApiGateway(apigw),
            credentials=FixedCredentials(),
            session=requests.Session(),
        )
        [result] = run_audit(load_config(ENV), ports, budget_s=30)
    assert result.audit_error
    assert any("GetStage failed: AccessDeniedException" in f.message for f in result.findings)


def test_the_token_bucket_paces_and_never_waits_past_a_deadline() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(2.0, 1.0, clock=lambda: now[0], sleep=sleep)
    # GIVEN 2 calls a second, burst 1: the first goes at once, the next two wait half a second each
    assert [bucket.acquire() for _ in range(3)] == [True, True, True]
    assert slept == [0.5, 0.5]
    # WHEN the next slot is later than the caller's deadline THEN it is refused at once, without sleeping
    assert bucket.acquire(deadline=now[0] + 0.1) is False and slept == [0.5, 0.5]


def test_the_deadline_keeps_what_was_established() -> None:
    release = threading.Event()

    class Hanging:
        def credentials(self, role_arn: str | None) -> ReadOnlyCredentials:
            release.wait(10)
            return ReadOnlyCredentials("AKIDEXAMPLE", "secret", None)

    # GIVEN a deployed weakened policy, and credentials that never come for the live calls
    ports = Ports(
        control_plane=lambda scope: PolicyPlane(WEAK), credentials=Hanging(), session=requests.Session()
    )  # type: ignore[arg-type,return-value]
    try:
        [result] = run_audit(load_config(ENV), ports, budget_s=0.5)
    finally:
        release.set()
    # THEN the verdict stands (drift), and the deadline finding says which step ran out of time
    assert result.drift and any(f.code == "ACCESS_WEAKENED" for f in result.findings)
    deadline = next(f.message for f in result.findings if f.code == "AUDIT_DEADLINE")
    assert result.audit_error and "calling the API" in deadline


class Plane:
    """An in-memory control plane: one API, a saved and a deployed access config."""

    def __init__(self, saved: AccessConfig, deployed: AccessConfig | None = None) -> None:
        self.saved_config, self.deployed = saved, deployed or saved

    def sweep(self) -> list[object]:
        return []

    def stages(self, api_id: str) -> list[str]:
        return ["prod"]

    def get_policy(self, api_id: str) -> str | None:
        return self.saved_config.policy

    def list_methods(self, api_id: str, stage: str) -> list[Method]:
        return list(self.saved_config.methods)

    def stage_state(self, api_id: str, stage: str) -> StageState:
        return StageState("d1", None, self.deployed)


def PolicyPlane(policy: str) -> Plane:  # noqa: N802 - reads as the class it builds
    """One policy, saved and deployed alike."""
    return Plane(AccessConfig(policy, (Method("prod", "GET", "/health"),)))


WEAK = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke",
    "Resource": "arn:aws:execute-api:us-east-1:123456789012:abc123/*",
    "Condition": {"StringNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*"}}}]})  # fmt: skip


def analyzer_run(new_access: str, public: str, policy: str = WEAK) -> list[str]:
    from access_auditor.aws.accessanalyzer import SYNTHETIC_SID, AccessAnalyzer

    aa = client("accessanalyzer")
    with Stubber(aa) as stub:
        stub.add_response("check_no_new_access", {"result": new_access, "message": "m", "reasons": []})
        stub.add_response("check_no_public_access", {"result": public, "message": "m", "reasons": []},
                          expected_params={"policyDocument": json.dumps(_with_allow(policy, SYNTHETIC_SID)),
                                           "resourceType": "AWS::ApiGateway::RestApi"})  # fmt: skip
        ports = Ports(control_plane=lambda scope: PolicyPlane(policy), credentials=FixedCredentials(),  # type: ignore[arg-type,return-value]
                      session=requests.Session(), analyzer=lambda scope: AccessAnalyzer(aa))  # fmt: skip
        [result] = run_audit(load_config({**ENV, "ACCESS_ANALYZER": "true"}), ports, budget_s=30)
    return [f.code for f in result.findings]


def _with_allow(policy: str, sid: str) -> dict[str, object]:
    doc = json.loads(policy)
    doc["Statement"].append({"Sid": sid, "Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke",
                             "Resource": "arn:aws:execute-api:us-east-1:123456789012:abc123/*"})  # fmt: skip
    return doc


def test_analyzer_agreeing_is_recorded_beside_the_local_verdict() -> None:
    codes = analyzer_run("FAIL", "PASS")
    assert "ACCESS_WEAKENED" in codes and "ANALYZER_AGREES" in codes and "ANALYZER_DISAGREES" not in codes


def test_analyzer_disagreeing_is_a_finding() -> None:
    codes = analyzer_run("PASS", "PASS")
    assert "ACCESS_WEAKENED" in codes and "ANALYZER_DISAGREES" in codes


def test_analyzer_is_not_asked_when_nothing_changed_structurally() -> None:
    # The expected policy itself: the Stubber has no responses queued, so any call would fail the test.
    from access_auditor.aws.accessanalyzer import AccessAnalyzer

    expected = json.dumps(_expected())
    aa = client("accessanalyzer")
    with Stubber(aa):
        ports = Ports(control_plane=lambda scope: PolicyPlane(expected), credentials=FixedCredentials(),  # type: ignore[arg-type,return-value]
                      session=requests.Session(), analyzer=lambda scope: AccessAnalyzer(aa))  # fmt: skip
        [result] = run_audit(load_config({**ENV, "ACCESS_ANALYZER": "true"}), ports, budget_s=30)
    assert not any(f.code.startswith("ANALYZER") for f in result.findings)


def test_analyzer_unreachable_degrades_to_the_local_verdict() -> None:
    from access_auditor.aws.accessanalyzer import AccessAnalyzer

    aa = client("accessanalyzer")
    with Stubber(aa) as stub:
        stub.add_client_error("check_no_new_access", "AccessDeniedException", "no", 403)
        ports = Ports(control_plane=lambda scope: PolicyPlane(WEAK), credentials=FixedCredentials(),  # type: ignore[arg-type,return-value]
                      session=requests.Session(), analyzer=lambda scope: AccessAnalyzer(aa))  # fmt: skip
        [result] = run_audit(load_config({**ENV, "ACCESS_ANALYZER": "true"}), ports, budget_s=30)
    codes = [f.code for f in result.findings]
    assert "ANALYZER_UNAVAILABLE" in codes and "ACCESS_WEAKENED" in codes and result.drift


def _expected() -> dict[str, object]:
    from access_auditor.policy.document import ApiRef
    from access_auditor.policy.expected import render_expected_policy

    return render_expected_policy(
        ApiRef("us-east-1", "123456789012", "abc123"), ["arn:aws:iam::123456789012:role/app"]
    )


def test_an_outsider_role_that_cannot_be_assumed_is_an_audit_error_not_a_pass() -> None:
    from access_auditor.errors import CredentialsError
    from access_auditor.local_aws.faults import FaultyUpstream

    class NoOutsider:
        def credentials(self, role_arn: str | None) -> ReadOnlyCredentials:
            if role_arn:
                raise CredentialsError(f"could not assume {role_arn}: AccessDenied")
            return ReadOnlyCredentials("AKIDEXAMPLE", "secret", None)

    expected = json.dumps(_expected())
    with FaultyUpstream() as upstream:
        env = {
            **ENV,
            "API_ENDPOINT": upstream.url("locked"),
            "OUTSIDER_ROLE_ARN": "arn:aws:iam::123456789012:role/gone",
        }
        ports = Ports(control_plane=lambda scope: PolicyPlane(expected), credentials=NoOutsider(),  # type: ignore[arg-type,return-value]
                      session=requests.Session())  # fmt: skip
        [result] = run_audit(load_config(env), ports, budget_s=30)
    # THEN the unsigned probe still counts, and the skipped one is an audit error with its reason
    assert result.healthy and result.unauthorized_call_allowed is False
    assert result.audit_error
    assert any(f.code == "OUTSIDER_ROLE_UNAVAILABLE" and "AccessDenied" in f.message for f in result.findings)


def test_clients_are_built_once_per_region_however_many_threads_ask() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from access_auditor.wiring import once_per_key

    built: list[str] = []

    def make(region: str) -> object:
        built.append(region)
        threading.Event().wait(0.01)  # a slow constructor widens the race a plain cache would lose
        return object()

    get = once_per_key(make)
    with ThreadPoolExecutor(16) as pool:
        clients = list(pool.map(get, ["us-east-1"] * 16 + ["eu-west-1"] * 16))
    assert sorted(built) == ["eu-west-1", "us-east-1"] and len({id(c) for c in clients}) == 2


def test_nothing_of_a_run_keeps_running_after_it() -> None:
    release = threading.Event()
    calls: list[str] = []

    class Hanging:
        def credentials(self, role_arn: str | None) -> ReadOnlyCredentials:
            release.wait(10)
            calls.append("credentials returned")
            return ReadOnlyCredentials("AKIDEXAMPLE", "secret", None)

    before = threading.active_count()
    ports = Ports(
        control_plane=lambda scope: PolicyPlane(WEAK), credentials=Hanging(), session=requests.Session()
    )  # type: ignore[arg-type,return-value]
    config = load_config({**ENV, "AUDIT_TARGETS": json.dumps([{"API_ID": "abc123"}, {"API_ID": "def456"}])})
    run_audit(config, ports, budget_s=0.3)
    # WHEN what held the workers lets go after the run has returned
    release.set()
    deadline = time.monotonic() + 3
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    # THEN the workers end at once: no call is made with the spent budget, no thread is left behind
    assert threading.active_count() <= before and calls


def test_a_pending_rewrite_beside_a_live_none_method_is_reported_not_an_internal_error() -> None:

    expected = _expected()
    deny = dict(expected["Statement"][0])  # type: ignore[index]
    deny["Condition"] = {"StringNotEqualsIfExists": deny["Condition"]["StringNotEquals"]}  # the same access
    rewritten = {**expected, "Statement": [deny]}
    methods = (Method("prod", "GET", "/health", "NONE"),)

    plane = Plane(AccessConfig(json.dumps(rewritten), methods), AccessConfig(json.dumps(expected), methods))
    ports = Ports(
        control_plane=lambda scope: plane, credentials=FixedCredentials(), session=requests.Session()
    )  # type: ignore[arg-type,return-value]
    [result] = run_audit(load_config(ENV), ports, budget_s=10)
    codes = {f.code: f.message for f in result.findings}
    assert "AUDIT_ERROR" not in codes and "METHOD_NOT_IAM" in codes and result.undeployed_change
    assert "change nothing else" in codes["UNDEPLOYED_POLICY_CHANGE"]


def test_an_unreadable_live_policy_is_drift_and_a_readable_saved_one_would_restore_it() -> None:

    methods = (Method("prod", "GET", "/health"),)

    unreadable = AccessConfig('{"Version": ' + "9" * 5000 + "}", methods)
    plane = Plane(AccessConfig(json.dumps(_expected()), methods), unreadable)
    ports = Ports(
        control_plane=lambda scope: plane, credentials=FixedCredentials(), session=requests.Session()
    )  # type: ignore[arg-type,return-value]
    [result] = run_audit(load_config(ENV), ports, budget_s=10)
    codes = {f.code: f.message for f in result.findings}
    # THEN both alarmed facts are there: the live policy is drift, and deploying the saved one would mend it
    assert result.drift and "POLICY_UNREADABLE" in codes
    assert result.undeployed_change is True and "RESTORE" in codes["UNDEPLOYED_POLICY_CHANGE"]
