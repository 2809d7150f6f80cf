"""``access-auditor doctor``: what a first deploy needs, checked once with the user's own credentials, and
the one experiment that settles what no public source says (which copy of the policy an export carries).

Each check returns Outcomes: what holds, what does not, and the exact fix. Clients are injected (``clients``
makes one per service and region), so that every check runs against the local AWS in the demo and tests.
"""

from __future__ import annotations

import json
import secrets
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from access_auditor.aws.apigateway import ApiGateway
from access_auditor.aws.clients import call
from access_auditor.errors import AuditorError
from access_auditor.sources import ALLOWED_ROLES_TAG, HEALTH_ROLE_TAG

__all__ = ["EXPERIMENT_PREFIX", "Outcome", "check_apis", "check_member_roles", "check_organization",
           "check_trail", "export_experiment"]  # fmt: skip

Clients = Callable[[str, str], Any]  # (service, region) -> botocore client
STACKSETS_PRINCIPAL = "member.org.stacksets.cloudformation.amazonaws.com"
EXPERIMENT_PREFIX = "apigw-access-auditor-doctor-"
EXPERIMENT_TAG = "access-auditor:doctor"
EXPERIMENT_STAGE = "doctor"


@dataclass(frozen=True)
class Outcome:
    status: str  # "ok", "warn", "fail"
    check: str
    detail: str
    fix: str = ""

    def lines(self) -> list[str]:
        head = f"{self.status.upper():4}  {self.check}: {self.detail}"
        return [head] + ([f"      fix: {self.fix}"] if self.fix and self.status != "ok" else [])


def check_trail(clients: Clients, region: str) -> list[Outcome]:
    """A trail logging management events in ``region``: without one, EventBridge never sees API Gateway's
    changes and the change path stays silent (the schedule still audits)."""
    name = f"trail in {region}"
    try:
        trails = call(
            "DescribeTrails", clients("cloudtrail", region).describe_trails, includeShadowTrails=True
        )
    except AuditorError as exc:
        return [
            Outcome(
                "fail",
                name,
                f"could not be read: {exc}",
                "grant cloudtrail:DescribeTrails and GetTrailStatus",
            )
        ]
    covering = [
        t for t in trails.get("trailList", []) if t.get("IsMultiRegionTrail") or t.get("HomeRegion") == region
    ]
    for trail in covering:
        try:
            status = call(
                "GetTrailStatus", clients("cloudtrail", region).get_trail_status, Name=trail["TrailARN"]
            )
        except AuditorError:
            continue
        if status.get("IsLogging"):
            return [
                Outcome(
                    "ok", name, f"{trail['Name']} is logging, so changes reach the change path in seconds"
                )
            ]
    detail = "no trail covering this region is logging: API Gateway changes never reach EventBridge, so only " \
             "the schedule audits"  # fmt: skip
    fix = (f"aws cloudtrail create-trail --name org-trail --s3-bucket-name BUCKET --is-multi-region-trail --region {region}"
           f" && aws cloudtrail start-logging --name org-trail --region {region}")  # fmt: skip
    return [Outcome("fail", name, detail, fix)]


def check_organization(clients: Clients, region: str) -> list[Outcome]:
    """Trusted access for CloudFormation StackSets: without it, the member stack cannot be deployed to the
    organization's accounts with service-managed permissions."""
    name = "StackSets trusted access"
    try:
        answer = call("ListAWSServiceAccessForOrganization",
                      clients("organizations", region).list_aws_service_access_for_organization)  # fmt: skip
    except AuditorError as exc:
        return [Outcome("fail", name, f"could not be read from this account: {exc}",
                        "run doctor from the management account or a delegated administrator")]  # fmt: skip
    enabled = {p.get("ServicePrincipal") for p in answer.get("EnabledServicePrincipals", [])}
    if STACKSETS_PRINCIPAL in enabled:
        return [Outcome("ok", name, "enabled: the member stack can go to every account as a StackSet")]
    return [Outcome("fail", name, "not enabled: a service-managed StackSet cannot deploy the member stack",
                    "aws cloudformation activate-organizations-access (or: aws organizations "
                    f"enable-aws-service-access --service-principal {STACKSETS_PRINCIPAL})")]  # fmt: skip


