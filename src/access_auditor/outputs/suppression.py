"""Suppressions, from the configuration document's ``suppressions`` list: a finding that one matches is kept
(logged, counted in the ``Suppressed`` metric, sent to Security Hub as SUPPRESSED) but raises no alarm,
until the suppression's expiry, when it comes back by itself.

Each entry matches by any of ``apis`` (ids), ``tag`` (``key=value`` on the API), ``codes`` and ``principal``
(a pattern, ``*`` and ``?`` as wildcards, on whom the finding is about), all given ones at once; each carries a
``justification`` and an ``expires`` date. A ``tag`` entry must also name its ``codes``: whoever can tag an
API would otherwise be able to mute all of its findings.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from access_auditor.errors import ConfigError
from access_auditor.findings import CODES, Finding

__all__ = ["SUPPRESSION_KEYS", "Suppression", "parse_suppressions"]

SUPPRESSION_KEYS = {
    "apis": "REST API ids it applies to",
    "tag": "key=value: APIs carrying this tag (codes required)",
    "codes": "finding codes it applies to",
    "principal": "pattern (* and ?) on whom the finding is about, as its subject names it",
    "justification": "why (required, at least 10 characters)",
    "expires": "date or time it ends (required, at most a year ahead; UTC)",
}
MAX_AHEAD = dt.timedelta(days=366)


@dataclass(frozen=True)
class Suppression:
    justification: str
    expires: dt.datetime
    apis: frozenset[str] | None = None
    tag: tuple[str, str] | None = None
    codes: frozenset[str] | None = None
    principal: str | None = None

    def matches(self, finding: Finding, api_id: str, tags: Mapping[str, str], now: dt.datetime) -> bool:
        if now >= self.expires:
            return False
        if self.apis is not None and api_id not in self.apis:
            return False
        if self.tag is not None and tags.get(self.tag[0]) != self.tag[1]:
            return False
        if self.codes is not None and finding.code not in self.codes:
            return False
        # A finding about several callers is muted only if the pattern covers each of them.
        return self.principal is None or (
            bool(finding.subject)
            and all(fnmatch.fnmatchcase(who, self.principal) for who in finding.subject.split(", "))
        )

    def describe(self) -> str:
        return f"{self.justification} (until {self.expires:%Y-%m-%d %H:%M}Z)"


def parse_suppressions(raw: Any, where: str, now: dt.datetime) -> tuple[Suppression, ...]:
    """The document's ``suppressions``; raises ConfigError naming the entry and field."""
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected a list")
    return tuple(_one(item, f"{where}[{i}]", now) for i, item in enumerate(raw))


def _one(item: Any, where: str, now: dt.datetime) -> Suppression:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected an object with justification, expires and what it matches")
    unknown = sorted(str(k) for k in set(item) - set(SUPPRESSION_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; expected some of {', '.join(SUPPRESSION_KEYS)}"
        )
    justification = item.get("justification")
    if not isinstance(justification, str) or len(justification.strip()) < 10:
        raise ConfigError(f"{where}.justification: required, a sentence of at least 10 characters saying why")
    expires = _expiry(item.get("expires"), f"{where}.expires", now)
    apis = _strings(item, "apis", where)
    codes = _strings(item, "codes", where)
    for code in codes or ():
        if code not in CODES:
            raise ConfigError(
                f"{where}.codes: {code!r} is not a finding code (access-auditor findings lists them)"
            )
    tag = None
    if "tag" in item:
        text = item["tag"]
        if not isinstance(text, str) or "=" not in text or not text.split("=", 1)[0].strip():
            raise ConfigError(f"{where}.tag: expected key=value")
        if codes is None:
            raise ConfigError(f"{where}.codes: a tag suppression must name its codes (whoever can tag an API "
                              "could otherwise mute every finding of it)")  # fmt: skip
        key, value = text.split("=", 1)
        tag = (key.strip(), value.strip())
    principal = item.get("principal")
    if principal is not None and (not isinstance(principal, str) or not principal.strip()):
        raise ConfigError(
            f"{where}.principal: expected a pattern such as arn:aws:iam::123456789012:role/ci-*"
        )
    if apis is None and tag is None and codes is None and principal is None:
        raise ConfigError(f"{where}: matches everything; name apis, tag, codes or principal")
    return Suppression(justification.strip(), expires, apis, tag, codes, principal)


def _strings(item: dict[str, Any], key: str, where: str) -> frozenset[str] | None:
    if key not in item:
        return None
    value = item[key]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}.{key}: expected a non-empty list of strings")
    return frozenset(value)


def _expiry(value: Any, where: str, now: dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and re.fullmatch(
        r"\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?", value.strip()
    ):
        try:
            when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError(f"{where}: {value!r} is not a date ({exc})") from exc
    else:
        raise ConfigError(f"{where}: required, a date such as 2027-01-31 (UTC)")
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    if when - now > MAX_AHEAD:
        raise ConfigError(
            f"{where}: {when:%Y-%m-%d} is more than a year ahead; a suppression must be reviewed"
        )
    return when
