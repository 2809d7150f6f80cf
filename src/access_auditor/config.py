"""Configuration, read once at the edge into frozen, typed values. Nothing else reads ``os.environ``.

Targets come from three sources, combinable: the single-API variables (API_ID, ...), a configuration
document (JSON or YAML, from an SSM parameter or a file; AUDIT_TARGETS is the same list inline), and tag
discovery (DISCOVERY_REGIONS, or ``discovery`` in the document), which is resolved at run time.

A bad value raises ConfigError naming the variable, or the document's entry and field, and what was expected.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from access_auditor.errors import ConfigError
from access_auditor.outputs.suppression import Suppression, parse_suppressions
from access_auditor.policy.document import ApiRef
from access_auditor.policy.expected import ROLE_ARN, VPC_ID, VPCE_ID, network_ids
from access_auditor.signing import is_loopback

_API_ID = re.compile(r"^[a-z0-9]{1,32}$")
_STAGE = re.compile(r"^([A-Za-z0-9_-]{1,128}|\$default)$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_METHODS = {"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"}
# Every setting of a target, with what it means: the environment's single API, each entry of a configuration
# document, its ``defaults``, and the JSON Schema (``access-auditor config schema``) all use these names.
TARGET_SETTINGS = {
    "API_ID": "REST API id",
    "API_STAGE": "stage name",
    "API_REGION": "the API's region (default: the function's region)",
    "API_ACCOUNT": "the API's account (default: the first allowed role's account)",
    "ALLOWED_ROLE_ARN": "the role ARNs the expected Deny exempts (a list, or comma-separated)",
    "ASSUME_ROLE_ARN": "sign the health call with credentials assumed from this role",
    "OUTSIDER_ROLE_ARN": "sign the negative probe as this role",
    "HEALTH_PATH": "path of the health call (default /health)",
    "HEALTH_METHOD": "method of the health call (default GET)",
    "API_ENDPOINT": "base URL of a custom domain (https; http only for loopback)",
    "EXPECTED_STATUS": "statuses that count as healthy (default 200-299)",
    "API_KIND": "rest (a REST API, the default) or http (an HTTP API: no resource policy; its routes' authorization is audited)",
    "ALLOWED_VPCE": "a private API: the VPC endpoint ids it may be called through (a list, or comma-separated)",
    "ALLOWED_VPC": "a private API: the VPC ids it may be called from (a list, or comma-separated)",
    "EXECUTE_API_ENDPOINT": "a private API: the execute-api VPC endpoint the function calls through, its id "
    "(vpce-...) or its DNS name (vpce-...execute-api.REGION.vpce.amazonaws.com)",
    "PRIVATE_ADDRESSING": "a private API: dns (private DNS, the default), alias (the Route 53 alias API-VPCE), or "
    "endpoint (the endpoint's own DNS name with x-apigw-api-id)",
}
TARGET_KEYS = tuple(TARGET_SETTINGS)
# Like botocore's AWS_ENDPOINT_URL_<SERVICE>: where execute-api is served when it is not AWS (the local AWS).
INVOKE_BASE = "AWS_ENDPOINT_URL_EXECUTE_API"
PRIVATE_BASE = "AWS_ENDPOINT_URL_EXECUTE_API_VPCE"  # the local AWS's VPC endpoint, for private APIs
ADDRESSING = ("dns", "alias", "endpoint")
DOCUMENT_KEYS = ("defaults", "discovery", "targets", "suppressions")
DISCOVERY_KEYS = ("regions", "apis")
MAX_DOCUMENT_CHARS = 1_000_000


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
    source: str = "env"  # env, config or tag: where the expectation came from
    invoke_base: str | None = None  # AWS_ENDPOINT_URL_EXECUTE_API: an emulator serving /{api}/{stage}/...
    allowed_vpces: tuple[str, ...] = ()  # a private API: only through these VPC endpoints...
    allowed_vpcs: tuple[str, ...] = ()  # ... or from these VPCs
    execute_api_endpoint: str | None = None  # the VPC endpoint the function calls a private API through
    addressing: str = "dns"  # how: dns, alias or endpoint
    # AWS_ENDPOINT_URL_EXECUTE_API_VPCE: an emulated VPC endpoint serving /{stage}/... by Host or x-apigw-api-id
    private_base: str | None = None
    endpoint_private: bool = False  # the sweep found the API's endpoint type PRIVATE
    kind: str = "rest"  # rest, or http (an HTTP API, API Gateway v2)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """This target: one stage of one API."""
        return self.account, self.region, self.api_id, self.stage

    @property
    def api_key(self) -> tuple[str, str, str]:
        """Its API, whatever the stage: what a sweep, a change event and a method write are about."""
        return self.account, self.region, self.api_id

    @property
    def api(self) -> ApiRef:
        return ApiRef(region=self.region, account=self.account, api_id=self.api_id)

    @property
    def private(self) -> bool:
        """Called through a VPC endpoint: the target names one, or the endpoints or VPCs it is locked to."""
        return bool(
            self.endpoint_private or self.execute_api_endpoint or self.allowed_vpces or self.allowed_vpcs
        )

    @property
    def health_url(self) -> str:
        """The stage's invoke URL (or the custom domain in ``endpoint``) joined with the health path. A private
        API is called the way ``addressing`` says (the developer guide's "Invoke a private API"): by private
        DNS (the public name, resolved to the endpoint inside the VPC), by the Route 53 alias
        ``{api}-{vpce}``, or by the endpoint's own DNS name (with ``call_headers``)."""
        host = f"{self.api_id}.execute-api.{self.region}.amazonaws.com"
        if self.private and self.private_base:
            base = f"{self.private_base.rstrip('/')}/{self.stage}"
        elif self.private and self.addressing == "alias":
            base = f"https://{self.api_id}-{self.execute_api_endpoint}.execute-api.{self.region}.amazonaws.com/{self.stage}"
        elif self.private and self.addressing == "endpoint":
            base = f"https://{self.execute_api_endpoint}/{self.stage}"
        else:
            base = self.endpoint or (
                f"{self.invoke_base.rstrip('/')}/{self.api_id}/{self.stage}"
                if self.invoke_base
                else f"https://{host}/{self.stage}"
            )
        return base.rstrip("/") + self.health_path

    @property
    def call_headers(self) -> dict[str, str]:
        """Headers a private API's call needs to name its API: ``x-apigw-api-id`` on the endpoint's own name;
        behind an emulated endpoint, the Host the addressing would have sent."""
        if not self.private:
            return {}
        if self.addressing == "endpoint":
            return {"x-apigw-api-id": self.api_id}
        if self.private_base:
            name = self.api_id if self.addressing == "dns" else f"{self.api_id}-{self.execute_api_endpoint}"
            return {"Host": f"{name}.execute-api.{self.region}.amazonaws.com"}
        return {}


@dataclass(frozen=True)
class Discovery:
    """Tag discovery: every REST API of ``regions`` tagged ``access-auditor:allowed-roles`` is a target,
    unless an explicit entry names it. ``apis``, when given, is the only APIs tags may configure."""

    regions: tuple[str, ...]
    apis: frozenset[str] | None = None


@dataclass(frozen=True)
class AuditConfig:
    targets: tuple[Target, ...]
    discovery: Discovery | None = None
    # What a discovered API inherits: the defaults' settings (stage, health call, outsider role, ...).
    defaults: Mapping[str, str] = field(default_factory=dict)
    account: str = ""  # the account discovery sweeps (the function's own)
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    max_concurrency: int | None = None  # None: as many workers as the quotas and the deadline call for
    cloudtrail_lookup: bool = True
    access_analyzer: bool = False
    deadline_margin_ms: int = 3000
    control_plane_share: float = 0.5  # of API Gateway's and CloudTrail's documented quotas
    saved_methods_max_age_s: float = 3600.0
    # The role this run's own credentials are, when known (an organization's member audit role): a health
    # call without ASSUME_ROLE_ARN is made as it only if the target's allowed roles include it.
    health_identity: str | None = None
    # HEALTH_ROLE_PATH: the path a tag's health role must be under (the member template's HealthRolePath, the
    # roles its audit role may assume); "/" is any path.
    health_role_path: str = "/"
    # The document's suppressions (outputs/suppression.py), and where findings go besides logs and metrics.
    suppressions: tuple[Suppression, ...] = ()
    findings_table: str = ""  # FINDINGS_TABLE: the DynamoDB table that keeps each finding's life
    findings_mac_key: str = ""  # FINDINGS_MAC_KEY: the KMS HMAC key that authenticates its entries
    security_hub: bool = False  # SECURITY_HUB: import findings as ASFF
    ocsf_bucket: str = ""  # OCSF_BUCKET: write OCSF 1.6 findings to this S3 bucket


@dataclass(frozen=True)
class HubConfig:
    """An organization's hub (the planner and the workers), read from the environment the hub template sets.
    The regions are DISCOVERY_REGIONS; the defaults and ``discovery.apis`` come from the audit config."""

    member_role_name: str  # MEMBER_ROLE_NAME: the audit role the member StackSet deploys in every account
    accounts: tuple[str, ...] | None  # ORG_ACCOUNTS, or None: AWS Organizations ListAccounts
    excluded: tuple[str, ...]  # EXCLUDED_ACCOUNTS
    queue_url: str  # SHARD_QUEUE_URL: where the planner sends one message per account and region
    region: str  # the hub's own region (Organizations, SQS, STS and DynamoDB are called there)
    cache_table: str = ""  # CACHE_TABLE: the DynamoDB table the workers share what they read through
    cache_mac_key: str = ""  # CACHE_MAC_KEY: the KMS HMAC key that authenticates every entry of that table


def load_hub_config(env: Mapping[str, str], *, planner: bool = False) -> HubConfig:
    """Raises ConfigError naming the variable."""
    role = env.get("MEMBER_ROLE_NAME", "").strip()
    if not re.fullmatch(r"[\w+=,.@-]{1,64}", role):
        raise ConfigError(
            f"MEMBER_ROLE_NAME: {role!r} is not an IAM role name (the member template's AuditRoleName)"
        )
    accounts, excluded = _accounts(env, "ORG_ACCOUNTS"), _accounts(env, "EXCLUDED_ACCOUNTS")
    queue = env.get("SHARD_QUEUE_URL", "").strip()
    if planner and not queue.startswith(("https://", "http://")):
        raise ConfigError(f"SHARD_QUEUE_URL: {queue!r} is not a queue URL")
    table = env.get("CACHE_TABLE", "").strip()
    if table and not re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", table):
        raise ConfigError(f"CACHE_TABLE: {table!r} is not a DynamoDB table name")
    mac_key = env.get("CACHE_MAC_KEY", "").strip()
    if table and not mac_key.startswith("arn:"):
        raise ConfigError(f"CACHE_MAC_KEY: {mac_key!r} is not a KMS key ARN; the shared table's entries must be "
                          "authenticated, or whoever can write to it decides verdicts")  # fmt: skip
    return HubConfig(role, accounts or None, excluded, queue, function_region(env), table, mac_key)


def _accounts(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    ids = tuple(a.strip() for a in env.get(name, "").split(",") if a.strip())
    for account in ids:
        if not re.fullmatch(r"\d{12}", account):
            raise ConfigError(f"{name}: {account!r} is not a 12-digit account id")
    return ids


def load_config(
    env: Mapping[str, str], read_parameter: Callable[[str, str], str] | None = None
) -> AuditConfig:
    """Build the audit configuration from environment variables (docs/reference/environment.md lists each), and from
    the configuration document they name: CONFIG_PARAMETER (an SSM parameter, read with
    ``read_parameter``) or CONFIG_FILE (a path; relative paths are relative to the package)."""
    default_region = env.get("API_REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
    env_defaults = {k: env[k] for k in TARGET_KEYS if env.get(k, "").strip() and k != "API_ID"}
    for name in (INVOKE_BASE, PRIVATE_BASE):
        if env.get(name, "").strip():
            env_defaults[name] = env[name].strip()
    document = _read_document(env, read_parameter)
    targets: list[Target] = []
    discovery = None
    suppressions: tuple[Suppression, ...] = ()
    defaults: dict[str, Any] = dict(env_defaults)
    if document is not None:
        text, where = document
        raw = _parse_document(text, where)
        if "suppressions" in raw:
            suppressions = parse_suppressions(
                raw["suppressions"], f"{where}: suppressions", dt.datetime.now(dt.UTC)
            )
        defaults.update(_settings(raw.get("defaults", {}), f"{where}: defaults", allow_id=False))
        for i, item in enumerate(_list(raw.get("targets", []), f"{where}: targets")):
            values = {**defaults, **_settings(item, f"{where}: targets[{i}]", allow_id=True)}  # fmt: skip
            targets.append(_target(values, f"{where}: targets[{i}].", default_region, source="config"))
        if "discovery" in raw:
            discovery = _discovery(raw["discovery"], f"{where}: discovery")
    if env.get("AUDIT_TARGETS"):
        try:
            raw_list = json.loads(env["AUDIT_TARGETS"])
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"AUDIT_TARGETS: not valid JSON ({exc.msg}); expected a JSON list of objects"
            ) from exc
        if not isinstance(raw_list, list) or not raw_list or not all(isinstance(i, dict) for i in raw_list):
            raise ConfigError("AUDIT_TARGETS: expected a non-empty JSON list of objects such as "
                              '[{"API_ID": "abc123", "API_STAGE": "prod", "ALLOWED_ROLE_ARN": "arn:aws:iam::..."}]')  # fmt: skip
        for i, item in enumerate(raw_list):
            values = {**defaults, **_settings(item, f"AUDIT_TARGETS[{i}]", allow_id=True)}
            targets.append(_target(values, f"AUDIT_TARGETS[{i}].", default_region))
    elif env.get("API_ID", "").strip():
        targets.append(_target(env, "", default_region))
    if env.get("DISCOVERY_REGIONS", "").strip():
        regions = tuple(r.strip() for r in env["DISCOVERY_REGIONS"].split(",") if r.strip())
        discovery = Discovery(_regions(regions, "DISCOVERY_REGIONS"), discovery.apis if discovery else None)
    if not targets and discovery is None:
        raise ConfigError(
            "no target: set API_ID (one API), CONFIG_PARAMETER or CONFIG_FILE (a configuration document), "
            "AUDIT_TARGETS, or DISCOVERY_REGIONS (every API tagged access-auditor:allowed-roles)"
        )
    seen = set()
    for i, target in enumerate(targets):
        key = (target.region, target.api_id, target.stage, target.health_method, target.health_url)
        if key in seen:
            raise ConfigError(f"target {i + 1} repeats the health call {target.health_method} {target.health_url} "
                              f"of API {target.api_id} stage {target.stage}")  # fmt: skip
        seen.add(key)
    account = env.get("API_ACCOUNT", "").strip()
    if discovery is not None and not re.fullmatch(r"\d{12}", account):
        raise ConfigError(
            "API_ACCOUNT: discovery needs the 12-digit id of the account it sweeps (the template sets it)"
        )
    return AuditConfig(
        targets=tuple(targets),
        discovery=discovery,
        defaults={k: v for k, v in defaults.items() if isinstance(v, str)},
        account=account,
        connect_timeout=_number(env, "HTTP_CONNECT_TIMEOUT", 3.0, maximum=60),
        read_timeout=_number(env, "HTTP_READ_TIMEOUT", 10.0, maximum=600),
        max_concurrency=int(_number(env, "MAX_CONCURRENCY", 1, maximum=64, integer=True))
        if env.get("MAX_CONCURRENCY", "").strip()
        else None,
        cloudtrail_lookup=_flag(env, "CLOUDTRAIL_LOOKUP", True),
        access_analyzer=_flag(env, "ACCESS_ANALYZER", False),
        control_plane_share=_number(env, "CONTROL_PLANE_SHARE", 0.5, maximum=1),
        saved_methods_max_age_s=_number(env, "SAVED_METHODS_MAX_AGE", 3600, maximum=86400),
        health_role_path=_role_path(env),
        suppressions=suppressions,
        **_outputs(env),
    )


def _outputs(env: Mapping[str, str]) -> dict[str, Any]:
    table, key = env.get("FINDINGS_TABLE", "").strip(), env.get("FINDINGS_MAC_KEY", "").strip()
    if bool(table) != bool(key):
        raise ConfigError("FINDINGS_TABLE and FINDINGS_MAC_KEY: set both (the table, and the KMS HMAC key that "
                          "authenticates its entries) or neither")  # fmt: skip
    bucket = env.get("OCSF_BUCKET", "").strip()
    if bucket and not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise ConfigError(f"OCSF_BUCKET: {bucket!r} is not an S3 bucket name")
    return {"findings_table": table, "findings_mac_key": key, "security_hub": _flag(env, "SECURITY_HUB", False),
            "ocsf_bucket": bucket}  # fmt: skip


def _role_path(env: Mapping[str, str]) -> str:
    path = env.get("HEALTH_ROLE_PATH", "").strip() or "/"
    if not re.fullmatch(r"/([\w+=,.@-]+/)*", path):
        raise ConfigError(f"HEALTH_ROLE_PATH: {path!r} is not an IAM path (/, or /a/b/)")
    return path


@dataclass(frozen=True)
class NotifyConfig:
    """What a notification needs: the topic, the function's log group, the alarms' period, and the
    configuration document's parameter (whose every change pages)."""

    topic_arn: str
    log_group: str
    period_s: int
    region: str
    config_parameter: str = ""  # CONFIG_PARAMETER


def function_region(env: Mapping[str, str]) -> str:
    """The region the function runs in (Lambda sets AWS_REGION)."""
    region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip()
    if not _REGION.match(region):
        raise ConfigError(f"AWS_REGION: {region!r} is not an AWS region such as us-east-1")
    return region


def load_notify_config(env: Mapping[str, str]) -> NotifyConfig:
    """ALARM_TOPIC_ARN and ALARM_PERIOD_SECONDS (the template sets them), and the log group Lambda names in
    AWS_LAMBDA_LOG_GROUP_NAME."""
    topic = env.get("ALARM_TOPIC_ARN", "").strip()
    if not re.fullmatch(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}", topic):
        raise ConfigError(f"ALARM_TOPIC_ARN: {topic!r} is not an SNS topic ARN")
    group = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "").strip()
    if not group:
        raise ConfigError("AWS_LAMBDA_LOG_GROUP_NAME is not set: the log group the notifications query")
    period = int(_number(env, "ALARM_PERIOD_SECONDS", 300, maximum=86400, integer=True))
    return NotifyConfig(topic, group, period, function_region(env), env.get("CONFIG_PARAMETER", "").strip())


def discovered_target(
    config: AuditConfig,
    api_id: str,
    region: str,
    account: str,
    roles: str,
    stage: str,
    health_path: str,
    health_role: str = "",
    networks: str = "",
) -> Target:
    """A target from an API's tags, over the configured defaults; raises ConfigError naming the tag. A
    health role given without ``arn:`` is a role of the API's own account: its path and name
    (``apigw-access-auditor/health/orders``, or ``orders`` when its path is /)."""
    values = {**config.defaults, "API_ID": api_id, "API_REGION": region, "API_ACCOUNT": account,
              "ALLOWED_ROLE_ARN": ",".join(roles.split()), "API_STAGE": stage}  # fmt: skip
    if health_path:
        values["HEALTH_PATH"] = health_path
    if health_role:
        arn = health_role if health_role.startswith("arn:") else f"arn:aws:iam::{account}:role/{health_role}"
        if arn.split(":")[4:5] != [account]:
            # Whoever can tag the API must not make the auditor sign its health call as another account's role.
            raise ConfigError(
                f"tag access-auditor:health-role: {health_role!r} is not a role of the API's account {account}"
            )
        # role/<path segments>/<name>: the role's path is "/" and each segment followed by "/"
        path = "/" + "".join(segment + "/" for segment in arn.split(":", 5)[-1].split("/")[1:-1])
        if not path.startswith(config.health_role_path):
            # Nor as a role of the account outside the roles kept for health calls (the path the member
            # template lets its audit role assume).
            raise ConfigError(
                f"tag access-auditor:health-role: {health_role!r} is not under the health roles' path "
                f"{config.health_role_path} (HEALTH_ROLE_PATH)"
            )
        values["ASSUME_ROLE_ARN"] = arn
    values.pop("API_ENDPOINT", None)  # a default endpoint belongs to one API, never to discovered ones
    if networks.split():
        ids = networks.split()
        values["ALLOWED_VPCE"] = ",".join(i for i in ids if i.startswith("vpce-"))
        values["ALLOWED_VPC"] = ",".join(i for i in ids if not i.startswith("vpce-"))
    return _target(values, "tag ", region, source="tag")


def target_schema() -> dict[str, Any]:
    """The configuration document's JSON Schema, derived from TARGET_SETTINGS."""
    setting: dict[str, Any] = {
        key: {"type": "array", "items": {"type": "string"}, "description": text}
        if key == "ALLOWED_ROLE_ARN"
        else {"type": "string", "description": text}
        for key, text in TARGET_SETTINGS.items()
    }
    setting["ALLOWED_ROLE_ARN"] = {"oneOf": [{"type": "string"}, setting["ALLOWED_ROLE_ARN"]],
                                   "description": TARGET_SETTINGS["ALLOWED_ROLE_ARN"]}  # fmt: skip
    defaults = {k: v for k, v in setting.items() if k != "API_ID"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "apigw-access-auditor configuration",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "defaults": {"type": "object", "additionalProperties": False, "properties": defaults},
            "discovery": {
                "type": "object",
                "additionalProperties": False,
                "required": ["regions"],
                "properties": {
                    "regions": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "apis": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "the only API ids whose tags may configure them",
                    },  # fmt: skip
                },
            },
            "targets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["API_ID"],
                    "properties": setting,
                },  # fmt: skip
            },
        },
    }


