"""``access-auditor call``: one SigV4-signed request, as a user of awscurl expects it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from access_auditor.cli.options import aws_session, seconds
from access_auditor.errors import ConfigError, CredentialsError

EXAMPLES = """examples:
  access-auditor call https://abc123.execute-api.us-east-1.amazonaws.com/prod/health
  access-auditor call -X POST -d '{"name": "a b"}' -H 'Content-Type: application/json' URL
  access-auditor call -d @body.bin -o reply.json --profile app URL
  access-auditor call -v 'URL?q=a b&tag=x&tag=y'     # shows the canonical request, secrets redacted
"""


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "call", help="make a SigV4-signed request", description="Make one SigV4-signed HTTP request.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("url", help="https:// URL (http:// only for loopback hosts)")
    parser.add_argument("-X", "--request", dest="method", help="HTTP method (default GET, or POST with -d)")
    parser.add_argument("-d", "--data", help="body: text, @file, or @- for standard input")
    parser.add_argument("-H", "--header", action="append", default=[], help="'Name: value' (repeatable)")
    parser.add_argument("-i", "--include", action="store_true", help="print the status line and headers")
    parser.add_argument("-o", "--output", help="write the body to this file")
    parser.add_argument(
        "--timeout", type=seconds, default=30.0, help="seconds the whole call may take (default 30)"
    )
    parser.add_argument("--profile", help="AWS profile (any botocore credential source)")
    parser.add_argument("--region", help="signing region (default: from the host name, else the profile)")
    parser.add_argument("--service", default="execute-api", help="signing service (default execute-api)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show what was signed, secrets redacted")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError

    from access_auditor.signing import normalize_url, region_from_host, sign_request
    from access_auditor.transport import new_session, send

    normalize_url(args.url)  # a bad URL is bad input (exit 2), whatever else is missing
    body = read_body(args.data)
    headers = parse_headers(args.header)
    method = (args.method or ("POST" if args.data is not None else "GET")).upper()
    session = aws_session(args.profile)
    region = args.region or region_from_host(args.url) or session.get_config_variable("region")
    if not region:
        raise ConfigError(
            "cannot tell the signing region: the host is not an execute-api host; pass --region"
        )
    try:
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise CredentialsError(f"could not load credentials: {exc}") from exc
    if credentials is None:
        raise CredentialsError(
            "no AWS credentials found (environment, shared files, SSO, or a role); try --profile"
        )
    signed = sign_request(method, args.url, credentials=credentials, region=region, service=args.service,
                          headers=headers, body=body)  # fmt: skip
    if args.verbose:
        sys.stderr.write(f"* signing for service {args.service} in {region}\n* canonical request:\n")
        sys.stderr.write(
            _indent(signed.canonical_request)
            + "\n* string to sign:\n"
            + _indent(signed.string_to_sign)
            + "\n"
        )
        sys.stderr.write(f"> {signed.method} {signed.url}\n")
        sys.stderr.writelines(f"> {name}: {value}\n" for name, value in signed.redacted_headers().items())
    response = send(new_session(retries=0), signed.method, signed.url, headers=signed.headers, body=signed.body,
                    timeout=(args.timeout, args.timeout), budget_s=args.timeout)  # fmt: skip
    out = sys.stdout.buffer
    if args.include:
        reason = response.reason or ""
        out.write(f"HTTP/1.1 {response.status_code} {reason}\r\n".encode())
        out.write("".join(f"{k}: {v}\r\n" for k, v in response.headers.items()).encode() + b"\r\n")
    if args.output:
        Path(args.output).write_bytes(response.content)
    else:
        out.write(response.content)
        if response.content and not response.content.endswith(b"\n") and sys.stdout.isatty():
            out.write(b"\n")
    out.flush()
    return 0 if response.status_code < 400 else 1


MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit for REST APIs: nothing larger can arrive


def read_body(data: str | None) -> bytes:
    """The body ``-d`` names, read up to MAX_BODY_BYTES; more is an error, not a 1 GB read."""
    if data is None:
        return b""
    if data == "@-":
        body = sys.stdin.buffer.read(MAX_BODY_BYTES + 1)
    elif data.startswith("@"):
        try:
            with Path(data[1:]).open("rb") as source:
                body = source.read(MAX_BODY_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"-d {data}: cannot read the file: {exc.strerror}") from exc
    else:
        body = data.encode()
    if len(body) > MAX_BODY_BYTES:
        raise ConfigError(f"-d {data}: the body is larger than API Gateway accepts (10 MiB)")
    return body


def parse_headers(raw: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise ConfigError(f"-H {item!r}: expected 'Name: value'")
        if any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in item):
            raise ConfigError(f"-H {item!r}: a header may not hold CR, LF or other control characters")
        headers[name.strip()] = value.strip()
    return headers


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
