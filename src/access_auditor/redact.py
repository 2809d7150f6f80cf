"""One redaction for every text that leaves the process: findings, logs, ``-v`` output and errors.

Anything shaped like an AWS credential or signature is replaced, wherever it came from (an upstream body that
echoes the request, an error message that quotes a token, a canonical request): access key ids, secret
access keys and session tokens named as such, bare long opaque tokens, and SigV4 signatures.
"""

from __future__ import annotations

import re

REDACTED = "<redacted>"
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Signatures: the Authorization header's and a presigned URL's.
    (re.compile(r"(?i)\b((?:x-amz-)?signature=)[0-9a-f]{16,}"), rf"\1{REDACTED}"),
    # A value named as a secret or a token, whatever the syntax around the name (header, JSON, XML, query).
    (
        re.compile(
            r"(?i)\b(secret_?access_?key|aws_secret_access_key|session_?token|security[-_]?token"
            r"|x-amz-security-token)([ \t:=\"'>]{1,5})([^\s\"'<>&,;]{8,})"
        ),
        rf"\1\2{REDACTED}",
    ),
    # Access key ids (long-term AKIA..., temporary ASIA...), bare or inside a Credential= scope.
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b"), REDACTED),
    # Any other long opaque run of base64: session tokens are hundreds of characters.
    (re.compile(r"[A-Za-z0-9/+]{80,}={0,2}"), REDACTED),
)


def redact(text: str) -> str:
    """``text`` with every credential-shaped part replaced by ``<redacted>``.

    >>> redact("Credential=ASIAQWERTYUIOPASDFGH/20261125/us-east-1/execute-api/aws4_request, Signature=" + "ab" * 32)
    'Credential=<redacted>/20261125/us-east-1/execute-api/aws4_request, Signature=<redacted>'
    """
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text
