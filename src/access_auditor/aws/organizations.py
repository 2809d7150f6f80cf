"""The organization's accounts (AWS Organizations ListAccounts, from the management account or a delegated
administrator)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from access_auditor.aws.clients import call

__all__ = ["AUDITABLE_STATE", "Accounts", "list_accounts"]

# An account's life cycle is PENDING_ACTIVATION, ACTIVE, SUSPENDED, PENDING_CLOSURE, CLOSED ("Monitor the
# state of your AWS accounts", Organizations user guide); only an ACTIVE account can be signed in to.
AUDITABLE_STATE = "ACTIVE"


@dataclass(frozen=True)
class Accounts:
    """The organization's accounts: those to audit, and the others with the state that keeps them out."""

    active: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (account id, state)


def list_accounts(client: Any) -> Accounts:
    """Every account, paging through ListAccounts (20 a page; a page may be empty while NextToken says more
    follow). An account is audited only when its ``State`` is ACTIVE. ``Status`` was retired on 2026-09-09
    (SDK model), so it is read only when an older answer has no ``State``; an account that has neither is
    skipped, not assumed active."""
    active: list[str] = []
    skipped: list[tuple[str, str]] = []
    token: str | None = None
    while True:
        answer = call("ListAccounts", client.list_accounts, **({"NextToken": token} if token else {}))
        for account in answer.get("Accounts", []):
            state = str(account.get("State") or account.get("Status") or "UNKNOWN")
            if state == AUDITABLE_STATE:
                active.append(str(account["Id"]))
            else:
                skipped.append((str(account["Id"]), state))
        token = answer.get("NextToken")
        if not token:
            return Accounts(tuple(active), tuple(skipped))
