"""The project's error tree. Audit *outcomes* are findings, never exceptions; these are for input and I/O."""

from __future__ import annotations


class AuditorError(Exception):
    """Base class for every error this project raises on purpose."""


class ConfigError(AuditorError):
    """A setting is missing or malformed. The message names the setting and what was expected."""


class PolicyParseError(AuditorError):
    """A resource policy document cannot be read as JSON or lacks the shape of an IAM policy."""


class AwsCallError(AuditorError):
    """A control-plane call failed. `code` is AWS's error code (for example TooManyRequestsException)."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation} failed: {code}: {message}")
        self.operation = operation
        self.code = code

    @property
    def throttled(self) -> bool:
        return self.code in {"TooManyRequestsException", "ThrottlingException", "Throttling"}


class CredentialsError(AuditorError):
    """No usable AWS credentials: none found, expired, or an assume-role call refused."""


class RequestError(AuditorError):
    """A signed HTTP call could not be made or completed (bad URL, DNS, TLS, timeout, connection)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
