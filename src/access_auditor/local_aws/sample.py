"""The sample API that the demo and the end-to-end tests audit: a REST API locked to one role, an allowed
role and an outsider role, both granted execute-api:Invoke by their own IAM policies (so that only the
resource policy stands between the outsider and the API)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from access_auditor.local_aws.server import LocalAws
from access_auditor.policy.document import ApiRef
from access_auditor.policy.expected import render_expected_policy

STAGE = "prod"
INVOKE_POLICY = "invoke-api"


@dataclass(frozen=True)
class SampleApi:
    api_id: str
    stage: str
    region: str
    account: str
    allowed_role_arn: str
    outsider_role_arn: str

    @property
    def api(self) -> ApiRef:
        return ApiRef(self.region, self.account, self.api_id)

    def expected_policy(self) -> str:
        return json.dumps(render_expected_policy(self.api, [self.allowed_role_arn]))

    def weakened_policy(self, api: ApiRef | None = None) -> str:
        """The console edit people make "to let the other team in": the Deny spares any role of the account
        (for ``api``, default this one)."""
        doc = render_expected_policy(api or self.api, [self.allowed_role_arn])
        doc["Statement"][0]["Condition"] = {
            "StringNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{self.account}:role/*"}
        }
        return json.dumps(doc)


def create_sample_api(aws: LocalAws) -> SampleApi:
    """Create the roles and the API, apply the expected policy and deploy the stage."""
    iam = aws.client("iam")
    apigw = aws.client("apigateway")
    account = aws.account
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}]})  # fmt: skip
    api = apigw.create_rest_api(name="orders-api", endpointConfiguration={"types": ["REGIONAL"]})
    api_id = api["id"]
    region = aws.region
    roles = {}
    for name in ("orders-auditor", "someone-else"):
        role = iam.create_role(RoleName=name, Path="/apigw-access-auditor/", AssumeRolePolicyDocument=trust)
        roles[name] = role["Role"]["Arn"]
        grant_invoke(iam, name, f"arn:aws:execute-api:{region}:{account}:{api_id}/*")

    root = next(r for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    for path, verbs in (("health", ["GET", "HEAD"]), ("items", ["GET", "POST"])):
        resource = apigw.create_resource(restApiId=api_id, parentId=root["id"], pathPart=path)
        for verb in verbs:
            add_method(apigw, api_id, resource["id"], verb)
    files = apigw.create_resource(restApiId=api_id, parentId=root["id"], pathPart="files")
    named = apigw.create_resource(restApiId=api_id, parentId=files["id"], pathPart="{name}")
    add_method(apigw, api_id, named["id"], "GET")
    sample = SampleApi(api_id, STAGE, region, account, roles["orders-auditor"], roles["someone-else"])
    save_policy(apigw, api_id, sample.expected_policy())
    deploy(apigw, api_id)
    return sample


def grant_fleet_invoke(aws: LocalAws, role_arn: str) -> None:
    """As the template grants it without an ApiId: the health call (GET /health) of any API of the account,
    in a policy of its own beside the role's grant on the sample API."""
    grant_invoke(aws.client("iam"), role_arn.rsplit("/", 1)[1], f"arn:aws:execute-api:*:{aws.account}:*/*/GET/health",
                 policy_name="invoke-fleet-health")  # fmt: skip


def grant_invoke(iam: Any, role_name: str, resource: str, policy_name: str = INVOKE_POLICY) -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": resource}],
    }
    iam.put_role_policy(RoleName=role_name, PolicyName=policy_name, PolicyDocument=json.dumps(document))


def add_method(apigw: Any, api_id: str, resource_id: str, verb: str, authorization: str = "AWS_IAM") -> None:
    apigw.put_method(
        restApiId=api_id, resourceId=resource_id, httpMethod=verb, authorizationType=authorization
    )
    apigw.put_integration(restApiId=api_id, resourceId=resource_id, httpMethod=verb, type="MOCK")


def save_policy(apigw: Any, api_id: str, policy_json: str) -> None:
    apigw.update_rest_api(
        restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": policy_json}]
    )


def deploy(apigw: Any, api_id: str) -> None:
    apigw.create_deployment(restApiId=api_id, stageName=STAGE)


def role_env(aws: LocalAws, role_arn: str, session_name: str) -> dict[str, str]:
    """The credential variables of a session of ``role_arn``, issued by the emulated STS."""
    creds = aws.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
    }


def auditor_env(aws: LocalAws, sample: SampleApi) -> dict[str, str]:
    """The auditor function's environment in the template's first mode: it runs as the allowed role, so
    its own credentials are a session of that role, as Lambda would provide them."""
    return {
        **aws.env,
        **role_env(aws, sample.allowed_role_arn, "AuditorFunction"),
        "API_ID": sample.api_id,
        "API_STAGE": STAGE,
        "API_REGION": aws.region,
        "API_ACCOUNT": aws.account,
        "ALLOWED_ROLE_ARN": sample.allowed_role_arn,
        "OUTSIDER_ROLE_ARN": sample.outsider_role_arn,
        "API_ENDPOINT": aws.invoke_url(sample.api_id, STAGE),
    }


