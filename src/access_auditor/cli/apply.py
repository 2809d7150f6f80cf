"""``access-auditor policy apply``: safe by construction. Everything is established before anything is
written: the stage, what it serves, what is saved, what else is pending, who would lose access."""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from access_auditor.cli.options import aws_session
from access_auditor.cli.policy import resolve_roles, role_arn_by_name
from access_auditor.errors import AuditorError, ConfigError
from access_auditor.policy.document import ApiRef, load_policy, parse_policy_text
from access_auditor.policy.expected import render_expected_policy


@dataclass
class ApplyPlan:
    """What ``policy apply`` would do, established before anything is written: the dry run prints it whole,
    and apply carries it out only if nothing in it refuses."""

    diff: list[str]  # the saved policy -> the expected one
    policy: str  # the expected policy, as apply would save it
    saved: str | None  # the policy it would replace, as GetRestApi gave it (restored if the deployment fails)
    serves_expected: bool  # the stage already serves the expected policy
    saved_expected: bool  # the expected policy is already saved
    pending: list[str] = field(default_factory=list)  # other changes a deployment would ship
    pending_unknown: str = ""  # why other pending changes cannot be ruled out
    lost: list[str] = field(default_factory=list)  # who loses access, by name
    refusals: list[str] = field(default_factory=list)  # why apply will not go ahead (without a flag)
    notes: list[str] = field(default_factory=list)  # what the operator should know, and need not act on

    @property
    def deploy(self) -> bool:
        return not self.serves_expected

    def lines(self) -> list[str]:
        out = self.diff or ["the saved policy is already the expected one"]
        if not self.deploy:
            out.append("the stage already serves the expected policy: nothing to save, nothing to deploy")
        else:
            out.append("would save the expected policy and deploy the stage" if not self.saved_expected
                        else "would deploy the stage (the expected policy is saved, not yet served)")  # fmt: skip
        out += [f"pending, and shipped by that deployment: {p}" for p in self.pending]
        out += (
            [f"pending changes cannot be ruled out: {self.pending_unknown}"] if self.pending_unknown else []
        )
        out += [f"loses access: {who}" for who in self.lost] or ["nobody named loses access"]
        out += self.notes
        out += [f"refusing: {why}" for why in self.refusals]
        return out


