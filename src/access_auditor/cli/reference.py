"""``access-auditor findings`` and ``access-auditor schema``: what the auditor can report, and the shape of its
configuration document, printed from the code that declares them."""

from __future__ import annotations

import argparse
import json
from typing import Any

from access_auditor.cli.options import add_command


def register(commands: Any) -> None:
    findings = add_command(
        commands, "findings", "every finding code: severity, metric, meaning",
        "Every finding the auditor can report: its code, severity, the metric it counts in, and what it means.",
        "access-auditor findings", "access-auditor findings | grep HEALTH_", "access-auditor findings --markdown > findings.md",
    )  # fmt: skip
    findings.add_argument("--markdown", action="store_true", help="as the documentation's table")
    findings.set_defaults(handler=_findings)
    schema = add_command(
        commands, "schema", "the configuration document's JSON Schema",
        "The configuration document's JSON Schema (defaults, discovery, targets), from the code that reads it.",
        "access-auditor schema > auditor-config.schema.json",
        "# validate a document with any JSON Schema validator, e.g.",
        "check-jsonschema --schemafile auditor-config.schema.json fleet.json",
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
