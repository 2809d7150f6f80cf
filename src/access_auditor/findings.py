"""Findings: what an audit reports. Each has a stable code, a severity and a sentence a person can act on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from access_auditor.redact import redact


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str

    def __post_init__(self) -> None:
        # Messages quote upstream answers and error texts; no credential may ride along into logs.
        object.__setattr__(self, "message", redact(self.message))

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity.value, "message": self.message}