def plan_apply(args: argparse.Namespace, session: Any, identity: dict[str, Any]) -> ApplyPlan:
    """Read the stage, what it serves, what is saved, CloudTrail's writes since the deployment and the
    caller's role, and decide. Raises ConfigError for a stage that does not exist."""
    from access_auditor.aws.apigateway import ApiGateway
    from access_auditor.aws.clients import make_client
    from access_auditor.aws.cloudtrail import CloudTrail
    from access_auditor.policy.access_config import AccessConfig
    from access_auditor.policy.analysis import GENERIC_CALLERS, access_lost
    from access_auditor.policy.evaluator import RequestContext, decide_invoke
    from access_auditor.policy.matrix import OTHER_STAGE, Method

    plane = ApiGateway(make_client("apigateway", args.region, session))
    api = ApiRef(args.region, identity["Account"], args.api_id)
    stages = plane.stages(args.api_id)
    if args.stage not in stages:  # apply deploys an existing stage; CreateDeployment would create a new one
        raise ConfigError(
            f"--stage {args.stage}: API {args.api_id} has no such stage (it has: {', '.join(stages) or 'none'})"
        )
    roles = resolve_roles(args.role, api.account, session, args.region)
    new = render_expected_policy(api, roles, args.vpce, args.vpc)
    state = plane.stage_state(args.api_id, args.stage)
    saved_text = plane.get_policy(args.api_id)
    saved_methods = tuple(plane.list_methods(args.api_id, args.stage))
    expected = AccessConfig(json.dumps(new), saved_methods)
    saved = AccessConfig(saved_text, saved_methods)
    live = state.deployed if state.deployed is not None and state.export_problem is None else None
    before = (
        json.dumps(parse_policy_text(saved_text), indent=2, sort_keys=True).splitlines() if saved_text else []
    )
    after = json.dumps(new, indent=2, sort_keys=True).splitlines()
    plan = ApplyPlan(
        diff=list(difflib.unified_diff(before, after, "saved policy", "expected policy", lineterm="")),
        policy=json.dumps(new),
        saved=saved_text,
        serves_expected=live is not None and not live.policy_differs(expected, api),
        saved_expected=not saved.policy_differs(expected, api),
    )
    if state.deployed is not None:
        for method in sorted(set(saved_methods) ^ set(state.deployed.methods), key=str):
            where = "saved" if method in saved_methods else "deployed"
            plan.pending.append(
                f"{method.http_method} {method.path} {method.authorization_type} (only {where})"
            )
    if state.deployed_at is not None:
        try:
            writes, complete = CloudTrail(make_client("cloudtrail", args.region, session)).writes_to(
                args.api_id, state.deployed_at + dt.timedelta(seconds=1)
            )
        except AuditorError as exc:
            plan.pending_unknown = f"CloudTrail could not be asked ({exc}); grant cloudtrail:LookupEvents"
        else:
            plan.pending += [
                f"{w.event_name} by {w.actor} at {w.event_time:%Y-%m-%d %H:%M:%SZ}" for w in writes
            ]
            if not complete:
                plan.pending_unknown = (
                    "CloudTrail holds more events about the API since the deployment than were read"
                )
    if plan.deploy and (plan.pending or plan.pending_unknown) and not args.include_pending:
        plan.refusals.append("a deployment ships every change saved on the API, and others are pending (above); "
                             "review them, then pass --include-pending to ship them knowingly")  # fmt: skip
    # Who loses access: judged against what the stage serves (or, unreadable, what is saved).
    methods = list(state.deployed.methods if state.deployed else saved_methods)
    methods += [Method(OTHER_STAGE, m.http_method, m.path, m.authorization_type) for m in methods]
    previous = (live or saved).policy
    before_policy = load_policy(parse_policy_text(previous), api) if previous else None
    locked_out = []
    for name, method, more in access_lost(
        before_policy, load_policy(new, api), api, roles, methods or [Method(args.stage, "GET", "/")]
    ):
        if not name.startswith(GENERIC_CALLERS):
            plan.lost.append(f"{name}: {method}" + (f" (and {more} more method(s))" if more else ""))
        # A role the current policy names exactly is someone's; a pattern (role/*) is what a fix removes.
        if name.startswith(("principal ", "allowed role ")):
            locked_out.append(name)
    if locked_out and not args.force:
        plan.refusals.append(f"{', '.join(locked_out)}, which the current policy lets in, would be locked out; add "
                             "them with --role, or pass --force")  # fmt: skip
    try:
        caller = _principal_arn(identity["Arn"], session, args.region)
    except AuditorError as exc:
        if not args.force:
            plan.refusals.append(f"your own role cannot be read ({exc}), so whether the policy locks you out cannot "
                                 "be told; grant iam:GetRole, or pass --force")  # fmt: skip
    else:
        decision = decide_invoke(load_policy(new, api), "AWS_IAM", RequestContext(caller, identity["Account"]),
                                 f"{api.arn}/{args.stage}/GET/", api.account, identity_allowed=True)  # fmt: skip
        if not decision.allowed:
            # That is the lock: everyone but the allowed roles is denied, the operator who applies it included.
            plan.notes.append(f"you ({caller}) will be denied too, as everyone but the allowed roles is; add --role "
                              "for yourself to keep your own access")  # fmt: skip
    return plan


def run(args: argparse.Namespace) -> int:
    from access_auditor.aws.apigateway import ApiGateway
    from access_auditor.aws.clients import call, make_client

    session = aws_session(args.profile)
    identity = call("GetCallerIdentity", make_client("sts", args.region, session).get_caller_identity)
    plan = plan_apply(args, session, identity)
    if args.dry_run:
        print("\n".join(plan.lines()))
        return 2 if plan.refusals else 0
    if plan.refusals:
        sys.stderr.write("".join(f"access-auditor: refusing: {why}\n" for why in plan.refusals))
        for line in plan.lines()[: -len(plan.refusals)]:
            sys.stderr.write(f"  {line}\n")
        return 2
    if not plan.deploy:
        print(f"nothing to do: stage {args.stage} of {args.api_id} already serves the expected policy")
        return 0
    plane = ApiGateway(make_client("apigateway", args.region, session))
    deployment = plane.apply_policy(args.api_id, args.stage, plan.policy, plan.saved)
    print(
        f"saved the expected policy on {args.api_id} and deployed stage {args.stage} (deployment {deployment})"
    )
    return 0


def _principal_arn(caller_arn: str, session: Any, region: str) -> str:
    """aws:PrincipalArn for the caller: an assumed-role session maps to its role, path included. Raises
    AuditorError when the role cannot be read: guessing its path could approve a policy that locks it out."""
    from access_auditor.aws.clients import make_client

    parts = caller_arn.split(":")
    if parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        return role_arn_by_name(make_client("iam", region, session), parts[5].split("/")[1])
    return caller_arn
