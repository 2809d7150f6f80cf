"""MkDocs hooks: the reference pages' tables, generated from their single declarations when the site is built.

A page says ``<!-- generated: NAME -->`` where a table goes; NAME is one of GENERATED. Nothing generated is
committed, so nothing can drift from what the code and the templates declare.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ("template.yaml", "organization/hub.yaml", "organization/member.yaml")
MARKER = re.compile(r"<!-- generated: ([a-z-]+) -->")


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def parameters() -> str:
    """Every template's parameters: name, default, allowed values, and the template's own description."""
    from access_auditor.local_aws.alarms import load_template

    parts = []
    for name in TEMPLATES:
        rows = ["| parameter | default | allowed | meaning |", "| --- | --- | --- | --- |"]
        for key, spec in load_template(ROOT / name)["Parameters"].items():
            default = spec.get("Default")
            allowed = ", ".join(f"`{v}`" for v in spec.get("AllowedValues", [])) or (
                f"`{spec['AllowedPattern']}`"
                if len(spec.get("AllowedPattern", "")) < 40 and "AllowedPattern" in spec
                else ""
            )
            shown = "(empty)" if default == "" else f"`{default}`" if default is not None else "required"
            rows.append(f"| `{key}` | {shown} | {_cell(allowed)} | {_cell(spec.get('Description', ''))} |")
        parts.append(f"### `{name}`\n\n" + "\n".join(rows))
    return "\n\n".join(parts)


def findings() -> str:
    from access_auditor.findings import markdown_table

    return markdown_table()


def metrics() -> str:
    from access_auditor.publish import METRICS

    rows = ["| metric | unit | value |", "| --- | --- | --- |"]
    rows += [f"| `{name}` | {unit.value} | {_cell(meaning)} |" for name, (unit, meaning) in METRICS.items()]
    return "\n".join(rows)


def cli() -> str:
    """Every command's and subcommand's help, as the command prints it."""
    import os

    from access_auditor.cli.main import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps at the terminal's width
    parser = build_parser()
    sections = [("access-auditor", parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                sections.append((f"access-auditor {name}", command))
                for inner in command._actions:
                    if isinstance(inner, argparse._SubParsersAction):
                        sections += [(f"access-auditor {name} {sub}", p) for sub, p in inner.choices.items()]
    return "\n\n".join(f"### `{title}`\n\n```text\n{p.format_help().rstrip()}\n```" for title, p in sections)


GENERATED: dict[str, Callable[[], str]] = {
    "parameters": parameters,
    "findings": findings,
    "metrics": metrics,
    "cli": cli,
}


def render(markdown: str) -> str:
    """``markdown`` with every marker replaced by what it names."""
    return MARKER.sub(lambda m: GENERATED[m.group(1)](), markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    return render(markdown)


# What deploying each resource type takes, and on what: resources are named from the stack's name
# (CloudFormation's generated names and the templates' own start with it), so every statement is scoped to
# STACK. A test fails when a template uses a type this table does not know.
_STACK_ARN = "arn:aws:{service}:REGION:ACCOUNT:{resource}"
DEPLOY: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "AWS::IAM::Role": (
        (
            "iam:CreateRole",
            "iam:DeleteRole",
            "iam:GetRole",
            "iam:UpdateRole",
            "iam:UpdateAssumeRolePolicy",
            "iam:PutRolePolicy",
            "iam:GetRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:AttachRolePolicy",
            "iam:DetachRolePolicy",
            "iam:ListRolePolicies",
            "iam:ListAttachedRolePolicies",
            "iam:TagRole",
            "iam:UntagRole",
        ),
        ("arn:aws:iam::ACCOUNT:role/STACK-*", "arn:aws:iam::ACCOUNT:role/apigw-access-auditor/STACK-*"),
    ),
    "AWS::IAM::ManagedPolicy": (
        (
            "iam:CreatePolicy",
            "iam:DeletePolicy",
            "iam:GetPolicy",
            "iam:GetPolicyVersion",
            "iam:ListPolicyVersions",
            "iam:CreatePolicyVersion",
            "iam:DeletePolicyVersion",
        ),
        ("arn:aws:iam::ACCOUNT:policy/STACK-*",),
    ),
    "AWS::Lambda::Function": (
        (
            "lambda:CreateFunction",
            "lambda:DeleteFunction",
            "lambda:GetFunction",
            "lambda:GetFunctionConfiguration",
            "lambda:UpdateFunctionCode",
            "lambda:UpdateFunctionConfiguration",
            "lambda:TagResource",
            "lambda:UntagResource",
            "lambda:ListTags",
        ),
        ("arn:aws:lambda:REGION:ACCOUNT:function:STACK-*",),
    ),
    "AWS::Lambda::EventInvokeConfig": (
        (
            "lambda:PutFunctionEventInvokeConfig",
            "lambda:UpdateFunctionEventInvokeConfig",
            "lambda:GetFunctionEventInvokeConfig",
            "lambda:DeleteFunctionEventInvokeConfig",
        ),
        ("arn:aws:lambda:REGION:ACCOUNT:function:STACK-*",),
    ),
    "AWS::Lambda::Permission": (
        ("lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy"),
        ("arn:aws:lambda:REGION:ACCOUNT:function:STACK-*",),
    ),
    "AWS::Lambda::EventSourceMapping": (
        (
            "lambda:CreateEventSourceMapping",
            "lambda:GetEventSourceMapping",
            "lambda:UpdateEventSourceMapping",
            "lambda:DeleteEventSourceMapping",
        ),
        # A mapping's id is a UUID Lambda chooses; lambda:FunctionArn scopes it to the stack's functions.
        ("arn:aws:lambda:REGION:ACCOUNT:event-source-mapping:*",),
    ),
    "AWS::Logs::LogGroup": (
        (
            "logs:CreateLogGroup",
            "logs:DeleteLogGroup",
            "logs:PutRetentionPolicy",
            "logs:DeleteRetentionPolicy",
            "logs:TagResource",
            "logs:UntagResource",
            "logs:ListTagsForResource",
        ),
        ("arn:aws:logs:REGION:ACCOUNT:log-group:/aws/lambda/STACK-*",),
    ),
    "AWS::Scheduler::Schedule": (
        (
            "scheduler:CreateSchedule",
            "scheduler:GetSchedule",
            "scheduler:UpdateSchedule",
            "scheduler:DeleteSchedule",
        ),
        ("arn:aws:scheduler:REGION:ACCOUNT:schedule/default/STACK-*",),
    ),
    "AWS::Events::Rule": (
        (
            "events:PutRule",
            "events:DescribeRule",
            "events:DeleteRule",
            "events:PutTargets",
            "events:RemoveTargets",
            "events:EnableRule",
            "events:DisableRule",
            "events:TagResource",
            "events:UntagResource",
        ),
        ("arn:aws:events:REGION:ACCOUNT:rule/STACK-*",),
    ),
    "AWS::SQS::Queue": (
        (
            "sqs:CreateQueue",
            "sqs:DeleteQueue",
            "sqs:GetQueueAttributes",
            "sqs:SetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:TagQueue",
            "sqs:UntagQueue",
            "sqs:ListQueueTags",
        ),
        ("arn:aws:sqs:REGION:ACCOUNT:STACK-*",),
    ),
    "AWS::SQS::QueuePolicy": (
        ("sqs:SetQueueAttributes", "sqs:GetQueueAttributes"),
        ("arn:aws:sqs:REGION:ACCOUNT:STACK-*",),
    ),
    "AWS::SNS::Topic": (
        (
            "sns:CreateTopic",
            "sns:DeleteTopic",
            "sns:GetTopicAttributes",
            "sns:SetTopicAttributes",
            "sns:TagResource",
            "sns:UntagResource",
            "sns:ListTagsForResource",
        ),
        ("arn:aws:sns:REGION:ACCOUNT:STACK-*",),
    ),
    "AWS::SNS::TopicPolicy": (
        ("sns:SetTopicAttributes", "sns:GetTopicAttributes"),
        ("arn:aws:sns:REGION:ACCOUNT:STACK-*",),
    ),
    "AWS::SNS::Subscription": (
        ("sns:Subscribe", "sns:Unsubscribe", "sns:GetSubscriptionAttributes"),
        ("arn:aws:sns:REGION:ACCOUNT:STACK-*",),
    ),
    "AWS::KMS::Key": (
        (
            "kms:DescribeKey",
            "kms:GetKeyPolicy",
            "kms:PutKeyPolicy",
            "kms:EnableKeyRotation",
            "kms:GetKeyRotationStatus",
            "kms:ScheduleKeyDeletion",
            "kms:TagResource",
            "kms:UntagResource",
            "kms:ListResourceTags",
        ),
        # A key's id is chosen by KMS; the tag CloudFormation puts on it scopes these to the stack's keys.
        ("arn:aws:kms:REGION:ACCOUNT:key/*",),
    ),
    "AWS::CloudWatch::Alarm": (
        (
            "cloudwatch:PutMetricAlarm",
            "cloudwatch:DeleteAlarms",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:TagResource",
            "cloudwatch:UntagResource",
            "cloudwatch:ListTagsForResource",
        ),
        ("arn:aws:cloudwatch:REGION:ACCOUNT:alarm:STACK-*",),
    ),
    "AWS::CloudWatch::Dashboard": (
        ("cloudwatch:PutDashboard", "cloudwatch:GetDashboard", "cloudwatch:DeleteDashboards"),
        ("arn:aws:cloudwatch::ACCOUNT:dashboard/STACK-*",),
    ),
    "AWS::DynamoDB::Table": (
        (
            "dynamodb:CreateTable",
            "dynamodb:DeleteTable",
            "dynamodb:DescribeTable",
            "dynamodb:UpdateTable",
            "dynamodb:TagResource",
            "dynamodb:UntagResource",
            "dynamodb:ListTagsOfResource",
            "dynamodb:PutResourcePolicy",
            "dynamodb:GetResourcePolicy",
            "dynamodb:DeleteResourcePolicy",
            "dynamodb:DescribeTimeToLive",
            "dynamodb:UpdateTimeToLive",
            "dynamodb:DescribeContinuousBackups",
            "dynamodb:UpdateContinuousBackups",
        ),
        ("arn:aws:dynamodb:REGION:ACCOUNT:table/STACK-*",),
    ),
    # The rule is named STACK-api-access (template.yaml); Config's rule ARNs carry a generated id, not the
    # name, so the actions that take a rule are scoped to the account's rules in the region.
    "AWS::Config::ConfigRule": (
        (
            "config:PutConfigRule",
            "config:DeleteConfigRule",
            "config:DescribeConfigRules",
            "config:TagResource",
            "config:UntagResource",
        ),
        ("arn:aws:config:REGION:ACCOUNT:config-rule/*",),
    ),
    # The hub's organization rule: Config deploys it to the member accounts itself, through its
    # service-linked role; its ARN, too, carries an id Config chooses.
    "AWS::Config::OrganizationConfigRule": (
        (
            "config:PutOrganizationConfigRule",
            "config:DeleteOrganizationConfigRule",
            "config:DescribeOrganizationConfigRules",
            "config:DescribeOrganizationConfigRuleStatuses",
            "organizations:DescribeOrganization",
            "organizations:ListDelegatedAdministrators",
            "organizations:EnableAWSServiceAccess",
        ),
        ("arn:aws:config:REGION:ACCOUNT:organization-config-rule/*", "arn:aws:organizations::ACCOUNT:*"),
    ),
}


def deployer_policy(types: set[str]) -> dict[str, Any]:
    """The least-privilege policy for deploying a stack made of these resource types with CloudFormation (and
    SAM's transform and artifact bucket), for a stack named STACK in REGION of ACCOUNT. Raises KeyError for
    a type DEPLOY does not know."""
    statements: list[dict[str, Any]] = [
        {"Sid": "TheStackItself", "Effect": "Allow",
         "Action": ["cloudformation:CreateChangeSet", "cloudformation:DescribeChangeSet",
                    "cloudformation:ExecuteChangeSet", "cloudformation:DeleteChangeSet",
                    "cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents",
                    "cloudformation:DescribeStackResources", "cloudformation:GetTemplate",
                    "cloudformation:GetTemplateSummary", "cloudformation:DeleteStack"],
         "Resource": ["arn:aws:cloudformation:REGION:ACCOUNT:stack/STACK/*",
                      "arn:aws:cloudformation:REGION:aws:transform/Serverless-2016-10-31"]},
        {"Sid": "SamsArtifactBucket", "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
         "Resource": "arn:aws:s3:::aws-sam-cli-managed-default-samclisourcebucket-*/*"},
    ]  # fmt: skip
    sids: dict[str, dict[str, Any]] = {}
    for kind in sorted(types):
        actions, resources = DEPLOY[kind]
        sid = "".join(part for part in kind.split("::")[1:])
        sids[sid] = {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": list(resources)}
        if kind == "AWS::Lambda::EventSourceMapping":
            sids[sid]["Condition"] = {
                "ArnLike": {"lambda:FunctionArn": "arn:aws:lambda:REGION:ACCOUNT:function:STACK-*"}
            }
        if kind in (
            "AWS::Config::ConfigRule",
            "AWS::Config::OrganizationConfigRule",
        ):  # its ARN carries an id Config chooses: scoped to CloudFormation
            sids[sid]["Condition"] = {
                "ForAnyValue:StringEquals": {"aws:CalledVia": "cloudformation.amazonaws.com"}
            }
        if kind == "AWS::KMS::Key":
            sids[sid]["Condition"] = {
                "StringEquals": {"aws:ResourceTag/aws:cloudformation:stack-name": "STACK"}
            }
    statements += sids.values()
    if "AWS::KMS::Key" in types:
        # kms:CreateKey acts on no key yet: AWS requires "*" here; the tag CloudFormation sends scopes it.
        statements.append({"Sid": "CreateTheStacksKeys", "Effect": "Allow", "Action": ["kms:CreateKey", "kms:TagResource"],
                           "Resource": "*", "Condition": {"StringEquals": {"aws:RequestTag/aws:cloudformation:stack-name": "STACK"}}})  # fmt: skip
    if "AWS::Logs::LogGroup" in types:
        # logs:DescribeLogGroups lists; it supports no resource-level permissions: AWS requires "*" here.
        statements.append(
            {"Sid": "ListLogGroups", "Effect": "Allow", "Action": ["logs:DescribeLogGroups"], "Resource": "*"}
        )
    if "AWS::IAM::Role" in types:
        statements.append({"Sid": "PassTheStacksRoles", "Effect": "Allow", "Action": ["iam:PassRole"],
                           "Resource": list(DEPLOY["AWS::IAM::Role"][1]),
                           "Condition": {"StringEquals": {"iam:PassedToService": ["lambda.amazonaws.com", "scheduler.amazonaws.com"]}}})  # fmt: skip
    return {"Version": "2012-10-17", "Statement": statements}


def deployed_types(path: Path) -> set[str]:
    """The resource types a template creates, after SAM's transform (its schedules, permissions, mappings),
    every optional part on (the configuration parameter's key, ...): the policy covers them all."""
    import os

    from access_auditor.local_aws.alarms import translate_template

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    output = translate_template(path, {"ConfigParameterName": "/auditor/config"})
    return {r["Type"] for r in output["Resources"].values()}


def deployer_permissions() -> str:
    import json

    parts = []
    for name in TEMPLATES:
        policy = deployer_policy(deployed_types(ROOT / name))
        parts.append(f"### `{name}`\n\n```json\n{json.dumps(policy, indent=2)}\n```")
    return "\n\n".join(parts)


GENERATED["deployer-permissions"] = deployer_permissions
