"""Lambda's SQS event source mapping, on the local AWS: batches of up to BatchSize messages from moto's SQS
(waiting up to MaximumBatchingWindowInSeconds to fill one), at most MaximumConcurrency invocations at once,
ReportBatchItemFailures (a failed message stays in the queue, comes back after the visibility timeout, and
after the redrive policy's maxReceiveCount receives SQS moves it to the dead-letter queue)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass
class Invocation:
    """One batch handed to the function: when, which messages, and what the function answered."""

    started: float
    ended: float
    message_ids: list[str]
    bodies: list[str]
    failed: list[str]
    answer: Any

    @property
    def events(self) -> list[Any]:
        """The bodies as JSON (a body that is not JSON stays a string)."""
        parsed = []
        for body in self.bodies:
            try:
                parsed.append(json.loads(body))
            except (ValueError, RecursionError):
                parsed.append(body)
        return parsed


class EventSourceMapping:
    def __init__(self, sqs: Any, queue_url: str, function: Callable[[dict[str, Any]], Any], *, batch_size: int,
                 max_concurrency: int, window_s: float = 0.0, region: str = "us-east-1") -> None:  # fmt: skip
        self.sqs, self.url, self.function = sqs, queue_url, function
        self.batch_size, self.max_concurrency, self.window_s = batch_size, max_concurrency, window_s
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.arn, self.region = attributes["QueueArn"], region
        self.invocations: list[Invocation] = []
        self.peak_concurrency = 0
        self._running = 0
        self._lock = threading.Lock()

    def drain(self, timeout_s: float, idle_s: float = 1.0) -> None:
        """Poll and invoke until the queue has stayed empty (nothing visible, nothing in flight) for
        ``idle_s``, or ``timeout_s`` passed."""
        deadline = time.monotonic() + timeout_s
        self._poll(lambda idle_for: time.monotonic() >= deadline or idle_for >= idle_s)

    def run(self, stop: threading.Event) -> None:
        """Poll and invoke until ``stop`` is set (as a mapping does for as long as it is enabled)."""
        self._poll(lambda idle_for: stop.is_set())

    def _poll(self, done: Callable[[float], bool]) -> None:
        idle_since: float | None = None
        pending: list[Future[None]] = []
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            while not done(time.monotonic() - idle_since if idle_since is not None else 0.0):
                pending = [f for f in pending if not f.done()]
                if len(pending) >= self.max_concurrency:
                    time.sleep(0.02)
                    continue
                batch = self._receive()
                if batch:
                    idle_since = None
                    pending.append(pool.submit(self._invoke, batch))
                    continue
                if pending:
                    time.sleep(0.05)
                    continue
                idle_since = idle_since or time.monotonic()
                time.sleep(0.05)
            for future in pending:
                future.result()

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        until = time.monotonic() + self.window_s
        while len(messages) < self.batch_size:
            # Lambda's pollers long-poll: the first receive waits (here up to 1 s) for a message to arrive.
            answer = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=self.batch_size - len(messages),
                                              WaitTimeSeconds=0 if messages else 1, AttributeNames=["All"])  # fmt: skip
            got = answer.get("Messages", [])
            messages += got
            if not got and (not messages or time.monotonic() >= until):
                break
            if not got:
                time.sleep(0.05)
        return messages

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        with self._lock:
            self._running += 1
            self.peak_concurrency = max(self.peak_concurrency, self._running)
        started = time.monotonic()
        event = {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": self.arn, "awsRegion": self.region,
        } for m in messages]}  # fmt: skip
        try:
            answer = self.function(event)
            result = getattr(answer, "result", answer)  # an invoke.Invocation, or the handler's answer
            failed = [f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])]
        except Exception as exc:  # the whole batch failed, as a function error fails it
            answer, failed = exc, [m["MessageId"] for m in messages]
        try:
            for m in messages:
                if m["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
        finally:
            self._record(messages, started, failed, answer)

    def _record(self, messages: list[dict[str, Any]], started: float, failed: list[str], answer: Any) -> None:
        with self._lock:
            self._running -= 1
            self.invocations.append(Invocation(started, time.monotonic(), [m["MessageId"] for m in messages],
                                               [m["Body"] for m in messages], failed, answer))  # fmt: skip
