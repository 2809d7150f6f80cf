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
