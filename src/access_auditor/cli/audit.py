"""``access-auditor audit``: one audit through exactly the code path the Lambda runs."""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from access_auditor.cli.options import aws_session, seconds
from access_auditor.errors import ConfigError

if TYPE_CHECKING:
    from access_auditor.audit import TargetResult

EXAMPLES = """examples:
  access-auditor audit --api-id abc123 --stage prod --region us-east-1 \\
      --role arn:aws:iam::123456789012:role/app --outsider-role arn:aws:iam::123456789012:role/other
  access-auditor audit --config fleet.yaml --json
  access-auditor audit --config fleet.yaml --format ocsf > findings.json
  access-auditor audit --discover us-east-1 --discover eu-west-1 --account 123456789012

--config takes the Lambda's configuration document (JSON or YAML: defaults, discovery, targets; see
`access-auditor schema`), or a list of targets. Exit: 0 healthy, 1 findings, 2 bad input, 3 the state could
not be established.
"""
FORMATS = ("table", "json", "ocsf", "asff", "sarif")
_FLAGS = {
    "api_id": "API_ID", "stage": "API_STAGE", "region": "API_REGION", "account": "API_ACCOUNT",
    "role": "ALLOWED_ROLE_ARN", "assume_role": "ASSUME_ROLE_ARN", "outsider_role": "OUTSIDER_ROLE_ARN",
    "health_path": "HEALTH_PATH", "health_method": "HEALTH_METHOD", "endpoint": "API_ENDPOINT",
    "vpce": "ALLOWED_VPCE", "vpc": "ALLOWED_VPC", "via_endpoint": "EXECUTE_API_ENDPOINT",
    "addressing": "PRIVATE_ADDRESSING",
}  # fmt: skip


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "audit", help="audit one API, or a config file of APIs, once", description="Audit once, as the Lambda does.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--config", help="configuration document, JSON or YAML (see below)")
    parser.add_argument("--discover", action="append", metavar="REGION",
                        help="audit every API tagged access-auditor:allowed-roles in REGION (repeatable)")  # fmt: skip
    parser.add_argument("--api-id")
    parser.add_argument("--stage")
    parser.add_argument("--region")
    parser.add_argument("--account", help="the API's account (default: the first role's)")
    parser.add_argument("--role", action="append",
                        help="allowed role: an ARN, or a role name looked up in IAM (repeatable)")  # fmt: skip
    parser.add_argument("--assume-role", help="sign the health call as this role, assumed through STS")
    parser.add_argument("--outsider-role", help="role whose signed probe must be refused")
    parser.add_argument("--health-path")
    parser.add_argument("--health-method")
    parser.add_argument("--endpoint", help="custom-domain base URL")
    parser.add_argument(
        "--vpce", action="append", help="a private API: only through this VPC endpoint (repeatable)"
    )
    parser.add_argument("--vpc", action="append", help="a private API: only from this VPC (repeatable)")
    parser.add_argument(
        "--via-endpoint", help="a private API: the VPC endpoint to call it through (id or DNS name)"
    )
    parser.add_argument("--addressing", choices=("dns", "alias", "endpoint"),
                        help="a private API: private DNS (default), the Route 53 alias, or the endpoint's own name")  # fmt: skip
    parser.add_argument("--no-cloudtrail", action="store_true", help="skip the undeployed-change lookup")
    parser.add_argument("--profile", help="AWS profile")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table; json (the Lambda's summary); ocsf (OCSF 1.6 events), asff (Security Hub "
                        "findings) or sarif (SARIF 2.1.0) of the findings, suppressions applied")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.add_argument("--deadline", type=seconds, default=60.0, metavar="SECONDS",
                        help="the whole audit ends within this time, as the Lambda's does (default 60)")  # fmt: skip
    parser.set_defaults(handler=run)


def in_flags(message: str) -> str:
    """A configuration error as the flags that set what it names (``--stage`` for API_STAGE)."""
    for flag, name in _FLAGS.items():
        message = re.sub(rf"\b{name}\b", "--" + flag.replace("_", "-"), message)
    return message.replace("--discover: ", "").replace("DISCOVERY_REGIONS", "--discover")


