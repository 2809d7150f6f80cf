"""Real adapters wired into the audit's ports; shared by the Lambda handler and the CLI."""

from __future__ import annotations

from functools import cache

import boto3

from access_auditor.audit import Ports
from access_auditor.aws.accessanalyzer import AccessAnalyzer
from access_auditor.aws.apigateway import ApiGateway
from access_auditor.aws.clients import make_client
from access_auditor.aws.cloudtrail import CloudTrail
from access_auditor.aws.credentials import StsCredentials
from access_auditor.transport import new_session


def build_ports(session: boto3.Session | None = None) -> Ports:
    """Real adapters. Clients are created once per region and kept across warm invocations."""
    session = session or boto3.Session()

    @cache
    def control_plane(region: str) -> ApiGateway:
        return ApiGateway(make_client("apigateway", region, session))

    @cache
    def history(region: str) -> CloudTrail:
        return CloudTrail(make_client("cloudtrail", region, session))

    @cache
    def analyzer(region: str) -> AccessAnalyzer:
        return AccessAnalyzer(make_client("accessanalyzer", region, session))

    return Ports(
        control_plane=control_plane,
        credentials=StsCredentials(session),
        session=new_session(),
        history=history,
        analyzer=analyzer,
    )
