"""Reading resource policies as API Gateway stores them, and normalising them for evaluation.

API Gateway returns the saved policy as compact JSON with every ``"`` and ``/`` backslash-escaped, and it
rewrites the document on save (``execute-api:/*`` becomes the full ARN, a bare account id becomes
``arn:aws:iam::ACCOUNT:root``, one-element lists collapse to strings). Everything here absorbs those
rewrites so that later stages compare meaning, not spelling.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from access_auditor.errors import PolicyParseError

_ACCOUNT_ID = re.compile(r"^\d{12}$")
# API Gateway stores at most 8,192 characters of policy; its escaped form (a backslash before every quote
# and slash) can be about twice that. Anything longer was not read from API Gateway.
MAX_POLICY_CHARS = 20_000
_STATEMENT_KEYS = {
    "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
    "Resource", "NotResource", "Condition",
}  # fmt: skip


@dataclass(frozen=True)
class ApiRef:
    """One REST API: where it lives. ``arn`` is the execute-api ARN prefix its method ARNs start with."""

    region: str
    account: str
    api_id: str
    partition: str = "aws"

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:execute-api:{self.region}:{self.account}:{self.api_id}"

    @classmethod
    def from_arn(cls, arn: str) -> ApiRef:
        """Parse ``arn:aws:execute-api:REGION:ACCOUNT:API_ID`` (a trailing ``/...`` is ignored).

        Raises PolicyParseError when the text is not an execute-api ARN.
        """
        match = re.fullmatch(r"arn:(aws[a-z-]*):execute-api:([a-z0-9-]+):(\d{12}):([A-Za-z0-9]+)(/.*)?", arn)
        if not match:
            raise PolicyParseError(
                f"not an execute-api ARN: {arn!r} (expected arn:aws:execute-api:REGION:ACCOUNT:API_ID)"
            )
        return cls(region=match[2], account=match[3], api_id=match[4], partition=match[1])


@dataclass(frozen=True)
class Condition:
    operator: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    """One statement, normalised: lists are tuples, principals are ARNs or ``*``, shorthand expanded."""

    label: str
    effect: str
    principals: tuple[str, ...] | None
    not_principals: tuple[str, ...] | None
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    conditions: tuple[Condition, ...]
    unmodelled: tuple[str, ...] = ()
    # An element IAM knows and we do not: the statement's effect cannot be evaluated at all. (An unmodelled
    # Service or Federated principal is reported but harmless: it never matches an IAM caller.)
    opaque: bool = False


@dataclass(frozen=True)
class Policy:
    version: str
    statements: tuple[Statement, ...]
    unmodelled: tuple[str, ...] = ()


def parse_policy_text(text: str) -> dict[str, Any]:
    """Decode a policy in its plain JSON form or in API Gateway's backslash-escaped form.

    Returns the document as a dict. Raises PolicyParseError naming what is wrong.

    >>> parse_policy_text('{\\\\"Version\\\\":\\\\"2012-10-17\\\\",\\\\"Statement\\\\":[]}')["Version"]
    '2012-10-17'
    """
    text = text.strip()
    if not text:
        raise PolicyParseError("the policy is empty")
    if len(text) > MAX_POLICY_CHARS:
        raise PolicyParseError(
            f"the policy is {len(text)} characters long, more than API Gateway stores ({MAX_POLICY_CHARS})"
        )
    try:
        doc: Any = _decode(text)
    except json.JSONDecodeError:
        # The escaped form is the body of a JSON string literal; decoding it as one undoes exactly the
        # escaping (unicode_escape would mangle non-ASCII text).
        try:
            doc = _decode(_decode(f'"{text}"'))
        except json.JSONDecodeError as exc:
            raise PolicyParseError(f"the policy is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    if isinstance(doc, str):  # a JSON string holding the document (aws cli output piped through)
        return parse_policy_text(doc)
    if not isinstance(doc, dict):
        raise PolicyParseError(f"the policy must be a JSON object, not {type(doc).__name__}")
    if "Statement" not in doc:
        raise PolicyParseError("the policy has no Statement element")
    return doc


def _decode(text: Any) -> Any:
    """json.loads, with every way hostile JSON can fail turned into a decode error: a number too long to
    convert, nesting deeper than the interpreter's stack, a non-string where text was expected."""
    if not isinstance(text, str):
        raise json.JSONDecodeError("expected a JSON text", "", 0)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError:
        raise
    except RecursionError as exc:
        raise PolicyParseError("the policy is nested too deeply to be a policy") from exc
    except ValueError as exc:  # for example "Exceeds the limit (4300 digits) for integer string conversion"
        reason = str(exc).split(":")[0]  # Python's own advice after the colon is not for our users
        raise PolicyParseError(f"the policy holds a value that cannot be read ({reason})") from exc


def _reject_constant(name: str) -> Any:
    raise PolicyParseError(f"the policy holds {name}, which is not JSON")


def load_policy(doc: Mapping[str, Any], api: ApiRef | None, *, resource_policy: bool = True) -> Policy:
    """Normalise a decoded policy document. ``api`` expands ``execute-api:/`` shorthand.

    Raises PolicyParseError for a document that IAM itself would reject (no Effect, no Action, ...).
    """
    raw_statements = doc["Statement"]
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list):
        raise PolicyParseError("Statement must be an object or a list of objects")
    unmodelled = [f"top-level element {key!r}" for key in doc if key not in {"Version", "Id", "Statement"}]
    if not isinstance(doc.get("Version", ""), str):
        raise PolicyParseError(
            f'Version must be a string such as "2012-10-17", not {type(doc["Version"]).__name__}'
        )
    statements = tuple(
        _load_statement(raw, index, api, resource_policy) for index, raw in enumerate(raw_statements)
    )
    return Policy(
        version=str(doc.get("Version", "2008-10-17")), statements=statements, unmodelled=tuple(unmodelled)
    )


