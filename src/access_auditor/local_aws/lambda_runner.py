"""Run a Lambda handler the way the Python runtime does: import ``module.function`` from the code
directory, call it with the event and a context that knows its deadline, and write what it returned.

Standard library only, so it runs under the runtime's bare interpreter against a ``sam build`` artifact:

    python3.13 src/access_auditor/local_aws/lambda_runner.py --code-dir .aws-sam/build/AuditorFunction \
        --handler access_auditor.handler.lambda_handler --event events/scheduled.json --result out.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import resource
import sys
import time
import uuid
from pathlib import Path
from typing import Any


class Context:
    def __init__(self, function_name: str, timeout_ms: int, memory_mb: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> int:
    """This process's peak resident memory. /proc's VmHWM belongs to this program alone; getrusage's
    ru_maxrss would also count the parent's peak from before the exec (Linux carries it over)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


DONE = "--- lambda_runner: invocation done ---"  # the line that ends one invocation's output when serving


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--handler", required=True, help="module.function, as in the template's Handler")
    parser.add_argument("--event", help="a JSON file")
    parser.add_argument("--result", help="where to write {'result': ...} or {'error': ...}")
    parser.add_argument("--serve", action="store_true",
                        help="a warm environment: read one JSON line {event, result} per invocation from stdin")  # fmt: skip
    parser.add_argument("--timeout-ms", type=int, default=60000)
    parser.add_argument("--memory-mb", type=int, default=256)
    parser.add_argument("--function-name", default="AuditorFunction")
    args = parser.parse_args(argv)

    # As the Lambda runtime does: the root logger writes to the function's log, at AWS_LAMBDA_LOG_LEVEL.
    logging.basicConfig(stream=sys.stdout, level=os.environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING").upper())
    started, cpu = time.monotonic(), _cpu_s()
    sys.path.insert(0, str(Path(args.code_dir).resolve()))
    module_name, _, function_name = args.handler.rpartition(".")
    handler = None
    init_error = None
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # what Lambda would count in the function's Errors metric
        init_error = f"{type(exc).__name__}: {exc}"
    requests = (
        (json.loads(line) for line in sys.stdin)
        if args.serve
        else iter([{"event": args.event, "result": args.result}])
    )
    for request in requests:  # the first invocation is billed with the init (the import) before it
        outcome: dict[str, Any]
        try:
            if handler is None:
                raise RuntimeError(init_error)
            event = json.loads(Path(request["event"]).read_text())
            outcome = {"result": handler(event, Context(args.function_name, args.timeout_ms, args.memory_mb))}
        except Exception as exc:
            outcome = {"error": f"{type(exc).__name__}: {exc}"}
        outcome["durationMs"] = round((time.monotonic() - started) * 1000)
        outcome["cpuMs"] = round((_cpu_s() - cpu) * 1000)  # every thread's user and system time
        outcome["maxRssMb"] = _peak_rss_mb()
        Path(request["result"]).write_text(json.dumps(outcome, default=str))
        if args.serve:
            print(DONE, flush=True)
        started, cpu = time.monotonic(), _cpu_s()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
