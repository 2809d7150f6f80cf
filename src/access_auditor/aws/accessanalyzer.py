"""A second opinion from IAM Access Analyzer's automated reasoning (charged per check, so used sparingly).

Access Analyzer reasons about what a policy *grants*; a Deny-only policy grants nothing, so comparing two
Deny-only documents always passes, even when the Deny is gone. Adding the same synthetic
``Allow * execute-api:Invoke`` to both documents turns "what does the Deny still hold back" into a grant
that the checks can compare (AWS_NOTES.md; IAM Access Analyzer custom policy checks).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Protocol

from access_auditor.aws.clients import call
from access_auditor.policy.document import ApiRef

SYNTHETIC_SID = "AuditorSyntheticAllow"


@dataclass(frozen=True)
class AnalyzerVerdict:
    no_new_access: str  # PASS or FAIL
    no_public_access: str
    reasons: tuple[str, ...]

    @property
    def weakened(self) -> bool:
        return "FAIL" in (self.no_new_access, self.no_public_access)


class AnalyzerPort(Protocol):
    def cross_check(
        self, saved: dict[str, Any], expected: dict[str, Any], api: ApiRef
    ) -> AnalyzerVerdict: ...


def with_synthetic_allow(document: dict[str, Any], api: ApiRef) -> dict[str, Any]:
    doc = copy.deepcopy(document)
    statements = doc.get("Statement", [])
    doc["Statement"] = ([statements] if isinstance(statements, dict) else list(statements)) + [
        {
            "Sid": SYNTHETIC_SID,
            "Effect": "Allow",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": f"{api.arn}/*",
        }
    ]
    return doc


class AccessAnalyzer:
    """Adapter over a botocore ``accessanalyzer`` client. Raises AwsCallError or CredentialsError."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def cross_check(self, saved: dict[str, Any], expected: dict[str, Any], api: ApiRef) -> AnalyzerVerdict:
        new = json.dumps(with_synthetic_allow(saved, api))
        old = json.dumps(with_synthetic_allow(expected, api))
        access = call("CheckNoNewAccess", self._client.check_no_new_access,
                      newPolicyDocument=new, existingPolicyDocument=old, policyType="RESOURCE_POLICY")  # fmt: skip
        public = call("CheckNoPublicAccess", self._client.check_no_public_access,
                      policyDocument=new, resourceType="AWS::ApiGateway::RestApi")  # fmt: skip
        reasons = tuple(
            r.get("description", "") for r in access.get("reasons", []) + public.get("reasons", [])
        )
        return AnalyzerVerdict(access["result"], public["result"], reasons)
