"""Message authentication with a KMS HMAC key (GenerateMac / VerifyMac): the key never leaves KMS, so only a
principal the key policy admits (the hub's worker role) can make a MAC that verifies."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from access_auditor.aws.clients import call
from access_auditor.errors import AuditorError, AwsCallError

log = logging.getLogger(__name__)
ALGORITHM = "HMAC_SHA_256"


class Mac(Protocol):
    def sign(self, message: bytes) -> bytes: ...
    def verify(self, message: bytes, mac: bytes) -> bool: ...


class KmsMac:
    """GenerateMac / VerifyMac with one HMAC_256 key. ``verify`` is False for a MAC that does not verify and
    for any failure to ask (an unverified entry is a miss, never a belief)."""

    def __init__(self, client: Any, key_id: str) -> None:
        self._client, self._key = client, key_id

    def sign(self, message: bytes) -> bytes:
        answer = call(
            "GenerateMac", self._client.generate_mac, KeyId=self._key, Message=message, MacAlgorithm=ALGORITHM
        )
        return bytes(answer["Mac"])

    def verify(self, message: bytes, mac: bytes) -> bool:
        try:
            answer = call("VerifyMac", self._client.verify_mac, KeyId=self._key, Message=message, Mac=mac,
                          MacAlgorithm=ALGORITHM)  # fmt: skip
        except AwsCallError as exc:
            if exc.code != "KMSInvalidMacException":
                log.warning("a MAC could not be verified (%s); the entry counts as a miss", exc)
            return False
        except AuditorError as exc:
            log.warning("a MAC could not be verified (%s); the entry counts as a miss", exc)
            return False
        return bool(answer.get("MacValid"))
