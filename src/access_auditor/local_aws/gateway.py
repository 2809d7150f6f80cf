"""A local execute-api front door: it serves each stage's *deployed* snapshot, verifies SigV4 against the
credentials the emulated STS and IAM issued, resolves aws:PrincipalArn, and applies the method's
authorization type and the deployed resource policy through its own access decision (``access_auditor.local_aws.access``),
which shares no code with the product's evaluator.

URLs are ``http://127.0.0.1:PORT/{api_id}/{stage}/{path}``.

A refusal is answered as execute-api answers it: 403, ``x-amzn-ErrorType`` naming the error, the account id
masked in the message (``********6200``), no body on ``HEAD``; and, where the API customised the gateway
response of that type (or DEFAULT_4XX), with the customised status and body, the error type unchanged
("Gateway response types"). AWS serves a customisation from the next deployment; here it applies at once.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from moto.apigateway.models import apigateway_backends
from moto.apigatewayv2.models import apigatewayv2_backends
from moto.iam.models import iam_backends

from access_auditor.local_aws import access, sigv4
from access_auditor.local_aws.accounts import policy_documents
from access_auditor.local_aws.emulation import SNAPSHOTS, Snapshot, assumed_session
from access_auditor.policy.document import ApiRef


@dataclass(frozen=True)
class Principal:
    principal_arn: str  # the role ARN (path included) or the user ARN: what aws:PrincipalArn holds
    display_arn: str  # what API Gateway names in its error messages (the assumed-role session ARN)
    account: str
    policies: tuple[str, ...]


class _LoopbackServer:
    """An HTTP server on a free loopback port, served from a thread of its own."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Gateway(_LoopbackServer):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.latency_s = 0.0
        super().__init__(type("Handler", (_Handler,), {"gateway": self}), host, port)

    # --- resolution against moto's state -----------------------------------------------------------
    def find_api(self, api_id: str) -> tuple[str, str, Any] | None:
        """(account, region, API): every account of the local AWS is served (API ids are unique)."""
        for account, by_region in list(apigateway_backends.items()):
            for region, backend in list(by_region.items()):
                if api_id in backend.apis:
                    return account, region, backend.apis[api_id]
        return None

    def find_http_api(self, api_id: str) -> tuple[str, str, Any] | None:
        """(account, region, HTTP API) from moto's apigatewayv2."""
        for account, by_region in list(apigatewayv2_backends.items()):
            for region, backend in list(by_region.items()):
                if api_id in backend.apis and backend.apis[api_id].protocol_type == "HTTP":
                    return account, region, backend.apis[api_id]
        return None

    def lookup_secret(self, access_key: str) -> sigv4.Secret | None:
        caller = self._assumed(access_key)
        if caller is not None:
            role, _ = caller
            expired = role.expiration.replace(tzinfo=dt.UTC) < dt.datetime.now(dt.UTC)
            return sigv4.Secret(role.secret_access_key, role.session_token, expired)
        user = self._user(access_key)
        if user is not None:
            return sigv4.Secret(user[1], None)
        return None

    def principal(self, access_key: str) -> Principal:
        assumed = self._assumed(access_key)
        if assumed is not None:
            role, account = assumed
            iam = iam_backends[account]["aws"]
            try:
                model = iam.get_role_by_arn(role.role_arn)
                policies = policy_documents(model)
            except Exception:
                policies = ()  # the role was deleted after the session was issued
            return Principal(role.role_arn, role.arn, account, policies)
        user_info = self._user(access_key)
        assert user_info is not None
        user = user_info[0]
        return Principal(user.arn, user.arn, user.account_id, policy_documents(user))

    def _assumed(self, access_key: str) -> tuple[Any, str] | None:
        return assumed_session(access_key)

    def _user(self, access_key: str) -> tuple[Any, str] | None:
        for by_partition in list(iam_backends.values()):
            backend = by_partition["aws"]
            user = backend.get_user_from_access_key_id(access_key)
            if user is not None:
                for key in backend.list_access_keys(user.name):
                    if key.access_key_id == access_key:
                        return user, key.secret_access_key
        return None


# The gateway response type API Gateway answers each refusal with ("Gateway response types").
_RESPONSE_TYPES = {
    "AccessDeniedException": "ACCESS_DENIED",
    "MissingAuthenticationTokenException": "MISSING_AUTHENTICATION_TOKEN",
    "InvalidSignatureException": "INVALID_SIGNATURE",
    "ExpiredTokenException": "EXPIRED_TOKEN",
}
_MASKED_ACCOUNT = re.compile(
    r"(?<=:)\d{8}(\d{4})(?=:)"
)  # an account id in an ARN: the last four digits are shown


def _route(snapshot: Snapshot, verb: str, path: str) -> tuple[str, str] | None:
    """The (resource path, verb) serving ``path``; templates ``{id}`` and ``{proxy+}`` match."""
    for (template, method_verb), _ in snapshot.methods.items():
        if method_verb not in (verb, "ANY"):
            continue
        if re.fullmatch(_path_pattern(template), path):
            return template, method_verb
    return None


