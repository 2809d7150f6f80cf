"""What the local AWS adds to moto's Security Hub and AWS Config, where the product depends on it. The
limits and rules are written here from AWS's documentation, not taken from the product:

* BatchImportFindings ("BatchImportFindings", Security Hub API reference) is refused for an account that
  has not enabled Security Hub (InvalidAccessException) and for more than 100 findings (InvalidInputException);
  a finding over 240 KB, one whose AwsAccountId is not the caller's account, or whose ProductArn is not the
  account's default product (``arn:aws:securityhub:REGION:ACCOUNT:product/ACCOUNT/default``), fails alone
  (FailedFindings). ``Workflow`` is taken only when a finding is created; a finding that goes from ARCHIVED
  back to ACTIVE has its workflow status set to NEW ("Finding providers' updates", Security Hub user guide).
* PutEvaluations (AWS Config API reference) takes at most 100 evaluations; they are kept per account, region and
  rule (the local result token is the rule's name, as Config's own tokens are opaque), and
  GetComplianceDetailsByConfigRule answers with them, shaped as AWS answers.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

from moto.config.models import ConfigBackend
from moto.config.responses import ConfigResponse
from moto.core.exceptions import JsonRESTError
from moto.securityhub.models import Finding, SecurityHubBackend

MAX_FINDINGS = 100
MAX_FINDING_BYTES = 240 * 1024
MAX_EVALUATIONS = 100
EVALUATIONS: dict[tuple[str, str, str], dict[tuple[str, str], dict[str, Any]]] = {}
IMPORTS: list[
    tuple[str, str, int]
] = []  # (account, region, findings) per accepted request: what the bench counts
_lock = threading.Lock()


def reset() -> None:
    with _lock:
        EVALUATIONS.clear()
        IMPORTS.clear()


def install() -> None:
    """Patch moto (emulation.install calls this once per process)."""

    def batch_import_findings(
        self: Any, findings: list[dict[str, Any]]
    ) -> tuple[int, int, list[dict[str, Any]]]:
        if not self.enabled:
            raise JsonRESTError("InvalidAccessException", "Account is not subscribed to AWS Security Hub")
        if not 1 <= len(findings) <= MAX_FINDINGS:
            raise JsonRESTError("InvalidInputException", f"Findings must hold 1 to {MAX_FINDINGS} findings")
        product = (
            f"arn:aws:securityhub:{self.region_name}:{self.account_id}:product/{self.account_id}/default"
        )
        failed, ok = [], 0
        for item in findings:
            fid = str(item.get("Id", ""))
            problem = None
            if len(json.dumps(item).encode()) > MAX_FINDING_BYTES:
                problem = "the finding is larger than 240 KB"
            elif item.get("AwsAccountId") != self.account_id:
                problem = "AwsAccountId must be the calling account"
            elif item.get("ProductArn") != product:
                problem = f"ProductArn must be {product}"
            elif not item.get("Resources"):
                problem = "Finding must contain at least one resource in the Resources array"
            if problem:
                failed.append({"Id": fid, "ErrorCode": "InvalidInput", "ErrorMessage": problem})
                continue
            existing = next((f for f in self.findings if f.id == fid), None)
            if existing is None:
                self.findings.append(
                    Finding(fid, {**item, "Workflow": item.get("Workflow") or {"Status": "NEW"}})
                )
            else:
                workflow = existing.data.get("Workflow") or {"Status": "NEW"}
                if existing.data.get("RecordState") == "ARCHIVED" and item.get("RecordState") == "ACTIVE":
                    workflow = {"Status": "NEW"}
                existing.data.update({**item, "Workflow": workflow})
            ok += 1
        with _lock:
            IMPORTS.append((self.account_id, self.region_name, len(findings)))
        return len(failed), ok, failed

    SecurityHubBackend.batch_import_findings = batch_import_findings  # type: ignore[method-assign]

    def put_evaluations(self: Any, evaluations: list[dict[str, Any]] | None = None, result_token: str | None = None,
                        test_mode: bool | None = False) -> dict[str, Any]:  # fmt: skip
        if not evaluations or len(evaluations) > MAX_EVALUATIONS:
            raise JsonRESTError(
                "InvalidParameterValueException", f"Evaluations must hold 1 to {MAX_EVALUATIONS} items"
            )
        if not result_token:
            raise JsonRESTError("InvalidResultTokenException", "The result token is invalid.")
        if test_mode:
            return {"FailedEvaluations": []}
        now = dt.datetime.now(dt.UTC).timestamp()
        with _lock:
            kept = EVALUATIONS.setdefault((self.account_id, self.region_name, result_token), {})
            for e in evaluations:
                kept[(e["ComplianceResourceType"], e["ComplianceResourceId"])] = {
                    **e,
                    "ResultRecordedTime": now,
                }
        return {"FailedEvaluations": []}

    ConfigBackend.put_evaluations = put_evaluations  # type: ignore[method-assign]

    def get_compliance_details_by_config_rule(self: Any) -> str:
        rule = self._get_param("ConfigRuleName")
        wanted = set(self._get_param("ComplianceTypes") or [])
        with _lock:
            kept = list(EVALUATIONS.get((self.current_account, self.region, rule), {}).values())
        results = [{
            "EvaluationResultIdentifier": {"EvaluationResultQualifier": {
                "ConfigRuleName": rule, "ResourceType": e["ComplianceResourceType"],
                "ResourceId": e["ComplianceResourceId"]}, "OrderingTimestamp": _stamp(e["OrderingTimestamp"])},
            "ComplianceType": e["ComplianceType"], "ResultRecordedTime": e["ResultRecordedTime"],
            "ConfigRuleInvokedTime": e["ResultRecordedTime"], **({"Annotation": e["Annotation"]} if e.get("Annotation") else {}),
        } for e in kept if not wanted or e["ComplianceType"] in wanted]  # fmt: skip
        return json.dumps({"EvaluationResults": results})

    ConfigResponse.get_compliance_details_by_config_rule = get_compliance_details_by_config_rule  # type: ignore[attr-defined]


def _stamp(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
