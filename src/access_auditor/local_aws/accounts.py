"""Several accounts in one local AWS, behaving as AWS does where an organization's auditor depends on it:

* STS AssumeRole is refused (AccessDenied, as STS words it) when the role does not exist, when its trust
  policy does not admit the caller, and, across accounts, when the caller's own policies do not allow
  sts:AssumeRole on it ("IAM roles: granting a user permissions to switch roles"). moto alone hands out
  credentials for any ARN. The decision uses the gateway's own policy reader (``access``), with
  aws:PrincipalArn, aws:PrincipalAccount and aws:PrincipalOrgID (the caller's organization), and
  aws:ResourceOrgID (the role's account's organization) for the caller's own policies, in the context.
  Same-account callers are judged by the trust policy alone, and the admin keys the tests and the demo
  build the world with act as the default account's root;
* Organizations answers with ``State`` only: ``Status`` was retired on 2026-09-09 (the SDK model's note on
  ListAccounts), and an account can be put in any of the five documented states (``set_account_state``);
* a region can be marked as not enabled in an account (an opt-in region): every control-plane call there
  gets 403 UnrecognizedClientException, as AWS answers credentials sent to a region the account has not
  enabled.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from moto.iam.models import iam_backends
from moto.organizations.models import FakeAccount, organizations_backends
from moto.sts.responses import TokenResponse

from access_auditor.local_aws import access

DEFAULT_ACCOUNT = "123456789012"  # moto's: what keys it issued no session for act as
DISABLED_REGIONS: set[tuple[str, str]] = set()  # (account, region) where the account has not enabled it


def organization_of(account: str) -> str | None:
    """The id of the organization ``account`` belongs to (as its management or a member account)."""
    master = organizations_backends.master_accounts.get(account, (account, "aws"))[0]
    org = organizations_backends[master]["aws"].org
    return str(org.id) if org is not None else None


def caller_of(access_key: str) -> tuple[access.Caller, tuple[str, ...]]:
    """The caller behind ``access_key`` and its identity policies (none for the admin keys)."""
    from access_auditor.local_aws.emulation import assumed_session

    found = assumed_session(access_key)
    if found is None:
        account = DEFAULT_ACCOUNT
        caller = access.Caller(f"arn:aws:iam::{account}:root", account)
        policies: tuple[str, ...] = ()
    else:
        session, account = found
        caller = access.Caller(session.role_arn, account, session.arn)
        try:
            policies = policy_documents(iam_backends[account]["aws"].get_role_by_arn(session.role_arn))
        except Exception:
            policies = ()  # the role was deleted after the session was issued
    org = organization_of(account)
    keys = {"aws:principalorgid": org} if org else {}
    return access.Caller(caller.arn, caller.account, caller.session, keys), policies


def policy_documents(principal: Any) -> tuple[str, ...]:
    """A role's or user's identity policies: inline, and the default version of each managed one."""
    inline = tuple(str(doc) for doc in principal.policies.values())
    managed = tuple(
        version.document
        for policy in principal.managed_policies.values()
        for version in policy.versions
        if version.is_default
    )
    return inline + managed


def refusal(access_key: str, role_arn: str) -> str | None:
    """Why STS refuses ``role_arn`` to this caller, or None."""
    caller, policies = caller_of(access_key)
    denied = f"User: {caller.session or caller.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    parts = role_arn.split(":")
    if len(parts) != 6 or not parts[5].startswith("role/"):
        return denied
    try:
        role = iam_backends[parts[4]]["aws"].get_role_by_arn(role_arn)
    except Exception:
        return denied  # STS does not say whether the role is missing or the trust refuses
    trust = json.loads(unquote(role.assume_role_policy_document))
    if not access.trust_admits(trust, caller):
        return denied
    if caller.account != parts[4] and caller.arn != f"arn:aws:iam::{caller.account}:root":
        documents = [json.loads(unquote(doc)) for doc in policies]
        # aws:ResourceOrgID: the organization of the account that owns the role (IAM global condition keys).
        resource_org = organization_of(parts[4])
        asking = access.Caller(caller.arn, caller.account, caller.session,
                               {**caller.keys, **({"aws:resourceorgid": resource_org} if resource_org else {})})  # fmt: skip
        if not access.identity_grants(documents, asking, role_arn, access.ASSUME_ROLE):
            return denied
    return None


def install() -> None:
    original = TokenResponse.assume_role

    def assume_role(self: Any) -> Any:
        why = refusal(self.get_access_key(), str(self._get_param("RoleArn")))
        if why:  # STS's own error document (AccessDenied is not among the error shapes of its model)
            body = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                    f"<Code>AccessDenied</Code><Message>{escape(why)}</Message></Error>"
                    f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")  # fmt: skip
            return body, {"status": 403, "Content-Type": "text/xml"}
        return original(self)

    TokenResponse.assume_role = assume_role  # type: ignore[method-assign]
    original_describe = FakeAccount.describe

    def describe(self: Any) -> dict[str, Any]:
        answer = original_describe(self)
        answer.pop("Status", None)  # retired on 2026-09-09: real answers carry State alone
        return answer

    FakeAccount.describe = describe  # type: ignore[method-assign]


ACCOUNT_STATES = ("PENDING_ACTIVATION", "ACTIVE", "SUSPENDED", "PENDING_CLOSURE", "CLOSED")


def set_account_state(account: str, state: str) -> None:
    """Put an organization's member account in one of the states Organizations documents."""
    if state not in ACCOUNT_STATES:
        raise ValueError(f"{state!r} is not an account state ({', '.join(ACCOUNT_STATES)})")
    master = organizations_backends.master_accounts[account][0]
    organizations_backends[master]["aws"].get_account_by_id(account).state = state


def lambda_credentials(role_arn: str, session_name: str) -> dict[str, str]:
    """The credentials Lambda gives a function whose execution role is ``role_arn``: the Lambda service
    assumes the role (its trust policy names lambda.amazonaws.com), not a caller of this local AWS."""
    from moto.sts.models import sts_backends

    backend = sts_backends[role_arn.split(":")[4]]["aws"]
    role = backend.assume_role(region_name="us-east-1", role_session_name=session_name, role_arn=role_arn,
                               policy="", duration=3600, external_id="")  # fmt: skip
    return {"AWS_ACCESS_KEY_ID": role.access_key_id, "AWS_SECRET_ACCESS_KEY": role.secret_access_key,
            "AWS_SESSION_TOKEN": role.session_token}  # fmt: skip


def region_disabled(account: str, region: str) -> bool:
    return (account, region) in DISABLED_REGIONS
