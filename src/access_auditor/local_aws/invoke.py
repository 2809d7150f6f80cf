"""Invoke the auditor as Lambda would, in a process of its own, and collect what it printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from access_auditor.local_aws.alarms import Datapoint, FunctionSpec, function_spec, load_template, parse_emf

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
    base = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith("PYTHON")}
    full_env = {
        **base,
        "POWERTOOLS_SERVICE_NAME": spec.service,
        "POWERTOOLS_METRICS_NAMESPACE": spec.namespace,
        "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
        "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
        **env,
    }
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        completed = subprocess.run(
            [python, str(RUNNER), "--code-dir", str(code_dir or CODE_DIR), "--handler", spec.handler,
             "--event", str(event), "--result", str(result_file),
             "--timeout-ms", str(timeout_ms or spec.timeout_s * 1000), "--memory-mb", str(spec.memory_mb),
             "--function-name", spec.logical_id],
            env=full_env, capture_output=True, text=True, timeout=(timeout_ms or spec.timeout_s * 1000) / 1000 + 60,
            check=False,
        )  # fmt: skip
        if completed.returncode != 0 or not result_file.exists():
            raise RuntimeError(
                f"the Lambda runner failed ({completed.returncode}): {completed.stderr[-2000:]}"
            )
        outcome = json.loads(result_file.read_text())
    lines = completed.stdout.splitlines()
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
        completed.stdout,
        outcome.get("durationMs", 0),
        outcome.get("maxRssMb", 0),
    )


def ship_logs(env: dict[str, str], group: str, lines: list[str]) -> None:
    """What Lambda does with a function's output: every line becomes an event of its log group."""
    import time

    import boto3

    logs = boto3.client("logs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env.get("AWS_REGION", "us-east-1"),
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        logs.create_log_group(logGroupName=group)
    stream = f"local/{time.time_ns()}"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    events = [{"timestamp": now, "message": line} for line in lines if line.strip()]
    if events:
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
