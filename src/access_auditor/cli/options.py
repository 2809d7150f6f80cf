"""What the commands share, kept light: argument types and the AWS session (imported only when used, so
that ``access-auditor --help`` or ``policy check`` never pay for boto3)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from access_auditor.errors import ConfigError


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, more than 0 and at most 900 (Lambda's own limit)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 900):
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 900, got {text!r}")
    return value


def aws_session(profile: str | None) -> Any:
    """A boto3 session for ``profile`` (botocore's whole credential chain). Raises ConfigError."""
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.Session(profile_name=profile)
    except BotoCoreError as exc:
        raise ConfigError(f"--profile {profile}: {exc}") from exc


def botocore_session(profile: str | None) -> Any:
    """A botocore session for ``profile``: the same credential chain as boto3, without importing boto3."""
    import botocore.session
    from botocore.exceptions import BotoCoreError

    try:
        session = botocore.session.Session(profile=profile)
        session.get_scoped_config()  # raises ProfileNotFound now rather than at signing time
    except BotoCoreError as exc:
        raise ConfigError(f"--profile {profile}: {exc}") from exc
    return session
