"""Reading the configuration document from an SSM parameter (String or SecureString, up to 8 KB in the
advanced tier; a larger fleet belongs in a file in the package, or in several stacks)."""

from __future__ import annotations

from typing import Any

from access_auditor.aws.clients import call
from access_auditor.errors import AuditorError, ConfigError


def parameter_reader(client: Any) -> Any:
    """``read(name) -> str`` over a botocore ``ssm`` client; a failure is a ConfigError naming the parameter."""

    def read(name: str) -> str:
        try:
            answer = call("GetParameter", client.get_parameter, Name=name, WithDecryption=True)
        except AuditorError as exc:
            raise ConfigError(f"CONFIG_PARAMETER {name}: cannot be read ({exc})") from exc
        return str(answer["Parameter"]["Value"])

    return read
