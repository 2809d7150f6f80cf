"""What a warm function remembers, shared through a table by every execution environment (the hub's
workers): Lambda hands a shard to whichever environment is free, so an environment's own memory would
rarely hold that shard's deployments. Entries are JSON, keyed by account and region; a read that misses
(or fails) falls back to the control plane, exactly as a cold function does."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any, TypeVar

from access_auditor.aws.apigateway import ExportProblem
from access_auditor.aws.dynamodb import SharedStore
from access_auditor.observation import Memory, Scope
from access_auditor.policy.access_config import AccessConfig
from access_auditor.policy.matrix import Method

K = TypeVar("K")
V = TypeVar("V")


class SharedDict[K, V](dict[K, V]):
    """A dict that reads through to ``store`` on a miss and writes through on every assignment."""

    def __init__(
        self, store: SharedStore, prefix: str, encode: Callable[[V], Any], decode: Callable[[Any], V]
    ) -> None:
        super().__init__()
        self._store, self._prefix, self._encode, self._decode = store, prefix, encode, decode

    def _key(self, key: K) -> str:
        return "/".join([self._prefix, *(str(k) for k in (key if isinstance(key, tuple) else (key,)))])

    def get(self, key: K, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        raw = self._store.get(self._key(key))
        if raw is None:
            return default
        try:
            value = self._decode(json.loads(raw))
        except (ValueError, KeyError, TypeError, IndexError):
            return default  # an entry of another version: read again
        dict.__setitem__(self, key, value)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        dict.__setitem__(self, key, value)
        self._store.put(self._key(key), json.dumps(self._encode(value)))


def _methods(methods: tuple[Method, ...]) -> list[list[str]]:
    return [[m.stage, m.http_method, m.path, m.authorization_type] for m in methods]


def _from_methods(raw: list[list[str]]) -> tuple[Method, ...]:
    return tuple(Method(*m) for m in raw)


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else None


def _from_time(raw: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(raw) if raw else None


def _problem(value: ExportProblem | None) -> list[Any] | None:
    return [value.refused, value.reason] if value else None


def _from_problem(raw: list[Any] | None) -> ExportProblem | None:
    return ExportProblem(bool(raw[0]), str(raw[1])) if raw else None


def deployments(store: SharedStore, scope: Scope) -> SharedDict[Any, Any]:
    """ApiGateway's deployment cache: (api, stage, deployment id) -> (created, what it serves, why its policy
    could not be read from the export)."""
    return SharedDict(store, f"v2/deployment/{scope.account}/{scope.region}",
                      lambda v: [_time(v[0]), v[1].policy, _methods(v[1].methods), _problem(v[2])],
                      lambda r: (_from_time(r[0]), AccessConfig(r[1], _from_methods(r[2])), _from_problem(r[3])))  # fmt: skip


def memory(store: SharedStore) -> Memory:
    """A Memory whose saved methods and CloudTrail look times are shared (the rest stays per environment)."""
    saved: SharedDict[Any, Any] = SharedDict(store, "v1/saved-methods", lambda v: [v[0], v[1], _methods(v[2])],
                                             lambda r: (r[0], float(r[1]), _from_methods(r[2])))  # fmt: skip
    looked: SharedDict[Any, Any] = SharedDict(store, "v1/method-lookups", _time, _from_time)
    return Memory(saved_methods=saved, method_lookups=looked)
