"""Configuration, read once at the edge into frozen, typed values. Nothing else reads ``os.environ``.

A bad value raises ConfigError naming the variable (or the AUDIT_TARGETS entry) and what was expected.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from access_auditor.errors import ConfigError
from access_auditor.policy.document import ApiRef
from access_auditor.policy.expected import ROLE_ARN
from access_auditor.signing import is_loopback

_API_ID = re.compile(r"^[a-z0-9]{1,32}$")
_STAGE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_METHODS = {"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"}
TARGET_KEYS = (
    "API_ID", "API_STAGE", "API_REGION", "API_ACCOUNT", "ALLOWED_ROLE_ARN", "ASSUME_ROLE_ARN", "OUTSIDER_ROLE_ARN",
    "HEALTH_PATH", "HEALTH_METHOD", "API_ENDPOINT", "EXPECTED_STATUS",
)  # fmt: skip


@dataclass(frozen=True)
class StatusSet:
    """HTTP statuses as ranges (``200-299,304``): a set of ranges costs nothing however wide they are."""

    ranges: tuple[tuple[int, int], ...] = ((200, 299),)

    def __contains__(self, status: object) -> bool:
        return isinstance(status, int) and any(low <= status <= high for low, high in self.ranges)

    def __str__(self) -> str:
        return ",".join(f"{low}-{high}" if low != high else str(low) for low, high in self.ranges)


@dataclass(frozen=True)
class Target:
    """One API to audit."""

    api_id: str
    stage: str
    region: str
    account: str
    allowed_roles: tuple[str, ...]
    assume_role_arn: str | None = None
    outsider_role_arn: str | None = None
    health_path: str = "/health"
    health_method: str = "GET"
    endpoint: str | None = None
    expected_status: StatusSet = field(default_factory=StatusSet)

    @property
    def api(self) -> ApiRef:
        return ApiRef(region=self.region, account=self.account, api_id=self.api_id)

    @property
    def health_url(self) -> str:
        """The stage's invoke URL (or the custom domain in ``endpoint``) joined with the health path."""
        base = self.endpoint or f"https://{self.api_id}.execute-api.{self.region}.amazonaws.com/{self.stage}"
        return base.rstrip("/") + self.health_path


@dataclass(frozen=True)
class AuditConfig:
    targets: tuple[Target, ...]
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    max_concurrency: int = 4
    cloudtrail_lookup: bool = True
    access_analyzer: bool = False
    deadline_margin_ms: int = 3000


def load_config(env: Mapping[str, str]) -> AuditConfig:
    """Build the audit configuration from environment variables (see the README for each one)."""
    default_region = env.get("API_REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
    if env.get("AUDIT_TARGETS"):
        try:
            raw = json.loads(env["AUDIT_TARGETS"])
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"AUDIT_TARGETS: not valid JSON ({exc.msg}); expected a JSON list of objects"
            ) from exc
        if not isinstance(raw, list) or not raw or not all(isinstance(item, dict) for item in raw):
            raise ConfigError("AUDIT_TARGETS: expected a non-empty JSON list of objects such as "
                              '[{"API_ID": "abc123", "API_STAGE": "prod", "ALLOWED_ROLE_ARN": "arn:aws:iam::..."}]')  # fmt: skip
        targets = [
            _target(
                {**{k: env[k] for k in TARGET_KEYS if k in env}, **item},
                f"AUDIT_TARGETS[{i}].",
                default_region,
            )
            for i, item in enumerate(raw)
        ]
    else:
        targets = [_target(env, "", default_region)]
    return AuditConfig(
        targets=tuple(targets),
        connect_timeout=_number(env, "HTTP_CONNECT_TIMEOUT", 3.0, maximum=60),
        read_timeout=_number(env, "HTTP_READ_TIMEOUT", 10.0, maximum=600),
        max_concurrency=int(_number(env, "MAX_CONCURRENCY", 4, maximum=64, integer=True)),
        cloudtrail_lookup=_flag(env, "CLOUDTRAIL_LOOKUP", True),
        access_analyzer=_flag(env, "ACCESS_ANALYZER", False),
    )


