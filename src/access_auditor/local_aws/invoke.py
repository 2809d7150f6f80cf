"""Invoke the auditor as Lambda would, in a process of its own, and collect what it printed."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from access_auditor.local_aws.alarms import Datapoint, FunctionSpec, function_spec, load_template, parse_emf
from access_auditor.local_aws.lambda_runner import DONE

HERE = Path(__file__).resolve().parent
CODE_DIR = HERE.parents[1]  # the directory holding access_auditor: src/ in a clone, site-packages installed


def shipped(name: str, in_clone: str) -> Path:
    """A file of the clone's root (the SAM template, the schedule's event), or the copy a wheel carries."""
    clone = HERE.parents[2] / in_clone
    return clone if clone.exists() else HERE / "data" / name


TEMPLATE = shipped("template.yaml", "template.yaml")
EVENT = shipped("scheduled.json", "events/scheduled.json")
RUNNER = HERE / "lambda_runner.py"
# Variables of the caller's environment that must not reach the function: a developer's real profile, and
# the Powertools switches that silently disable metrics.
_SCRUB = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "POWERTOOLS_DEV",
    "POWERTOOLS_METRICS_DISABLED",
)


@dataclass
class Invocation:
    result: dict[str, Any] | None
    error: str | None
    points: list[Datapoint]
    logs: list[dict[str, Any]] = field(default_factory=list)
    stdout: str = ""
    duration_ms: int = 0
    max_rss_mb: int = 0
    cpu_ms: int = 0


def _environment(env: dict[str, str], spec: FunctionSpec) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith("PYTHON")}
    return {
        **base,
        "POWERTOOLS_SERVICE_NAME": spec.service,
        "POWERTOOLS_METRICS_NAMESPACE": spec.namespace,
        "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
        "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
        **env,
    }


def _command(python: str, code_dir: Path | None, spec: FunctionSpec, timeout_ms: int | None) -> list[str]:
    return [python, str(RUNNER), "--code-dir", str(code_dir or CODE_DIR), "--handler", spec.handler,
            "--timeout-ms", str(timeout_ms or spec.timeout_s * 1000), "--memory-mb", str(spec.memory_mb),
            "--function-name", spec.logical_id]  # fmt: skip


def invoke_auditor(
    env: dict[str, str],
    *,
    python: str = sys.executable,
    code_dir: Path | None = None,
    event: Path = EVENT,
    timeout_ms: int | None = None,
    spec: FunctionSpec | None = None,
) -> Invocation:
    """Run the handler named in template.yaml with ``env`` on top of a scrubbed copy of this environment.

    ``code_dir`` defaults to the code this process runs (the template's CodeUri in a clone); pass
    ``.aws-sam/build/AuditorFunction`` to run the built package. The function's Errors metric is synthesised as Lambda would count it.
    """
    spec = spec or function_spec(load_template(TEMPLATE))
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        completed = subprocess.run(
            [*_command(python, code_dir, spec, timeout_ms), "--event", str(event), "--result", str(result_file)],
            env=_environment(env, spec), capture_output=True, text=True,
            timeout=(timeout_ms or spec.timeout_s * 1000) / 1000 + 60, check=False,
        )  # fmt: skip
        if completed.returncode != 0 or not result_file.exists():
            raise RuntimeError(
                f"the Lambda runner failed ({completed.returncode}): {completed.stderr[-2000:]}"
            )
        outcome = json.loads(result_file.read_text())
    return _invocation(env, spec, outcome, completed.stdout)


def _invocation(env: dict[str, str], spec: FunctionSpec, outcome: dict[str, Any], stdout: str) -> Invocation:
    """What Lambda makes of one invocation's output: EMF datapoints, its Errors metric, the log lines (shipped
    to the function's log group when a local AWS is at hand)."""
    lines = stdout.splitlines()
    points = parse_emf(lines)
    points.append(
        Datapoint(
            "AWS/Lambda",
            "Errors",
            (("FunctionName", spec.logical_id),),
            (1.0 if "error" in outcome else 0.0,),
        )
    )
    if env.get("AWS_ENDPOINT_URL"):
        ship_logs(env, spec.log_group, lines)
    logs = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "_aws" not in record:
            logs.append(record)
    return Invocation(
        outcome.get("result"),
        outcome.get("error"),
        points,
        logs,
        stdout,
        outcome.get("durationMs", 0),
        outcome.get("maxRssMb", 0),
        outcome.get("cpuMs", 0),
    )


class WarmFunction:
    """A function as Lambda keeps it: execution environments that stay warm between invocations (module
    state, clients and caches kept), one invocation at a time each, a new environment started only when all
    are busy. ``with WarmFunction(env, spec) as function: function(event)``; the environments stop on exit."""

    def __init__(self, env: dict[str, str], spec: FunctionSpec, *, python: str = sys.executable) -> None:
        self.env, self.spec, self.python = env, spec, python
        self.started = 0  # environments started (cold starts)
        self._idle: list[subprocess.Popen[str]] = []
        self._all: list[subprocess.Popen[str]] = []
        self._lock = threading.Lock()
        self._tmp = tempfile.TemporaryDirectory()

    def __enter__(self) -> WarmFunction:
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self._all:
            if process.stdin:
                process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()
        self._tmp.cleanup()

    def __call__(self, event: dict[str, Any]) -> Invocation:
        with self._lock:
            process = self._idle.pop() if self._idle else None
        if process is None:
            process = subprocess.Popen([*_command(self.python, None, self.spec, None), "--serve"],
                                       env=_environment(self.env, self.spec), stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True, bufsize=1)  # fmt: skip
            with self._lock:
                self._all.append(process)
                self.started += 1
        try:
            name = f"{id(process)}-{time.monotonic_ns()}"
            event_file, result_file = (
                Path(self._tmp.name) / f"{name}.event",
                Path(self._tmp.name) / f"{name}.result",
            )
            event_file.write_text(json.dumps(event))
            assert process.stdin and process.stdout
            process.stdin.write(json.dumps({"event": str(event_file), "result": str(result_file)}) + "\n")
            lines = []
            for line in process.stdout:
                if line.rstrip("\n") == DONE:
                    break
                lines.append(line)
            else:
                raise RuntimeError(f"the execution environment of {self.spec.logical_id} stopped")
            outcome = json.loads(result_file.read_text())
        except BaseException:
            process.kill()
            raise
        with self._lock:
            self._idle.append(process)
        return _invocation(self.env, self.spec, outcome, "".join(lines))


def ship_logs(env: dict[str, str], group: str, lines: list[str]) -> None:
    """What Lambda does with a function's output: every line becomes an event of its log group."""
    import time

    import boto3

    logs = boto3.client("logs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env.get("AWS_REGION", "us-east-1"),
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    # several environments of one function may ship their first lines at once
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    stream = f"local/{time.time_ns()}"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    events = [{"timestamp": now, "message": line} for line in lines if line.strip()]
    if events:
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
