"""botocore clients configured the same way everywhere: standard retries, short timeouts, and botocore's own
endpoint resolution (so ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>`` reach an emulator)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.session import Session

from access_auditor.errors import AwsCallError, CredentialsError

T = TypeVar("T")

# API Gateway's control plane allows about 10 requests a second per account, shared with the console and
# CI/CD; "standard" mode backs off on TooManyRequestsException instead of hammering.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=3,
    read_timeout=10,
    max_pool_connections=32,  # one per audit worker at most (audit.MAX_WORKERS)
    user_agent_extra="apigw-access-auditor",
)


def make_client(service: str, region: str, session: Session | None = None) -> Any:
    """A client of ``service`` in ``region``. botocore's own session is enough: boto3 (and s3transfer, which
    it imports) would only add to every cold start."""
    return (session or Session()).create_client(service, region_name=region, config=CLIENT_CONFIG)


@contextmanager
def aws_call(operation: str) -> Iterator[None]:
    """Turn botocore's exceptions into AwsCallError / CredentialsError naming the operation and the code."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", "")) or str(exc)
        if code in {
            "ExpiredToken",
            "ExpiredTokenException",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
        }:
            raise CredentialsError(f"{operation} refused the credentials: {code}: {message}") from exc
        raise AwsCallError(operation, code, message) from exc
    except NoCredentialsError as exc:
        raise CredentialsError(f"{operation}: no AWS credentials found") from exc
    except BotoCoreError as exc:
        raise AwsCallError(operation, type(exc).__name__, str(exc)) from exc


def call[T](operation: str, fn: Callable[..., T], **kwargs: Any) -> T:
    with aws_call(operation):
        return fn(**kwargs)
