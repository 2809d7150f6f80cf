"""A key-value table shared by every execution environment of the hub's worker (DynamoDB): what one
environment read of an immutable deployment, or of saved methods, the others need not read again."""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from access_auditor.aws.clients import call
from access_auditor.errors import AuditorError

log = logging.getLogger(__name__)
TTL_S = 14 * 24 * 3600  # entries nobody wrote again for two weeks expire (the table's TTL attribute)


class SharedStore(Protocol):
    def get(self, key: str) -> str | None: ...
    def put(self, key: str, value: str) -> None: ...


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
