"""The demo's scenarios for the APIs people lock hardest: a private REST API, reachable only through an
execute-api VPC endpoint, whose policy is opened to every endpoint; and an HTTP API (no resource policy)
whose route is switched to authorization NONE. Each is audited clean first, then broken, and caught."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from typing import Any, TextIO

from access_auditor.local_aws.invoke import Invocation, invoke_auditor
from access_auditor.local_aws.sample import SampleApi, create_private_api, deploy, grant_invoke, save_policy
from access_auditor.local_aws.server import LocalAws
from access_auditor.policy.expected import render_expected_policy


def _show(out: TextIO, paint: Any, label: str, run: Invocation, api_id: str) -> set[str]:
    target = next((t for t in (run.result or {}).get("targets", []) if t["apiId"] == api_id), None)
    if target is None:
        out.write(paint(f"      {label}: the API was not audited ({run.error or run.result})\n", "red"))
        return {"NOT AUDITED"}
    status = target["statusCode"]
    probe = {None: "not run", True: paint("GOT IN", "red"), False: "refused"}[
        target["unauthorizedCallAllowed"]
    ]
    out.write(f"      {label}: health call {status or 'no answer'}; unsigned probe {probe}\n")
    for f in target["findings"]:
        color = {"critical": "red", "high": "red", "medium": "yellow"}.get(f["severity"], "dim")
        text = textwrap.shorten(f"{f['severity'].upper()} {f['code']}: {f['message']}", 300)
        out.write("        " + paint(text, color) + "\n")
    return {f["code"] for f in target["findings"]}


def _verdict(out: TextIO, paint: Any, ok: bool) -> int:
    out.write("      " + (paint("as expected", "green") if ok else paint("NOT as expected", "red")) + "\n")
    return 0 if ok else 1


def run_private_scenario(out: TextIO, paint: Any, aws: LocalAws, sample: SampleApi,
                         env: Callable[..., dict[str, str]], number: int, total: int) -> int:  # fmt: skip
    out.write(paint(f"[{number}/{total}] A private API, reached through its VPC endpoint; its policy opened to "
                    "every endpoint", "bold") + "\n")  # fmt: skip
    private = create_private_api(aws, sample)
    settings = {"API_ID": private.api.api_id, "ALLOWED_VPCE": private.endpoint.vpce_id, "API_ENDPOINT": "",
                "PRIVATE_ADDRESSING": "alias", "EXECUTE_API_ENDPOINT": private.endpoint.vpce_id,
                "AWS_ENDPOINT_URL_EXECUTE_API_VPCE": private.endpoint.url}  # fmt: skip
    out.write(f"      API {private.api.api_id} (PRIVATE), endpoint {private.endpoint.vpce_id} in "
              f"{private.endpoint.vpc_id}; called by its Route 53 alias {private.api.api_id}-{private.endpoint.vpce_id}\n")  # fmt: skip
    clean = _show(
        out, paint, "locked to the role and the endpoint", invoke_auditor(env(**settings)), private.api.api_id
    )
    apigw = aws.client("apigateway")
    save_policy(
        apigw, private.api.api_id, json.dumps(render_expected_policy(private.api, [sample.allowed_role_arn]))
    )
    deploy(apigw, private.api.api_id)
    opened = invoke_auditor(env(**settings))
    found = _show(out, paint, "the endpoint condition dropped and deployed", opened, private.api.api_id)
    return _verdict(out, paint, not clean and {"ACCESS_WEAKENED", "PRIVATE_API_ANY_ENDPOINT"} <= found)


def run_http_scenario(out: TextIO, paint: Any, aws: LocalAws, sample: SampleApi,
                      env: Callable[..., dict[str, str]], number: int, total: int) -> int:  # fmt: skip
    out.write(paint(f"[{number}/{total}] An HTTP API (no resource policy): a route switched to authorization "
                    "NONE", "bold") + "\n")  # fmt: skip
    v2 = aws.client("apigatewayv2")
    api = v2.create_api(Name="quotes-http", ProtocolType="HTTP",
                        Tags={"access-auditor:allowed-roles": sample.allowed_role_arn})["ApiId"]  # fmt: skip
    route = v2.create_route(ApiId=api, RouteKey="GET /health", AuthorizationType="AWS_IAM")["RouteId"]
    v2.create_stage(ApiId=api, StageName="prod", AutoDeploy=True)
    grant_invoke(aws.client("iam"), sample.allowed_role_arn.rsplit("/", 1)[1],
                 f"arn:aws:execute-api:{aws.region}:{aws.account}:{api}/*", policy_name="invoke-http")  # fmt: skip
    settings = {"API_ID": "", "API_ENDPOINT": "", "OUTSIDER_ROLE_ARN": "", "DISCOVERY_REGIONS": aws.region,
                "AWS_ENDPOINT_URL_EXECUTE_API": aws.gateway.url}  # fmt: skip
    out.write(
        f"      HTTP API {api} tagged access-auditor:allowed-roles, route GET /health AWS_IAM, stage prod\n"
    )
    clean = _show(out, paint, "every route AWS_IAM", invoke_auditor(env(**settings)), api)
    v2.update_route(ApiId=api, RouteId=route, AuthorizationType="NONE")
    found = _show(out, paint, "GET /health switched to NONE", invoke_auditor(env(**settings)), api)
    return _verdict(out, paint, not clean and {"ROUTE_NOT_IAM", "UNSIGNED_CALL_ALLOWED"} <= found)
