"""The test environment: no path to real AWS, and the local endpoint's credentials."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aioboto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from ivschat_grpc.emulator import DEFAULT_ACCESS_KEY_ID, DEFAULT_REGION, DEFAULT_SECRET_ACCESS_KEY


def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Strip AWS_*, point AWS's config files at empty ones, and give state a test folder."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    empty_config = tmp_path / "aws-config"
    empty_credentials = tmp_path / "aws-credentials"
    empty_config.write_text("")
    empty_credentials.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty_config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty_credentials))
    # The metadata service lives off loopback; tests never talk to it.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # Each test's services keep their request_id records in its own folder.
    monkeypatch.delenv("IVSCHAT_GRPC_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def use_emulator_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give AWS's standard chain the local endpoint's credentials, through the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DEFAULT_SECRET_ACCESS_KEY)


def point_env_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Point AWS's own variables (endpoint, region, credentials) at a local endpoint."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_IVSCHAT", url)
    monkeypatch.setenv("AWS_REGION", DEFAULT_REGION)
    use_emulator_credentials(monkeypatch)


def direct_client(url: str, config: Any = None) -> Any:
    """An aioboto3 IVS Chat client for a local endpoint, as a direct caller would make it.

    config (an AioConfig) changes its retries, timeouts or checks.
    """
    session = aioboto3.Session(
        aws_access_key_id=DEFAULT_ACCESS_KEY_ID,
        aws_secret_access_key=DEFAULT_SECRET_ACCESS_KEY,
        region_name=DEFAULT_REGION,
    )
    return session.client("ivschat", endpoint_url=url, config=config)


def signed_headers(
    url: str,
    body: bytes = b"",
    *,
    method: str = "POST",
    service: str = "ivschat",
    content_type: str = "application/json",
) -> dict[str, str]:
    """Headers that sign a request to url (its path and query as sent) as botocore signs them."""
    request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": content_type})
    creds = Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY)
    SigV4Auth(creds, service, DEFAULT_REGION).add_auth(request)
    return dict(request.headers)