def check_member_roles(sts: Any, accounts: list[str], role_name: str, via_role: str | None) -> list[Outcome]:
    """Each member account's audit role can be assumed, as the hub's worker assumes it (through ``via_role``,
    the worker role, when given; the member role's trust admits only that role)."""
    if via_role:
        try:
            creds = call(
                "AssumeRole", sts.assume_role, RoleArn=via_role, RoleSessionName="access-auditor-doctor"
            )
        except AuditorError as exc:
            return [Outcome("fail", f"worker role {via_role}", f"could not be assumed: {exc}",
                            "run doctor with credentials that may assume the hub's worker role")]  # fmt: skip
        sts = _client_as(sts, creds["Credentials"])
    found = []
    for account in accounts:
        arn = f"arn:aws:iam::{account}:role/{role_name}"
        try:
            call("AssumeRole", sts.assume_role, RoleArn=arn, RoleSessionName="access-auditor-doctor")
        except AuditorError as exc:
            how = "" if via_role else " (the role's trust admits only the hub's worker role: pass --via-role)"
            found.append(Outcome("fail", f"member role {arn}", f"could not be assumed{how}: {exc}",
                                 "deploy organization/member.yaml to the account (StackSet), with HubAccountId and "
                                 "OrganizationId of this hub"))  # fmt: skip
        else:
            found.append(Outcome("ok", f"member role {arn}", "can be assumed"))
    return found


def check_apis(
    clients: Clients, region: str, api_ids: list[str], health_identity: str | None
) -> list[Outcome]:
    """Per API: whether API Gateway exports it (the live policy is read from the export), whether it
    customises its gateway responses, and whom the health call will be signed as."""
    apigw = clients("apigateway", region)
    plane = ApiGateway(apigw)
    found: list[Outcome] = []
    for api_id in api_ids:
        try:
            api = call("GetRestApi", apigw.get_rest_api, restApiId=api_id)
            stages = plane.stages(api_id)
        except AuditorError as exc:
            found.append(
                Outcome(
                    "fail",
                    f"API {api_id}",
                    f"could not be read: {exc}",
                    "check the id, the region and apigateway:GET",
                )
            )
            continue
        for stage in stages[:1]:  # a deployment's export problem is the API's: one stage tells
            try:
                problem = plane.stage_state(api_id, stage).export_problem
            except AuditorError as exc:
                found.append(
                    Outcome("fail", f"API {api_id} export", f"stage {stage} could not be read: {exc}")
                )
                continue
            if problem is None:
                found.append(
                    Outcome(
                        "ok",
                        f"API {api_id} export",
                        f"stage {stage} exports: the live policy is read from it",
                    )
                )
            else:
                found.append(Outcome("warn", f"API {api_id} export", f"stage {stage} does not export ({problem.reason}); the "
                                     "live policy is inferred from the saved one and CloudTrail (LIVE_POLICY_INFERRED)",
                                     "keep CloudTrail lookups on (CloudTrailLookup=true), or give the API "
                                     "application/json models"))  # fmt: skip
        try:
            kinds = plane.customised_responses(api_id)
        except AuditorError as exc:
            kinds = [f"unknown ({exc})"]
        found.append(Outcome("warn" if kinds else "ok", f"API {api_id} gateway responses",
                             ("customised: " + ", ".join(kinds) + "; answers are read by x-amzn-ErrorType")
                             if kinds else "API Gateway's defaults"))  # fmt: skip
        found.append(_health_identity(api_id, api.get("tags") or {}, health_identity))
    return found


def _health_identity(api_id: str, tags: dict[str, str], own: str | None) -> Outcome:
    name = f"API {api_id} health identity"
    allowed = tags.get(ALLOWED_ROLES_TAG, "").split()
    if tags.get(HEALTH_ROLE_TAG):
        return Outcome("ok", name, f"signed as {tags[HEALTH_ROLE_TAG]} (tag {HEALTH_ROLE_TAG})")
    if own and own in allowed:
        return Outcome("ok", name, f"signed as {own}, one of the allowed roles")
    if own:
        return Outcome("fail", name, f"{own} is not among the allowed roles ({' '.join(allowed) or 'no tag'}): every "
                       "run reports HEALTH_IDENTITY_MISSING",
                       f"tag the API {HEALTH_ROLE_TAG}=<an allowed role the audit role may assume>, or add {own} to "
                       f"{ALLOWED_ROLES_TAG} and to the policy")  # fmt: skip
    if not allowed:
        return Outcome("warn", name, f"the API carries no {ALLOWED_ROLES_TAG} tag: discovery leaves it out",
                       f"aws apigateway tag-resource --resource-arn ARN --tags {ALLOWED_ROLES_TAG}=ROLE_ARN")  # fmt: skip
    return Outcome(
        "ok", name, "signed as the function's own role (the allowed role in the single-account stack)"
    )


