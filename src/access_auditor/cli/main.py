"""``access-auditor``: signed calls, the expected policy, one-shot audits, and the local demo.

Exit codes: 0 success; 1 findings or an HTTP error status; 2 usage or bad input; 3 network or credential
failure.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from access_auditor import __version__
from access_auditor.errors import AwsCallError, ConfigError, CredentialsError, PolicyParseError, RequestError
from access_auditor.redact import RedactingStream, redact

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_FAILURE = 0, 1, 2, 3
EXAMPLES = """examples:
  access-auditor call -i https://abc123.execute-api.us-east-1.amazonaws.com/prod/health
  access-auditor policy render --api-arn arn:aws:execute-api:us-east-1:123456789012:abc123 --role app
  access-auditor audit --api-id abc123 --stage prod --region us-east-1 --role arn:aws:iam::123456789012:role/app
  access-auditor doctor --region us-east-1 --discover --experiment
  access-auditor demo

Exit codes: 0 ok, 1 findings or HTTP error status, 2 usage or bad input, 3 network or credentials."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line, naming the command whose usage to read: bad input must be readable at a glance.
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> Parser:
    from access_auditor.cli import audit, call, doctor, policy, reference
    from access_auditor.cli.options import add_command

    parser = Parser(
        prog="access-auditor",
        description="Prove that an API Gateway REST API answers to one IAM role and nobody else.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"access-auditor {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    call.register(commands)
    policy.register(commands)
    audit.register(commands)
    doctor.register(commands)
    reference.register(commands)
    demo = add_command(
        commands, "demo", "run the product against a local emulated AWS (no account needed)",
        "Run every scenario of the demo against the local AWS, or keep it running with --serve.",
        "access-auditor demo", "access-auditor demo --serve",
    )  # fmt: skip
    demo.add_argument(
        "--serve", action="store_true", help="keep the local AWS running and print how to use it"
    )
    demo.add_argument("--scenarios", type=int, metavar="N", help="run the first N scenarios only")
    demo.set_defaults(handler=_demo)
    completion = add_command(
        commands, "completion", "print the shell completion script",
        "Print a completion script: eval it in your shell's start-up file.",
        'eval "$(access-auditor completion bash)"    # in ~/.bashrc',
        'eval "$(access-auditor completion zsh)"     # in ~/.zshrc',
    )  # fmt: skip
    completion.add_argument("shell", choices=["bash", "zsh"])
    completion.set_defaults(handler=_completion)
    return parser


def _completion(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    sys.stdout.write(shellcode(["access-auditor"], shell=args.shell))
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    try:
        from access_auditor.local_aws import demo, serve
    except ImportError as exc:
        raise ConfigError(
            f"the local AWS needs the demo extras: run `make demo` in the clone, or `pip install '.[demo]'` there "
            f"({exc})"
        ) from exc
    return serve.serve() if args.serve else demo.run_demo(limit=args.scenarios)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every text line it writes to stdout or stderr is redacted (a response body written
    through ``sys.stdout.buffer`` is the user's data, written as it came)."""
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (``| head``): what it wanted it has. Nothing more may reach the closed pipe,
        # not even at exit when Python flushes stdout.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, streams[0].fileno())
        return EXIT_OK
    finally:
        sys.stdout, sys.stderr = streams


def _main(argv: Sequence[str] | None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    for argument in arguments:
        try:
            argument.encode("utf-8")
        except UnicodeEncodeError:  # bytes the shell passed that are not UTF-8 (kept as surrogates)
            sys.stderr.write(f"access-auditor: an argument is not valid UTF-8: {ascii(argument)}\n")
            return EXIT_USAGE
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell is asking for completions, not running a command
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parser.parse_args(arguments)
    try:
        code: int = args.handler(args)
        return code
    except (ConfigError, PolicyParseError) as exc:
        sys.stderr.write(f"access-auditor: {redact(str(exc))}\n")
        return EXIT_USAGE
    except RequestError as exc:
        sys.stderr.write(f"access-auditor: {redact(str(exc))}\n")
        return EXIT_USAGE if exc.kind == "url" else EXIT_FAILURE
    except (CredentialsError, AwsCallError) as exc:
        sys.stderr.write(f"access-auditor: {redact(str(exc))}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise  # main's: the reader went away, which is not an error
    except Exception as exc:  # a bug: one line, never a traceback with whatever it holds
        sys.stderr.write(f"access-auditor: internal error: {redact(f'{type(exc).__name__}: {exc}')}\n")
        return EXIT_FINDINGS
