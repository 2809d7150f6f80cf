"""Side-by-side ratios, measured in one run (`make bench`), each against a floor or a peer:

* a signed call through the product vs a bare botocore SigV4Auth + reused requests.Session (goal <= 1.1);
* ``access-auditor call`` vs ``awscurl``, both whole processes against the local gateway (goal <= 0.8);
* importing the built Lambda handler vs ``import boto3, botocore.auth`` (goal <= 1.1): the package ships
  botocore without boto3 (src/Makefile), so boto3 comes from the development environment, on top of the
  package's own botocore; both under python3.13 with the package first on the path and no .pyc written.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from access_auditor.local_aws.invoke import TEMPLATE
from access_auditor.signing import send_signed, sign_request
from access_auditor.transport import new_session
from tests.harness import Harness

BIN = Path(sys.executable).parent


def best(run: Callable[[], object], rounds: int) -> float:
    """The median of the faster half: steady-state cost, with the machine's noise trimmed."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(sorted(times)[: max(1, rounds // 2)])


def report(capsys: pytest.CaptureFixture[str], what: str, ours: float, peer: float, goal: float) -> None:
    with capsys.disabled():
        print(
            f"\n  {what}: {ours * 1000:.2f} ms vs {peer * 1000:.2f} ms = {ours / peer:.2f}x (goal <= {goal})"
        )


def test_signed_call_vs_bare_botocore_and_requests(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    creds = harness.credentials(harness.sample.allowed_role_arn)
    url, region = harness.url + "/items?q=a%20b", harness.aws.region
    ours_session, floor_session = new_session(), requests.Session()

    def ours() -> None:
        signed = sign_request("GET", url, credentials=creds, region=region)
        assert send_signed(ours_session, signed, timeout=(3, 10)).status_code == 200

    def floor() -> None:
        request = AWSRequest(method="GET", url=url)
        SigV4Auth(creds, "execute-api", region).add_auth(request)
        prepared = request.prepare()
        answer = floor_session.send(
            requests.Request("GET", prepared.url, headers=dict(prepared.headers)).prepare(), timeout=(3, 10)
        )
        assert answer.status_code == 200

    ours(), floor()  # warm both connections
    report(capsys, "signed call vs floor", best(ours, 200), best(floor, 200), 1.1)


def test_cli_call_vs_awscurl(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    role = harness.function_env()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, "AWS_REGION": harness.aws.region,
           **{k: role[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}}  # fmt: skip
    url = harness.url + "/health"

    def run(argv: list[str]) -> Callable[[], None]:
        def go() -> None:
            done = subprocess.run(argv, env=env, capture_output=True, timeout=60, check=False)
            assert done.returncode == 0 and b'"ok"' in done.stdout, done.stderr

        return go

    ours = best(run([str(BIN / "access-auditor"), "call", "--region", harness.aws.region, url]), 10)
    peer = best(
        run([str(BIN / "awscurl"), "--service", "execute-api", "--region", harness.aws.region, url]), 10
    )
    report(capsys, "access-auditor call vs awscurl", ours, peer, 0.8)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    build_dir = tmp_path_factory.mktemp("sam-build")
    done = subprocess.run([str(BIN / "sam"), "build", "--template", str(TEMPLATE), "--build-dir", str(build_dir)],
                          cwd=TEMPLATE.parent, capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    yield build_dir / "AuditorFunction"


def test_handler_import_vs_the_sdk_import(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    python313 = shutil.which("python3.13")
    assert python313
    # As on Lambda: the package's directory first on the path, and nothing written next to it.
    site = next(p for p in sys.path if p.endswith("site-packages"))
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{built}:{site}", "PYTHONDONTWRITEBYTECODE": "1",
           "POWERTOOLS_SERVICE_NAME": "bench", "POWERTOOLS_METRICS_NAMESPACE": "Bench", "AWS_REGION": "us-east-1"}  # fmt: skip

    def importing(statement: str) -> Callable[[], None]:
        return lambda: subprocess.run([python313, "-c", statement], env=env, check=True)

    ours = best(importing("import access_auditor.handler"), 15)
    sdk = best(importing("import boto3, botocore.auth"), 15)
    report(capsys, "handler import vs boto3 import (built package, python3.13)", ours, sdk, 1.1)
