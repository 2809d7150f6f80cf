"""Hostile resource policies of up to API Gateway's 8,192 characters, each built to make a naive evaluator
slow: backtracking wildcards, and every dimension of the analysis (networks, principals, organisations,
statements) at once. Shared by the tests (a verdict, never a traceback) and `make bench` (how long)."""

from __future__ import annotations

import json
from typing import Any

from access_auditor.policy.document import ApiRef

LIMIT = 8192


def _fill(make: Any, limit: int = LIMIT) -> str:
    """The largest ``make(n)`` whose JSON text stays within ``limit`` characters."""
    n, text = 1, json.dumps(make(1))
    while True:
        bigger = json.dumps(make(n + 1))
        if len(bigger) > limit:
            return text
        n, text = n + 1, bigger


def _deny(api: ApiRef, role: str, **changes: Any) -> dict[str, Any]:
    statement = {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": f"{api.arn}/*",
                 "Condition": {"StringNotEquals": {"aws:PrincipalArn": role}}}  # fmt: skip
    statement.update(changes)
    return statement


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def adversarial_policies(api: ApiRef, role: str) -> dict[str, str]:
    account = api.account
    return {
        "backtracking Resource": _fill(lambda n: _doc(_deny(api, role, Resource=[f"{api.arn}/" + "*?" * n + "Z"]))),
        "backtracking ArnNotLike": _fill(lambda n: _doc(_deny(
            api, role, Condition={"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/" + "*a" * n}})),
        ),
        "hundreds of IP ranges": _fill(lambda n: _doc(_deny(api, role, Condition={
            "StringNotEquals": {"aws:PrincipalArn": role},
            "NotIpAddress": {"aws:SourceIp": [f"10.{i // 256}.{i % 256}.0/24" for i in range(n)]}}))),
        "hundreds of principals": _fill(lambda n: _doc(
            {"Effect": "Deny", "NotPrincipal": {"AWS": [f"arn:aws:iam::{account}:root", role]
                                               + [f"arn:aws:iam::{account}:role/r{i}" for i in range(n)]},
             "Action": "execute-api:Invoke", "Resource": f"{api.arn}/*"})),
        "many statements of every kind": _fill(lambda n: _doc(_deny(api, role), *[
            {"Effect": "Allow" if i % 2 else "Deny", "Principal": {"AWS": f"arn:aws:iam::{100000000000 + i}:role/x"},
             "Action": "execute-api:Invoke", "Resource": f"{api.arn}/s{i}/*/p{i}",
             "Condition": {"IpAddress": {"aws:SourceIp": f"192.168.{i}.0/24"},
                           "StringEquals": {"aws:PrincipalOrgID": f"o-{i:08d}", "aws:SourceVpce": f"vpce-{i}"}}}
            for i in range(n)])),
    }  # fmt: skip
