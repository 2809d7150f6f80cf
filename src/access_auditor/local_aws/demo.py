"""`make demo`: the auditor, run as Lambda runs it, against the local AWS through scripted scenarios.

Each scenario changes the sample API the way people break it, invokes the real handler, and prints what it
found and which alarms of template.yaml would be in ALARM. Exit 0 only when every scenario is detected as
expected.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from access_auditor.local_aws.alarms import (
    Alarm,
    Datapoint,
    alarm_arn,
    evaluate,
    load_template,
    resolver,
    template_alarms,
)
from access_auditor.local_aws.events import deliver_alarm_change, on_failure_destination, publish_to
from access_auditor.local_aws.insights import run_query
from access_auditor.local_aws.invoke import TEMPLATE, Invocation, invoke_auditor
from access_auditor.local_aws.sample import (
    INVOKE_POLICY,
    STAGE,
    SampleApi,
    add_method,
    auditor_env,
    client_as,
    create_fleet,
    create_sample_api,
    deploy,
    grant_fleet_invoke,
    grant_invoke,
    save_policy,
)
from access_auditor.local_aws.server import LocalAws
from access_auditor.policy.document import ApiRef

# After SCENARIOS: the change path (_react), the organization (demo_org.py), doctor (demo_doctor.py), the
# watcher (demo_watch.py), a private API and an HTTP API (demo_apis.py).
EXTRA = 6
RUNS_PER_SCENARIO = 2  # two scheduled runs: enough for the alarms that need 2 of 3 datapoints
FLEET_REGIONS = ("us-east-1", "eu-west-1")


@dataclass(frozen=True)
class Scenario:
    title: str
    change: Callable[[World], None]
    expect_codes: frozenset[str]
    expect_alarms: frozenset[str]
    fleet: bool = False


class World:
    """The sample API and the clients that change it."""

    def __init__(self, aws: LocalAws) -> None:
        self.aws = aws
        self.apigw = aws.client("apigateway")
        self.iam = aws.client("iam")
        self.sample: SampleApi = create_sample_api(aws)
        self.fleet: list[ApiRef] = []
        self.history: list[list[Datapoint]] = []  # one period per scheduled run, for the alarms
        self.states: dict[str, str] = {}  # each alarm's state, to see it change
        self.topic = aws.client("sns").create_topic(Name="apigw-access-auditor-alarms")["TopicArn"]

    def deploy(self) -> None:
        deploy(self.apigw, self.sample.api_id)

    def set_health_authorization(self, authorization: str) -> None:
        resource = next(
            r
            for r in self.apigw.get_resources(restApiId=self.sample.api_id)["items"]
            if r["path"] == "/health"
        )
        self.apigw.delete_method(restApiId=self.sample.api_id, resourceId=resource["id"], httpMethod="GET")
        add_method(self.apigw, self.sample.api_id, resource["id"], "GET", authorization)

    def restore(self) -> None:
        save_policy(self.apigw, self.sample.api_id, self.sample.expected_policy())
        self.set_health_authorization("AWS_IAM")
        self.deploy()
        grant_invoke(self.iam, self.sample.allowed_role_arn.rsplit("/", 1)[1], f"{self.sample.api.arn}/*")

    def function_env(self) -> dict[str, str]:
        env = {
            **auditor_env(self.aws, self.sample),
            "CLOUDTRAIL_LOOKUP": "true",
            "ALARM_TOPIC_ARN": self.topic,
        }
        if (
            self.fleet
        ):  # the template's Discovery=true, DiscoveryRegions; execute-api served by the local gateway
            env.update(
                {
                    "DISCOVERY_REGIONS": ",".join(FLEET_REGIONS),
                    "AWS_ENDPOINT_URL_EXECUTE_API": self.aws.gateway.url,
                }
            )
        return env


def _nothing(world: World) -> None:
    pass


def _weaken_and_deploy(world: World) -> None:
    save_policy(world.apigw, world.sample.api_id, world.sample.weakened_policy())
    world.deploy()


def _weaken_without_deploying(world: World) -> None:
    world.restore()
    save_policy(world.apigw, world.sample.api_id, world.sample.weakened_policy())


def _hide_a_deployed_weakening(world: World) -> None:
    # Deployed: a Deny on everything but POST, so any role of the account may POST. The health call and the
    # probes use GET and cannot see it. Then the expected policy is saved back, without deploying.
    world.restore()
    doc = json.loads(world.sample.expected_policy())
    del doc["Statement"][0]["Resource"]
    doc["Statement"][0]["NotResource"] = f"{world.sample.api.arn}/*/POST/*"
    save_policy(world.apigw, world.sample.api_id, json.dumps(doc))
    world.deploy()
    save_policy(world.apigw, world.sample.api_id, world.sample.expected_policy())


def _switch_to_none(world: World) -> None:
    world.restore()
    world.set_health_authorization("NONE")
    world.deploy()


def _remove_role_permission(world: World) -> None:
    world.restore()
    world.iam.delete_role_policy(
        RoleName=world.sample.allowed_role_arn.rsplit("/", 1)[1], PolicyName=INVOKE_POLICY
    )


def _fleet_with_one_weakened(world: World) -> None:
    world.restore()
    role = world.sample.allowed_role_arn
    world.fleet = create_fleet(world.aws, role, FLEET_REGIONS, per_region=3)
    grant_fleet_invoke(world.aws, role)
    weak = world.fleet[4]  # in eu-west-1
    apigw = world.aws.client("apigateway", weak.region)
    save_policy(apigw, weak.api_id, world.sample.weakened_policy(weak))
    apigw.create_deployment(restApiId=weak.api_id, stageName=STAGE)


SCENARIOS = [
    Scenario("Healthy: the expected policy, deployed", _nothing, frozenset(), frozenset()),
    Scenario(
        "Policy weakened in the console and deployed",
        _weaken_and_deploy,
        frozenset({"ACCESS_WEAKENED", "OUTSIDER_CALL_ALLOWED"}),
        frozenset({"PolicyDriftAlarm", "UnauthorizedCallAllowedAlarm"}),
    ),
    Scenario(
        "A weakening saved but not deployed (the stage still serves the expected policy)",
        _weaken_without_deploying,
        frozenset({"UNDEPLOYED_POLICY_CHANGE"}),
        frozenset({"UndeployedPolicyChangeAlarm"}),
    ),
    Scenario(
        "A POST-only weakening deployed, then hidden by saving the expected policy without deploying",
        _hide_a_deployed_weakening,
        frozenset({"ACCESS_WEAKENED", "UNDEPLOYED_POLICY_CHANGE"}),
        frozenset({"PolicyDriftAlarm", "UndeployedPolicyChangeAlarm"}),
    ),
    Scenario(
        "GET /health switched to authorization NONE",
        _switch_to_none,
        frozenset({"METHOD_NOT_IAM", "HEALTH_EXPLICIT_DENY"}),
        frozenset({"PolicyDriftAlarm", "HealthCheckFailedAlarm"}),
    ),
    Scenario(
        "The allowed role's own execute-api:Invoke permission removed",
        _remove_role_permission,
        frozenset({"HEALTH_NOT_AUTHORIZED"}),
        frozenset({"HealthCheckFailedAlarm"}),
    ),
    Scenario("Restored", lambda world: world.restore(), frozenset(), frozenset()),
    Scenario(
        f"A fleet: 6 APIs tagged access-auditor:allowed-roles in {' and '.join(FLEET_REGIONS)}, one weakened",
        _fleet_with_one_weakened,
        frozenset({"ACCESS_WEAKENED"}),
        frozenset({"PolicyDriftAlarm"}),
        fleet=True,
    ),
]


class Painter:
    def __init__(self, stream: TextIO) -> None:
        self.on = stream.isatty() and not os.environ.get("NO_COLOR")

    def __call__(self, text: str, color: str) -> str:
        codes = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}
        return f"\033[{codes[color]}m{text}\033[0m" if self.on else text


def run_demo(out: TextIO = sys.stdout, limit: int | None = None) -> int:
    total = min(limit, len(SCENARIOS) + EXTRA) if limit else len(SCENARIOS) + EXTRA  # what "[n/total]" counts
    paint = Painter(out)
    started = time.monotonic()
    alarms = template_alarms(load_template(TEMPLATE))
    out.write(
        paint("apigw-access-auditor demo", "bold") + " - local AWS on loopback, no account, no network\n"
    )
    with LocalAws() as aws:
        world = World(aws)
        out.write(f"  API {world.sample.api_id} stage {STAGE}, locked to {world.sample.allowed_role_arn}\n")
        out.write(f"  outsider role {world.sample.outsider_role_arn}\n")
        out.write(f"  alarms read from template.yaml: {', '.join(a.name for a in alarms)}\n\n")
        failures = 0
        for number, scenario in enumerate(SCENARIOS[:limit], 1):
            scenario.change(world)
            for _ in range(RUNS_PER_SCENARIO):
                invocation = invoke_auditor(world.function_env())
                world.history.append(invocation.points)
            states = {a.name: evaluate(a, *world.history) for a in alarms}
            firing = {name for name, state in states.items() if state == "ALARM"}
            # In ALARM though this scenario's last run did not raise its metric: the runs before still count.
            carried = {a.name for a in alarms if a.name in firing
                       and not any(p.metric == a.metric and any(v >= a.threshold for v in p.values) for p in invocation.points)}  # fmt: skip
            failures += _report(out, paint, f"{number}/{total}", scenario, invocation, firing, carried)
            failures += _notifications(out, paint, world, alarms, states)
        if limit is None or limit > len(SCENARIOS):
            failures += _react(out, paint, world, alarms, f"{len(SCENARIOS) + 1}/{total}")
        if limit is None or limit > len(SCENARIOS) + 1:
            from access_auditor.local_aws.demo_org import run_org_scenario

            failures += run_org_scenario(out, paint, aws, len(SCENARIOS) + 2, total)
        if limit is None or limit > len(SCENARIOS) + 2:
            from access_auditor.local_aws.demo_doctor import run_doctor_scenario

            failures += run_doctor_scenario(out, paint, aws, world.sample.api_id, len(SCENARIOS) + 3, total)
        if limit is None or limit > len(SCENARIOS) + 3:
            from access_auditor.local_aws.demo_watch import run_watch_scenario

            failures += run_watch_scenario(out, paint, aws, len(SCENARIOS) + 4, total)
        if limit is None or limit > len(SCENARIOS) + 4:
            from access_auditor.local_aws.demo_apis import run_http_scenario, run_private_scenario

            world.restore()

            def env(**overrides: str) -> dict[str, str]:
                return {**world.function_env(), **overrides}

            failures += run_private_scenario(out, paint, aws, world.sample, env, len(SCENARIOS) + 5, total)
            failures += run_http_scenario(out, paint, aws, world.sample, env, len(SCENARIOS) + 6, total)
    verdict = (
        paint("all scenarios detected as expected", "green")
        if not failures
        else paint(f"{failures} scenario(s) NOT as expected", "red")
    )
    out.write(f"\n{verdict} in {time.monotonic() - started:.1f}s\n")
    return 1 if failures else 0


def _report(
    out: TextIO,
    paint: Painter,
    number: str,
    scenario: Scenario,
    run: Invocation,
    firing: set[str],
    carried: set[str],
) -> int:
    """One scenario's outcome: what the run found (one target, or the fleet's table), the alarms, the verdict."""
    out.write(paint(f"[{number}] {scenario.title}", "bold") + "\n")
    if run.error or run.result is None or not run.result.get("targets"):
        out.write(paint(f"      the handler failed: {run.error or run.result}\n", "red"))
        return 1
    codes = (_fleet_findings if scenario.fleet else _target_findings)(out, paint, run)
    out.write(
        f"      alarms in ALARM after {RUNS_PER_SCENARIO} scheduled runs: {', '.join(sorted(firing)) or 'none'}\n"
    )
    if carried:
        # An alarm evaluates its last EvaluationPeriods runs: the scenario before still counts in them.
        out.write(
            f"      (still in ALARM from the scenario before, whose runs it still counts: {', '.join(sorted(carried))})\n"
        )
    return _verdict(out, paint, scenario, codes, firing)


def _target_findings(out: TextIO, paint: Painter, run: Invocation) -> set[str]:
    assert run.result is not None
    target = run.result["targets"][0]
    status = target["statusCode"]
    health = f"{status} in {target['latencyMs']:.0f} ms" if status is not None else "no answer"
    probes = {None: "not run", True: paint("GOT IN", "red"), False: "refused"}[
        target["unauthorizedCallAllowed"]
    ]
    out.write(f"      health call {health}; negative probes {probes}\n")
    for finding in target["findings"]:
        color = {"critical": "red", "high": "red", "medium": "yellow"}.get(finding["severity"], "dim")
        text = textwrap.fill(
            f"{finding['code']}: {finding['message']}", width=100, subsequent_indent=" " * 10
        )
        out.write(f"      {paint(finding['severity'].upper(), color)} {text}\n")
    if not target["findings"]:
        out.write("      findings: none\n")
    return {finding["code"] for finding in target["findings"]}


def _notifications(
    out: TextIO, paint: Painter, world: World, alarms: list[Alarm], states: dict[str, str]
) -> int:
    """Deliver each alarm's change to ALARM as EventBridge would (the template's AlarmRaised rule, its
    pattern read from template.yaml), invoke the function with it, and show what it published."""
    from moto.sns.models import sns_backends

    from access_auditor.local_aws.eventbridge import invoke_with

    template = load_template(TEMPLATE)
    rule = template["Resources"]["AuditorFunction"]["Properties"]["Events"]["AlarmRaised"]["Properties"][
        "Pattern"
    ]
    pattern = resolver(template, attributes={f"{a.name}.Arn": alarm_arn(a.name) for a in alarms})(rule)
    sent = sns_backends[world.aws.account][world.aws.region].topics[world.topic].sent_notifications
    # Lambda's OnFailure destination, as the template declares it (the alarm topic)
    on_failure = (
        publish_to(world.aws.client("sns"), world.topic)
        if on_failure_destination(template, "AuditorFunction") == "AlarmTopic"
        else None
    )
    failures = 0
    stayed = sorted(a.name for a in alarms if world.states.get(a.name, "OK") == states[a.name] == "ALARM")
    if stayed:
        # CloudWatch notifies on a change of state only: an alarm already in ALARM sends nothing new.
        out.write(
            f"      already in ALARM after the scenario before, so no new notification: {', '.join(stayed)}\n"
        )
    for alarm in alarms:
        before, after = world.states.get(alarm.name, "OK"), states[alarm.name]
        world.states[alarm.name] = after
        delivered = deliver_alarm_change(
            alarm, after, before, pattern, invoke_with(world.function_env()), sent, on_failure
        )
        if after == before or delivered is None:
            continue
        run, published = delivered
        if run.error or published is None:
            out.write(
                paint(
                    f"      {alarm.name}: no notification was published ({run.error or run.result})\n", "red"
                )
            )
            failures += 1
            continue
        subject, message = published
        out.write(f"      notification to the alarm topic: {paint(subject, 'bold')}\n")
        for line in message.splitlines():
            if line.startswith("- "):
                out.write("        " + textwrap.shorten(line, 110) + "\n")
    return failures


SETTLE_S = "2"  # the demo's SettleSeconds (the template's default is 10)


def _react(out: TextIO, paint: Painter, world: World, alarms: list[Alarm], number: str) -> int:
    """Seconds, not minutes: a weakening deployed reaches the function through CloudTrail's event, the
    template's rule and queue, and a change made as the auditor's own role starts nothing."""
    from access_auditor.local_aws.eventbridge import ChangePipeline, invoke_with

    out.write(paint(f"[{number}] Seconds, not minutes: a weakening deployed, seen through "
                    "CloudTrail -> EventBridge -> the queue", "bold") + "\n")  # fmt: skip
    world.restore()
    world.fleet = []
    role = world.sample.allowed_role_arn.rsplit("/", 1)[1]
    overrides = {"AllowedRoleName": role, "SettleSeconds": SETTLE_S}
    with ChangePipeline(world.aws, TEMPLATE, overrides, invoke_with(world.function_env())) as pipe:
        save_policy(world.apigw, world.sample.api_id, world.sample.weakened_policy())
        world.deploy()
        written = time.monotonic()
        delivery = pipe.first_raising("PolicyDrift", after=0, timeout_s=60)
        pipe.delivery_of("CreateDeployment", after=0, timeout_s=60)  # every batch of the burst handled
        if delivery is None:
            out.write(paint("      no audit was started by the change\n", "red"))
            return 1
        run = delivery.answer
        # As the auditor's own role: the rule leaves it out, so a fix can never start a loop.
        matched, audits = len(pipe.matched), len(pipe.deliveries)
        own = client_as(world.aws, world.sample.allowed_role_arn, "apigateway")
        save_policy(own, world.sample.api_id, world.sample.expected_policy())
        time.sleep(float(SETTLE_S) + 1.5)
        ignored = len(pipe.matched) == matched and len(pipe.deliveries) == audits
    world.deploy()
    world.history.append(run.points)
    states = {a.name: evaluate(a, *world.history) for a in alarms}
    drift = [v for p in run.points if p.metric == "PolicyDrift" for v in p.values]
    changed = [
        line.get("audit", {}).get("trigger") for line in run.logs if line.get("message") == "target audited"
    ]
    total = delivery.ended - written
    out.write(f"      {matched} CloudTrail events matched the template's ChangeRule "
              f"({', '.join(e['detail']['eventName'] for _, e in pipe.matched[:2])}), audited in {audits} batch(es) "
              f"after the {SETTLE_S} s settle delay\n")  # fmt: skip
    out.write(f"      PolicyDrift {max(drift, default=0):.0f}, {total:.1f} s after the deployment "
              f"({total - float(SETTLE_S):.1f} s excluding the settle delay); changed: {changed[0] if changed else '?'}\n")  # fmt: skip
    out.write(f"      PolicyDriftAlarm: {states['PolicyDriftAlarm']}\n")
    out.write(f"      the same policy restored as the auditor's own role ({role}): "
              f"{'ignored by the rule, no audit' if ignored else 'STARTED AN AUDIT'}\n")  # fmt: skip
    ok = max(drift, default=0) == 1 and states["PolicyDriftAlarm"] == "ALARM" and ignored
    out.write("      " + (paint("as expected", "green") if ok else paint("NOT as expected", "red")) + "\n")
    return 0 if ok else 1


def per_api_query() -> str:
    """The dashboard's per-API Logs Insights query: its log widget, from the dashboard body CloudFormation
    would deploy (template.yaml, resolved; it must be JSON), less the SOURCE command that names the group."""
    template = load_template(TEMPLATE)
    body = json.loads(resolver(template)(template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]))
    query = next(w["properties"]["query"] for w in body["widgets"] if w["type"] == "log")
    return str(query).split("|", 1)[1].strip()


def _fleet_findings(out: TextIO, paint: Painter, run: Invocation) -> set[str]:
    assert run.result is not None
    targets = run.result["targets"]
    out.write(f"      {len(targets)} targets ({sum(t['source'] == 'tag' for t in targets)} discovered by tag), "
              f"in {run.duration_ms} ms\n")  # fmt: skip
    out.write(
        "      the dashboard's per-API widget (its Logs Insights query from template.yaml, over this run's logs):\n"
    )
    rows = run_query(per_api_query(), run.logs)
    columns = ["api", "region", "stage", "ok", "drift", "open", "undeployed", "healthy", "finding"]
    table = [columns] + [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    for i, line in enumerate(table):
        text = "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        out.write("        " + (paint(text, "red") if i and line[3] == "False" else text) + "\n")
    weak = [t for t in targets if t["drift"]]
    out.write(f"      drifted: {', '.join(t['apiId'] + ' (' + t['region'] + ')' for t in weak) or 'none'}\n")
    return {f["code"] for t in targets for f in t["findings"]}


def _verdict(out: TextIO, paint: Painter, scenario: Scenario, codes: set[str], firing: set[str]) -> int:
    relevant = {c for c in codes if c not in {"POLICY_REWRITTEN", "CHANGED_BY"}}
    ok = (
        scenario.expect_codes <= relevant
        and firing == scenario.expect_alarms
        and (scenario.expect_codes or not relevant)
    )
    if ok:
        out.write("      " + paint("as expected", "green") + "\n")
        return 0
    out.write("      " + paint(f"NOT as expected: wanted findings {sorted(scenario.expect_codes)} and alarms "
                                f"{sorted(scenario.expect_alarms)}", "red") + "\n")  # fmt: skip
    return 1
