"""``access-auditor demo --serve``: keep the local AWS and the sample API up for trying commands by hand."""

from __future__ import annotations

import shlex
import sys
import threading

from access_auditor.local_aws.sample import STAGE, create_sample_api, role_env
from access_auditor.local_aws.server import LocalAws


def serve(stop: threading.Event | None = None) -> int:
    with LocalAws() as aws:
        sample = create_sample_api(aws)
        env = {**aws.env, **role_env(aws, sample.allowed_role_arn, "by-hand")}
        url = aws.invoke_url(sample.api_id, STAGE)
        lines = [
            "# The local AWS is running. In another shell, paste these to act as the allowed role",
            "# (temporary credentials issued by the emulated STS; they work only here):",
            *[f"export {k}={shlex.quote(v)}" for k, v in env.items()],
            "# The variables the documented CLI examples use (docs/reference/cli.md):",
            f"export URL={url} API_ID={sample.api_id} REGION={aws.region} API_ARN={sample.api.arn}",
            f"export ROLE={sample.allowed_role_arn} OUTSIDER={sample.outsider_role_arn}",
            "",
            f"# Invoke URL of stage {STAGE}: {url}",
            f"access-auditor call {url}/health",
            f"access-auditor call -X POST -d '{{\"name\": \"a b\"}}' '{url}/items?q=a b&tag=x&tag=y'",
            f"access-auditor audit --api-id {sample.api_id} --stage {STAGE} --region {aws.region} --endpoint {url} "
            f"--role {sample.allowed_role_arn} --outsider-role {sample.outsider_role_arn}",
            "",
            "# Ctrl-C stops it.",
        ]
        print("\n".join(lines), flush=True)
        try:
            (stop or threading.Event()).wait()
        except KeyboardInterrupt:
            sys.stderr.write("stopped\n")
    return 0
