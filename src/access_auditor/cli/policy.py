"""``access-auditor policy render | check | apply``: the expected resource policy, offline and live."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from access_auditor.cli.options import aws_session
from access_auditor.errors import AwsCallError, ConfigError, PolicyParseError
from access_auditor.policy.document import ApiRef
from access_auditor.policy.expected import ROLE_ARN, render_expected_policy

ROLE_HELP = "allowed role: an ARN, or a role name looked up in the API's account (repeatable)"


def _network_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vpce", action="append", default=[], metavar="VPCE_ID",
                        help="a private API: also only through this execute-api VPC endpoint (repeatable)")  # fmt: skip
    parser.add_argument("--vpc", action="append", default=[], metavar="VPC_ID",
                        help="a private API: also only from this VPC (repeatable; with --vpce, either lets in)")  # fmt: skip


def register(commands: Any) -> None:
    policy = commands.add_parser(
        "policy", help="render, check or apply the expected resource policy",
        description="The expected resource policy: Deny execute-api:Invoke to all but the allowed roles.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  access-auditor policy render --api-arn ARN --role app > expected.json\n"
               "  access-auditor policy check --policy-file expected.json --api-arn ARN --role ROLE_ARN\n"
               "  access-auditor policy apply --api-id abc123 --region us-east-1 --stage prod --role app --dry-run",
    )  # fmt: skip
    actions = policy.add_subparsers(dest="action", required=True, parser_class=type(policy))

    render = actions.add_parser(
        "render", help="print the expected resource policy", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  access-auditor policy render --api-arn arn:aws:execute-api:us-east-1:123456789012:abc123 "
               "--role arn:aws:iam::123456789012:role/app\n"
               "  access-auditor policy render --region us-east-1 --account 123456789012 --api-id abc123 --role app\n"
               "  access-auditor policy render --api-arn ARN --role app --vpce vpce-0123456789abcdef0   (a private API)",
    )  # fmt: skip
    _api_arguments(render)
    render.add_argument("--role", action="append", required=True, help=ROLE_HELP)
    _network_arguments(render)
    render.add_argument("--profile", help="AWS profile, used only to look up role names")
    render.set_defaults(handler=run_render)

    check = actions.add_parser(
        "check", help="check a saved policy offline (exit 0 ok, 1 drift, 2 unreadable)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  access-auditor policy check --policy-file saved.json --api-arn ARN --role ROLE_ARN\n"
               "  aws apigateway get-rest-api --rest-api-id abc123 --query policy --output text | \\\n"
               "    access-auditor policy check --policy-file - --api-arn ARN --role ROLE_ARN --json",
    )  # fmt: skip
    check.add_argument("--policy-file", required=True, help="plain or API Gateway-escaped JSON; - for stdin")
    check.add_argument("--api-arn", required=True, help="arn:aws:execute-api:REGION:ACCOUNT:API_ID")
    check.add_argument("--role", action="append", required=True, help=ROLE_HELP)
    _network_arguments(check)
    check.add_argument("--private", action="store_true",
                       help="the API is private (endpoint type PRIVATE): callers come only through VPC endpoints")  # fmt: skip
    check.add_argument("--profile", help="AWS profile, used only to look up role names")
    check.add_argument("--stage", default="prod", help="stage the representative methods are placed in")
    check.add_argument("--json", action="store_true", help='print {"drift": bool, "findings": [...]}')
    check.set_defaults(handler=run_check)

    apply = actions.add_parser(
        "apply", help="save the expected policy and deploy the stage",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  access-auditor policy apply --api-id abc123 --region us-east-1 --stage prod "
               "--role arn:aws:iam::123456789012:role/app --dry-run\n"
               "  access-auditor policy apply --api-id abc123 --region us-east-1 --stage prod --role app",
    )  # fmt: skip
    apply.add_argument("--api-id", required=True)
    apply.add_argument("--region", required=True)
    apply.add_argument(
        "--stage", required=True, help="stage to deploy (a saved policy does nothing until then)"
    )
    apply.add_argument("--role", action="append", required=True, help=ROLE_HELP)
    _network_arguments(apply)
    apply.add_argument("--profile", help="AWS profile")
    apply.add_argument("--dry-run", action="store_true",
                       help="show exactly what apply would do, the lockout verdict included, and exit (2: it would refuse)")  # fmt: skip
    apply.add_argument("--include-pending", action="store_true",
                       help="ship the other changes pending on the API with the deployment, knowingly")  # fmt: skip
    apply.add_argument("--force", action="store_true",
                       help="apply even if it locks out you or a principal the current policy lets in")  # fmt: skip
    apply.set_defaults(handler=run_apply)


def _api_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-arn", help="arn:aws:execute-api:REGION:ACCOUNT:API_ID")
    parser.add_argument("--region")
    parser.add_argument("--account")
    parser.add_argument("--api-id")


def _api(args: argparse.Namespace) -> ApiRef:
    if args.api_arn:
        return ApiRef.from_arn(args.api_arn)
    if not (args.region and args.account and args.api_id):
        raise ConfigError("give --api-arn, or all of --region, --account and --api-id")
    return ApiRef.from_arn(f"arn:aws:execute-api:{args.region}:{args.account}:{args.api_id}")


def role_arn_by_name(iam: Any, name: str) -> str:
    """A role's ARN from its name, path included: aws:PrincipalArn carries the path, and a hand-built ARN
    without it would lock the role out. Raises AwsCallError or CredentialsError."""
    from access_auditor.aws.clients import call

    try:
        return str(call("GetRole", iam.get_role, RoleName=name)["Role"]["Arn"])
    except AwsCallError as exc:
        if exc.code == "NoSuchEntity":  # a typo in --role is bad input, not a network failure
            raise ConfigError(f"--role {name}: no IAM role of that name in this account") from exc
        raise


def resolve_roles(names: list[str], account: str | None, session: Any, region: str | None) -> list[str]:
    """ARNs pass through; a bare name is looked up in IAM (see role_arn_by_name), and must be of ``account``
    when it is known. ``session``: a botocore session, or a callable making one (called only for a name)."""
    from access_auditor.aws.clients import make_client

    resolved = []
    iam = None
    for name in names:
        if name.startswith("arn:"):
            if not ROLE_ARN.match(name):
                raise ConfigError(
                    f"--role {name}: not an IAM role ARN (expected arn:aws:iam::ACCOUNT:role/NAME)"
                )
            resolved.append(name)
            continue
        if callable(session):
            session = session()
        iam = iam or make_client("iam", region or "us-east-1", session)  # IAM is global
        arn = role_arn_by_name(iam, name)
        if account and arn.split(":")[4] != account:
            raise ConfigError(f"--role {name}: found in account {arn.split(':')[4]}, not the API's {account}")
        resolved.append(arn)
    return resolved


def run_render(args: argparse.Namespace) -> int:
    api = _api(args)
    roles = resolve_roles(args.role, api.account, aws_session(args.profile), api.region)
    print(json.dumps(render_expected_policy(api, roles, args.vpce, args.vpc), indent=2))
    return 0


def run_check(args: argparse.Namespace) -> int:
    from access_auditor.policy.analysis import check_policy, representative_methods

    api = ApiRef.from_arn(args.api_arn)
    roles = resolve_roles(args.role, api.account, lambda: aws_session(args.profile), api.region)
    try:
        text = sys.stdin.read() if args.policy_file == "-" else Path(args.policy_file).read_text()
    except OSError as exc:
        raise ConfigError(f"--policy-file {args.policy_file}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise PolicyParseError(f"--policy-file {args.policy_file}: not UTF-8 text") from exc
    verdict = check_policy(text, api, roles, representative_methods(args.stage), vpces=args.vpce, vpcs=args.vpc,
                           private=args.private or bool(args.vpce or args.vpc))  # fmt: skip
    if args.json:
        print(
            json.dumps(
                {"drift": verdict.drift, "findings": [f.as_dict() for f in verdict.findings]}, indent=2
            )
        )
    else:
        print("drift" if verdict.drift else "ok: the policy enforces exactly the expected restriction")
        for finding in verdict.findings:
            print(f"  {finding.severity.value.upper():8} {finding.code}: {finding.message}")
    return 1 if verdict.drift else 0


def run_apply(args: argparse.Namespace) -> int:
    from access_auditor.cli.apply import run  # its planning is imported only when apply runs

    return run(args)
