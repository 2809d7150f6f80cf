"""A key-value table shared by every execution environment of the hub's worker (DynamoDB): what one
environment read of an immutable deployment, or of saved methods, the others need not read again."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from access_auditor.aws.clients import call
from access_auditor.aws.kms import Mac
from access_auditor.errors import AuditorError

log = logging.getLogger(__name__)
TTL_S = 14 * 24 * 3600  # entries nobody wrote again for two weeks expire (the table's TTL attribute)


class SharedStore(Protocol):
    def get(self, key: str) -> str | None: ...
    def put(self, key: str, value: str) -> None: ...


class AuthenticatedStore:
    """A SharedStore whose entries carry their key, their expiry and a MAC over both and the value (KMS
    GenerateMac). Whoever can write to the table cannot make an entry that verifies: a forged, moved,
    altered or expired entry counts as a miss, so the control plane is read instead (it never decides a
    verdict on its own say-so)."""

    def __init__(self, store: SharedStore, mac: Mac, clock: Callable[[], float] = time.time) -> None:
        self._store, self._mac, self._clock = store, mac, clock

    def get(self, key: str) -> str | None:
        raw = self._store.get(key)
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
            expires, value, mac = int(entry["expires"]), str(entry["value"]), base64.b64decode(entry["mac"])
        except (ValueError, KeyError, TypeError):
            log.warning("a shared cache entry that is not ours was ignored (%s)", key)
            return None
        if expires < self._clock() or not self._mac.verify(_message(key, expires, value), mac):
            log.warning("a shared cache entry that is expired or does not verify was ignored (%s)", key)
            return None
        return value

    def put(self, key: str, value: str) -> None:
        expires = int(self._clock()) + TTL_S
        try:
            mac = self._mac.sign(_message(key, expires, value))
        except AuditorError as exc:
            log.warning("a shared cache entry could not be authenticated, so it is not written (%s)", exc)
            return
        self._store.put(
            key, json.dumps({"expires": expires, "value": value, "mac": base64.b64encode(mac).decode()})
        )


def _message(key: str, expires: int, value: str) -> bytes:
    return json.dumps([key, expires, value]).encode()


class DynamoTable:
    """GetItem / PutItem on a table keyed by ``pk`` (a string). A failure is a miss (or an unsaved entry),
    logged: the shared table saves calls, it never decides a verdict."""

    def __init__(self, client: Any, table: str) -> None:
        self._client, self._table = client, table

    def get(self, key: str) -> str | None:
        try:
            item = call("GetItem", self._client.get_item, TableName=self._table, Key={"pk": {"S": key}}).get(
                "Item"
            )
        except AuditorError as exc:
            log.warning("the shared cache could not be read (%s); reading from API Gateway instead", exc)
            return None
        return str(item["v"]["S"]) if item and "v" in item else None

    def put(self, key: str, value: str) -> None:
        expires = str(int(time.time()) + TTL_S)
        try:
            call("PutItem", self._client.put_item, TableName=self._table,
                 Item={"pk": {"S": key}, "v": {"S": value}, "expires": {"N": expires}})  # fmt: skip
        except AuditorError as exc:
            log.warning("the shared cache could not be written (%s)", exc)