def _path_pattern(template: str) -> str:
    """A resource path template as a regular expression: ``{name}`` one segment, ``{proxy+}`` the rest."""
    return re.sub(r"\\\{[^/]+\\\+\\\}", ".+", re.sub(r"\\\{[^/+]+\\\}", "[^/]+", re.escape(template)))


def _http_route(api: Any, verb: str, path: str) -> Any:
    """The HTTP API route serving ``verb path``: "VERB /path" or "ANY /path" (``{name}`` and ``{proxy+}``
    match), else ``$default``."""
    fallback = None
    for route in list(api.routes.values()):
        if route.route_key == "$default":
            fallback = route
            continue
        route_verb, _, template = route.route_key.partition(" ")
        if route_verb not in (verb, "ANY"):
            continue
        if re.fullmatch(_path_pattern(template), path):
            return route
    return fallback


class _Handler(BaseHTTPRequestHandler):
    gateway: Gateway
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the demo prints its own story
        pass

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _serve(self) -> None:
        if self.gateway.latency_s:  # an integration that takes its time, for the bench
            time.sleep(self.gateway.latency_s)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        raw_path, _, query = self.path.partition("?")
        parts = raw_path.split("/", 3)
        if len(parts) < 3:
            return self._refuse(
                None, "message", "Missing Authentication Token", "MissingAuthenticationTokenException"
            )
        path = "/" + unquote(parts[3]) if len(parts) > 3 else "/"
        network = {"aws:sourceip": self.client_address[0], "aws:securetransport": "false"}
        http_api = self.gateway.find_http_api(parts[1])
        if http_api is not None:
            return self._answer_http(http_api, parts[2], path, body, network)
        self._answer(parts[1], parts[2], path, query, body, network, None)

    def _answer_http(self, found: tuple[str, str, Any], stage_name: str, path: str, body: bytes,
                     network: dict[str, str]) -> None:  # fmt: skip
        """An HTTP API (v2): no resource policy; the matched route's authorization type decides. AWS_IAM wants
        a valid signature and an identity policy granting execute-api:Invoke on the route; NONE lets anyone
        in; a JWT or Lambda authorizer (not emulated) refuses an unsigned call with 401. Every stage serves
        the routes as they are now (an auto-deployed stage)."""
        account, region, api = found
        if stage_name not in api.stages:
            return self._reply(404, {"message": "Not Found"})
        route = _http_route(api, self.command, path)
        if route is None:
            return self._reply(404, {"message": "Not Found"})
        kind = route.authorization_type or "NONE"
        method_arn = f"arn:aws:execute-api:{region}:{account}:{api.api_id}/{stage_name}/{self.command}/{path.lstrip('/')}"
        display = None
        if kind == "AWS_IAM":
            if "authorization" not in {k.lower() for k in self.headers}:
                return self._reply(403, {"message": "Forbidden"})
            try:
                key = sigv4.verify(self.command, self.path, list(self.headers.items()), body,
                                   lookup=self.gateway.lookup_secret, region=region, service="execute-api",
                                   now=dt.datetime.now(dt.UTC))  # fmt: skip
            except sigv4.SignatureRejected as exc:
                return self._reply(403, {"message": exc.message})
            who = self.gateway.principal(key)
            caller = access.Caller(who.principal_arn, who.account,
                                   who.display_arn if ":assumed-role/" in who.display_arn else None, network)  # fmt: skip
            identity = [access.read_stored_policy(doc) for doc in who.policies]
            if not access.identity_grants(identity, caller, method_arn):
                return self._reply(403, {"message": "Forbidden"})
            display = who.display_arn
        elif kind != "NONE":
            return self._reply(401, {"message": "Unauthorized"})
        self._reply(200, {"status": "ok", "api": api.api_id, "stage": stage_name, "method": self.command,
                          "path": path, "caller": display, "bodyBytes": len(body)})  # fmt: skip

    def _answer(self, api_id: str, stage_name: str, path: str, query: str, body: bytes, network: dict[str, str],
                via: tuple[str, bool] | None) -> None:  # fmt: skip
        """Serve one request to ``api_id``'s ``stage_name``; ``via``: (the VPC endpoint it came through, whether
        it named the API by the endpoint's Route 53 alias), or None from the internet."""
        found = self.gateway.find_api(api_id)
        if found is not None:
            config = getattr(found[2], "endpoint_configuration", None) or {}
            private = "PRIVATE" in (config.get("types") or [])
            # A private API answers only through an execute-api VPC endpoint, and an endpoint serves only
            # private APIs; its alias names an API associated with it ("Invoke a private API").
            if private != (via is not None) or (
                via and via[1] and via[0] not in (config.get("vpcEndpointIds") or [])
            ):
                return self._reply(403, {"message": "Forbidden"}, "ForbiddenException")
        stage = found[2].stages.get(stage_name) if found else None
        snapshot = SNAPSHOTS.get((api_id, stage.deployment_id)) if stage is not None else None
        route = _route(snapshot, self.command, path) if snapshot else None
        if found is None or snapshot is None or route is None:
            return self._refuse(found[2] if found else None, "message", "Missing Authentication Token",
                                "MissingAuthenticationTokenException")  # fmt: skip
        account, region, api = found
        api_ref = ApiRef(region, account, api.id)
        method_arn = f"{api_ref.arn}/{stage_name}/{self.command}/{path.lstrip('/')}"
        authorization_type = snapshot.methods[route]
        caller = access.Caller(keys=network)
        display = "anonymous"
        identity_ok = False
        if authorization_type == "AWS_IAM":
            try:
                key = sigv4.verify(self.command, self.path, list(self.headers.items()), body,
                                   lookup=self.gateway.lookup_secret, region=region, service="execute-api",
                                   now=dt.datetime.now(dt.UTC))  # fmt: skip
            except sigv4.SignatureRejected as exc:
                return self._refuse(api, "message", exc.message, exc.error_type)
            who = self.gateway.principal(key)
            display = who.display_arn
            caller = access.Caller(who.principal_arn, who.account,
                                   who.display_arn if ":assumed-role/" in who.display_arn else None, network)  # fmt: skip
            identity = [access.read_stored_policy(doc) for doc in who.policies]
            identity_ok = access.identity_grants(identity, caller, method_arn)
        policy = access.read_stored_policy(snapshot.policy) if snapshot.policy else None
        allowed, reason = access.decide(policy, authorization_type, caller, method_arn, account,
                                        identity_ok)  # fmt: skip
        if not allowed:
            suffix = " with an explicit deny" if reason == "explicit-deny" else ""
            message = f"User: {display} is not authorized to perform: execute-api:Invoke on resource: {method_arn}{suffix}"
            return self._refuse(api, "Message", message, "AccessDeniedException")
        self._reply(200, {"status": "ok", "api": api.id, "stage": stage_name, "method": self.command, "path": path,
                          "query": unquote(query), "caller": None if display == "anonymous" else display,
                          "bodyBytes": len(body)})  # fmt: skip

    def _refuse(self, api: Any, key: str, message: str, error_type: str) -> None:
        message = _MASKED_ACCOUNT.sub(lambda m: "********" + m[1], message)
        kind = _RESPONSE_TYPES.get(error_type, "DEFAULT_4XX")
        responses = getattr(api, "gateway_responses", {}) if api is not None else {}
        custom = responses.get(kind) or responses.get("DEFAULT_4XX")
        if custom is None:
            return self._reply(403, {key: message}, error_type)
        template = (custom.response_templates or {}).get("application/json")
        body = (template or json.dumps({key: message})).replace(
            "$context.error.messageString", json.dumps(message)
        )
        status = int(custom.status_code or 403)
        return self._reply(status, body.replace("$context.error.message", message), error_type)

    def _reply(self, status: int, payload: dict[str, Any] | str, error_type: str | None = None) -> None:
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class VpcEndpoint(_LoopbackServer):
    """A local execute-api interface VPC endpoint ``vpce_id`` in ``vpc_id``: what a function in that VPC
    calls a private API through. It names the API the three documented ways (private DNS: Host
    ``{api}.execute-api.{region}.amazonaws.com``; the Route 53 alias ``{api}-{vpce}.execute-api...``; the
    endpoint's own name with ``x-apigw-api-id``), and every request it carries has ``aws:SourceVpce``,
    ``aws:SourceVpc`` and ``aws:VpcSourceIp``, and no ``aws:SourceIp``, as AWS documents for requests through
    a VPC endpoint. URLs are ``http://127.0.0.1:PORT/{stage}/{path}``."""

    def __init__(self, gateway: Gateway, vpce_id: str, vpc_id: str) -> None:
        self.vpce_id, self.vpc_id = vpce_id, vpc_id
        super().__init__(type("EndpointHandler", (_EndpointHandler,), {"gateway": gateway, "endpoint": self}))
        self.start()


