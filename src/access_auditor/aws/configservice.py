"""AWS Config's PutEvaluations: at most 100 evaluations a request ("PutEvaluations", AWS Config API
reference), answered with the result token Config gave the invocation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from access_auditor.aws.clients import call

MAX_EVALUATIONS = 100


def put_evaluations(client: Any, token: str, evaluations: Sequence[dict[str, Any]]) -> list[str]:
    """Returns the problems (failed requests, evaluations Config refused), named."""
    problems = []
    for i in range(0, len(evaluations), MAX_EVALUATIONS):
        chunk = list(evaluations[i : i + MAX_EVALUATIONS])
        try:
            answer = call("PutEvaluations", client.put_evaluations, Evaluations=chunk, ResultToken=token)
        except Exception as exc:
            problems.append(f"{len(chunk)} evaluation(s) not put: {exc}")
            continue
        problems.extend(
            f"{e.get('ComplianceResourceId')}: refused" for e in answer.get("FailedEvaluations", [])
        )
    return problems
