"""What the commands share, kept light: argument types and the AWS session (imported only when used, so
that ``access-auditor --help`` or ``policy check`` never pay for botocore)."""

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
    """A botocore session for ``profile``: botocore's whole credential chain (environment, shared files,
    SSO, assume-role, credential_process, container and instance roles). Raises ConfigError."""
    import botocore.session
    from botocore.exceptions import BotoCoreError

    try:
        session = botocore.session.Session(profile=profile)
        session.get_scoped_config()  # raises ProfileNotFound now rather than at signing time
    except BotoCoreError as exc:
        raise ConfigError(f"--profile {profile}: {exc}") from exc
    return session


def add_command(
    commands: Any, name: str, summary: str, description: str, *examples: str
) -> argparse.ArgumentParser:
    """A subcommand whose help ends with its examples (every command has some; a test checks)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n" + "\n".join(f"  {example}" for example in examples),
    )  # fmt: skip
    return parser