def create_fleet(
    aws: LocalAws,
    allowed_role_arn: str | tuple[str, ...],
    regions: tuple[str, ...],
    per_region: int,
    account: str | None = None,
    tags: dict[str, str] | None = None,
) -> list[ApiRef]:
    """``per_region`` small APIs in each region (GET /health, AWS_IAM, a MOCK integration), locked to
    ``allowed_role_arn`` with the expected policy, deployed to prod, and tagged for discovery
    (access-auditor:allowed-roles). They are seeded straight into the emulator's state, as an account's
    history would have left them: the quotas throttle what the auditor does, not the set-up of the world.
    ``allowed_role_arn`` may be several roles; ``account`` defaults to the local AWS's own; ``tags`` are
    added to each."""
    from moto.apigateway.models import apigateway_backends

    roles = (allowed_role_arn,) if isinstance(allowed_role_arn, str) else allowed_role_arn
    account = account or aws.account
    fleet = []
    for region in regions:
        backend = apigateway_backends[account][region]
        for n in range(per_region):
            api = backend.create_rest_api(f"fleet-{region}-{n}", "", endpoint_configuration={"types": ["REGIONAL"]},  # type: ignore[arg-type]
                                          tags={"access-auditor:allowed-roles": " ".join(roles), **(tags or {})})  # type: ignore[arg-type]  # fmt: skip
            ref = ApiRef(region, account, api.id)
            root = next(r for r in backend.get_resources(api.id) if r.get_path() == "/")
            health = backend.create_resource(api.id, root.id, "health")
            backend.put_method(api.id, health.id, "GET", "AWS_IAM")
            backend.put_integration(api.id, health.id, "GET", "MOCK", uri="", integration_method="GET")
            policy = json.dumps(render_expected_policy(ref, list(roles)))
            backend.update_rest_api(api.id, [{"op": "replace", "path": "/policy", "value": policy}])
            backend.create_deployment(api.id, STAGE)
            fleet.append(ref)
    return fleet


def client_as(aws: LocalAws, role_arn: str, service: str) -> Any:
    """A client of the local AWS that signs as a session of ``role_arn``."""
    import boto3

    creds = role_env(aws, role_arn, "as-role")
    return boto3.client(service, endpoint_url=aws.endpoint, region_name=aws.region,  # type: ignore[call-overload]
                        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"], aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                        aws_session_token=creds["AWS_SESSION_TOKEN"])  # fmt: skip


@dataclass(frozen=True)
class PrivateApi:
    """A private REST API locked to the sample's allowed role and one VPC endpoint, and that endpoint."""

    api: ApiRef
    endpoint: Any  # gateway.VpcEndpoint
    endpoint_dns: str

    def policy(
        self, sample: SampleApi, vpces: tuple[str, ...] | None = None, vpcs: tuple[str, ...] = ()
    ) -> str:
        chosen = (self.endpoint.vpce_id,) if vpces is None else vpces
        return json.dumps(
            render_expected_policy(self.api, [sample.allowed_role_arn], list(chosen), list(vpcs))
        )


def create_private_api(aws: LocalAws, sample: SampleApi) -> PrivateApi:
    """A PRIVATE API (GET /health, AWS_IAM, a MOCK integration) associated with a new execute-api VPC endpoint,
    its policy the expected one for the sample's allowed role through that endpoint, deployed to prod."""
    endpoint, dns = aws.vpc_endpoint()
    apigw = aws.client("apigateway")
    made = apigw.create_rest_api(name="ledger-private", endpointConfiguration={"types": ["PRIVATE"]})
    api_id = made["id"]
    apigw.update_rest_api(restApiId=api_id, patchOperations=[
        {"op": "add", "path": "/endpointConfiguration/vpcEndpointIds", "value": endpoint.vpce_id}])  # fmt: skip
    root = next(r for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    health = apigw.create_resource(restApiId=api_id, parentId=root["id"], pathPart="health")
    add_method(apigw, api_id, health["id"], "GET")
    private = PrivateApi(ApiRef(aws.region, aws.account, api_id), endpoint, dns)
    for name in (sample.allowed_role_arn, sample.outsider_role_arn):
        grant_invoke(aws.client("iam"), name.rsplit("/", 1)[1], f"arn:aws:execute-api:{aws.region}:{aws.account}:{api_id}/*",
                     policy_name="invoke-private")  # fmt: skip
    save_policy(apigw, api_id, private.policy(sample))
    deploy(apigw, api_id)
    return private
