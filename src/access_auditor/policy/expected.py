"""The expected resource policy: deny execute-api:Invoke to everyone but the allowed roles."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from access_auditor.errors import ConfigError
from access_auditor.policy.document import ApiRef

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]+$")
VPCE_ID = re.compile(r"^vpce-[0-9a-f]{8,17}$")
VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")


def network_ids(
    values: Sequence[str], pattern: re.Pattern[str], what: str, name: str | None = None
) -> tuple[str, ...]:
    """Endpoint or VPC ids, checked, sorted, once each. Raises ConfigError naming the bad one and where it was
    given (``name``: a setting; by default the CLI's flag)."""
    for value in values:
        if not pattern.match(value):
            where = name or ("--vpce" if pattern is VPCE_ID else "--vpc")
            raise ConfigError(f"{where} {value}: not a {what} id (expected {pattern.pattern.strip('^$')})")
    return tuple(sorted(set(values)))


def role_account(role_arn: str) -> str:
    """The account id in a role ARN. Raises ConfigError when ``role_arn`` is not a role ARN."""
    match = ROLE_ARN.match(role_arn)
    if not match:
        raise ConfigError(f"not an IAM role ARN: {role_arn!r} (expected arn:aws:iam::ACCOUNT:role/PATH/NAME)")
    return match[1]


def render_expected_policy(
    api: ApiRef, allowed_roles: list[str], vpces: Sequence[str] = (), vpcs: Sequence[str] = ()
) -> dict[str, Any]:
    """The resource policy that lets only ``allowed_roles`` invoke ``api`` (and, for a private API, only
    through the VPC endpoints ``vpces`` or from the VPCs ``vpcs``).

    One Deny with ``StringNotEquals`` on ``aws:PrincipalArn``: the key is absent on anonymous requests, and a
    negated operator is true when its key is absent, so anonymous callers are denied too. Roles in the
    API's own account need only their identity policy; a role in another account also needs an Allow here,
    because cross-account access requires both sides to allow.

    With endpoints or VPCs, a second Deny refuses every request that comes through none of them: the form
    the developer guide documents for private APIs ("Deny ... unless aws:SourceVpce"), its two conditions
    ANDed, so that a request through a listed endpoint *or* from a listed VPC is let through. A request not
    made through an endpoint carries neither key, and the negated operators then hold: it is refused.

    >>> render_expected_policy(ApiRef("us-east-1", "123456789012", "abc123"),
    ...     ["arn:aws:iam::123456789012:role/app"])["Statement"][0]["Resource"]
    'arn:aws:execute-api:us-east-1:123456789012:abc123/*'
    """
    if not allowed_roles:
        raise ConfigError("at least one allowed role is required")
    roles = sorted(set(allowed_roles))
    cross_account = [arn for arn in roles if role_account(arn) != api.account]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "DenyAllButAllowedRoles",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": f"{api.arn}/*",
            "Condition": {"StringNotEquals": {"aws:PrincipalArn": roles if len(roles) > 1 else roles[0]}},
        }
    ]
    endpoints, networks = network_ids(vpces, VPCE_ID, "VPC endpoint"), network_ids(vpcs, VPC_ID, "VPC")
    if endpoints or networks:
        where = {"aws:SourceVpce": list(endpoints)} if endpoints else {}
        where |= {"aws:SourceVpc": list(networks)} if networks else {}
        statements.append(
            {
                "Sid": "DenyAllButAllowedNetworks",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": f"{api.arn}/*",
                "Condition": {"StringNotEquals": {k: v if len(v) > 1 else v[0] for k, v in where.items()}},
            }
        )
    if cross_account:
        statements.append(
            {
                "Sid": "AllowCrossAccountRoles",
                "Effect": "Allow",
                "Principal": {"AWS": cross_account},
                "Action": "execute-api:Invoke",
                "Resource": f"{api.arn}/*",
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def apply_command(api: ApiRef, allowed_roles: Sequence[str], stage: str) -> str:
    """The command that saves the expected policy on ``api`` and deploys ``stage``, as a dry run first."""
    roles = " ".join(f"--role {role}" for role in allowed_roles)
    return f"access-auditor policy apply --api-id {api.api_id} --region {api.region} --stage {stage} {roles} --dry-run"


def tag_command(api: ApiRef, tag: str, values: Sequence[str]) -> str:
    """The AWS CLI command that sets ``tag`` on ``api`` to ``values`` (space-separated, as the tag is read)."""
    value = " ".join(values)
    return (f"aws apigateway tag-resource --region {api.region} --resource-arn "
            f"arn:{api.partition}:apigateway:{api.region}::/restapis/{api.api_id} --tags '{tag}={value}'")  # fmt: skip