_HOSTED = re.compile(r"^([a-z0-9]+)(?:-(vpce-[0-9a-f]+))?\.execute-api\.[a-z0-9-]+\.amazonaws\.com$")


class _EndpointHandler(_Handler):
    endpoint: VpcEndpoint

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        raw_path, _, query = self.path.partition("?")
        parts = raw_path.split("/", 2)
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        named = self.headers.get("x-apigw-api-id")
        match = _HOSTED.match(host)
        if named:
            api_id, alias = named, False
        elif match and (match[2] is None or match[2] == self.endpoint.vpce_id):
            api_id, alias = match[1], match[2] is not None
        else:
            return self._reply(403, {"message": "Forbidden"}, "ForbiddenException")
        if len(parts) < 2 or not parts[1]:
            return self._refuse(
                None, "message", "Missing Authentication Token", "MissingAuthenticationTokenException"
            )
        path = "/" + unquote(parts[2]) if len(parts) > 2 else "/"
        network = {"aws:sourcevpce": self.endpoint.vpce_id, "aws:sourcevpc": self.endpoint.vpc_id,
                   "aws:vpcsourceip": self.client_address[0], "aws:securetransport": "false"}  # fmt: skip
        self._answer(api_id, parts[1], path, query, body, network, (self.endpoint.vpce_id, alias))
