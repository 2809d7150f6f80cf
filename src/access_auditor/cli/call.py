"""``access-auditor call``: one SigV4-signed request, with the curl flags people script with.

Exit codes: 0 success (or an HTTP error status without ``--fail``: 1), 2 bad input, 3 network or
credentials, 22 an HTTP status of 400 or more with ``--fail``, as curl does.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from access_auditor.cli.options import aws_session, seconds
from access_auditor.errors import ConfigError, CredentialsError
from access_auditor.redact import redact

EXIT_HTTP_ERROR, EXIT_FAIL = 1, 22
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit for REST APIs: nothing larger can arrive
EXAMPLES = """examples:
  access-auditor call https://abc123.execute-api.us-east-1.amazonaws.com/prod/health
  access-auditor call -X POST -d '{"name": "a b"}' -H 'Content-Type: application/json' URL
  access-auditor call -d @body.bin -o reply.json --profile app URL
  access-auditor call --url-query 'q=a b' --url-query 'tag=x&y' URL      # values encoded as they are signed
  access-auditor call --data-urlencode 'name=café & co' URL              # a form body, POST
  access-auditor call -sf -w '%{http_code} %{time_total}s %{request_id}\\n' -o /dev/null URL
  access-auditor call --role-arn arn:aws:iam::123456789012:role/app -I URL
  access-auditor call -v 'URL?q=a b&tag=x&tag=y'     # shows the canonical request, secrets redacted

