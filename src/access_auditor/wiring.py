"""Real adapters wired into the audit's ports; shared by the Lambda handler and the CLI."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

from botocore.session import Session

from access_auditor import shared_memory
from access_auditor.aws.accessanalyzer import AccessAnalyzer
from access_auditor.aws.apigateway import ApiGateway
from access_auditor.aws.clients import make_client
from access_auditor.aws.cloudtrail import CloudTrail
from access_auditor.aws.credentials import StsCredentials
from access_auditor.aws.dynamodb import SharedStore
from access_auditor.aws.pacing import QUOTAS, Pacer
from access_auditor.observation import Memory, Ports, Scope
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
