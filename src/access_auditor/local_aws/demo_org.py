"""The demo's organization scenario: three member accounts × two regions × 20 tagged APIs, audited through
the hub as organization/hub.yaml deploys it (planner -> shard queue -> worker mapping). One member account
drifts, one has lost its audit role; the shard table and the per-API table are the dashboard's own
Logs Insights queries (from hub.yaml), the alarms are hub.yaml's, and the notification is the worker's."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from typing import Any, TextIO

from access_auditor.local_aws.alarms import (
    alarm_arn,
    evaluate,
    evaluate_math,
    template_alarms,
    template_math_alarms,
)
from access_auditor.local_aws.event_source import EventSourceMapping
from access_auditor.local_aws.events import deliver_alarm_change, on_failure_destination, publish_to
from access_auditor.local_aws.insights import run_query
from access_auditor.local_aws.organization import (
    HUB_STACK,
    Cycle,
    LocalOrganization,
    create_organization,
    planner_function,
    run_cycle,
    worker_function,
)
from access_auditor.local_aws.sample import STAGE, save_policy
from access_auditor.local_aws.server import LocalAws
from access_auditor.policy.expected import render_expected_policy

INACTIVE = ("SUSPENDED", "CLOSED")  # accounts of the organization that cannot be audited: skipped, and named
CYCLES = 2  # two scheduled cycles: enough for the alarms that need 2 of 3 datapoints
EXPECTED_ALARMS = {"PolicyDriftAlarm", "AuditErrorAlarm"}


def dashboard_queries(org: LocalOrganization) -> dict[str, str]:
    """The hub dashboard's Logs Insights queries by widget title, less the SOURCE command."""
    body = json.loads(org.hub_value(org.hub["Resources"]["Dashboard"]["Properties"]["DashboardBody"]))
    return {w["properties"]["title"]: str(w["properties"]["query"]).split("|", 1)[1].strip()
            for w in body["widgets"] if w["type"] == "log"}  # fmt: skip


def weaken(org: LocalOrganization, account: str, index: int) -> str:
    """The console edit "to let the other team in", deployed, on one API of ``account``."""
    api = org.apis[account][index]
    apigw = org.aws.client("apigateway", api.region, account=account)
    doc = render_expected_policy(
        api, [f"arn:aws:iam::{account}:role/orders-app", org.member_role_arn(account)]
    )
    doc["Statement"][0]["Condition"] = {
        "StringNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{account}:role/*"}
    }
    save_policy(apigw, api.api_id, json.dumps(doc))
    apigw.create_deployment(restApiId=api.api_id, stageName=STAGE)
    return api.api_id


@dataclass
class OrgOutcome:
    """What the organization scenario established, for the demo to print and a test to assert."""

    org: LocalOrganization
    mapping: EventSourceMapping
    cycles: list[Cycle]
    weak_api: str
    drifting: str
    roleless: str
    states: dict[str, str]
    shard_rows: list[dict[str, Any]]
    api_rows: list[dict[str, Any]]
    notifications: list[tuple[str, str]]  # (subject, message) the worker published
    hub_rows: list[dict[str, Any]]  # Security Hub's view: per member account and region, its findings

    @property
    def firing(self) -> set[str]:
        return {name for name, state in self.states.items() if state == "ALARM"}


def org_scenario(aws: LocalAws) -> OrgOutcome:
    """Build the organization, break two accounts, run CYCLES cycles through the queue, evaluate hub.yaml's
    alarms over them, and deliver each alarm that went to ALARM to the worker as EventBridge would."""
    org = create_organization(aws, members=3, per_region=20, inactive=INACTIVE, security_hub=True)
    _, drifting, roleless = org.members
    weak = weaken(org, drifting, 25)  # in eu-west-1
    org.remove_member_role(roleless)
    topic = aws.client("sns").create_topic(Name=f"{HUB_STACK}-alarms")["TopicArn"]
    with worker_function(org, topic) as worker:
        url, _, mapping = org.shard_queue(worker)
        cycles = [run_cycle(planner_function(org, url), mapping) for _ in range(CYCLES)]
        alarms = template_alarms(org.hub, stack=HUB_STACK)
        states = {a.name: evaluate(a, *(c.points for c in cycles)) for a in alarms}
        for math in template_math_alarms(org.hub, stack=HUB_STACK):
            states[math.name] = evaluate_math(math, *(c.points for c in cycles))
        sent = notify_raised(org, topic, worker, [a for a in alarms if states[a.name] == "ALARM"])
    queries = dashboard_queries(org)
    shard_rows = run_query(next(q for t, q in queries.items() if t.startswith("Per shard")), cycles[-1].logs)
    api_rows = run_query(next(q for t, q in queries.items() if t.startswith("Per API")), cycles[-1].logs)
    return OrgOutcome(org, mapping, cycles, weak, drifting, roleless, states, shard_rows, api_rows, sent,
                      security_hub_view(org))  # fmt: skip


def security_hub_view(org: LocalOrganization) -> list[dict[str, Any]]:
    """What each member account's Security Hub shows (GetFindings, as that account's administrator): one row
    per account and region with the product's active findings."""
    rows = []
    for account in org.members:
        for region in org.regions:
            hub = org.aws.client("securityhub", region, account=account)
            found = [f for page in hub.get_paginator("get_findings").paginate() for f in page["Findings"]
                     if f.get("ProductFields", {}).get("ProviderName") == "apigw-access-auditor"]  # fmt: skip
            active = [f for f in found if f["RecordState"] == "ACTIVE"]
            rows.append({"account": account, "region": region, "active": len(active),
                         "findings": ", ".join(sorted(f"{f['ProductFields']['apigw-access-auditor/Code']} "
                                                      f"{f['Severity']['Label']} {f['Workflow']['Status']} "
                                                      f"{f['Compliance']['Status']} "
                                                      f"({f['Resources'][0]['Id'].rsplit('/restapis/', 1)[-1]})"
                                                      for f in active)) or "-"})  # fmt: skip
    return rows