exit codes: 0 ok; 1 HTTP status >= 400; 22 the same with --fail; 2 bad input; 3 network or credentials
"""
WRITE_OUT = re.compile(r"%\{(http_code|time_total|request_id|size_download|num_redirects|url_effective)\}")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "call", help="make a SigV4-signed request", description="Make one SigV4-signed HTTP request.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("url", help="https:// URL (http:// only for loopback hosts)")
    parser.add_argument("-X", "--request", dest="method", help="HTTP method (default GET, or POST with -d)")
    parser.add_argument("-d", "--data", help="body: text, @file, or @- for standard input")
    parser.add_argument("--data-urlencode", action="append", default=[], metavar="NAME=VALUE",
                        help="a form field, VALUE percent-encoded (repeatable; makes the request a POST)")  # fmt: skip
    parser.add_argument("--url-query", action="append", default=[], metavar="NAME=VALUE",
                        help="add a query parameter, VALUE taken literally and encoded as signed (repeatable)")  # fmt: skip
    parser.add_argument("-H", "--header", action="append", default=[], help="'Name: value' (repeatable)")
    parser.add_argument("-i", "--include", action="store_true", help="print the status line and headers")
    parser.add_argument("-I", "--head", action="store_true", help="send HEAD and print the headers only")
    parser.add_argument("-o", "--output", help="write the body to this file")
    parser.add_argument("-f", "--fail", action="store_true", help="exit 22 on an HTTP status of 400 or more")
    parser.add_argument("-s", "--silent", action="store_true", help="no diagnostics on stderr")
    parser.add_argument("-L", "--location", action="store_true",
                        help="follow redirects to the same host, signing each hop again (another host is refused)")  # fmt: skip
    parser.add_argument("--max-redirs", type=int, default=5, metavar="N", help="with -L, at most N hops")
    parser.add_argument("-w", "--write-out", metavar="FORMAT",
                        help="after the body, print FORMAT with %%{http_code}, %%{time_total}, %%{request_id}, "
                             "%%{size_download}, %%{num_redirects}, %%{url_effective}")  # fmt: skip
    parser.add_argument(
        "--timeout", type=seconds, default=30.0, help="seconds the whole call may take (default 30)"
    )
    parser.add_argument("--profile", help="AWS profile (any botocore credential source)")
    parser.add_argument(
        "--role-arn", help="assume this role first (with the profile's credentials) and sign as it"
    )
    parser.add_argument("--region", help="signing region (default: from the host name, else the profile)")
    parser.add_argument("--service", default="execute-api", help="signing service (default execute-api)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show what was signed, secrets redacted")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    credentials = None if args.profile or args.role_arn else _environment_credentials()
    from access_auditor.signing import normalize_url, region_from_host

    started = time.monotonic()
    url = normalize_url(args.url, [_pair(item, "--url-query") for item in args.url_query])
    body = read_body(args.data)
    headers = parse_headers(args.header)
    if args.data_urlencode:
        if args.data is not None:
            raise ConfigError("-d and --data-urlencode cannot be combined")
        body = "&".join(_form_field(item) for item in args.data_urlencode).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    if args.max_redirs < 0:
        raise ConfigError(f"--max-redirs {args.max_redirs}: expected 0 or more")
    method = (
        args.method or ("HEAD" if args.head else "POST" if body or args.data is not None else "GET")
    ).upper()
    region = args.region or region_from_host(args.url)
    if credentials is None or not region:
        # botocore's whole credential chain and configuration: a session, imported only when needed (it is a
        # fifth of the command's start-up)
        session = aws_session(args.profile)
        region = region or session.get_config_variable("region")
        credentials = credentials or _credentials(session, args.role_arn)
    if not region:
        raise ConfigError(
            "cannot tell the signing region: the host is not an execute-api host; pass --region"
        )

    response, hops, url = _follow(args, method, url, headers, body, credentials, region, started)
    out = sys.stdout.buffer
    failed = response.status_code >= 400
    if args.include or args.head:
        out.write(f"HTTP/1.1 {response.status_code} {response.reason}\r\n".encode())
        out.write(redact("".join(f"{k}: {v}\r\n" for k, v in response.headers.items())).encode() + b"\r\n")
    if not args.head and not (failed and args.fail):
        if args.output:
            Path(args.output).write_bytes(response.content)
        else:
            out.write(response.content)
            if response.content and not response.content.endswith(b"\n") and sys.stdout.isatty():
                out.write(b"\n")
    if args.write_out:
        out.write(
            redact(_write_out(args.write_out, response, time.monotonic() - started, hops, url)).encode()
        )
    out.flush()
    if failed and args.fail:
        if not args.silent:
            sys.stderr.write(f"access-auditor: the requested URL returned error: {response.status_code}\n")
        return EXIT_FAIL
    return EXIT_HTTP_ERROR if failed else 0


def _without_optional_extensions() -> None:
    """Importing botocore loads the AWS CRT and pyOpenSSL when they happen to be installed (with the SAM CLI,
    say): two native extensions, two fifths of a signed call's start-up, for what this call never uses (CRT
    signing schemes, credential providers, pyOpenSSL's TLS). With the credentials already in the environment,
    botocore is left to take them as absent: SigV4 and TLS are its and the standard library's own either way."""
    for name in ("awscrt", "OpenSSL"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "import name" raises ImportError


def _environment_credentials() -> Any:
    """The credentials in the environment, read by botocore's own environment provider (the first its chain
    asks anyway); None when there are none."""
    import os

    if not os.environ.get("AWS_ACCESS_KEY_ID"):  # nothing to read: the session's whole chain decides
        return None
    _without_optional_extensions()  # before botocore is first imported
    from botocore.credentials import EnvProvider

    return EnvProvider().load()


def _credentials(session: Any, role_arn: str | None) -> Any:
    from botocore.exceptions import BotoCoreError

    try:
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise CredentialsError(f"could not load credentials: {exc}") from exc
    if credentials is None:
        raise CredentialsError(
            "no AWS credentials found (environment, shared files, SSO, or a role); try --profile"
        )
    if not role_arn:
        return credentials
    from access_auditor.aws.credentials import StsCredentials
    from access_auditor.policy.expected import ROLE_ARN

    if not ROLE_ARN.match(role_arn):
        raise ConfigError(
            f"--role-arn {role_arn}: not an IAM role ARN (expected arn:aws:iam::ACCOUNT:role/NAME)"
        )
    return StsCredentials(session).credentials(role_arn)


def _follow(
    args: argparse.Namespace, method: str, url: str, headers: dict[str, str], body: bytes, credentials: Any,
    region: str, started: float,
) -> tuple[Any, int, str]:  # fmt: skip
    """Send, and with -L follow redirects to the same host, each hop signed again for its own URL."""
    from access_auditor.signing import normalize_url, send_signed, sign_request
    from access_auditor.transport import new_session

    session = new_session(retries=0)
    hops = 0
    while True:
        signed = sign_request(method, url, credentials=credentials, region=region, service=args.service,
                              headers=headers, body=body)  # fmt: skip
        if args.verbose and not args.silent:
            _show(signed, args.service, region)
        budget = args.timeout - (time.monotonic() - started)
        response = send_signed(session, signed, timeout=(args.timeout, args.timeout), budget_s=budget)
        location = response.headers.get("Location")
        if not (args.location and location and response.status_code in (301, 302, 303, 307, 308)):
            return response, hops, url
        if hops >= args.max_redirs:
            raise ConfigError(f"more than {args.max_redirs} redirects (--max-redirs)")
        target = normalize_url(_join(url, location))
        if urlsplit(target).netloc != urlsplit(url).netloc:
            # The signature names its host: sending credentials' signatures to another host is refused.
            raise ConfigError(f"refusing to follow a redirect to another host: {urlsplit(target).netloc}")
        if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
            method, body = "GET", b""  # as curl -L does
        url, hops = target, hops + 1


def _join(base: str, location: str) -> str:
    from urllib.parse import urljoin

    return urljoin(base, location)


def _show(signed: Any, service: str, region: str) -> None:
    sys.stderr.write(f"* signing for service {service} in {region}\n* canonical request:\n")
    sys.stderr.write(
        _indent(signed.canonical_request) + "\n* string to sign:\n" + _indent(signed.string_to_sign) + "\n"
    )
    sys.stderr.write(f"> {signed.method} {signed.url}\n")
    sys.stderr.writelines(f"> {name}: {value}\n" for name, value in signed.redacted_headers().items())


def _write_out(template: str, response: Any, elapsed: float, hops: int, url: str) -> str:
    values = {
        "http_code": str(response.status_code),
        "time_total": f"{elapsed:.6f}",
        "request_id": response.headers.get("x-amzn-RequestId") or "",
        "size_download": str(len(response.content)),
        "num_redirects": str(hops),
        "url_effective": url,
    }
    text = template.replace("\\n", "\n").replace("\\t", "\t")
    return WRITE_OUT.sub(lambda m: values[m[1]], text)


def _pair(item: str, flag: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise ConfigError(f"{flag} {item!r}: expected NAME=VALUE")
    return name, value


def _form_field(item: str) -> str:
    name, value = _pair(item, "--data-urlencode")
    return f"{quote(name, safe='')}={quote(value, safe='')}"


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
        if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in item):
            raise ConfigError(f"-H {item!r}: a header may not hold CR, LF or other control characters")
        headers[name.strip()] = value.strip()
    return headers


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