def settings(args: argparse.Namespace) -> dict[str, str]:
    """The environment-style settings the Lambda would read, from flags or a config file."""
    values: dict[str, str] = {}
    if args.config:
        path = Path(args.config)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"--config {args.config}: {exc.strerror}") from exc
        try:
            raw: Any = json.loads(text)
        except json.JSONDecodeError:
            raw = None  # YAML, or broken: the configuration document's reader says which
        if isinstance(raw, list):  # a bare list of targets
            values["AUDIT_TARGETS"] = json.dumps(raw)
        else:
            values["CONFIG_FILE"] = str(path.resolve())
    if args.discover:
        values["DISCOVERY_REGIONS"] = ",".join(args.discover)
    for flag, name in _FLAGS.items():
        value = getattr(args, flag)
        if value:
            values[name] = ",".join(value) if isinstance(value, list) else value
    if args.no_cloudtrail:
        values["CLOUDTRAIL_LOOKUP"] = "false"
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_EXECUTE_API"):
        if name in os.environ and name not in values:
            values[name] = os.environ[name]
    return values


def run(args: argparse.Namespace) -> int:
    from access_auditor.audit import run_audit
    from access_auditor.cli.policy import resolve_roles
    from access_auditor.config import load_config
    from access_auditor.sources import ALLOWED_ROLES_TAG
    from access_auditor.wiring import build_ports

    session = aws_session(args.profile)
    if args.role:
        args.role = resolve_roles(args.role, args.account, session, args.region)
    try:
        config = load_config(settings(args))
    except ConfigError as exc:
        raise ConfigError(str(exc) if args.config else in_flags(str(exc))) from exc
    ports = build_ports(session, share=config.control_plane_share)
    results = run_audit(config, ports, budget_s=args.deadline)
    chosen = "json" if args.json else args.format
    if chosen in ("ocsf", "asff", "sarif"):
        print(json.dumps(findings_as(chosen, config, results), indent=2))
        return 3 if any(r.audit_error for r in results) else 0 if all(r.ok for r in results) else 1
    if not results and not args.json:
        print(f"nothing to audit: no REST API in {', '.join(args.discover or [])} carries the tag "
              f"{ALLOWED_ROLES_TAG} (discovery audits only the APIs that carry it)")  # fmt: skip
        return 0
    if args.json:
        print(
            json.dumps(
                {"ok": all(r.ok for r in results), "targets": [r.summary() for r in results]}, indent=2
            )
        )
    else:
        print(render_table(results))
    if any(r.audit_error for r in results):
        return 3
    return 0 if all(r.ok for r in results) else 1


def findings_as(chosen: str, config: Any, results: list[TargetResult]) -> Any:
    """This run's findings in ``chosen`` format, its suppressions applied (no state is kept between runs of
    the CLI: every finding is NEW, or SUPPRESSED)."""
    import datetime as dt

    from access_auditor import __version__
    from access_auditor.outputs.formats import asff, ocsf, sarif
    from access_auditor.outputs.sinks import FindingState, deliver

    now = dt.datetime.now(dt.UTC)
    records = sorted(
        deliver(results, config.suppressions, FindingState(None), [], now).records.values(),
        key=lambda r: r.id,
    )
    if chosen == "ocsf":
        return [ocsf(r, __version__, now) for r in records]
    if chosen == "asff":
        return [item for r in records for item in asff(r, None, now)]
    return sarif(records, __version__)


def render_table(results: list[TargetResult]) -> str:
    """One row per target; one column per finding category that has a metric (from the registry)."""
    from access_auditor.findings import Category

    categories = [c for c in Category if c.metric]
    rows = [
        ("API", "STAGE", "REGION", "STATUS", "LATENCY", *(c.label.upper() for c in categories), "VERDICT")
    ]
    for r in results:
        summary = r.summary()
        verdict = "ok" if r.ok else "deferred" if r.deferred else "ERROR" if r.audit_error else "FINDINGS"
        latency = f"{summary['latencyMs']:.0f} ms" if summary["latencyMs"] is not None else "-"
        values = r.metric_values()  # what the metrics say: "-" where no check spoke for the category
        # what each category's metric says: "ok", "FAIL" (a finding counts in it), or "-" (no check spoke)
        flags = ({None: "-", 1: "FAIL", 0: "ok"}[values.get(str(c.metric))] for c in categories)
        rows.append((r.target.api_id, r.target.stage, r.target.region, str(summary["statusCode"] or "-"), latency,
                     *flags, verdict))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    for r in results:
        for f in r.findings:
            lines.append(f"{r.target.api_id}: {f.severity.value.upper()} {f.code}: {f.message}")
    return "\n".join(lines)
