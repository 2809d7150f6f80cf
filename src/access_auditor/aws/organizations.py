"""The organization's accounts (AWS Organizations ListAccounts, from the management account or a delegated
administrator)."""

from __future__ import annotations

from typing import Any

from access_auditor.aws.clients import call


def active_accounts(client: Any) -> tuple[list[str], list[str]]:
    """(active account ids, "id (status)" for the others), paging through ListAccounts (20 a page).
    A suspended or closing account cannot be audited; the planner reports it instead of enqueuing it."""
    active: list[str] = []
    other: list[str] = []
    token: str | None = None
    while True:
        answer = call("ListAccounts", client.list_accounts, **({"NextToken": token} if token else {}))
        for account in answer.get("Accounts", []):
            if account.get("Status", "ACTIVE") == "ACTIVE":
                active.append(str(account["Id"]))
            else:
                other.append(f"{account['Id']} ({account.get('Status')})")
        token = answer.get("NextToken")
        if not token:
            return active, other
