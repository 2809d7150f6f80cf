"""An organization's Lambda entry points, wiring only: ``plan_handler`` runs on the schedule and sends one
message per account and region to the shard queue; ``work_handler`` is that queue's event source mapping
(and the hub's alarm notifications). The plan and the shard reports are ``org.py``; the audit is
``audit.py``, the same as a single account's.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.session import Session

from access_auditor import handler
from access_auditor.audit import TargetResult, run_audit
from access_auditor.aws.clients import make_client
from access_auditor.aws.credentials import StsCredentials
from access_auditor.aws.dynamodb import AuthenticatedStore, DynamoTable
from access_auditor.aws.kms import KmsMac
from access_auditor.config import AuditConfig, HubConfig, function_region, load_hub_config
from access_auditor.errors import ConfigError, CredentialsError
from access_auditor.findings import finding
from access_auditor.observation import Ports, Scope
from access_auditor.org import (
    CYCLE_FORMAT,
    Shard,
    ShardReport,
    member_role_arn,
    outside_plan,
    plan_shards,
    report_shard,
    shard_config,
)
from access_auditor.publish import AUDIT_ERROR, SHARD_REPORTED, SHARDS_PLANNED
from access_auditor.redact import redact
from access_auditor.sources import placeholder
from access_auditor.wiring import build_ports, once_per_key

logger = Logger(logger_formatter=handler.RedactingFormatter())
metrics = Metrics()
MAX_SHARDS_AT_ONCE = 10  # a batch's shards run side by side: their quota waits overlap, billed once


@lru_cache(maxsize=2)
def _settings(planner: bool) -> tuple[AuditConfig, HubConfig]:
    return handler.load_audit_config(), load_hub_config(os.environ, planner=planner)


@lru_cache(maxsize=1)
def _hub_credentials() -> StsCredentials:
    return StsCredentials(Session())  # the function's own role; assumed roles cached until near expiry


def _member_ports(key: tuple[Scope, float]) -> Ports:
    """A member account's ports, kept while the function is warm: clients, quota buckets, the deployment
    cache and the run memory of that account and region, signing as its member audit role (renewed by
    botocore before the session expires)."""
    scope, share = key
    _, hub = _settings(False)
    session = _hub_credentials().session_as(
        member_role_arn(scope.account, hub.member_role_name), scope.region
    )
    store = (AuthenticatedStore(DynamoTable(make_client("dynamodb", hub.region), hub.cache_table),
                                KmsMac(make_client("kms", hub.region), hub.cache_mac_key))
             if hub.cache_table else None)  # fmt: skip
    return build_ports(session, share, store)


_ports = once_per_key(_member_ports)


def _member_session(account: str, region: str) -> Session:
    _, hub = _settings(False)
    return _hub_credentials().session_as(member_role_arn(account, hub.member_role_name), region)


@logger.inject_lambda_context(clear_state=True)
def plan_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Send this cycle's shards; ``ShardsPlanned`` (stamped with the cycle's time) is what the workers'
    ``ShardReported`` must add up to. Raises on a configuration or Organizations failure, so that Lambda's
    Errors alarm and the missing ShardsPlanned say the cycle did not start."""
    cycle = dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        config, hub = _settings(True)
        skipped: tuple[tuple[str, str], ...] = ()
        if hub.accounts is not None:
            accounts = list(hub.accounts)
        else:
            from access_auditor.aws.organizations import list_accounts

            listed = list_accounts(make_client("organizations", hub.region))
            accounts, skipped = list(listed.active), listed.skipped
        regions = config.discovery.regions if config.discovery else ()
        shards = plan_shards(accounts, regions, hub.excluded, cycle)
        from access_auditor.aws.sqs import send_all

        unsent = send_all(make_client("sqs", hub.region), hub.queue_url, [s.body() for s in shards])
    except Exception as exc:
        logger.error(
            "the cycle could not be planned", extra={"error": redact(f"{type(exc).__name__}: {exc}")}
        )
        metrics.add_metric(name=AUDIT_ERROR, unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()
        raise
    for (
        account,
        state,
    ) in skipped:  # accounted for, not failed: an account that is not ACTIVE cannot be audited
        logger.info("account skipped: it is not active", extra={"account": account, "state": state})
    if unsent:
        logger.error("shards could not be queued; they show as missing this cycle", extra={"shards": unsent})
    metrics.set_timestamp(cycle)
    metrics.add_metric(name=SHARDS_PLANNED, unit=MetricUnit.Count, value=len(shards))
    metrics.flush_metrics()
    logger.info("cycle planned", extra={"cycle": cycle.strftime(CYCLE_FORMAT), "shards": len(shards),
                                        "accounts": len({s.account for s in shards}), "unsent": len(unsent),
                                        "skipped": [f"{a} ({state})" for a, state in skipped]})  # fmt: skip
    return {
        "ok": not unsent,
        "cycle": cycle.strftime(CYCLE_FORMAT),
        "shards": len(shards),
        "unsent": len(unsent),
        "skipped": dict(skipped),
    }


@logger.inject_lambda_context(clear_state=True)
def work_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Audit the batch's shards side by side, each as its account's member audit role; publish each API as a
    single account's run does, and one ``shard reported`` line and ``ShardReported`` per shard. A shard that
    could not finish (a bug, a configuration error) goes back to the queue; its dead-letter queue alarms."""
    if isinstance(event, dict) and event.get("source") == "aws.cloudwatch":
        return handler.notify_alarm(event, context)
    if isinstance(event, dict) and event.get("source") == "aws.ssm":
        return handler.notify_config_change(event)
    if isinstance(event, dict) and "resultToken" in event:
        return organization_config_rule(event, context)
    from aws_lambda_powertools.utilities.data_classes import SQSEvent

    records = list(SQSEvent(event).records)
    failures: list[str] = []
    shards: dict[str, Shard] = {}
    for record in records:
        try:
            shards[record.message_id] = Shard.from_body(record.body)
        except ValueError as exc:  # kept, not dropped: it ends in the dead-letter queue, which alarms
            logger.error("a queued message is not a shard", extra={"error": redact(str(exc))})
            failures.append(record.message_id)
    try:
        config, hub = _settings(False)
    except Exception as exc:
        error = redact(
            str(exc) if isinstance(exc, ConfigError) else f"internal error: {type(exc).__name__}: {exc}"
        )
        logger.error("invalid configuration", extra={"error": error})
        metrics.add_metric(name=AUDIT_ERROR, unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()
        return {"batchItemFailures": [{"itemIdentifier": r.message_id} for r in records]}
    try:
        members = _members(hub)
    except Exception as exc:  # the plan cannot be checked: nothing is audited on a message's say-so
        logger.error("the organization's accounts could not be listed; the shards go back to the queue",
                     extra={"error": redact(f"{type(exc).__name__}: {exc}")})  # fmt: skip
        metrics.add_metric(name=AUDIT_ERROR, unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()
        return {"batchItemFailures": [{"itemIdentifier": r.message_id} for r in records]}
    now = dt.datetime.now(dt.UTC)
    regions = config.discovery.regions if config.discovery else ()
    for mid, shard in list(shards.items()):
        why = outside_plan(shard, regions, hub.excluded, members, now)
        if why:  # not the planner's: refused, never audited nor counted in ShardReported; its DLQ alarms
            logger.error("a shard outside the plan was refused", extra={"shard": shard.key, "reason": why})
            del shards[mid]
            failures.append(mid)
    budget_s = handler.run_budget_s(config, context)
    done: dict[str, tuple[ShardReport, list[TargetResult]]] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_SHARDS_AT_ONCE, len(shards)))) as pool:
        futures = {
            mid: pool.submit(audit_shard, shard, config, hub, budget_s) for mid, shard in shards.items()
        }
        for mid, future in futures.items():
            try:
                done[mid] = future.result()
            except Exception as exc:  # a bug: this shard is retried, the others are reported
                logger.exception("a shard could not be audited", extra={"shard": shards[mid].key,
                                 "error": redact(f"{type(exc).__name__}: {exc}")})  # fmt: skip
                failures.append(mid)
    by_cycle: dict[dt.datetime, list[tuple[ShardReport, list[TargetResult]]]] = defaultdict(list)
    for report, results in done.values():
        by_cycle[report.shard.cycle].append((report, results))
    for cycle, reports in by_cycle.items():
        # With the planner's ShardsPlanned: a shard missing shows in its cycle. CloudWatch drops datapoints
        # older than 14 days, so a shard redriven from the dead-letter queue that late counts now.
        now = dt.datetime.now(dt.UTC)
        metrics.set_timestamp(cycle if now - cycle < dt.timedelta(days=13) else now)
        for report, results in reports:
            # In the finding's own account: Security Hub imports through the member audit role.
            handler.deliver_results(config, results, heartbeat=False, session_for=_member_session)
            metrics.add_metric(name=SHARD_REPORTED, unit=MetricUnit.Count, value=1)
            level = logger.info if report.outcome == "audited" else logger.warning
            level("shard reported", extra={"shard": report.as_dict()})
        metrics.flush_metrics()
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in failures],
            "shards": [report.as_dict() for report, _ in done.values()]}  # fmt: skip


_accounts_read: dict[str, tuple[float, frozenset[str]]] = {}
ACCOUNTS_FRESH_S = 300.0  # the organization's active accounts, listed at most every 5 minutes per environment


def _members(hub: HubConfig) -> frozenset[str]:
    """The accounts a shard may name: the static list, else the organization's ACTIVE accounts."""
    if hub.accounts is not None:
        return frozenset(hub.accounts)
    known = _accounts_read.get("accounts")
    if known is None or time.monotonic() - known[0] > ACCOUNTS_FRESH_S:
        from access_auditor.aws.organizations import list_accounts

        known = time.monotonic(), frozenset(list_accounts(make_client("organizations", hub.region)).active)
        _accounts_read["accounts"] = known
    return known[1]


def organization_config_rule(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The organization's Config rule, invoked by Config in a member account: that account and region is
    audited as its member audit role, and the evaluations go to that account's Config through the same role.
    An account outside the plan (not a member, excluded) is refused: Config shows the rule as failed there."""
    from access_auditor.outputs.config_rule import read_config_event

    invocation = read_config_event(event)
    assert invocation is not None
    config, hub = _settings(False)
    region = function_region(os.environ)  # Config invokes the rule's function in the rule's own region
    if invocation.account not in _members(hub) or invocation.account in hub.excluded:
        raise ValueError(f"account {invocation.account} is not an audited member of the organization")
    shard = Shard(invocation.account, region, dt.datetime.now(dt.UTC))
    role = member_role_arn(invocation.account, hub.member_role_name)
    scope = Scope(invocation.account, region)
    return handler.config_rule(event, context, session_for=_member_session,
                               load=lambda: shard_config(config, shard, role),
                               ports=lambda share: _ports((scope, share)))  # fmt: skip


def audit_shard(
    shard: Shard, config: AuditConfig, hub: HubConfig, budget_s: float
) -> tuple[ShardReport, list[TargetResult]]:
    """One account and region, as its member audit role; a role that cannot be assumed is a finding on the
    shard (MEMBER_ROLE_UNAVAILABLE), never an exception."""
    started = time.monotonic()
    scope = Scope(shard.account, shard.region)
    role = member_role_arn(shard.account, hub.member_role_name)
    try:
        _hub_credentials().credentials(
            role
        )  # a session is reused 5 minutes at most: a role gone shows within 5
    except CredentialsError as exc:
        problem = TargetResult(placeholder(scope), [finding("MEMBER_ROLE_UNAVAILABLE",
            f"account {shard.account} ({shard.region}) is not audited: {exc}. The role is missing (deploy the member "
            "StackSet to this account; StackSets never deploy to the management account, which needs a stack of "
            "its own), or its trust policy does not admit this hub's worker role")])  # fmt: skip
        return report_shard(shard, [problem], time.monotonic() - started), [problem]
    ports = _ports((scope, config.control_plane_share))
    results = run_audit(
        shard_config(config, shard, role), ports, budget_s=budget_s - (time.monotonic() - started)
    )
    return report_shard(shard, results, time.monotonic() - started), results
