"""Every format a finding is written in, validated by something that is not the product: OCSF 1.6 against
the published schema (compiled from ocsf/ocsf-schema at tag 1.6.0 by ocsf-lib; tests/fixtures/formats),
with the jsonschema library; ASFF against botocore's model of BatchImportFindings, with botocore's own
validator; SARIF 2.1.0 against OASIS's published JSON schema."""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator
from hypothesis import given
from hypothesis import strategies as st

from access_auditor.findings import CODES, Severity
from access_auditor.outputs.formats import asff, ocsf, sarif
from access_auditor.outputs.lifecycle import Record, State

FORMATS = Path(__file__).parents[1] / "fixtures" / "formats"
OCSF = json.loads((FORMATS / "ocsf-1.6.0-findings.json").read_text())
NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
SCALARS = {"string_t": "string", "integer_t": "integer", "long_t": "integer", "float_t": "number",
           "boolean_t": "boolean", "json_t": None}  # fmt: skip


def _base(type_name: str) -> str:
    """An OCSF scalar type's base (email_t is a string_t, timestamp_t a long_t)."""
    while type_name not in SCALARS and type_name in OCSF["types"] and OCSF["types"][type_name].get("type"):
        type_name = OCSF["types"][type_name]["type"]
    return type_name


@functools.cache
def ocsf_validator(name: str, profiles: frozenset[str]) -> Any:
    schema = ocsf_schema(name, set(profiles))
    return jsonschema.Draft202012Validator(schema)


def ocsf_schema(name: str, profiles: set[str]) -> dict[str, Any]:
    """A JSON Schema of one OCSF class, as the compiled schema defines it: required attributes (those of the
    profiles the event declares), types, enumerations, and no attribute the class does not define."""
    defs: dict[str, Any] = {}

    def shape(attributes: dict[str, Any]) -> dict[str, Any]:
        props, required = {}, []
        for key, attr in attributes.items():
            if attr.get("profile") and attr["profile"] not in profiles:
                continue
            kind = attr["type"]
            if kind in OCSF["objects"] and not OCSF["objects"][kind]["attributes"]:
                item: dict[str, Any] = {"type": "object"}  # OCSF's open object (unmapped data)
            elif kind in OCSF["objects"]:
                defs.setdefault(kind, None)
                if defs[kind] is None:
                    defs[kind] = {}
                    defs[kind] = shape(OCSF["objects"][kind]["attributes"])
                item = {"$ref": f"#/$defs/{kind}"}
            else:
                base = SCALARS.get(_base(kind))
                item = {"type": base} if base else {}
                if "enum" in attr and base == "integer":
                    item["enum"] = [int(v) for v in attr["enum"]]
            props[key] = {"type": "array", "items": item} if attr.get("is_array") else item
            if attr.get("requirement") == "required":
                required.append(key)
        return {"type": "object", "properties": props, "required": required, "additionalProperties": False}

    top = shape(OCSF["classes"][name]["attributes"])
    return {**top, "$defs": defs}


CLASS_NAMES = {c["uid"]: name for name, c in OCSF["classes"].items()}

records = st.builds(
    Record,
    id=st.just("123456789012/us-east-1/a1b2c3/prod/X"),
    account=st.just("123456789012"),
    region=st.sampled_from(["us-east-1", "eu-west-1", "cn-north-1"]),
    api_id=st.sampled_from(["a1b2c3", "*"]),
    stage=st.sampled_from(["prod", "*"]),
    code=st.sampled_from(sorted(CODES)),
    subject=st.sampled_from(["", "anonymous caller"]),
    severity=st.sampled_from([s.value for s in Severity]),
    message=st.text(max_size=300),
    state=st.sampled_from(list(State)),
    first_seen=st.just("2026-12-01T00:00:00+00:00"),
    last_seen=st.just("2026-12-04T00:00:00+00:00"),
    changed_at=st.just("2026-12-03T00:00:00+00:00"),
    reason=st.sampled_from(["", "API a1b2c3 no longer exists"]),
    until=st.sampled_from([None, "2027-01-31T00:00:00+00:00"]),
)


@given(records)
def test_every_ocsf_event_is_valid_against_the_published_ocsf_1_6_schema(record: Record) -> None:
    event = ocsf(record, "0.1.0", NOW)
    ocsf_validator(CLASS_NAMES[event["class_uid"]], frozenset(event["metadata"]["profiles"])).validate(event)
    assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]  # OCSF's rule for type_uid


