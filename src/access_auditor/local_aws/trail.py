"""CloudTrail's records of writes to the services that keep the auditor running (Lambda, EventBridge Scheduler,
CloudWatch, EventBridge, SNS, KMS, IAM), for the local AWS's watch rules.

moto records nothing of its own, so a client this module ``traced`` records each successful write it makes, in
the shape real records have (tests/fixtures/aws/cloudtrail_watched_writes.json, from recorded events and AWS's
samples): ``requestParameters`` are the call's top-level parameters as the caller gave them, named in lower
camel case (``functionName``, ``roleName``, ``keyId``); Lambda's event names carry the API version
(``UpdateFunctionCode20150331v2``); IAM's events are recorded in us-east-1, where IAM's events reach
EventBridge; a call CloudFormation makes for a stack carries ``cloudformation.amazonaws.com`` as its source
address, user agent and ``invokedBy``. Request bodies that are code (bytes) are left out, as CloudTrail does.
"""

from __future__ import annotations

from typing import Any

from access_auditor.local_aws import emulation

# Lambda's CloudTrail event names: the operation and the API version it belongs to.
LAMBDA_EVENT_NAMES = {
    "UpdateFunctionCode": "UpdateFunctionCode20150331v2",
    "UpdateFunctionConfiguration": "UpdateFunctionConfiguration20150331v2",
    "AddPermission": "AddPermission20150331v2",
    "RemovePermission": "RemovePermission20150331v2",
    "DeleteFunction": "DeleteFunction20150331",
    "PutFunctionConcurrency": "PutFunctionConcurrency20171031",
    "DeleteFunctionConcurrency": "DeleteFunctionConcurrency20171031",
}
GLOBAL_REGION = {"iam": "us-east-1"}  # a global service's events are recorded (and reach EventBridge) there
CLOUDFORMATION = "cloudformation.amazonaws.com"
_READS = ("Get", "List", "Describe")


def traced(client: Any, account: str, *, via_cloudformation: bool = False) -> Any:
    """``client`` (bound to the local AWS), recording each successful write it makes; as CloudFormation would
    make it for a stack when ``via_cloudformation``."""
    service = client.meta.service_model.endpoint_prefix
    key = client._request_signer._credentials.get_frozen_credentials().access_key

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["trail.params"] = dict(params)

    def record(http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        if http_response.status_code >= 300 or model.name.startswith(_READS):
            return
        identity = emulation._identity(f"Credential={key}/", account)
        if via_cloudformation:
            identity["invokedBy"] = CLOUDFORMATION
        parameters = {name[0].lower() + name[1:]: _without_code(value)
                      for name, value in context.get("trail.params", {}).items()}  # fmt: skip
        name = LAMBDA_EVENT_NAMES.get(model.name, model.name) if service == "lambda" else model.name
        emulation.record_write(account, GLOBAL_REGION.get(service, client.meta.region_name), service, name,
                               parameters, identity, CLOUDFORMATION if via_cloudformation else "192.0.2.10")  # fmt: skip

    client.meta.events.register(
        f"before-parameter-build.{client.meta.service_model.service_id.hyphenize()}", remember
    )
    client.meta.events.register(f"after-call.{client.meta.service_model.service_id.hyphenize()}", record)
    return client


def _without_code(value: Any) -> Any:
    """``value`` with any bytes (code, a zip) left out."""
    if isinstance(value, dict):
        return {k: _without_code(v) for k, v in value.items() if not isinstance(v, bytes | bytearray)}
    if isinstance(value, list):
        return [_without_code(v) for v in value if not isinstance(v, bytes | bytearray)]
    return None if isinstance(value, bytes | bytearray) else value


def insider(aws: Any, name: str) -> dict[str, str]:
    """The credentials of a session of a new role ``name`` of the local account (an insider; the local AWS
    does not enforce identity policies, so the role may do what it tries)."""
    from access_auditor.local_aws.sample import role_env

    trust = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::'
             f'{aws.account}:root"}},"Action":"sts:AssumeRole"}}]}}')  # fmt: skip
    arn = aws.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    return role_env(aws, arn, name)


def client_as(aws: Any, service: str, creds: dict[str, str], *, via_cloudformation: bool = False) -> Any:
    """A traced client of the local AWS signing with ``creds`` (from ``insider``)."""
    import boto3

    client = boto3.client(service, endpoint_url=aws.endpoint, region_name=aws.region,  # type: ignore[call-overload]
                          aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                          aws_session_token=creds["AWS_SESSION_TOKEN"])  # fmt: skip
    return traced(client, aws.account, via_cloudformation=via_cloudformation)