def run_org_scenario(out: TextIO, paint: Any, aws: LocalAws, number: int, total: int) -> int:
    out.write(paint(f"[{number}/{total}] An organization: 3 member accounts x 2 regions x 20 tagged APIs, through "
                    "the hub's queue; one account drifts, one has lost its audit role; Security Hub's view", "bold") + "\n")  # fmt: skip
    outcome = org_scenario(aws)
    org, mapping, last = outcome.org, outcome.mapping, outcome.cycles[-1]
    out.write(f"      organization {org.org_id}: members {', '.join(org.members)} (management {org.management} "
              f"excluded); MaximumConcurrency {mapping.max_concurrency}, BatchSize {mapping.batch_size}\n")  # fmt: skip
    out.write(f"      cycle: {last.planned} shards planned, {len(last.reports)} reported, in {last.seconds:.1f} s "
              f"({len(last.invocations)} worker invocation(s), peak {mapping.peak_concurrency} at once)\n")  # fmt: skip
    out.write("      skipped by the planner (not ACTIVE): " + (", ".join(f"{a} ({s})" for a, s in sorted(last.skipped.items()))
              or "none") + "\n")  # fmt: skip
    _table(out, paint, "the dashboard's per-shard widget:", outcome.shard_rows,
           ["account", "region", "outcome", "targets", "reason"], bad=lambda row: row.get("outcome") != "audited")  # fmt: skip
    problems = [r for r in outcome.api_rows if str(r.get("ok")) != "True"]
    # A shard that could not be audited is one row ("*" for the API): it is not an API.
    apis = [r for r in outcome.api_rows if r.get("api") != "*"]
    unaudited = len(outcome.api_rows) - len(apis)
    out.write(f"      the dashboard's per-API widget: {len(apis)} APIs audited"
              + (f", {unaudited} shard(s) not audited" if unaudited else "")
              + f"; {len(problems)} row(s) with a problem:\n")  # fmt: skip
    _table(
        out,
        paint,
        None,
        problems,
        ["account", "api", "region", "stage", "drift", "finding"],
        bad=lambda row: True,
    )
    out.write(f"      alarms in ALARM after {CYCLES} cycles: {', '.join(sorted(outcome.firing)) or 'none'} "
              f"(ShardsMissingAlarm: {outcome.states.get('ShardsMissingAlarm')})\n")  # fmt: skip
    _table(out, paint, "Security Hub, in each member account (the findings import through its audit role):",
           outcome.hub_rows, ["account", "region", "active", "findings"], bad=lambda row: row["active"])  # fmt: skip
    for subject, message in outcome.notifications:
        out.write(f"      notification: {paint(subject, 'bold')}\n")
        for line in message.splitlines():
            if line.startswith("- "):
                out.write("        " + textwrap.shorten(line, 150) + "\n")
    named = "\n".join(message for _, message in outcome.notifications)
    failed = {r["account"] for r in last.reports if r["outcome"] == "failed"}
    ok = (
        outcome.firing == EXPECTED_ALARMS
        and last.planned == len(last.reports) == 6
        and last.skipped == org.inactive
        and failed == {outcome.roleless}
        and all("MEMBER_ROLE_UNAVAILABLE" in r["reason"] for r in last.reports if r["outcome"] == "failed")
        and [r.get("api") for r in problems if str(r.get("drift")) == "True"] == [outcome.weak_api]
        and outcome.weak_api in named
        and outcome.roleless in named
        and [(r["account"], r["region"]) for r in outcome.hub_rows if r["active"]]
        == [(outcome.drifting, "eu-west-1")]
        and f"ACCESS_WEAKENED CRITICAL NEW FAILED ({outcome.weak_api}/stages/prod)"
        in next(r["findings"] for r in outcome.hub_rows if r["active"])
    )
    out.write("      " + (paint("as expected", "green") if ok else paint("NOT as expected", "red")) + "\n")
    return 0 if ok else 1


def _table(out: TextIO, paint: Any, title: str | None, rows: list[dict[str, Any]], columns: list[str],
           bad: Any) -> None:  # fmt: skip
    if title:
        out.write(f"      {title}\n")
    table = [columns] + [[textwrap.shorten(str(row.get(c, "")), 60) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    for i, line in enumerate(table):
        text = "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        out.write("        " + (paint(text, "red") if i and bad(rows[i - 1]) else text) + "\n")


def notify_raised(
    org: LocalOrganization, topic: str, worker: Any, raised: list[Any]
) -> list[tuple[str, str]]:
    """Each alarm's change to ALARM, through hub.yaml's AlarmRaised pattern, to the worker; what it published."""
    from moto.sns.models import sns_backends

    rule = org.hub["Resources"]["WorkerFunction"]["Properties"]["Events"]["AlarmRaised"]["Properties"][
        "Pattern"
    ]
    pattern = org.hub_value(rule, attributes={f"{a.name}.Arn": alarm_arn(a.name) for a in raised})
    sent = sns_backends[org.aws.account][org.aws.region].topics[topic].sent_notifications
    on_failure = (publish_to(org.aws.client("sns"), topic)
                  if on_failure_destination(org.hub, "WorkerFunction") == "AlarmTopic" else None)  # fmt: skip
    delivered = [
        deliver_alarm_change(alarm, "ALARM", "OK", pattern, worker, sent, on_failure) for alarm in raised
    ]
    return [d[1] for d in delivered if d is not None and d[1] is not None]