def _read_document(
    env: Mapping[str, str], read_parameter: Callable[[str, str], str] | None
) -> tuple[str, str] | None:
    parameter = env.get("CONFIG_PARAMETER", "").strip()
    path = env.get("CONFIG_FILE", "").strip()
    if parameter and path:
        raise ConfigError("CONFIG_PARAMETER and CONFIG_FILE are both set; set one")
    if parameter:
        if read_parameter is None:
            raise ConfigError(f"CONFIG_PARAMETER {parameter}: no SSM client to read it with")
        # CONFIG_KEY: the key the template made for the document; a parameter not encrypted with it is refused
        return read_parameter(parameter, env.get("CONFIG_KEY", "").strip()), f"SSM parameter {parameter}"
    if path:
        file = Path(path) if Path(path).is_absolute() else Path(__file__).parent / path
        try:
            return file.read_text(encoding="utf-8")[: MAX_DOCUMENT_CHARS + 1], f"CONFIG_FILE {path}"
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"CONFIG_FILE {path}: cannot be read ({exc})") from exc
    return None


def _parse_document(text: str, where: str) -> dict[str, Any]:
    if len(text) > MAX_DOCUMENT_CHARS:
        raise ConfigError(f"{where}: longer than {MAX_DOCUMENT_CHARS} characters")
    try:
        raw = json.loads(text)
    except ValueError:
        import yaml  # only a YAML document pays for the import

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where}: neither JSON nor YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected an object with some of {', '.join(DOCUMENT_KEYS)}")
    unknown = sorted(set(raw) - set(DOCUMENT_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(str, unknown))}; expected {', '.join(DOCUMENT_KEYS)}"
        )
    return raw


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list")
    return value


