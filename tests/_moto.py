"""A real S3 endpoint for tests: moto's server on loopback, with a bucket ``pricing``."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None, timeout: float = 60) -> None:
    """Wait until something listens on ``port`` (fail early when ``proc`` exits)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@contextmanager
def moto_s3() -> Iterator[dict[str, str]]:
    """Start moto's S3 server with a bucket ``pricing``; yield the AWS environment for it.

    Skips the test when ``s3fs`` (pricelab[s3]) or ``moto[server]`` is not installed.
    """
    pytest.importorskip("s3fs", reason="needs pricelab[s3]")
    server_mod = pytest.importorskip("moto.server", reason="needs moto[server]")
    boto3 = pytest.importorskip("boto3")
    port = free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        wait_port(port, None)
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "moto-secret-Zq81",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        }
        boto3.client(
            "s3",
            region_name="us-east-1",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id="testing",
            aws_secret_access_key="x",
        ).create_bucket(Bucket="pricing")
        yield env
    finally:
        server.stop()
