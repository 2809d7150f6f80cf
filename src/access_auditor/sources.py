"""Where the targets come from: the configuration (explicit entries) and tag discovery, resolved once per run
by sweeping each account and region with GetRestApis (500 APIs, their policies and tags, per call).

The tag convention (values are space-separated, because tag values cannot hold commas):

* ``access-auditor:allowed-roles``: the role ARNs the API must answer to (opting the API in);
* ``access-auditor:stages``: narrows nothing: every stage is audited (or API_STAGE from the configuration
  document's defaults), and a tag that leaves out a stage is a finding (STAGES_TAG_NARROWS);
* ``access-auditor:health-path``: the health call's path (default: HEALTH_PATH from the defaults);
* ``access-auditor:health-role``: the role (its path and name in the API's account, or its ARN) to sign the health call
  as, assumed from the auditor's own role (default: ASSUME_ROLE_ARN from the defaults, else the auditor's
  own role, which in an organization must then be one of the allowed roles).

Whoever can tag an API can change what the auditor expects of it, so an explicit configuration entry for
an API always wins over its tags, and ``discovery.apis`` can restrict tags to the APIs it lists.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace

from access_auditor.aws.apigateway import TAG_PREFIX, SweptApi
from access_auditor.aws.apigatewayv2 import SweptHttpApi
from access_auditor.aws.cloudtrail import DELIVERY_LAG, METHOD_EVENTS, POLICY_EVENTS
from access_auditor.config import AuditConfig, Target, discovered_target
from access_auditor.errors import AuditorError, ConfigError, CredentialsError
from access_auditor.findings import Finding, finding
from access_auditor.observation import Ports, Scope

log = logging.getLogger(__name__)
LOOKUP_INTERVAL = dt.timedelta(seconds=60)  # at most one look per account and region a minute
ALLOWED_ROLES_TAG = TAG_PREFIX + "allowed-roles"
STAGES_TAG = TAG_PREFIX + "stages"
HEALTH_PATH_TAG = TAG_PREFIX + "health-path"
HEALTH_ROLE_TAG = TAG_PREFIX + "health-role"
# A private API: the VPC endpoints (vpce-...) and VPCs (vpc-...) it may be called through, space-separated.
ALLOWED_NETWORKS_TAG = TAG_PREFIX + "allowed-networks"


@dataclass
class Plan:
    """This run's targets, what the sweeps said about each API, and findings about the plan itself (a region
    that could not be swept, tags that make no valid target), each tied to a placeholder target."""

    targets: list[Target] = field(default_factory=list)
    swept: dict[tuple[str, str, str], SweptApi] = field(default_factory=dict)
    methods_changed: set[tuple[str, str, str]] = field(default_factory=set)  # (account, region, api)
    scopes: set[tuple[str, str]] = field(default_factory=set)  # (account, region) swept whole
    http_apis: set[tuple[str, str, str]] = field(default_factory=set)  # every HTTP API the sweeps listed
    problems: list[tuple[Target, Finding]] = field(default_factory=list)


def placeholder(scope: Scope, api_id: str = "*", stage: str = "*") -> Target:
    return Target(api_id=api_id, stage=stage, region=scope.region, account=scope.account, allowed_roles=())


def plan_targets(
    config: AuditConfig, ports: Ports, only: Collection[tuple[str, str, str]] | None = None
) -> Plan:
    """Sweep every account and region that has a target or is discovered, then build the target list; with
    ``only`` (account, region, API id), just those APIs' targets, sweeping just their regions."""
    plan = Plan(targets=list(config.targets))
    explicit = {t.api_key for t in config.targets}
    scopes = dict.fromkeys(Scope(t.account, t.region) for t in config.targets)
    discovered = config.discovery.regions if config.discovery else ()
    for region in discovered:
        scopes[Scope(config.account, region)] = None
    if only is not None:
        wanted = {Scope(account, region) for account, region, _ in only}
        scopes = {scope: None for scope in scopes if scope in wanted}
    for scope in scopes:
        if only is None:
            _writes(config, ports, scope, plan)
        try:
            apis = ports.control_plane(scope).sweep()
        except AuditorError as exc:
            # Explicit targets still run (each reads its own policy); discovery in this region cannot.
            if scope.region in discovered and scope.account == config.account:
                hint = (" (a region that is not enabled in the account refuses every credential)"
                        if isinstance(exc, CredentialsError) else "")  # fmt: skip
                plan.problems.append((placeholder(scope), finding("DISCOVERY_FAILED",
                    f"GetRestApis in {scope.region} failed, so tagged APIs there are not audited this run: {exc}{hint}")))  # fmt: skip
            continue
        if _sweep_http(
            config, ports, scope, plan, explicit, discovered
        ):  # a scope is whole only if both listed
            plan.scopes.add((scope.account, scope.region))
        for api in apis:
            plan.swept[(scope.account, scope.region, api.api_id)] = api
            if (
                scope.region in discovered
                and scope.account == config.account
                and ALLOWED_ROLES_TAG in api.tags
            ) and (scope.account, scope.region, api.api_id) not in explicit:
                _discover(config, scope, api, plan, ports.control_plane(scope).stages)
    # A private API is called through the VPC endpoint, whatever its settings say: its type is the API's own.
    plan.targets = [replace(t, endpoint_private=True) if (s := plan.swept.get(t.api_key)) is not None and s.private
                    else t for t in plan.targets]  # fmt: skip
    if only is not None:
        keep = set(only)
        plan.targets = [t for t in plan.targets if t.api_key in keep]
        plan.problems = [(t, f) for t, f in plan.problems if t.api_key in keep]
    return plan