def canonicalize_policy(policy: Policy) -> str:
    """A canonical JSON text for ``policy``: equal for documents that differ only by API Gateway's rewrites,
    list order, Sid or whitespace. Used to tell a structural change from a pure rewrite."""

    def opt(values: tuple[str, ...] | None) -> list[str] | None:
        return sorted(values) if values is not None else None

    statements = [
        {
            "Effect": s.effect,
            "Principal": opt(s.principals),
            "NotPrincipal": opt(s.not_principals),
            "Action": opt(tuple(a.lower() for a in s.actions) if s.actions else s.actions),
            "NotAction": opt(tuple(a.lower() for a in s.not_actions) if s.not_actions else s.not_actions),
            "Resource": opt(s.resources),
            "NotResource": opt(s.not_resources),
            "Condition": sorted([c.operator, c.key.lower(), sorted(c.values)] for c in s.conditions),
        }
        for s in policy.statements
    ]
    statements.sort(key=lambda s: json.dumps(s, sort_keys=True))
    return json.dumps(
        {"Version": policy.version, "Statement": statements}, sort_keys=True, separators=(",", ":")
    )


def _load_statement(raw: Any, index: int, api: ApiRef | None, resource_policy: bool) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyParseError(f"Statement[{index}] must be an object")
    label = f"Statement[{index}]" + (f" (Sid {raw['Sid']})" if raw.get("Sid") else "")
    unmodelled = [f"{label}: element {key!r}" for key in raw if key not in _STATEMENT_KEYS]
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyParseError(f"{label}: Effect must be Allow or Deny, not {effect!r}")
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyParseError(f"{label}: exactly one of Action and NotAction is required")
    if ("Resource" in raw) == ("NotResource" in raw):
        raise PolicyParseError(f"{label}: exactly one of Resource and NotResource is required")
    if resource_policy and ("Principal" in raw) == ("NotPrincipal" in raw):
        raise PolicyParseError(f"{label}: exactly one of Principal and NotPrincipal is required")

    principals = _principals(raw.get("Principal"), label, unmodelled) if "Principal" in raw else None
    not_principals = (
        _principals(raw.get("NotPrincipal"), label, unmodelled) if "NotPrincipal" in raw else None
    )
    return Statement(
        label=label,
        effect=effect,
        principals=principals,
        not_principals=not_principals,
        actions=_strings(raw["Action"], label, "Action") if "Action" in raw else None,
        not_actions=_strings(raw["NotAction"], label, "NotAction") if "NotAction" in raw else None,
        resources=_resources(raw["Resource"], label, api) if "Resource" in raw else None,
        not_resources=_resources(raw["NotResource"], label, api) if "NotResource" in raw else None,
        conditions=_conditions(raw.get("Condition", {}), label),
        unmodelled=tuple(unmodelled),
        opaque=any(key not in _STATEMENT_KEYS for key in raw),
    )


def _strings(value: Any, label: str, element: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) for item in items):
        raise PolicyParseError(f"{label}: {element} must be a string or a non-empty list of strings")
    return tuple(items)


def _resources(value: Any, label: str, api: ApiRef | None) -> tuple[str, ...]:
    resources = _strings(value, label, "Resource")
    if api is None:
        return resources
    # API Gateway expands the shorthand on save; expanding it here makes both spellings compare equal.
    return tuple(
        api.arn + r[len("execute-api:") :] if r.startswith("execute-api:/") else r for r in resources
    )


def _principals(value: Any, label: str, unmodelled: list[str]) -> tuple[str, ...]:
    if value == "*":
        return ("*",)
    if not isinstance(value, dict) or not value:
        raise PolicyParseError(f'{label}: Principal must be "*" or an object such as {{"AWS": [...]}}')
    principals: list[str] = []
    for kind, entries in value.items():
        for entry in _strings(entries, label, f"Principal.{kind}"):
            if kind != "AWS":
                unmodelled.append(f"{label}: principal {kind}:{entry}")
                principals.append(f"{kind}:{entry}")
            elif entry == "*":
                principals.append("*")
            elif _ACCOUNT_ID.match(entry):
                principals.append(f"arn:aws:iam::{entry}:root")
            else:
                principals.append(entry)
    return tuple(principals)


def _conditions(value: Any, label: str) -> tuple[Condition, ...]:
    if not isinstance(value, dict):
        raise PolicyParseError(f"{label}: Condition must be an object")
    conditions: list[Condition] = []
    for operator, block in value.items():
        if not isinstance(block, dict):
            raise PolicyParseError(f"{label}: Condition.{operator} must be an object of key: value(s)")
        for key, raw_values in block.items():
            conditions.append(
                Condition(operator=operator, key=key, values=tuple(_condition_values(raw_values)))
            )
    return tuple(conditions)


def _condition_values(raw: Any) -> Iterable[str]:
    for value in raw if isinstance(raw, list) else [raw]:
        if isinstance(value, bool):
            yield "true" if value else "false"
        elif isinstance(value, str | int | float):
            yield str(value)
        else:
            raise PolicyParseError(f"condition values must be strings, numbers or booleans, not {value!r}")
