"""What the hub's execution environments share: read through on a miss, written through, and a broken or
foreign entry is a miss (read from the control plane again), never a wrong answer."""

from __future__ import annotations

import datetime as dt

from access_auditor import shared_memory
from access_auditor.aws.apigateway import ExportProblem
from access_auditor.observation import Scope
from access_auditor.policy.access_config import AccessConfig
from access_auditor.policy.matrix import Method


class Table:
    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.items.get(key)

    def put(self, key: str, value: str) -> None:
        self.items[key] = value


def test_what_one_environment_read_another_reads_back_unchanged() -> None:
    table = Table()
    scope = Scope("111122223333", "eu-west-1")
    deployed = (dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC),
                AccessConfig('{"Version":"2012-10-17"}', (Method("prod", "GET", "/health", "AWS_IAM"),)), None)  # fmt: skip
    refused = (
        None,
        AccessConfig(None, ()),
        ExportProblem(True, "GetExport failed: BadRequestException: no JSON models"),
    )
    shared_memory.deployments(table, scope)[("abc123", "prod", "d0")] = refused
    shared_memory.deployments(table, scope)[("abc123", "prod", "d1")] = deployed
    saved = ("d1", 1764000000.5, (Method("prod", "POST", "/items/{id}", "NONE"),))
    shared_memory.memory(table).saved_methods[("111122223333", "eu-west-1", "abc123", "prod")] = saved
    # THEN a new environment (new dicts over the same table) gets the same values, keyed by account and region
    assert shared_memory.deployments(table, scope).get(("abc123", "prod", "d1")) == deployed
    assert shared_memory.deployments(table, scope).get(("abc123", "prod", "d0")) == refused
    assert (
        shared_memory.memory(table).saved_methods.get(("111122223333", "eu-west-1", "abc123", "prod"))
        == saved
    )
    assert (
        shared_memory.deployments(table, Scope("444455556666", "eu-west-1")).get(("abc123", "prod", "d1"))
        is None
    )


def test_an_entry_that_does_not_decode_is_a_miss() -> None:
    table = Table()
    scope = Scope("111122223333", "eu-west-1")
    shared_memory.deployments(table, scope)[("abc123", "prod", "d1")] = (None, AccessConfig(None, ()), None)
    (key,) = table.items
    for broken in ("not json", "[1]", '{"a": 1}'):
        table.items[key] = broken
        assert shared_memory.deployments(table, scope).get(("abc123", "prod", "d1")) is None


class LocalMac:
    """An HMAC with a key only this object holds: KMS's GenerateMac / VerifyMac, in memory."""

    def __init__(self) -> None:
        import secrets

        self._key = secrets.token_bytes(32)

    def sign(self, message: bytes) -> bytes:
        import hashlib
        import hmac

        return hmac.new(self._key, message, hashlib.sha256).digest()

    def verify(self, message: bytes, mac: bytes) -> bool:
        import hmac

        return hmac.compare_digest(self.sign(message), mac)


def test_only_entries_the_worker_authenticated_and_that_have_not_expired_are_read() -> None:
    import json

    from access_auditor.aws.dynamodb import TTL_S, AuthenticatedStore

    table, now = Table(), [1_000_000.0]
    store = AuthenticatedStore(table, LocalMac(), clock=lambda: now[0])
    store.put("k1", "the truth")
    assert store.get("k1") == "the truth"
    entry = json.loads(table.items["k1"])
    # an altered value, an entry moved to another key, one without a MAC, one from another key: all misses
    table.items["k2"] = table.items["k1"]
    assert store.get("k2") is None
    table.items["k1"] = json.dumps({**entry, "value": "a lie"})
    assert store.get("k1") is None
    table.items["k1"] = json.dumps({"expires": entry["expires"], "value": "a lie"})
    assert store.get("k1") is None
    AuthenticatedStore(table, LocalMac(), clock=lambda: now[0]).put("k3", "forged")
    assert store.get("k3") is None
    # and an authentic entry stops counting once it expires, whatever the table's own TTL attribute says
    store.put("k4", "old news")
    now[0] += TTL_S + 1
    assert store.get("k4") is None