def export_experiment(
    clients: Clients, region: str, account: str, say: Callable[[str], None]
) -> list[Outcome]:
    """Establish which copy of the policy a stage's export carries in this account: a scratch REST API whose
    deployment serves policy A while policy B is saved; the export names one of the two. Everything made is
    named as it is made and deleted, even when interrupted (SIGINT, SIGTERM); a scratch API left by an
    earlier run that was killed outright is deleted first."""
    apigw = clients("apigateway", region)
    for leftover in _leftovers(apigw):
        call("DeleteRestApi", apigw.delete_rest_api, restApiId=leftover)
        say(f"deleted REST API {leftover}, left by an earlier experiment")
    name = EXPERIMENT_PREFIX + secrets.token_hex(4)
    api_id = None
    try:
        with _interruptible():
            api_id = call("CreateRestApi", apigw.create_rest_api, name=name, tags={EXPERIMENT_TAG: "experiment"},
                          endpointConfiguration={"types": ["REGIONAL"]})["id"]  # fmt: skip
            say(f"created REST API {api_id} ({name}) in {region}")
            root = call("GetResources", apigw.get_resources, restApiId=api_id)["items"][0]["id"]
            call(
                "PutMethod",
                apigw.put_method,
                restApiId=api_id,
                resourceId=root,
                httpMethod="GET",
                authorizationType="AWS_IAM",
            )
            call(
                "PutIntegration",
                apigw.put_integration,
                restApiId=api_id,
                resourceId=root,
                httpMethod="GET",
                type="MOCK",
            )
            deployed, saved = (f"arn:aws:iam::{account}:role/{name}-{copy}" for copy in ("deployed", "saved"))
            _save(apigw, api_id, region, account, deployed)
            call("CreateDeployment", apigw.create_deployment, restApiId=api_id, stageName=EXPERIMENT_STAGE)
            say(f"deployed stage {EXPERIMENT_STAGE} serving policy A (names {deployed})")
            _save(apigw, api_id, region, account, saved)
            say(f"saved policy B (names {saved}) without deploying it")
            export = call("GetExport", apigw.get_export, restApiId=api_id, stageName=EXPERIMENT_STAGE, exportType="oas30",
                          parameters={"extensions": "apigateway"}, accepts="application/json")  # fmt: skip
            carried = json.dumps(json.loads(export["body"].read()).get("x-amazon-apigateway-policy"))
    finally:
        if api_id is not None:
            call("DeleteRestApi", apigw.delete_rest_api, restApiId=api_id)
            say(f"deleted REST API {api_id}")
    name = "export carries the deployment's policy"
    if deployed in carried and saved not in carried:
        return [Outcome("ok", name, "holds in this account: the export of a stage showed policy A, the deployed "
                        "one, while B was saved. The live verdict rests on it soundly")]  # fmt: skip
    which = "the saved policy B" if saved in carried else "neither policy"
    return [Outcome("fail", name, f"does NOT hold in this account: the export showed {which}, not the deployed A. "
                    "The live verdict cannot rest on the export here: a deployed weakening hidden behind a clean saved "
                    "policy would read as clean",
                    "keep the probes on (OUTSIDER_ROLE_ARN) so VERDICT_CONTRADICTED catches what the export hides, "
                    "and deploy after every policy change")]  # fmt: skip


def _save(apigw: Any, api_id: str, region: str, account: str, role: str) -> None:
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke",
        "Resource": f"arn:aws:execute-api:{region}:{account}:{api_id}/*",
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": role}}}]}  # fmt: skip
    call("UpdateRestApi", apigw.update_rest_api, restApiId=api_id,
         patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(policy)}])  # fmt: skip


def _leftovers(apigw: Any) -> list[str]:
    apis = call("GetRestApis", apigw.get_rest_apis, limit=500).get("items", [])
    return [a["id"] for a in apis if a.get("name", "").startswith(EXPERIMENT_PREFIX)
            and (a.get("tags") or {}).get(EXPERIMENT_TAG) == "experiment"]  # fmt: skip


@contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, as SIGINT does, so that the experiment's clean-up runs."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: SIGTERM cannot be caught here, SIGINT still can
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _client_as(sts: Any, credentials: dict[str, Any]) -> Any:
    """An STS client of the same endpoint and region, signing with the given temporary credentials."""
    import botocore.session

    session = botocore.session.Session()
    session.set_credentials(
        credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
    )
    return session.create_client("sts", region_name=sts.meta.region_name, endpoint_url=sts.meta.endpoint_url)
