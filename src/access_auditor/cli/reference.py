"""``access-auditor findings`` and ``access-auditor schema``: what the auditor can report, and the shape of its
configuration document, printed from the code that declares them."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(commands: Any) -> None:
    findings = commands.add_parser(
        "findings", help="every finding code: severity, metric, meaning",
        description="Every finding the auditor can report: its code, severity, the metric it counts in, and what it means.",
        epilog="examples:\n  access-auditor findings\n  access-auditor findings | grep HEALTH_\n"
               "  access-auditor findings --markdown > findings.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    findings.add_argument("--markdown", action="store_true", help="as the documentation's table")
    findings.set_defaults(handler=_findings)
    schema = commands.add_parser(
        "schema", help="the configuration document's JSON Schema",
        description="The configuration document's JSON Schema (defaults, discovery, targets), from the code that reads it.",
        epilog="examples:\n  access-auditor schema > auditor-config.schema.json\n"
               "  # validate a document with any JSON Schema validator, e.g.\n"
               "  check-jsonschema --schemafile auditor-config.schema.json fleet.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    schema.set_defaults(handler=_schema)


def _findings(args: argparse.Namespace) -> int:
    from access_auditor.findings import CODES, markdown_table

    if args.markdown:
        print(markdown_table())
        return 0
    width = max(map(len, CODES))
    for code in CODES.values():
        counts = ", ".join(sorted(c.metric or c.label for c in code.categories))
        print(
            f"{code.name.ljust(width)}  {(code.severities or code.severity.value).ljust(18)}  {counts.ljust(40)}  {code.meaning}"
        )
    return 0


def _schema(args: argparse.Namespace) -> int:
    from access_auditor.config import target_schema

    print(json.dumps(target_schema(), indent=2))
    return 0
