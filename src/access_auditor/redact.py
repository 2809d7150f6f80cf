"""One redaction for every text that leaves the process: findings, logs, ``-v`` output and errors.

Anything shaped like an AWS credential or signature is replaced, wherever it came from (an upstream body that
echoes the request, an error message that quotes a token, a canonical request): access key ids, secret
access keys and session tokens named as such, bare long opaque tokens, and SigV4 signatures.
"""

from __future__ import annotations

import re
from typing import Any, TextIO

__all__ = ["REDACTED", "RedactingStream", "redact"]

REDACTED = "<redacted>"
_B64 = r"(?:[A-Za-z0-9/+]|%2[BbFf])"  # a base64 character, or its URL encoding (+ and /)
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Signatures: the Authorization header's, a presigned URL's, and a "signature" field in JSON or a form.
    (re.compile(r"(?i)\b((?:x-amz-)?signature[\"']?\s*[=:]\s*[\"']?)[0-9a-f]{16,}"), rf"\1{REDACTED}"),
    # A value named as a secret or a token, whatever the syntax around the name (header, JSON, XML, query).
    (
        re.compile(
            r"(?i)\b(secret_?(?:access_?)?key|aws_secret_access_key|session_?token|security[-_]?token"
            r"|x-amz-security-token)([ \t:=\"'>]{1,5})([^\s\"'<>&,;]{8,})"
        ),
        rf"\1\2{REDACTED}",
    ),
    # Access key ids (long-term AKIA..., temporary ASIA...), bare or inside a Credential= scope.
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b"), REDACTED),
    # Any other long opaque run of base64, URL-encoded or not: session tokens are hundreds of characters.
    (re.compile(_B64 + r"{80,}(?:=|%3[Dd]){0,2}"), REDACTED),
)


def redact(text: str) -> str:
    """``text`` with every credential-shaped part replaced by ``<redacted>``.

    >>> redact("Credential=ASIAQWERTYUIOPASDFGH/20261125/us-east-1/execute-api/aws4_request, Signature=" + "ab" * 32)
    'Credential=<redacted>/20261125/us-east-1/execute-api/aws4_request, Signature=<redacted>'
    """
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


class RedactingStream:
    """A text stream whose every write is redacted (the CLI's stdout and stderr); the rest, ``buffer``
    included (a response body is the user's data, written as it came), is the wrapped stream's."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(redact(text))

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