def _settings(item: Any, where: str, *, allow_id: bool) -> dict[str, str]:
    """One entry's settings as strings (a list of role ARNs becomes the comma-separated form)."""
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected an object of settings such as API_ID, ALLOWED_ROLE_ARN")
    keys = [k for k in TARGET_KEYS if allow_id or k != "API_ID"]
    unknown = sorted(str(k) for k in set(item) - set(keys))
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; expected some of {', '.join(keys)}"
        )
    values = {}
    for key, value in item.items():
        if (
            key in ("ALLOWED_ROLE_ARN", "ALLOWED_VPCE", "ALLOWED_VPC")
            and isinstance(value, list)
            and all(isinstance(v, str) for v in value)
        ):
            value = ",".join(value)
        if not isinstance(value, str):
            raise ConfigError(f"{where}.{key}: expected a string, got {json.dumps(value, default=str)}")
        values[key] = value
    return values


def _discovery(raw: Any, where: str) -> Discovery:
    if not isinstance(raw, dict) or set(raw) - set(DISCOVERY_KEYS) or "regions" not in raw:
        raise ConfigError(
            f"{where}: expected an object with regions (a list) and optionally apis (a list of ids)"
        )
    regions = _list(raw["regions"], f"{where}.regions")
    apis = raw.get("apis")
    if apis is not None and not all(
        isinstance(a, str) and _API_ID.match(a) for a in _list(apis, f"{where}.apis")
    ):
        raise ConfigError(f"{where}.apis: expected a list of REST API ids")
    return Discovery(
        _regions(tuple(regions), f"{where}.regions"), frozenset(apis) if apis is not None else None
    )


