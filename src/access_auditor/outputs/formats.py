"""The formats findings are written in, as pure functions of their records: ASFF (Security Hub), OCSF 1.6
(Security Lake and any OCSF consumer) and SARIF 2.1.0 (code-scanning views).

The OCSF class follows what a finding reports: who can invoke what is an IAM Analysis Finding (2008), what a
live probe saw is a Detection Finding (2004), every other difference from the expected state is a Compliance
Finding (2003).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from access_auditor.findings import CODES, Category, Severity
from access_auditor.outputs.lifecycle import Record, State

__all__ = ["asff", "ocsf", "ocsf_class", "partition", "resource_arn", "sarif", "stage_arn"]

PRODUCT = "apigw-access-auditor"
DOCS = "https://apigw-access-auditor.readthedocs.io/en/latest/reference/findings/"
OCSF_VERSION = "1.6.0"
ASFF_SCHEMA = "2018-10-08"
IAM_ANALYSIS = frozenset({"ACCESS_WEAKENED", "ACCESS_CHANGED", "ALLOWED_ROLE_LOCKED_OUT", "POLICY_MISSING",
                          "METHOD_NOT_IAM", "POLICY_REWRITTEN"})  # fmt: skip
SEVERITY_ID = {Severity.INFO: 1, Severity.LOW: 2, Severity.MEDIUM: 3, Severity.HIGH: 4, Severity.CRITICAL: 5}
ASFF_LABEL = {Severity.INFO: "INFORMATIONAL", Severity.LOW: "LOW", Severity.MEDIUM: "MEDIUM", Severity.HIGH: "HIGH",
              Severity.CRITICAL: "CRITICAL"}  # fmt: skip
STATUS_ID = {State.NEW: (1, "New"), State.ACTIVE: (2, "In Progress"), State.SUPPRESSED: (3, "Suppressed"),
             State.RESOLVED: (4, "Resolved")}  # fmt: skip


def partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def stage_arn(account: str, region: str, api_id: str, stage: str, kind: str = "rest") -> str:
    """The stage's ARN in API Gateway's resource form (``/restapis/`` for a REST API, ``/apis/`` for an HTTP
    API); an account and region placeholder (API ``*``) names the account."""
    if api_id == "*":
        return f"AWS::::Account:{account}"
    apis = "apis" if kind == "http" else "restapis"
    return f"arn:{partition(region)}:apigateway:{region}::/{apis}/{api_id}/stages/{stage}"


def resource_arn(record: Record) -> str:
    return stage_arn(record.account, record.region, record.api_id, record.stage, record.kind)


def _compliance(record: Record) -> str:
    """FAILED, WARNING, PASSED or NOT_AVAILABLE (ASFF's Compliance.Status)."""
    if record.state is State.RESOLVED:
        return "PASSED"
    categories = CODES[record.code].categories
    if Category.AUDIT_ERROR in categories and len(categories) == 1:
        return "NOT_AVAILABLE"
    if categories == {Category.NOTE}:
        return "PASSED" if Severity(record.severity) is Severity.INFO else "WARNING"
    return "FAILED"


def _title(record: Record) -> str:
    where = (f"account {record.account} ({record.region})" if record.api_id == "*"
             else f"API {record.api_id} stage {record.stage} ({record.region})")  # fmt: skip
    return f"{record.code} on {where}"


def asff(record: Record, before: Record | None, now: dt.datetime) -> list[dict[str, Any]]:
    """The ASFF findings to import for ``record`` after its transition from ``before`` (None: first export).

    A suppressed finding is its own ASFF finding (id ``.../suppressed/<expiry>``), created with Workflow
    SUPPRESSED; the product sets Workflow only when it creates a finding, never after, so the people who
    triage in Security Hub keep their status. The finding it replaces is archived while it lasts."""
    out = []
    supp_before = before is not None and before.state is State.SUPPRESSED and before.exported_at is not None
    main_exported = (
        before is not None and before.exported_at is not None and before.state is not State.SUPPRESSED
    )
    same_suppression = supp_before and before is not None and before.until == record.until
    if supp_before and before is not None and not same_suppression:
        out.append(_asff(before, _suppressed_id(before), now, active=False))  # that suppression is over
    if record.state is State.SUPPRESSED:
        out.append(_asff(record, _suppressed_id(record), now, active=True,
                         workflow=None if same_suppression else "SUPPRESSED"))  # fmt: skip
        if main_exported and before is not None:
            out.append(_asff(before, before.id, now, active=False, note="suppressed: " + record.reason))
    elif record.state is State.RESOLVED:
        if main_exported:
            out.append(_asff(record, record.id, now, active=False))
    else:
        out.append(_asff(record, record.id, now, active=True, workflow=None if main_exported else "NEW"))
    return out


def _suppressed_id(record: Record) -> str:
    return f"{record.id}/suppressed/{(record.until or '')[:10]}"


def _asff(record: Record, fid: str, now: dt.datetime, *, active: bool, workflow: str | None = None,
          note: str = "") -> dict[str, Any]:  # fmt: skip
    region, account = record.region, record.account
    severity = Severity(record.severity)
    resource_type = ("AwsAccount" if record.api_id == "*"
                     else "AwsApiGatewayV2Stage" if record.kind == "http" else "AwsApiGatewayStage")  # fmt: skip
    finding: dict[str, Any] = {
        "SchemaVersion": ASFF_SCHEMA,
        "Id": f"{PRODUCT}/{fid}",
        "ProductArn": f"arn:{partition(region)}:securityhub:{region}:{account}:product/{account}/default",
        "GeneratorId": f"{PRODUCT}/{record.code}",
        "AwsAccountId": account,
        "Types": ["Software and Configuration Checks/AWS Security Best Practices/API Gateway access"],
        "CreatedAt": record.first_seen,
        "UpdatedAt": now.isoformat(timespec="seconds"),
        "FirstObservedAt": record.first_seen,
        "LastObservedAt": record.last_seen,
        "Severity": {"Label": ASFF_LABEL[severity], "Original": severity.value.upper()},
        "Title": _title(record)[:256],
        "Description": (record.message or CODES[record.code].meaning)[:1024],
        "Remediation": {"Recommendation": {"Text": CODES[record.code].meaning[:512], "Url": DOCS}},
        "ProductFields": {
            "ProviderName": PRODUCT,
            f"{PRODUCT}/Code": record.code,
            f"{PRODUCT}/State": record.state.value,
            **({f"{PRODUCT}/Reason": (note or record.reason)[:1024]} if note or record.reason else {}),
            **({f"{PRODUCT}/SuppressedUntil": record.until} if record.until else {}),
        },
        "Resources": [
            {
                "Type": resource_type,
                "Id": resource_arn(record),
                "Partition": partition(region),
                "Region": region,
            }
        ],
        "Compliance": {"Status": _compliance(record) if active else "PASSED"},
        "RecordState": "ACTIVE" if active else "ARCHIVED",
    }
    if workflow:
        finding["Workflow"] = {"Status": workflow}
    return finding


def _resource_type(record: Record) -> str:
    """The CloudFormation type of what a finding is about."""
    if record.api_id == "*":
        return "AWS::Account"
    return "AWS::ApiGatewayV2::Stage" if record.kind == "http" else "AWS::ApiGateway::Stage"


def ocsf_class(code: str) -> tuple[int, str]:
    """(class uid, class name) for a finding code."""
    if code in IAM_ANALYSIS:
        return 2008, "IAM Analysis Finding"
    if Category.EXPOSURE in CODES[code].categories or code.startswith(
        ("PROBE", "OUTSIDER_", "UNSIGNED_", "VERDICT_")
    ):
        return 2004, "Detection Finding"
    return 2003, "Compliance Finding"


def _ms(stamp: str | None) -> int | None:
    return int(dt.datetime.fromisoformat(stamp).timestamp() * 1000) if stamp else None


def ocsf(record: Record, version: str, now: dt.datetime) -> dict[str, Any]:
    """One OCSF 1.6 finding event: Create for a new finding, Close for a resolved one, Update otherwise."""
    class_uid, class_name = ocsf_class(record.code)
    activity = {State.NEW: (1, "Create"), State.RESOLVED: (3, "Close")}.get(record.state, (2, "Update"))
    severity = Severity(record.severity)
    status_id, status = STATUS_ID[record.state]
    event: dict[str, Any] = {
        "activity_id": activity[0],
        "activity_name": activity[1],
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": class_uid,
        "class_name": class_name,
        "type_uid": class_uid * 100 + activity[0],
        "severity_id": SEVERITY_ID[severity],
        "severity": severity.value.capitalize() if severity is not Severity.INFO else "Informational",
        "status_id": status_id,
        "status": status,
        "time": int(now.timestamp() * 1000),
        "message": record.message,
        "metadata": {
            "version": OCSF_VERSION,
            "profiles": ["cloud"],
            "product": {"name": PRODUCT, "vendor_name": PRODUCT, "version": version},
            "log_name": "findings",
        },
        "cloud": {
            "provider": "AWS",
            "region": record.region,
            "account": {"uid": record.account, "type_id": 10, "type": "AWS Account"},
        },  # fmt: skip
        "finding_info": {
            "uid": record.id,
            "title": _title(record),
            "desc": CODES[record.code].meaning,
            "types": [record.code],
            "first_seen_time": _ms(record.first_seen),
            "last_seen_time": _ms(record.last_seen),
            "modified_time": _ms(record.changed_at),
            "analytic": {"uid": record.code, "name": record.code, "type_id": 1, "type": "Rule"},
        },
        "resources": [
            {
                "uid": resource_arn(record),
                "type": _resource_type(record),
                "region": record.region,
                "cloud_partition": partition(record.region),
            }
        ],  # fmt: skip
        "unmapped": {
            "state": record.state.value,
            **({"reason": record.reason} if record.reason else {}),
            **({"suppressed_until": record.until} if record.until else {}),
        },  # fmt: skip
    }
    if class_uid == 2003:
        status = _compliance(record)
        event["compliance"] = {
            "control": record.code,
            "standards": [PRODUCT],
            "status_id": {"PASSED": 1, "WARNING": 2, "FAILED": 3}.get(status, 0),
            "status": {"PASSED": "Pass", "WARNING": "Warning", "FAILED": "Fail"}.get(status, "Unknown"),
        }
    return event


def sarif(records: Iterable[Record], version: str) -> dict[str, Any]:
    """One SARIF 2.1.0 log: a rule per finding code, a result per open finding, located at the stage's ARN."""
    chosen: Sequence[Record] = [r for r in records if r.state is not State.RESOLVED]
    codes = sorted({r.code for r in chosen})
    level = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note",
             Severity.INFO: "note"}  # fmt: skip
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": PRODUCT, "version": version, "informationUri": DOCS,
                                "rules": [{"id": c, "shortDescription": {"text": CODES[c].meaning},
                                           "helpUri": DOCS,
                                           "defaultConfiguration": {"level": level[CODES[c].severity]}} for c in codes]}},
            "results": [{
                "ruleId": r.code,
                "ruleIndex": codes.index(r.code),
                "level": level[Severity(r.severity)],
                "message": {"text": r.message or CODES[r.code].meaning},
                "locations": [{"logicalLocations": [{"fullyQualifiedName": resource_arn(r), "kind": "resource"}]}],
                "partialFingerprints": {"findingId/v1": r.id},
                **({"suppressions": [{"kind": "external", "justification": r.reason}]}
                   if r.state is State.SUPPRESSED else {}),
            } for r in chosen],
        }],
    }  # fmt: skip
