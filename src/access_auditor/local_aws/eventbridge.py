"""The change path as the template deploys it, on the local AWS: CloudTrail's event for each API Gateway write
goes through the ChangeRule's pattern (read from template.yaml) to the FIFO ChangeQueue (moto's SQS, with the
template's DelaySeconds), and a poller hands batches to the function the way the event source mapping does
(``event_source.EventSourceMapping``: ``Records``, partial batch failures, one batch at a time)."""

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
from access_auditor.local_aws.event_source import EventSourceMapping, Invocation
from access_auditor.local_aws.events import matches, transform
from access_auditor.local_aws.server import LocalAws


@dataclass
class ChangePipeline:
    aws: LocalAws
    template_path: Any
    overrides: dict[str, str]
    function: Callable[
        [dict[str, Any]], Any
    ]  # invoked with the SQS event; returns an Invocation or the answer
    matched: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (monotonic time, event)

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
        # One message group: one batch in flight at a time, as Lambda consumes a FIFO queue's group.
        self.mapping = EventSourceMapping(self.sqs, self.url, self.function, batch_size=self.batch_size,
                                          max_concurrency=1, region=self.aws.region)  # fmt: skip
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self.mapping.run, args=(self._stop,), daemon=True)

    @property
    def deliveries(self) -> list[Invocation]:
        """The batches handed to the function, in order."""
        return self.mapping.invocations

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

    def delivery_of(self, event_name: str, after: int = 0, timeout_s: float = 60) -> Invocation | None:
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

    def first_raising(self, metric: str, after: int = 0, timeout_s: float = 60) -> Invocation | None:
        """The first batch (from the ``after``-th on) whose audit emitted ``metric`` at 1."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for delivery in self.deliveries[after:]:
                points = getattr(delivery.answer, "points", [])
                if any(p.metric == metric and 1.0 in p.values for p in points):
                    return delivery
            time.sleep(0.05)
        return None


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


MAX_PATTERN_CHARS = 2048  # EventBridge quotas, "Event pattern size" (adjustable to 4,096 by request)


def watch_rules(template: dict[str, Any]) -> list[str]:
    """The template's watch rules: WatchGuardRule and every Watch*Rule beside it."""
    return [name for name, resource in template["Resources"].items()
            if resource["Type"] == "AWS::Events::Rule" and name.startswith("Watch") and name.endswith("Rule")]  # fmt: skip


def pattern_text(pattern: Any) -> str:
    """A rule's pattern as PutRule receives it (CloudFormation drops AWS::NoValue), whose length the quota counts."""

    def present(value: Any) -> Any:
        if isinstance(value, list):
            return [present(v) for v in value if v != ""]
        if isinstance(value, dict):
            return {k: present(v) for k, v in value.items()}
        return value

    return json.dumps(present(pattern), separators=(",", ":"))


@dataclass
class WatchRules:
    """The template's watch rules on the local AWS: each CloudTrail write (``emulation.LISTENERS``) that a
    rule's pattern matches, in the rule's region, goes through the rule's input transformer to the topic
    (moto's SNS), as EventBridge publishes to an SNS target. ``names``: the physical names the template's
    references resolve to (the function's, the alarms', the schedule's...)."""

    aws: LocalAws
    template_path: Any
    topic_arn: str
    names: dict[str, str]
    region: str = ""
    pages: list[tuple[str, str]] = field(default_factory=list)  # (rule, message) published

    def __post_init__(self) -> None:
        template = load_template(self.template_path)
        resolve = resolver(template, self.names)
        self.rules = {
            name: (
                resolve(template["Resources"][name]["Properties"]["EventPattern"]),
                resolve(template["Resources"][name]["Properties"]["Targets"][0]["InputTransformer"]),
            )
            for name in watch_rules(template)
        }
        for name, (pattern, _) in self.rules.items():  # PutRule refuses a longer pattern
            if len(pattern_text(pattern)) > MAX_PATTERN_CHARS:
                raise ValueError(f"{name}: the event pattern has {len(pattern_text(pattern))} characters, more "
                                 f"than EventBridge takes ({MAX_PATTERN_CHARS})")  # fmt: skip
        self.sns = self.aws.client("sns")
        self.region = self.region or self.aws.region

    def __enter__(self) -> WatchRules:
        emulation.LISTENERS.append(self._deliver)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        emulation.LISTENERS.remove(self._deliver)

    def _deliver(self, event: dict[str, Any]) -> None:
        if event.get("region") != self.region:
            return
        for name, (pattern, transformer) in self.rules.items():
            if matches(pattern, event):
                message = transform(transformer, event)
                self.sns.publish(TopicArn=self.topic_arn, Message=message)
                self.pages.append((name, message))
