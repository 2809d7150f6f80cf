"""Credentials for signing: the caller's own, or a role's assumed through STS (cached until near expiry)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any, Protocol

from botocore.credentials import ReadOnlyCredentials, RefreshableCredentials
from botocore.session import Session

from access_auditor.aws.clients import call, make_client
from access_auditor.errors import CredentialsError

SESSION_NAME = "apigw-access-auditor"
RENEW_BEFORE = dt.timedelta(minutes=10)


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
        return self._assumed(role_arn)[0]

    def session_as(self, role_arn: str, region: str) -> Session:
        """A botocore session that is ``role_arn``, assumed through this source, its credentials renewed by
        botocore before they expire (RefreshableCredentials): clients made from it can be kept for as long as
        the function is warm. Raises CredentialsError when the role cannot be assumed now."""

        def fetch() -> dict[str, str | None]:
            creds, expiry = self._assumed(role_arn)
            return {"access_key": creds.access_key, "secret_key": creds.secret_key, "token": creds.token,
                    "expiry_time": expiry.isoformat()}  # fmt: skip

        session = Session()
        session._credentials = RefreshableCredentials.create_from_metadata(  # type: ignore[attr-defined]  # read from here
            metadata=fetch(), refresh_using=fetch, method="sts-assume-role"
        )
        session.set_config_variable("region", region)
        return session

    def _assumed(self, role_arn: str) -> tuple[ReadOnlyCredentials, dt.datetime]:
        """15-minute sessions, renewed when less than 10 minutes are left: a role that can no longer be
        assumed (deleted, its trust changed) shows within 5 minutes, and botocore's own mandatory refresh
        (10 minutes before expiry) never sees a session it must throw away."""
        with self._lock:
            cached = self._cache.get(role_arn)
            if cached and cached[1] - dt.datetime.now(dt.UTC) > RENEW_BEFORE:
                return cached
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
            return self._cache[role_arn]
