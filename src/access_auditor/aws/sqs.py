"""Sending the planner's shard messages (SendMessageBatch: at most 10 entries a call)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from access_auditor.aws.clients import call
from access_auditor.errors import AwsCallError

BATCH = 10  # SendMessageBatch's limit


def send_all(client: Any, queue_url: str, bodies: Sequence[str], attempts: int = 3) -> list[str]:
    """Send every body; returns the bodies that could not be sent (after ``attempts`` tries of the entries
    SQS refused), so that the caller reports them instead of losing them."""
    failed: list[str] = []
    for start in range(0, len(bodies), BATCH):
        pending = {str(i): body for i, body in enumerate(bodies[start : start + BATCH])}
        for _ in range(attempts):
            if not pending:
                break
            entries = [{"Id": i, "MessageBody": body} for i, body in pending.items()]
            try:
                answer = call(
                    "SendMessageBatch", client.send_message_batch, QueueUrl=queue_url, Entries=entries
                )
            except AwsCallError:
                continue  # botocore already retried; try the whole batch again
            for entry in answer.get("Successful", []):
                pending.pop(entry["Id"], None)
        failed.extend(pending.values())
    return failed
