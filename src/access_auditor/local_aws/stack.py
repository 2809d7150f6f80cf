"""template.yaml deployed on the local AWS, in place of ``sam deploy``: the template's roles (as the template
declares them, inline policies included), its alarm topic, the function's environment as the template sets it
(with the credentials Lambda would give it), and the stack's outputs, all resolved from the template."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from access_auditor.local_aws.accounts import lambda_credentials
from access_auditor.local_aws.alarms import load_template, resolver
from access_auditor.local_aws.invoke import TEMPLATE
from access_auditor.local_aws.server import LocalAws

STACK = "apigw-access-auditor"  # samconfig.toml's stack name


@dataclass(frozen=True)
class LocalStack:
    outputs: dict[str, str]
    function_env: dict[str, str]


def create_role(aws: LocalAws, account: str, props: dict[str, Any]) -> str:
    """An AWS::IAM::Role from its resolved properties: name, path, trust policy and inline policies."""
    iam = aws.client("iam", account=account)
    arn = iam.create_role(RoleName=props["RoleName"], AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
                          Path=props.get("Path", "/"))["Role"]["Arn"]  # fmt: skip
    for policy in props.get("Policies", []):
        if policy == "":  # a policy under a false condition (AWS::NoValue): CloudFormation leaves it out
            continue
        document = dict(policy["PolicyDocument"])
        # A statement under a false condition resolves to AWS::NoValue (""): CloudFormation leaves it out.
        document["Statement"] = [s for s in document["Statement"] if s != ""]
        iam.put_role_policy(RoleName=props["RoleName"], PolicyName=policy["PolicyName"],
                            PolicyDocument=json.dumps(document))  # fmt: skip
    return str(arn)


def deploy_stack(aws: LocalAws, parameters: dict[str, str], stack: str = STACK) -> LocalStack:
    """``sam deploy --parameter-overrides ...`` of template.yaml, as far as a run of the function needs: the
    stack-created allowed role mode (the template's default) and its outsider role."""
    template = load_template(TEMPLATE)
    resources = template["Resources"]
    topic = aws.client("sns").create_topic(Name=f"{stack}-AlarmTopic")["TopicArn"]
    table = f"{stack}-FindingsTable-LOCAL"
    spec = resources["FindingsTable"]["Properties"]
    aws.client("dynamodb").create_table(TableName=table, BillingMode=spec["BillingMode"], KeySchema=spec["KeySchema"],
                                        AttributeDefinitions=spec["AttributeDefinitions"])  # fmt: skip
    mac = resources["FindingsMacKey"]["Properties"]
    key = aws.client("kms").create_key(KeySpec=mac["KeySpec"], KeyUsage=mac["KeyUsage"])["KeyMetadata"]["Arn"]
    names = {**parameters, "AlarmTopic": topic, "FindingsTable": table}
    attributes: dict[str, str] = {"FindingsMacKey.Arn": key}

    def resolve(value: Any) -> Any:
        return resolver(template, names, stack, attributes)(value)

    def holds(resource: dict[str, Any]) -> bool:
        return "Condition" not in resource or bool(resolve({"Condition": resource["Condition"]}))

    for name in ("AllowedRole", "AuditorExecutionRole", "OutsiderRole"):
        if holds(resources[name]):
            props = dict(resolve(resources[name]["Properties"]))
            props.setdefault("RoleName", f"{stack}-{name}-LOCAL")  # CloudFormation would generate one
            attributes[f"{name}.Arn"] = create_role(aws, aws.account, props)
    role = attributes.get("AllowedRole.Arn") or attributes["AuditorExecutionRole.Arn"]
    variables = resolve(resources["AuditorFunction"]["Properties"]["Environment"]["Variables"])
    outputs = {key: str(resolve(spec["Value"])) for key, spec in template["Outputs"].items() if holds(spec)}
    return LocalStack(outputs, function_env(aws, role, "AuditorFunction", variables))


def function_env(aws: LocalAws, role_arn: str, function: str, variables: dict[str, Any]) -> dict[str, str]:
    """A function's environment on the local AWS: the variables its template sets, the credentials Lambda
    gives its execution role, and the local AWS's endpoints (execute-api served by the local gateway)."""
    return {**aws.env, **lambda_credentials(role_arn, function), **{k: str(v) for k, v in variables.items()},
            "AWS_ENDPOINT_URL_EXECUTE_API": aws.gateway.url}  # fmt: skip
