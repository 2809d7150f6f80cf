"""``access-auditor findings`` and ``access-auditor schema``: what the auditor can report, and the shape of its
configuration document, printed from the code that declares them."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(commands: Any) -> None:
    findings = commands.add_parser("findings", help="every finding code: severity, metric, meaning")
    findings.add_argument("--markdown", action="store_true", help="as the README's table")
    findings.set_defaults(handler=_findings)
    schema = commands.add_parser("schema", help="the configuration document's JSON Schema")
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
