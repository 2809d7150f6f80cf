"""Start and stop the whole local AWS: moto's control plane and the execute-api gateway, on loopback."""

from __future__ import annotations

import contextlib
import io
import logging
from types import TracebackType
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from access_auditor.local_aws import emulation
from access_auditor.local_aws.gateway import Gateway, VpcEndpoint

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"


class LocalAws:
    """``with LocalAws() as aws:`` starts both servers on free loopback ports and stops them on exit, even
    when the block fails. ``aws.env`` is what a process needs to use it, exactly as it would use AWS."""

    def __init__(self) -> None:
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.gateway = Gateway()
        self.region = REGION
        self.account = ACCOUNT
        self.endpoints: list[VpcEndpoint] = []

    @property
    def endpoint(self) -> str:
        host, port = self._moto.get_host_and_port()
        return f"http://{host}:{port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            # moto accepts any credentials for its control plane; these can never work against AWS.
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, service: str, region: str | None = None, account: str | None = None) -> Any:
        """A boto3 client bound to this local AWS (explicit endpoint and credentials: the process
        environment is left alone, so several local AWSes, and the caller's own settings, never mix). With
        ``account``, an administrator of that account (moto's x-moto-account-id header)."""
        client = boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.endpoint,
            region_name=region or self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        if account:

            def in_account(request: Any, **_: Any) -> None:
                request.headers["x-moto-account-id"] = account

            client.meta.events.register("before-sign", in_account)
        return client

    def invoke_url(self, api_id: str, stage: str) -> str:
        return f"{self.gateway.url}/{api_id}/{stage}"

    def vpc_endpoint(self, vpc_id: str | None = None) -> tuple[VpcEndpoint, str]:
        """An execute-api interface VPC endpoint (in ``vpc_id``, or a new VPC), created in the emulated EC2
        and served on loopback; returns it and the endpoint's own DNS name, as EC2 answers it."""
        ec2 = self.client("ec2")
        vpc = vpc_id or ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        made = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{self.region}.execute-api",
                                       VpcEndpointType="Interface", PrivateDnsEnabled=True)["VpcEndpoint"]  # fmt: skip
        endpoint = VpcEndpoint(self.gateway, made["VpcEndpointId"], vpc)
        self.endpoints.append(endpoint)
        # The endpoint's own name in the form the developer guide documents for execute-api
        # (vpce-ID-SUFFIX.execute-api.REGION.vpce.amazonaws.com); moto's DnsEntries spell it otherwise.
        return (
            endpoint,
            f"{made['VpcEndpointId']}-{made['VpcEndpointId'][-8:]}.execute-api.{self.region}.vpce.amazonaws.com",
        )

    def __enter__(self) -> LocalAws:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
        emulation.install()
        with contextlib.redirect_stdout(io.StringIO()):
            self._moto.start()
        try:
            requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()
            emulation.reset()
            self.gateway.start()
        except BaseException:
            self._moto.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for endpoint in self.endpoints:
            endpoint.stop()
        self.gateway.stop()
        self._moto.stop()
