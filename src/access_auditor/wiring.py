"""Real adapters wired into the audit's ports; shared by the Lambda handler and the CLI."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from botocore.session import Session

from access_auditor.audit import Ports
from access_auditor.aws.accessanalyzer import AccessAnalyzer
from access_auditor.aws.apigateway import ApiGateway
from access_auditor.aws.clients import make_client
from access_auditor.aws.cloudtrail import CloudTrail
from access_auditor.aws.credentials import StsCredentials
from access_auditor.transport import new_session

T = TypeVar("T")


def build_ports(session: Session | None = None) -> Ports:
    """Real adapters. Clients are created once per region and kept across warm invocations."""
    session = session or Session()

    return Ports(
        control_plane=once_per_region(lambda region: ApiGateway(make_client("apigateway", region, session))),
        credentials=StsCredentials(session),
        session=new_session(),
        history=once_per_region(lambda region: CloudTrail(make_client("cloudtrail", region, session))),
        analyzer=once_per_region(
            lambda region: AccessAnalyzer(make_client("accessanalyzer", region, session))
        ),
    )


def once_per_region(make: Callable[[str], T]) -> Callable[[str], T]:
    """``make(region)`` at most once per region, however many threads ask at the same moment (functools'
    cache would let each of them build its own client; botocore sessions are not thread-safe either)."""
    made: dict[str, T] = {}
    lock = threading.Lock()

    def get(region: str) -> T:
        with lock:
            if region not in made:
                made[region] = make(region)
            return made[region]

    return get
