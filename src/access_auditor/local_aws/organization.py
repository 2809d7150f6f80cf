"""An organization on the local AWS, deployed from the project's own templates: the management account
holds the organization and the hub (its worker role as ``organization/hub.yaml`` declares it); each member
account gets the audit role exactly as ``organization/member.yaml`` declares it (what the StackSet would
deploy), and its tagged APIs in every region. The shard queue and its dead-letter queue are made as the hub
template declares them, and ``EventSourceMapping`` consumes them as the worker's mapping would."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from access_auditor.local_aws.accounts import set_account_state
from access_auditor.local_aws.alarms import Datapoint, function_spec, load_template, resolver
from access_auditor.local_aws.event_source import EventSourceMapping
from access_auditor.local_aws.invoke import WarmFunction, invoke_auditor, shipped
from access_auditor.local_aws.server import LocalAws
from access_auditor.local_aws.stack import create_role, function_env
from access_auditor.org import Shard
from access_auditor.policy.document import ApiRef

HUB_TEMPLATE = shipped("hub.yaml", "organization/hub.yaml")
MEMBER_TEMPLATE = shipped("member.yaml", "organization/member.yaml")
HUB_STACK = "apigw-access-auditor-hub"  # the member template's default HubWorkerRoleName is HUB_STACK-worker


@dataclass
class LocalOrganization:
    aws: LocalAws
    org_id: str
    management: str
    members: list[str]
    regions: tuple[str, ...]
    worker_role_arn: str
    member_role_name: str
    apis: dict[str, list[ApiRef]] = field(default_factory=dict)  # per member account
    hub: dict[str, Any] = field(default_factory=dict)  # the hub template, loaded
    inactive: dict[str, str] = field(default_factory=dict)  # accounts that are not ACTIVE -> their state
    cache_mac_key: str = ""  # the ARN of the HMAC key that authenticates the shared cache's entries
    planner_role_arn: str = ""
    parameters: dict[str, str] = field(default_factory=dict)  # the hub's and the member stacks' overrides

    def hub_value(
        self, value: Any, overrides: dict[str, str] | None = None, attributes: dict[str, str] | None = None
    ) -> Any:
        """A value of the hub template, resolved as the local hub stack (its resources' local names)."""
        where = f"{self.aws.region}:{self.management}"
        params = {"OrganizationId": self.org_id, "Regions": ",".join(self.regions),
                  "AlarmTopic": f"arn:aws:sns:{where}:{HUB_STACK}-alarms", **self.parameters, **(overrides or {})}  # fmt: skip
        names = {"ShardQueue.Arn": f"arn:aws:sqs:{where}:shards",
                 "SharedCache.Arn": f"arn:aws:dynamodb:{where}:table/SharedCache",
                 "AlarmTopicKey.Arn": f"arn:aws:kms:{where}:key/local",
                 "WorkerLogGroup.Arn": f"arn:aws:logs:{where}:log-group:/aws/lambda/{HUB_STACK}-worker",
                 "CacheMacKey.Arn": self.cache_mac_key,
                 "PlannerLogGroup.Arn": f"arn:aws:logs:{where}:log-group:/aws/lambda/{HUB_STACK}-planner"}  # fmt: skip
        return resolver(self.hub, params, HUB_STACK, {**names, **(attributes or {})})(value)

    def member_role_arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:role/{self.member_role_name}"

    def worker_env(self, topic_arn: str = "") -> dict[str, str]:
        """The worker's environment as the hub template sets it, with the credentials Lambda would give it."""
        return self._env("WorkerFunction", {"ALARM_TOPIC_ARN": topic_arn} if topic_arn else {})

    def planner_env(self, queue_url: str) -> dict[str, str]:
        return self._env("PlannerFunction", {"SHARD_QUEUE_URL": queue_url})

    def _env(self, function: str, extra: dict[str, str]) -> dict[str, str]:
        variables = self.hub_value(self.hub["Resources"][function]["Properties"]["Environment"]["Variables"],
                                   {"ExcludedAccounts": self.management})  # fmt: skip
        role = self.planner_role_arn if function == "PlannerFunction" else self.worker_role_arn
        return {**function_env(self.aws, role, function, variables), **extra}

    def shard_queue(
        self, function: Any, visibility_s: int | None = None, name: str = "shards"
    ) -> tuple[str, str, EventSourceMapping]:
        """(queue URL, dead-letter queue URL, the worker's mapping): the queue as the template declares it
        (``visibility_s`` shortens its visibility timeout, so that a failed shard comes back within a test)."""
        sqs = self.aws.client("sqs")
        props = self.hub["Resources"]["ShardQueue"]["Properties"]
        dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        redrive = {
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": int(props["RedrivePolicy"]["maxReceiveCount"]),
        }
        url = sqs.create_queue(QueueName=name, Attributes={
            "VisibilityTimeout": str(visibility_s or props["VisibilityTimeout"]), "RedrivePolicy": json.dumps(redrive)})["QueueUrl"]  # fmt: skip
        source = self.hub["Resources"]["WorkerFunction"]["Properties"]["Events"]["Shards"]["Properties"]
        mapping = EventSourceMapping(sqs, url, function, batch_size=int(self.hub_value(source["BatchSize"])),
                                     max_concurrency=int(self.hub_value(source["ScalingConfig"]["MaximumConcurrency"])),
                                     window_s=float(source["MaximumBatchingWindowInSeconds"]))  # fmt: skip
        return url, dlq, mapping

    def remove_member_role(self, account: str) -> None:
        """What deleting the member stack (or the role) by hand does."""
        iam = self.aws.client("iam", account=account)
        for name in iam.list_role_policies(RoleName=self.member_role_name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=self.member_role_name, PolicyName=name)
        iam.delete_role(RoleName=self.member_role_name)


def create_organization(
    aws: LocalAws,
    members: int = 3,
    regions: tuple[str, ...] = ("us-east-1", "eu-west-1"),
    per_region: int = 20,
    inactive: tuple[str, ...] = (),
    security_hub: bool = False,
) -> LocalOrganization:
    """The organization (its management account is the local AWS's own), ``members`` member accounts with
    the member stack, and ``per_region`` tagged APIs per member account and region, each locked to an app
    role of its account and to the member audit role (so that the health call is made as the audit role).
    ``inactive`` adds one account per state given (SUSPENDED, CLOSED, ...), without the member stack.
    ``security_hub``: both stacks' SecurityHub parameter, and Security Hub enabled in every member account and
    region, as their administrators would."""
    from access_auditor.local_aws.sample import create_fleet

    orgs = aws.client("organizations")
    org_id = orgs.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    for n in range(members):
        orgs.create_account(Email=f"team-{n}@example.com", AccountName=f"team-{n}")
    pages = orgs.get_paginator("list_accounts").paginate()
    accounts = [a["Id"] for page in pages for a in page["Accounts"] if a["Id"] != aws.account]
    states = {}
    for n, state in enumerate(inactive):
        status = orgs.create_account(Email=f"gone-{n}@example.com", AccountName=f"gone-{n}")[
            "CreateAccountStatus"
        ]
        set_account_state(status["AccountId"], state)
        states[status["AccountId"]] = state
    hub = load_template(HUB_TEMPLATE)
    member = load_template(MEMBER_TEMPLATE)
    org = LocalOrganization(aws, org_id, aws.account, accounts, regions, "", "", hub=hub, inactive=states,
                            parameters={"SecurityHub": "true"} if security_hub else {})  # fmt: skip
    worker = org.hub_value(hub["Resources"]["WorkerRole"]["Properties"])
    org.worker_role_arn = create_role(aws, aws.account, worker)
    org.planner_role_arn = create_role(
        aws, aws.account, org.hub_value(hub["Resources"]["PlannerRole"]["Properties"])
    )
    org.member_role_name = str(org.hub_value({"Ref": "MemberRoleName"}))
    mac_key = hub["Resources"]["CacheMacKey"]["Properties"]
    org.cache_mac_key = aws.client("kms").create_key(
        KeySpec=mac_key["KeySpec"], KeyUsage=mac_key["KeyUsage"]
    )["KeyMetadata"]["Arn"]
    table = hub["Resources"]["SharedCache"]["Properties"]  # named as the template's Ref resolves it locally
    aws.client("dynamodb").create_table(TableName=str(org.hub_value({"Ref": "SharedCache"})), BillingMode=table["BillingMode"],
                                        AttributeDefinitions=table["AttributeDefinitions"], KeySchema=table["KeySchema"])  # fmt: skip
    for account in accounts:
        overrides = {"HubAccountId": aws.account, "OrganizationId": org_id, "AWS::AccountId": account,
                     **org.parameters}  # fmt: skip
        for region in regions if security_hub else ():
            aws.client("securityhub", region, account=account).enable_security_hub()
        role = resolver(member, overrides)(member["Resources"]["AuditRole"]["Properties"])
        audit_role = create_role(aws, account, role)
        app_role = f"arn:aws:iam::{account}:role/orders-app"
        org.apis[account] = create_fleet(aws, (app_role, audit_role), regions, per_region, account=account)
    return org


@dataclass
class Cycle:
    """One cycle through the queue: what the planner planned, each shard's report, and what was emitted."""

    planned: int
    unsent: int  # shards the planner could not queue (they show as missing)
    reports: list[dict[str, Any]]
    points: list[Datapoint]
    logs: list[dict[str, Any]]
    seconds: float
    invocations: list[Any]
    skipped: dict[str, str] = field(default_factory=dict)  # accounts the planner left out -> their state

    def failures(self) -> list[str]:
        """What went wrong in this cycle's invocations, for a report: errors, and the messages that failed."""
        found = []
        for run in self.invocations:
            error = run.answer if isinstance(run.answer, Exception) else getattr(run.answer, "error", None)
            if error or run.failed:
                found.append(f"{error or ''} {len(run.failed)} message(s) failed".strip())
            for line in getattr(run.answer, "logs", []):
                if line.get("level") == "ERROR":
                    found.append(str(line.get("message")) + ": " + str(line.get("error", ""))[:300])
        return found


def run_cycle(planner: Callable[[], Any], mapping: EventSourceMapping, timeout_s: float = 600) -> Cycle:
    """Invoke the planner, then let the event source mapping drain the queue; every worker invocation's
    answer (an ``invoke.Invocation``) is collected."""
    started = time.monotonic()
    first = len(mapping.invocations)
    plan = planner()
    if plan.error or not plan.result:
        raise RuntimeError(f"the planner failed: {plan.error or plan.result}")
    mapping.drain(timeout_s)
    runs = mapping.invocations[first:]
    answers = [getattr(run.answer, "result", None) or {} for run in runs]
    points = list(plan.points) + [p for run in runs for p in getattr(run.answer, "points", [])]
    logs = [line for run in runs for line in getattr(run.answer, "logs", [])]
    reports = [shard for answer in answers for shard in answer.get("shards", [])]
    return Cycle(int(plan.result["shards"]), int(plan.result["unsent"]), reports, points, logs,
                 time.monotonic() - started, runs, dict(plan.result.get("skipped") or {}))  # fmt: skip


def worker_function(org: LocalOrganization, topic_arn: str = "") -> WarmFunction:
    """The hub's worker as Lambda runs it: hub.yaml's handler in execution environments of its own, kept
    warm between invocations (``with worker_function(org) as worker: ...``)."""
    return WarmFunction(org.worker_env(topic_arn), function_spec(org.hub, "WorkerFunction", stack=HUB_STACK))


def planner_function(org: LocalOrganization, queue_url: str) -> Callable[[], Any]:
    spec = function_spec(org.hub, "PlannerFunction", stack=HUB_STACK)
    return lambda: invoke_auditor(org.planner_env(queue_url), spec=spec)


def shard_event(*shards: Shard) -> dict[str, Any]:
    """The SQS event the worker's event source mapping would hand over for these shards."""
    return {"Records": [{"messageId": f"m-{n}", "receiptHandle": f"r-{n}", "body": shard.body(), "attributes": {},
                         "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:shards", "awsRegion": "us-east-1"}
                        for n, shard in enumerate(shards)]}  # fmt: skip
