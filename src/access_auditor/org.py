"""An organization on AWS's own fan-out: the pure part.

The planner turns the accounts and regions into shards, one SQS message each; a worker audits one shard
(one account and region) as that account's member audit role, then reports how the shard went. Every
shard of every cycle ends in exactly one report (audited, deferred or failed, with the reason), so a shard
that stopped reporting shows: ``ShardsPlanned`` minus ``ShardReported`` for the cycle's timestamp.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from access_auditor.audit import TargetResult
from access_auditor.config import AuditConfig, Discovery
from access_auditor.errors import ConfigError
from access_auditor.findings import Category

__all__ = [
    "Shard",
    "ShardReport",
    "member_role_arn",
    "outside_plan",
    "plan_shards",
    "report_shard",
    "shard_config",
]

_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
MESSAGE_KIND = "access-auditor/shard"
CYCLE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # a cycle's time, in messages and logs (UTC, to the second)


@dataclass(frozen=True)
class Shard:
    """One account and region of one cycle; ``cycle`` is when the planner ran (the metrics' timestamp)."""

    account: str
    region: str
    cycle: dt.datetime

    @property
    def key(self) -> str:
        return f"{self.account}/{self.region}"

    def body(self) -> str:
        return json.dumps({"kind": MESSAGE_KIND, "account": self.account, "region": self.region,
                           "cycle": self.cycle.strftime(CYCLE_FORMAT)})  # fmt: skip

    @classmethod
    def from_body(cls, body: str) -> Shard:
        """Raises ValueError naming what is wrong with a message that is not a shard."""
        try:
            raw = json.loads(body)
        except ValueError as exc:
            raise ValueError(f"not JSON ({exc})") from exc
        if not isinstance(raw, dict) or raw.get("kind") != MESSAGE_KIND:
            raise ValueError(f"not a shard message (kind is not {MESSAGE_KIND!r})")
        account, region = str(raw.get("account", "")), str(raw.get("region", ""))
        if not _ACCOUNT.match(account) or not _REGION.match(region):
            raise ValueError(f"account {account!r} or region {region!r} is not valid")
        try:
            cycle = dt.datetime.strptime(str(raw.get("cycle")), CYCLE_FORMAT).replace(tzinfo=dt.UTC)
        except ValueError as exc:
            raise ValueError(f"cycle {raw.get('cycle')!r} is not a UTC time") from exc
        return cls(account, region, cycle)


def plan_shards(
    accounts: Iterable[str], regions: Sequence[str], excluded: Iterable[str], cycle: dt.datetime
) -> list[Shard]:
    """One shard per account and region, accounts in a stable order, the excluded ones left out."""
    skip = set(excluded)
    chosen = sorted({a for a in accounts if a not in skip})
    return [Shard(account, region, cycle) for account in chosen for region in regions]


MAX_SHARD_AGE = dt.timedelta(hours=2)  # 3 receives x the 30-minute visibility timeout, and some slack
MAX_CLOCK_SKEW = dt.timedelta(minutes=1)


def outside_plan(
    shard: Shard, regions: Sequence[str], excluded: Iterable[str], members: Iterable[str], now: dt.datetime
) -> str | None:
    """Why a shard is not one the planner could have planned (None: it could): an account that is not an
    active member of the organization, or that is excluded; a region not configured; a cycle from the future
    or older than a shard can live in the queue. Such a message is refused, never audited or counted."""
    if shard.account not in set(members):
        return f"account {shard.account} is not an active account of the organization"
    if shard.account in set(excluded):
        return f"account {shard.account} is excluded"
    if shard.region not in regions:
        return f"region {shard.region} is not one of the configured regions ({', '.join(regions)})"
    if shard.cycle > now + MAX_CLOCK_SKEW or now - shard.cycle > MAX_SHARD_AGE:
        return f"cycle {shard.cycle.strftime(CYCLE_FORMAT)} is not a cycle the planner could have planned now"
    return None


def member_role_arn(account: str, role_name: str, partition: str = "aws") -> str:
    """The member audit role the StackSet deploys in ``account`` (a fixed name, no path)."""
    if not _ACCOUNT.match(account):
        raise ConfigError(f"{account!r} is not a 12-digit account id")
    return f"arn:{partition}:iam::{account}:role/{role_name}"


def shard_config(base: AuditConfig, shard: Shard, role_arn: str) -> AuditConfig:
    """What one shard audits: the tagged APIs of its account and region (and the configuration's explicit
    entries there), with the hub's defaults, as the member audit role ``role_arn``."""
    apis = base.discovery.apis if base.discovery else None
    here = tuple(t for t in base.targets if (t.account, t.region) == (shard.account, shard.region))
    return replace(base, targets=here, discovery=Discovery((shard.region,), apis), account=shard.account,
                   health_identity=role_arn)  # fmt: skip


@dataclass(frozen=True)
class ShardReport:
    """How one shard went: ``audited`` (every target done), ``deferred`` (some left for next cycle, by quota
    or deadline) or ``failed`` (the shard could not be audited, or part of it could not be read)."""

    shard: Shard
    outcome: str
    reason: str
    targets: int
    deferred: int
    errors: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"account": self.shard.account, "region": self.shard.region,
                "cycle": self.shard.cycle.strftime(CYCLE_FORMAT), "outcome": self.outcome,
                "reason": self.reason, "targets": self.targets, "deferred": self.deferred, "errors": self.errors,
                "seconds": round(self.seconds, 2)}  # fmt: skip


def report_shard(shard: Shard, results: Sequence[TargetResult], seconds: float) -> ShardReport:
    """The shard's outcome from its targets' results: a placeholder target (API ``*``, the
    shard itself: its role, its sweep) with an audit error fails the shard, and its finding is the reason."""
    whole = [r for r in results if r.target.api_id == "*" and r.has(Category.AUDIT_ERROR)]
    apis = [r for r in results if r.target.api_id != "*"]
    deferred = sum(1 for r in apis if r.deferred)
    errors = sum(1 for r in apis if r.audit_error)
    if whole:
        first = next(f for f in whole[0].findings if Category.AUDIT_ERROR in f.categories)
        return ShardReport(
            shard, "failed", f"{first.code}: {first.message}", len(apis), deferred, errors, seconds
        )
    if deferred:
        reason = f"{deferred} of {len(apis)} targets deferred to the next cycle"
        return ShardReport(shard, "deferred", reason, len(apis), deferred, errors, seconds)
    reason = f"{len(apis)} targets audited" + (f", {errors} with an audit error" if errors else "")
    return ShardReport(shard, "audited", reason, len(apis), deferred, errors, seconds)
