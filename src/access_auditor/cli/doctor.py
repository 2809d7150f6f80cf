"""``access-auditor doctor``: a preflight, run once with your own credentials before (and after) deploying."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from access_auditor.cli.options import aws_session

EXAMPLES = """examples:
  access-auditor doctor --region us-east-1 --api-id abc123
  access-auditor doctor --region us-east-1 --discover --experiment
  access-auditor doctor --region us-east-1 --organization --member 111122223333 \\
      --via-role arn:aws:iam::999999999999:role/hub-worker

Checks: a trail logging in the region (the change path), StackSets trusted access (--organization), each
member's audit role (--member), and per API: whether it exports, whether it customises its gateway responses,
and whom the health call is signed as. --experiment creates a scratch REST API named
apigw-access-auditor-doctor-*, deploys one policy, saves another and exports the stage, to establish which
copy an export carries in your account; it names everything it creates and deletes it, even when interrupted
(it needs apigateway:POST, PATCH, PUT, GET and DELETE on /restapis). Exit: 0 nothing failed, 1 a check failed.
"""


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "doctor", help="check what a first deploy needs (and, opt-in, what the export carries)",
        description="A preflight: what holds, what does not, and the exact fix for each.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--region", required=True, help="the region to check")
    parser.add_argument("--api-id", action="append", default=[], help="an API to check (repeatable)")
    parser.add_argument(
        "--discover", action="store_true", help="check every API tagged access-auditor:allowed-roles"
    )
    parser.add_argument("--health-identity", metavar="ROLE_ARN",
                        help="the role the health call is signed as (an organization's member audit role)")  # fmt: skip
    parser.add_argument("--organization", action="store_true", help="check StackSets trusted access")
    parser.add_argument("--member", action="append", default=[], metavar="ACCOUNT",
                        help="a member account whose audit role must be reachable (repeatable)")  # fmt: skip
    parser.add_argument(
        "--member-role-name", default="apigw-access-auditor-member", help="(default %(default)s)"
    )
    parser.add_argument(
        "--via-role", metavar="ROLE_ARN", help="assume the member roles through this role (the hub's worker)"
    )
    parser.add_argument("--experiment", action="store_true",
                        help="establish which policy copy the export carries, with a scratch API (see below)")  # fmt: skip
    parser.add_argument("--profile", help="AWS profile")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from access_auditor import preflight
    from access_auditor.aws.apigateway import ApiGateway
    from access_auditor.aws.clients import call, make_client
    from access_auditor.sources import ALLOWED_ROLES_TAG

    session = aws_session(args.profile)

    def clients(service: str, region: str) -> Any:
        return make_client(service, region, session)

    def say(text: str) -> None:
        print(f"      {text}", flush=True)

    region = args.region
    outcomes = preflight.check_trail(clients, region)
    if args.organization:
        outcomes += preflight.check_organization(clients, region)
    if args.member:
        outcomes += preflight.check_member_roles(
            clients("sts", region), args.member, args.member_role_name, args.via_role
        )
    apis = list(args.api_id)
    if args.discover:
        apis += [
            a.api_id for a in ApiGateway(clients("apigateway", region)).sweep() if ALLOWED_ROLES_TAG in a.tags
        ]
    outcomes += preflight.check_apis(clients, region, list(dict.fromkeys(apis)), args.health_identity)
    for outcome in outcomes:
        print("\n".join(outcome.lines()))
    if args.experiment:
        print("      the export experiment:")
        account = call("GetCallerIdentity", clients("sts", region).get_caller_identity)["Account"]
        experiment = preflight.export_experiment(clients, region, str(account), say)
        for outcome in experiment:
            print("\n".join(outcome.lines()))
        outcomes += experiment
    failed = [o for o in outcomes if o.status == "fail"]
    sys.stdout.write(
        f"{len(outcomes) - len(failed)} of {len(outcomes)} checks hold"
        + (f"; {len(failed)} to fix\n" if failed else "\n")
    )
    return 1 if failed else 0
