"""Reading the configuration document from an SSM parameter (String or SecureString, up to 8 KB in the
advanced tier; a larger fleet belongs in a file in the package, or in several stacks).

With the stack's key (CONFIG_KEY), the parameter must be a SecureString encrypted with that key: writing it
then takes ``kms:Encrypt`` on the key besides ``ssm:PutParameter``, and a parameter rewritten as a String, or
under another key, is refused rather than obeyed."""

from __future__ import annotations

from typing import Any

from access_auditor.aws.clients import call
from access_auditor.errors import AuditorError, ConfigError


def parameter_reader(client: Any) -> Any:
    """``read(name, key="") -> str`` over a botocore ``ssm`` client; a failure, or a parameter not encrypted
    with ``key`` (an ARN or id, when given), is a ConfigError naming the parameter."""

    def read(name: str, key: str = "") -> str:
        try:
            answer = call("GetParameter", client.get_parameter, Name=name, WithDecryption=True)
            if key:
                found = call("DescribeParameters", client.describe_parameters,
                             ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]  # fmt: skip
        except AuditorError as exc:
            raise ConfigError(f"CONFIG_PARAMETER {name}: cannot be read ({exc})") from exc
        if key:
            kind = answer["Parameter"].get("Type")
            used = str(found[0].get("KeyId", "")) if found else ""
            if kind != "SecureString" or not _same_key(used, key):
                raise ConfigError(
                    f"CONFIG_PARAMETER {name}: is a {kind}{f' encrypted with {used}' if used else ''}, not a "
                    f"SecureString encrypted with the stack's key {key} (CONFIG_KEY): whoever wrote it did not "
                    f"use the key, so it is not obeyed. Write it again with --type SecureString --key-id {key}"
                )
        return str(answer["Parameter"]["Value"])

    return read


def _same_key(used: str, key: str) -> bool:
    """Whether ``used`` (a parameter's KeyId: an id or an ARN, as it was written) names ``key``."""
    key_id = key.rsplit("/", 1)[-1]
    return used in (key, key_id) or used.endswith(":key/" + key_id)