def _target(values: Mapping[str, Any], prefix: str, default_region: str) -> Target:
    def get(name: str) -> str:
        value = values.get(name, "")
        if not isinstance(value, str):
            raise ConfigError(f"{prefix}{name}: expected a string, got {json.dumps(value)}")
        return value.strip()

    def required(name: str, what: str) -> str:
        value = get(name)
        if not value:
            raise ConfigError(f"{prefix}{name} is required: {what}")
        return value

    unknown = sorted(set(values) - set(TARGET_KEYS)) if prefix else []
    if unknown:
        raise ConfigError(
            f"{prefix[:-1]}: unknown setting(s) {', '.join(unknown)}; expected some of {', '.join(TARGET_KEYS)}"
        )
    api_id = required("API_ID", "the REST API id, for example a1b2c3d4e5")
    if not _API_ID.match(api_id):
        raise ConfigError(f"{prefix}API_ID: {api_id!r} is not a REST API id (lower-case letters and digits)")
    stage = required("API_STAGE", "the stage name, for example prod")
    if not _STAGE.match(stage):
        raise ConfigError(f"{prefix}API_STAGE: {stage!r} is not a stage name (letters, digits, - and _)")
    region = get("API_REGION") or default_region
    if not _REGION.match(region):
        raise ConfigError(
            f"{prefix}API_REGION: {region!r} is not an AWS region such as us-east-1 (set API_REGION or AWS_REGION)"
        )
    roles = tuple(
        r.strip()
        for r in required("ALLOWED_ROLE_ARN", "the ARN of the role the API is locked to").split(",")
        if r.strip()
    )
    for role in roles:
        _role(role, f"{prefix}ALLOWED_ROLE_ARN")
    assume = get("ASSUME_ROLE_ARN") or None
    outsider = get("OUTSIDER_ROLE_ARN") or None
    for name, arn in (("ASSUME_ROLE_ARN", assume), ("OUTSIDER_ROLE_ARN", outsider)):
        if arn:
            _role(arn, prefix + name)
    if outsider and outsider in roles:
        raise ConfigError(f"{prefix}OUTSIDER_ROLE_ARN must not be one of the allowed roles")
    path = get("HEALTH_PATH") or "/health"
    if not path.startswith("/") or any(c in path for c in "?# "):
        raise ConfigError(
            f"{prefix}HEALTH_PATH: {path!r} must start with / and hold no query, fragment or space"
        )
    method = (get("HEALTH_METHOD") or "GET").upper()
    if method not in _METHODS:
        raise ConfigError(f"{prefix}HEALTH_METHOD: {method!r} is not one of {', '.join(sorted(_METHODS))}")
    endpoint = get("API_ENDPOINT") or None
    if endpoint:
        try:
            parts = urlsplit(endpoint)
            host, _ = parts.hostname, parts.port  # .port raises for a port outside 0-65535
        except ValueError:
            parts, host = None, None
        ok = (
            parts is not None
            and host
            and (parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host)))
            and not any(c.isspace() or ord(c) < 32 for c in endpoint)
        )
        if not ok or parts is None or parts.query or parts.fragment:
            raise ConfigError(
                f"{prefix}API_ENDPOINT: {endpoint!r} must be an https:// base URL (http:// only for loopback hosts)"
            )
    return Target(
        api_id=api_id,
        stage=stage,
        region=region,
        account=_account(get("API_ACCOUNT"), prefix, roles[0]),
        allowed_roles=roles,
        assume_role_arn=assume,
        outsider_role_arn=outsider,
        health_path=path,
        health_method=method,
        endpoint=endpoint,
        expected_status=_statuses(get("EXPECTED_STATUS"), prefix + "EXPECTED_STATUS"),
    )


def _account(value: str, prefix: str, first_role: str) -> str:
    # The API's account names its execute-api ARNs. Deployed, the template passes AWS::AccountId; by hand it
    # defaults to the first allowed role's account, the usual single-account set-up.
    if not value:
        return ROLE_ARN.match(first_role)[1]  # type: ignore[index]
    if not re.fullmatch(r"\d{12}", value):
        raise ConfigError(f"{prefix}API_ACCOUNT: {value!r} is not a 12-digit AWS account id")
    return value


def _role(arn: str, name: str) -> None:
    if not ROLE_ARN.match(arn):
        raise ConfigError(f"{name}: {arn!r} is not an IAM role ARN (expected arn:aws:iam::ACCOUNT:role/NAME)")


def _statuses(text: str, name: str) -> StatusSet:
    if not text:
        return StatusSet()
    ranges = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*([1-5]\d\d)\s*(?:-\s*([1-5]\d\d)\s*)?", part, re.ASCII)
        if not match or int(match[2] or match[1]) < int(match[1]):
            raise ConfigError(
                f"{name}: {text!r} is not a list of HTTP statuses (100-599) or ranges such as 200-299,304"
            )
        ranges.append((int(match[1]), int(match[2] or match[1])))
    return StatusSet(tuple(ranges))


def _number(
    env: Mapping[str, str], name: str, default: float, *, maximum: float, integer: bool = False
) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text) if integer else float(text)
    except ValueError as exc:
        raise ConfigError(f"{name}: {text!r} is not a {'whole ' if integer else ''}number") from exc
    if not math.isfinite(value) or not 0 < value <= maximum:
        raise ConfigError(f"{name}: expected a number greater than 0 and at most {maximum:g}, got {text!r}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = env.get(name, "").strip().lower()
    if not text:
        return default
    if text not in {"true", "false", "1", "0", "yes", "no", "on", "off"}:
        raise ConfigError(f"{name}: {text!r} is not a boolean (true or false)")
    return text in {"true", "1", "yes", "on"}