def test_the_classes_are_the_ones_the_issue_names() -> None:
    base = Record("x", "1" * 12, "us-east-1", "a", "prod", "", "", "high", "m", State.NEW, "2026-12-01T00:00:00+00:00",
                  "2026-12-01T00:00:00+00:00", "2026-12-01T00:00:00+00:00")  # fmt: skip
    classes = {code: ocsf(Record(**{**base.__dict__, "code": code}), "0", NOW)["class_name"]
               for code in ("ACCESS_WEAKENED", "UNSIGNED_CALL_ALLOWED", "UNDEPLOYED_POLICY_CHANGE")}  # fmt: skip
    assert classes == {"ACCESS_WEAKENED": "IAM Analysis Finding", "UNSIGNED_CALL_ALLOWED": "Detection Finding",
                       "UNDEPLOYED_POLICY_CHANGE": "Compliance Finding"}  # fmt: skip


def test_a_wrong_ocsf_event_is_refused_by_the_validator() -> None:
    # The validator is not a rubber stamp: a missing required attribute and an undefined one are refused.
    record = Record("x", "1" * 12, "us-east-1", "a", "prod", "ACCESS_WEAKENED", "", "high", "m", State.NEW,
                    "2026-12-01T00:00:00+00:00", "2026-12-01T00:00:00+00:00", "2026-12-01T00:00:00+00:00")  # fmt: skip
    event = ocsf(record, "0", NOW)
    validator = ocsf_validator(CLASS_NAMES[event["class_uid"]], frozenset({"cloud"}))
    for broken in ({k: v for k, v in event.items() if k != "finding_info"}, {**event, "severity_id": 7},
                   {**event, "made_up": 1}):  # fmt: skip
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)


@given(records, st.one_of(st.none(), records))
def test_every_asff_finding_is_valid_for_batch_import_findings(record: Record, before: Record | None) -> None:
    model = get_session().get_service_model("securityhub").operation_model("BatchImportFindings")
    findings = asff(record, before, NOW)
    if not findings:  # only a resolved finding that was never sent: nothing in Security Hub to archive
        assert record.state is State.RESOLVED and (
            before is None
            or before.exported_at is None
            or before.state is State.SUPPRESSED
            and before.until == record.until
        )
        return
    report = ParamValidator().validate({"Findings": findings}, model.input_shape)
    assert not report.has_errors(), report.generate_report()
    for item in findings:
        assert item["ProductArn"].endswith(f":product/{record.account}/default")
        assert item["Compliance"]["Status"] in {"PASSED", "WARNING", "FAILED", "NOT_AVAILABLE"}


def test_a_resolved_finding_is_archived_and_passed_and_workflow_is_set_only_at_creation() -> None:
    stamp = "2026-12-01T00:00:00+00:00"
    active = Record("i", "1" * 12, "us-east-1", "a", "prod", "ACCESS_WEAKENED", "", "critical", "m", State.NEW,
                    stamp, stamp, stamp)  # fmt: skip
    (created,) = asff(active, None, NOW)
    assert created["Workflow"] == {"Status": "NEW"} and created["RecordState"] == "ACTIVE"
    exported = Record(**{**active.__dict__, "exported_at": stamp, "state": State.ACTIVE})
    (refreshed,) = asff(exported, exported, NOW)
    assert "Workflow" not in refreshed
    (closed,) = asff(Record(**{**exported.__dict__, "state": State.RESOLVED}), exported, NOW)
    assert closed["RecordState"] == "ARCHIVED" and closed["Compliance"]["Status"] == "PASSED"
    assert "Workflow" not in closed


def test_sarif_output_is_valid_sarif_2_1_0() -> None:
    schema = json.loads((FORMATS / "sarif-schema-2.1.0.json").read_text())
    stamp = "2026-12-01T00:00:00+00:00"
    chosen = [Record(f"i{n}", "1" * 12, "us-east-1", "a", "prod", code, "", CODES[code].severity.value, "m", state,
                     stamp, stamp, stamp, reason="why" if state is State.SUPPRESSED else "")
              for n, (code, state) in enumerate([("ACCESS_WEAKENED", State.NEW), ("METHOD_NOT_IAM", State.SUPPRESSED),
                                                 ("POLICY_MISSING", State.RESOLVED)])]  # fmt: skip
    log = sarif(chosen, "0.1.0")
    jsonschema.validate(log, schema)
    assert [r["ruleId"] for r in log["runs"][0]["results"]] == ["ACCESS_WEAKENED", "METHOD_NOT_IAM"]
