"""Real adapters wired into the audit's ports; shared by the Lambda handler and the CLI."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

from botocore.session import Session

from access_auditor import shared_memory
from access_auditor.aws.accessanalyzer import AccessAnalyzer
from access_auditor.aws.apigateway import ApiGateway
from access_auditor.aws.apigatewayv2 import HttpApis
from access_auditor.aws.clients import make_client
from access_auditor.aws.cloudtrail import CloudTrail
from access_auditor.aws.credentials import StsCredentials
from access_auditor.aws.dynamodb import SharedStore
from access_auditor.aws.pacing import QUOTAS, Pacer
from access_auditor.config import AuditConfig
from access_auditor.observation import Memory, Ports, Scope
from access_auditor.outputs.sinks import FindingState, Sink
from access_auditor.transport import new_session

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def build_ports(
    session: Session | None = None, share: float = 0.5, store: SharedStore | None = None
) -> Ports:
    """Real adapters. Clients and quota buckets are made once per account and region and kept across warm
    invocations; every control-plane call goes through its account's and region's buckets at ``share`` of
    AWS's documented quotas. ``session`` is the identity every call is made as (an organization's worker
    passes the member audit role's). With ``store``, what the function remembers of deployments, saved
    methods and CloudTrail looks is shared through it (shared_memory.py) by every execution environment."""
    session = session or Session()
    pacers: Callable[[tuple[str, Scope]], Pacer] = once_per_key(lambda key: Pacer(QUOTAS[key[0]], share))

    def pace(service: str, scope: Scope) -> Callable[[str], None]:
        return pacers((service, scope))

    return Ports(
        control_plane=once_per_key(
            lambda scope: ApiGateway(
                make_client("apigateway", scope.region, session),
                pace("apigateway", scope),
                shared_memory.deployments(store, scope) if store else None,
            )  # fmt: skip
        ),
        credentials=StsCredentials(session),
        session=new_session(),
        history=once_per_key(
            lambda scope: CloudTrail(
                make_client("cloudtrail", scope.region, session), pace("cloudtrail", scope)
            )
        ),
        analyzer=once_per_key(
            lambda scope: AccessAnalyzer(make_client("accessanalyzer", scope.region, session))
        ),
        memory=shared_memory.memory(store) if store else Memory(),
        http_apis=once_per_key(
            lambda scope: HttpApis(
                make_client("apigatewayv2", scope.region, session), pace("apigateway", scope)
            )
        ),
    )


def once_per_key[K: Hashable, T](make: Callable[[K], T]) -> Callable[[K], T]:
    """``make(key)`` at most once per key, however many threads ask at the same moment (functools' cache
    would let each of them build its own client; botocore sessions are not thread-safe either)."""
    made: dict[K, T] = {}
    lock = threading.Lock()

    def get(key: K) -> T:
        with lock:
            if key not in made:
                made[key] = make(key)
            return made[key]

    return get


def finding_outputs(
    config: AuditConfig,
    region: str,
    *,
    session_for: Callable[[str, str], Session] | None = None,
    page: Callable[[str, str], None] | None = None,
    config_evaluations: tuple[Any, str, Mapping[tuple[str, str, str, str], str]] | None = None,
    version: str = "",
) -> tuple[FindingState, list[Sink]]:
    """The finding state and the sinks the configuration turns on (besides logs and metrics, which the
    caller adds first). ``session_for(account, region)``: the identity a finding's own account is written
    as (an organization's member role); by default the function's own. ``config_evaluations``: (client,
    result token, resource ids) when AWS Config invoked the function."""
    from access_auditor.aws.configservice import put_evaluations
    from access_auditor.aws.dynamodb import AuthenticatedStore, DynamoTable
    from access_auditor.aws.kms import KmsMac
    from access_auditor.aws.securityhub import import_findings
    from access_auditor.outputs.sinks import ConfigSink, OcsfSink, PageSink, SecurityHubSink

    store = (AuthenticatedStore(DynamoTable(own_client(("dynamodb", region)), config.findings_table),
                                KmsMac(own_client(("kms", region)), config.findings_mac_key))
             if config.findings_table else None)  # fmt: skip
    sinks: list[Sink] = []
    if page is not None and store is not None:  # without a kept state every run would look like a transition
        sinks.append(PageSink(page))
    if config.security_hub:

        def importer(account: str, reg: str, items: list[dict[str, Any]]) -> tuple[set[str], list[str]]:
            return import_findings(
                _hub_client((account, reg, session_for)), _hub_pacer((account, reg)), items
            )

        sinks.append(SecurityHubSink(importer))
    if config_evaluations is not None:
        client, token, ids = config_evaluations
        sinks.append(ConfigSink(lambda evaluations: put_evaluations(client, token, evaluations), ids))
    if config.ocsf_bucket:
        s3 = own_client(("s3", region))
        bucket = config.ocsf_bucket
        sinks.append(OcsfSink(lambda key, body: s3.put_object(Bucket=bucket, Key=key, Body=body,
                                                               ContentType="application/x-ndjson"), version))  # fmt: skip
    return FindingState(store), sinks


# Kept while the function is warm, as every other client is: one per service and region (the function's own
# identity), and one Security Hub client and quota bucket per account and region (a member's through its role).
def _makeown_client(key: tuple[str, str]) -> Any:
    return make_client(key[0], key[1])


def _make_hub_client(key: tuple[str, str, Callable[[str, str], Session] | None]) -> Any:
    account, region, session_for = key
    return make_client("securityhub", region, session_for(account, region) if session_for else None)


def _make_hub_pacer(key: tuple[str, str]) -> Pacer:
    return Pacer(QUOTAS["securityhub"], 1.0)


own_client = once_per_key(_makeown_client)
_hub_client = once_per_key(_make_hub_client)
_hub_pacer = once_per_key(_make_hub_pacer)