def _regions(regions: tuple[Any, ...], where: str) -> tuple[str, ...]:
    bad = [r for r in regions if not isinstance(r, str) or not _REGION.match(r)]
    if bad or not regions:
        raise ConfigError(
            f"{where}: {bad or 'nothing'} is not a list of AWS regions such as us-east-1,eu-west-1"
        )
    return tuple(dict.fromkeys(regions))


def _target(values: Mapping[str, Any], prefix: str, default_region: str, source: str = "env") -> Target:
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
    if not path.startswith("/") or any(c in path for c in "?# \\"):
        raise ConfigError(
            f"{prefix}HEALTH_PATH: {path!r} must start with / and hold no query, fragment, space or backslash"
        )
    segments = [unquote(segment) for segment in path.split("/")[1:]]
    if any(segment in (".", "..") for segment in segments):
        # A dot segment is resolved by clients and proxies before API Gateway sees the path: /../other would
        # leave the stage, and the health call and the probes would test another stage or API.
        raise ConfigError(
            f"{prefix}HEALTH_PATH: {path!r} holds a '.' or '..' segment, which would leave the stage"
        )
    path = "/" + "/".join(part for part in path.split("/") if part)  # //health/ is /health
    method = (get("HEALTH_METHOD") or "GET").upper()
    if method not in _METHODS:
        raise ConfigError(f"{prefix}HEALTH_METHOD: {method!r} is not one of {', '.join(sorted(_METHODS))}")
    endpoint = get("API_ENDPOINT") or None
    invoke_base = get(INVOKE_BASE) or None
    if invoke_base:
        _url(invoke_base, INVOKE_BASE)
    if endpoint:
        _url(endpoint, prefix + "API_ENDPOINT")
    private_base = get(PRIVATE_BASE) or None
    if private_base:
        _url(private_base, PRIVATE_BASE)
    vpces = _ids(get("ALLOWED_VPCE"), VPCE_ID, "VPC endpoint", prefix + "ALLOWED_VPCE")
    vpcs = _ids(get("ALLOWED_VPC"), VPC_ID, "VPC", prefix + "ALLOWED_VPC")
    addressing = get("PRIVATE_ADDRESSING").lower() or "dns"
    if addressing not in ADDRESSING:
        raise ConfigError(f"{prefix}PRIVATE_ADDRESSING: {addressing!r} is not one of {', '.join(ADDRESSING)}")
    via = get("EXECUTE_API_ENDPOINT") or None
    kind = get("API_KIND").lower() or "rest"
    if kind not in ("rest", "http"):
        raise ConfigError(f"{prefix}API_KIND: {kind!r} is not rest or http")
    if addressing == "alias" and not (via and VPCE_ID.match(via)):
        raise ConfigError(
            f"{prefix}EXECUTE_API_ENDPOINT: the alias addressing needs the endpoint's id (vpce-...)"
        )
    if addressing == "endpoint" and not (
        via
        and re.fullmatch(
            r"vpce-[0-9a-f]+-[0-9a-z]+\.execute-api\.[a-z0-9-]+\.vpce\.amazonaws\.com(\.cn)?", via
        )
    ):
        raise ConfigError(f"{prefix}EXECUTE_API_ENDPOINT: the endpoint addressing needs the endpoint's DNS name "
                          "(vpce-...-....execute-api.REGION.vpce.amazonaws.com)")  # fmt: skip
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
        source=source,
        invoke_base=invoke_base,
        allowed_vpces=vpces,
        allowed_vpcs=vpcs,
        execute_api_endpoint=via,
        addressing=addressing,
        private_base=private_base,
        kind=kind,
    )


def _ids(text: str, pattern: re.Pattern[str], what: str, name: str) -> tuple[str, ...]:
    return network_ids(
        [v.strip() for v in text.replace(" ", ",").split(",") if v.strip()], pattern, what, name + ":"
    )


def _url(url: str, name: str) -> None:
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises for a port outside 0-65535
    except ValueError:
        parts, host = None, None
    ok = (
        parts is not None
        and host
        and (parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host)))
        and not any(c.isspace() or ord(c) < 32 for c in url)
    )
    if not ok or parts is None or parts.query or parts.fragment:
        raise ConfigError(f"{name}: {url!r} must be an https:// base URL (http:// only for loopback hosts)")


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
