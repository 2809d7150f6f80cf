"""CloudWatch Logs Insights: one query, polled to completion within a deadline."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from access_auditor.aws.clients import call
from access_auditor.errors import AwsCallError


class LogsInsights:
    """Adapter over a botocore ``logs`` client. Raises AwsCallError or CredentialsError."""

    def __init__(self, client: Any, poll_s: float = 0.5) -> None:
        self._client = client
        self._poll_s = poll_s

    def query(
        self, group: str, query: str, start: dt.datetime, end: dt.datetime, deadline: float
    ) -> list[dict[str, str]]:
        """The rows of ``query`` over ``group`` between ``start`` and ``end``, as field -> value."""
        started = call("StartQuery", self._client.start_query, logGroupName=group, queryString=query,
                       startTime=int(start.timestamp()), endTime=int(end.timestamp()))  # fmt: skip
        while True:
            answer = call("GetQueryResults", self._client.get_query_results, queryId=started["queryId"])
            status = answer.get("status")
            if status == "Complete":
                return [{f["field"]: f.get("value", "") for f in row} for row in answer.get("results", [])]
            if status not in {"Scheduled", "Running"}:
                raise AwsCallError("GetQueryResults", str(status), "the query did not complete")
            if time.monotonic() + self._poll_s > deadline:
                raise AwsCallError(
                    "GetQueryResults", "Timeout", "the query was still running at the deadline"
                )
            time.sleep(self._poll_s)