def _sweep_http(config: AuditConfig, ports: Ports, scope: Scope, plan: Plan, explicit: set[tuple[str, str, str]],
                discovered: tuple[str, ...]) -> bool:  # fmt: skip
    """The region's HTTP APIs (GetApis, tags included): each tagged one is a target of kind http, one per
    stage (or API_STAGE from the defaults). False when they could not be listed (a finding says so)."""
    if ports.http_apis is None or scope.region not in discovered or scope.account != config.account:
        return True
    plane = ports.http_apis(scope)
    try:
        apis = plane.sweep()
    except AuditorError as exc:
        plan.problems.append((placeholder(scope), finding("DISCOVERY_FAILED",
            f"GetApis (HTTP APIs) in {scope.region} failed, so tagged HTTP APIs there are not audited this run: {exc}")))  # fmt: skip
        return False
    for api in apis:
        key = (scope.account, scope.region, api.api_id)
        plan.http_apis.add(key)
        if ALLOWED_ROLES_TAG in api.tags and key not in explicit:
            _discover(config, scope, api, plan, plane.stages, kind="http")
    return True


def _writes(config: AuditConfig, ports: Ports, scope: Scope, plan: Plan) -> None:
    """Which APIs' methods or policies were written since the last look (CloudTrail, one LookupEvents per
    event name for the whole region): only those re-read their saved methods, and each API's newest policy
    write is kept for the check of what the export carries. The first run of a warm function reads every
    API's methods anyway; a failed lookup leaves SAVED_METHODS_MAX_AGE as the bound."""
    if not (config.cloudtrail_lookup and ports.history):
        return
    now = dt.datetime.now(dt.UTC)
    last = ports.memory.method_lookups.get(scope)
    if last is None:
        ports.memory.method_lookups[scope] = now
        return
    if now - last < LOOKUP_INTERVAL:
        return  # CloudTrail delivers in minutes: asking more often finds nothing new, and costs quota
    try:
        changes = ports.history(scope).changes_since(last - DELIVERY_LAG, (*METHOD_EVENTS, *POLICY_EVENTS))
    except AuditorError as exc:
        log.warning("CloudTrail could not say which APIs' methods changed in %s: %s", scope.region, exc)
        return
    plan.methods_changed |= {
        (scope.account, scope.region, c.api_id) for c in changes if c.event_name in METHOD_EVENTS
    }
    written = ports.memory.policy_writes
    for change in changes:  # newest first: the first seen per API is its newest policy write
        key = (scope.account, scope.region, change.api_id)
        if change.event_name in POLICY_EVENTS and (
            key not in written or written[key].event_time < change.event_time
        ):
            written[key] = change
    ports.memory.method_lookups[scope] = now


def _discover(config: AuditConfig, scope: Scope, api: SweptApi | SweptHttpApi, plan: Plan,
              list_stages: Callable[[str], list[str]], kind: str = "rest") -> None:  # fmt: skip
    """The targets an API's tags make, a REST API's or an HTTP API's (``kind``) alike; ``list_stages`` lists
    its stages (GetStages of its own API Gateway version)."""
    assert config.discovery is not None
    if config.discovery.apis is not None and api.api_id not in config.discovery.apis:
        plan.problems.append((placeholder(scope, api.api_id), finding("TAG_IGNORED",
            f"API {api.api_id} ({api.name}) carries {ALLOWED_ROLES_TAG} but discovery.apis does not list it, "
            "so its tags configure nothing; add it to the list or remove the tag")))  # fmt: skip
        return
    # Which stages: the configuration document's (API_STAGE in its defaults), else every stage of the API.
    # A tag never narrows them: whoever can tag the API could otherwise drop an open stage from the run.
    try:
        stages = [config.defaults["API_STAGE"]] if config.defaults.get("API_STAGE") else None
        if stages is None:
            stages = list_stages(api.api_id)
    except AuditorError as exc:
        plan.problems.append((placeholder(scope, api.api_id), finding("AUDIT_ERROR",
            f"the stages of tagged API {api.api_id} could not be listed: {exc}")))  # fmt: skip
        return
    tagged = api.tags.get(STAGES_TAG, "").split()
    left_out = sorted(set(stages) - set(tagged)) if tagged else []
    if left_out:
        plan.problems.append((placeholder(scope, api.api_id), finding("STAGES_TAG_NARROWS",
            f"API {api.api_id} ({api.name}) is tagged {STAGES_TAG}={' '.join(tagged)}, which leaves out "
            f"{', '.join(left_out)}; every stage is audited anyway. Remove the tag, or name the stages in the "
            "configuration document (API_STAGE) if some must really be left out")))  # fmt: skip
    for stage in stages:
        try:
            target = discovered_target(config, api.api_id, scope.region, scope.account, api.tags[ALLOWED_ROLES_TAG],
                                       stage, api.tags.get(HEALTH_PATH_TAG, ""), api.tags.get(HEALTH_ROLE_TAG, "").strip(),
                                       api.tags.get(ALLOWED_NETWORKS_TAG, ""))  # fmt: skip
            plan.targets.append(replace(target, kind=kind))
        except ConfigError as exc:
            plan.problems.append((placeholder(scope, api.api_id, stage), finding("TARGET_INVALID",
                f"the tags of API {api.api_id} ({api.name}) make no valid target: {exc}")))  # fmt: skip
