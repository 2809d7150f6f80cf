"""The demo's last scenario: ``access-auditor doctor --experiment`` run as a user runs it, a process of its
own against the local AWS, first as AWS is assumed to behave, then against an AWS whose export carries the
saved policy, which the experiment must tell apart."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, TextIO

from access_auditor.local_aws import emulation
from access_auditor.local_aws.sample import add_method, deploy
from access_auditor.local_aws.server import LocalAws
from access_auditor.preflight import EXPERIMENT_PREFIX


def legacy_api(aws: LocalAws) -> str:
    """An API of the kind a real account holds: an XML model (so API Gateway will not export it) and a
    customised ACCESS_DENIED answer."""
    apigw = aws.client("apigateway")
    api_id = str(apigw.create_rest_api(name="legacy-orders")["id"])
    root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
    health = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="health")["id"]
    add_method(apigw, api_id, health, "GET")
    apigw.create_model(restApiId=api_id, name="Order", contentType="application/xml", schema="<order/>")
    apigw.put_gateway_response(restApiId=api_id, responseType="ACCESS_DENIED", statusCode="404")
    deploy(apigw, api_id)
    return api_id


def doctor(aws: LocalAws, *args: str) -> tuple[int, str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **aws.env}
    done = subprocess.run([sys.executable, "-m", "access_auditor", "doctor", "--region", aws.region, *args],
                          env=env, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def run_doctor_scenario(
    out: TextIO, paint: Any, aws: LocalAws, sample_api: str, number: int, total: int
) -> int:
    out.write(paint(f"[{number}/{total}] First contact: access-auditor doctor --experiment, as a user runs it "
                    "before deploying", "bold") + "\n")  # fmt: skip
    legacy = legacy_api(aws)
    code, text = doctor(aws, "--api-id", sample_api, "--api-id", legacy, "--organization", "--experiment")
    out.write("".join(f"      {line}\n" for line in text.splitlines()))
    out.write(f"      (exit {code}) and against an AWS whose export carries the saved policy instead:\n")
    emulation.EXPORT_CARRIES = "saved"
    try:
        code_saved, text_saved = doctor(aws, "--experiment")
    finally:
        emulation.EXPORT_CARRIES = "deployment"
    verdicts = [line for line in text_saved.splitlines() if "export carries" in line]
    out.write("".join(f"      {line}\n" for line in verdicts))
    left = [a["id"] for a in aws.client("apigateway").get_rest_apis(limit=500)["items"]
            if a["name"].startswith(EXPERIMENT_PREFIX)]  # fmt: skip
    ok = (
        "OK    export carries the deployment's policy" in text
        and f"WARN  API {legacy} export" in text
        and "ACCESS_DENIED (404)" in text
        and "FAIL  trail in" in text
        and any(v.startswith("FAIL  export carries") for v in verdicts)
        and code == code_saved == 1
        and not left
        and "Traceback" not in text + text_saved
    )
    out.write("      " + (paint("as expected", "green") if ok else paint("NOT as expected", "red")) + "\n")
    return 0 if ok else 1
