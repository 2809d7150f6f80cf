"""Credentials for signing: the caller's own, or a role's assumed through STS (cached until near expiry)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any, Protocol

from botocore.credentials import ReadOnlyCredentials
from botocore.session import Session

from access_auditor.aws.clients import call, make_client
from access_auditor.errors import CredentialsError

SESSION_NAME = "apigw-access-auditor"


class CredentialSource(Protocol):
    def credentials(self, role_arn: str | None) -> ReadOnlyCredentials: ...


class StsCredentials:
    """``credentials(None)`` is the session's own identity; ``credentials(arn)`` assumes ``arn``."""

    def __init__(self, session: Session | None = None, sts_client: Any | None = None) -> None:
        self._session = session or Session()
        self._sts = sts_client
        self._cache: dict[str, tuple[ReadOnlyCredentials, dt.datetime]] = {}
        self._lock = threading.Lock()

    def credentials(self, role_arn: str | None) -> ReadOnlyCredentials:
        if role_arn is None:
            own = self._session.get_credentials()
            if own is None:
                raise CredentialsError("no AWS credentials found (environment, shared files, SSO, or a role)")
            return own.get_frozen_credentials()
        with self._lock:
            cached = self._cache.get(role_arn)
            if cached and cached[1] - dt.datetime.now(dt.UTC) > dt.timedelta(minutes=5):
                return cached[0]
            region = self._session.get_config_variable("region") or "us-east-1"
            sts = self._sts or make_client("sts", region, self._session)
            try:
                answer = call(
                    "AssumeRole",
                    sts.assume_role,
                    RoleArn=role_arn,
                    RoleSessionName=SESSION_NAME,
                    DurationSeconds=900,
                )
            except Exception as exc:
                raise CredentialsError(f"could not assume {role_arn}: {exc}") from exc
            raw = answer["Credentials"]
            creds = ReadOnlyCredentials(raw["AccessKeyId"], raw["SecretAccessKey"], raw["SessionToken"])
            expiry = raw["Expiration"]
            self._cache[role_arn] = (creds, expiry if expiry.tzinfo else expiry.replace(tzinfo=dt.UTC))
            return creds
