"""The change path as the template deploys it, on the local AWS: CloudTrail's event for each API Gateway write
goes through the ChangeRule's pattern (read from template.yaml) to the FIFO ChangeQueue (moto's SQS, with the
template's DelaySeconds), and a poller hands batches to the function the way the event source mapping does
(``Records``, partial batch failures, one batch at a time)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from access_auditor.local_aws import emulation
from access_auditor.local_aws.alarms import load_template, resolver
from access_auditor.local_aws.events import matches
from access_auditor.local_aws.server import LocalAws


@dataclass
class Delivery:
    """One batch handed to the function: when, the changes in it, and what the function answered."""

    at: float
    events: list[Any]  # the queued EventBridge events (a body that is not JSON stays a string)
    answer: Any = None
    done: float = 0.0


@dataclass
class ChangePipeline:
    aws: LocalAws
    template_path: Any
    overrides: dict[str, str]
    function: Callable[
        [dict[str, Any]], Any
    ]  # invoked with the SQS event; returns an Invocation or the answer
    matched: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (monotonic time, event)
    deliveries: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        template = load_template(self.template_path)
        resources = template["Resources"]
        resolve = resolver(template, self.overrides)
        self.pattern: dict[str, Any] = resolve(resources["ChangeRule"]["Properties"]["EventPattern"])
        target = resources["ChangeRule"]["Properties"]["Targets"][0]
        self.group = str(target["SqsParameters"]["MessageGroupId"])
        queue = resources["ChangeQueue"]["Properties"]
        self.delay_s = int(resolve(queue["DelaySeconds"]))
        self.batch_size = int(resources["ChangeEventSource"]["Properties"]["BatchSize"])
        self.sqs = self.aws.client("sqs")
        self.url = self.sqs.create_queue(QueueName="local-change-queue.fifo", Attributes={
            "FifoQueue": "true", "ContentBasedDeduplication": "true", "DelaySeconds": str(self.delay_s)})["QueueUrl"]  # fmt: skip
        self.arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> ChangePipeline:
        emulation.LISTENERS.append(self._deliver)
        self._poller.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        emulation.LISTENERS.remove(self._deliver)
        self._stop.set()
        self._poller.join(timeout=10)

    def _deliver(self, event: dict[str, Any]) -> None:
        """EventBridge: the rule's pattern, then the queue (its message group, as the target says)."""
        if not matches(self.pattern, event):
            return
        self.matched.append((time.monotonic(), event))
        self.sqs.send_message(QueueUrl=self.url, MessageBody=json.dumps(event), MessageGroupId=self.group)

    def _poll(self) -> None:
        """The event source mapping: long-poll, hand a batch over, delete what did not fail."""
        while not self._stop.is_set():
            answer = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=1,
                                              AttributeNames=["All"])  # fmt: skip
            messages = answer.get("Messages", [])
            if not messages:
                continue
            event = {"Records": [{
                "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs", "eventSourceARN": self.arn, "awsRegion": self.aws.region,
            } for m in messages]}  # fmt: skip
            delivery = Delivery(time.monotonic(), [_parsed(m["Body"]) for m in messages])
            delivery.answer = self.function(event)
            self.deliveries.append(delivery)
            delivery.done = time.monotonic()
            answer = getattr(
                delivery.answer, "result", delivery.answer
            )  # an Invocation, or the handler's answer
            failed = {f["itemIdentifier"] for f in (answer or {}).get("batchItemFailures", [])}
            for m in messages:
                if m["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])

    def delivery_of(self, event_name: str, after: int = 0, timeout_s: float = 60) -> Delivery | None:
        """The first batch (from the ``after``-th on) holding ``event_name``, once the function answered it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for delivery in self.deliveries[after:]:
                if any(
                    isinstance(e, dict) and e.get("detail", {}).get("eventName") == event_name
                    for e in delivery.events
                ):
                    return delivery
            time.sleep(0.05)
        return None

    def first_raising(self, metric: str, after: int = 0, timeout_s: float = 60) -> Delivery | None:
        """The first batch (from the ``after``-th on) whose audit emitted ``metric`` at 1."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for delivery in self.deliveries[after:]:
                points = getattr(delivery.answer, "points", [])
                if any(p.metric == metric and 1.0 in p.values for p in points):
                    return delivery
            time.sleep(0.05)
        return None


def _parsed(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def invoke_with(env: dict[str, str]) -> Callable[[dict[str, Any]], Any]:
    """The function as the event source mapping invokes it: the handler of template.yaml, in its own process."""
    import tempfile
    from pathlib import Path

    from access_auditor.local_aws.invoke import invoke_auditor

    def invoke(event: dict[str, Any]) -> Any:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "sqs-event.json"
            path.write_text(json.dumps(event))
            return invoke_auditor(env, event=path)

    return invoke
