"""Security Hub's BatchImportFindings, within AWS's limits ("BatchImportFindings", Security Hub API
reference): at most 100 findings and 6 MB a request, each finding at most 240 KB; 10 requests a second with a
burst of 30 per account and region (aws/pacing.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from access_auditor.aws.clients import call

log = logging.getLogger(__name__)
MAX_FINDINGS = 100
MAX_REQUEST_BYTES = 6 * 1024 * 1024
MAX_FINDING_BYTES = 240 * 1024


def _size(finding: dict[str, Any]) -> int:
    return len(json.dumps(finding, separators=(",", ":")).encode())


def fit(finding: dict[str, Any]) -> dict[str, Any]:
    """The finding, its free text cut until it fits in 240 KB."""
    while _size(finding) > MAX_FINDING_BYTES:
        over = _size(finding) - MAX_FINDING_BYTES
        finding = {**finding, "Description": finding["Description"][: max(16, len(finding["Description"]) - over - 16)],
                   "ProductFields": {k: v[:256] for k, v in finding.get("ProductFields", {}).items()}}  # fmt: skip
        if len(finding["Description"]) <= 16:
            break
    return finding


def batches(findings: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Consecutive requests of at most 100 findings and 6 MB."""
    batch: list[dict[str, Any]] = []
    size = 2
    for finding in map(fit, findings):
        grows = _size(finding) + 1
        if batch and (len(batch) == MAX_FINDINGS or size + grows > MAX_REQUEST_BYTES):
            yield batch
            batch, size = [], 2
        batch.append(finding)
        size += grows
    if batch:
        yield batch


def import_findings(
    client: Any, pace: Callable[[str], None], findings: Sequence[dict[str, Any]]
) -> tuple[set[str], list[str]]:
    """Send ``findings``; returns (ids imported, problems). A failed request or finding is a problem named,
    never an exception: the others still go, and what failed is sent again next run."""
    imported: set[str] = set()
    problems: list[str] = []
    for batch in batches(findings):
        try:
            pace("BatchImportFindings")
            answer = call("BatchImportFindings", client.batch_import_findings, Findings=batch)
        except Exception as exc:  # AwsCallError, QuotaWait, CredentialsError: named, and retried next run
            problems.append(f"{len(batch)} finding(s) not imported: {exc}")
            continue
        failed = {
            f.get("Id"): f"{f.get('ErrorCode')}: {f.get('ErrorMessage')}"
            for f in answer.get("FailedFindings", [])
        }
        problems.extend(f"{fid}: {why}" for fid, why in failed.items())
        imported |= {f["Id"] for f in batch if f["Id"] not in failed}
    return imported, problems
