"""How the adapter reaches AWS: region, endpoint, timeouts, attempts and pacing.

Kept apart from the adapter so that settings can describe a connection
without importing aioboto3 and botocore's client, which take most of a
second to load.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AwsConnection:
    """AwsConnection is how the adapter reaches AWS."""

    region: str
    endpoint_url: str | None = None
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 30.0
    max_pool_connections: int = 64
    max_attempts: int = 4
    # AWS's CreateRoom quota per account and region; None turns pacing off.
    create_rate: float | None = 5.0
    max_in_flight: int = 16
    backoff_base_s: float = 0.05
    backoff_cap_s: float = 1.0


@dataclass(frozen=True, slots=True)
class StaticCredentials:
    """StaticCredentials are for the embedded local endpoint only; AWS's come from its chain."""

    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:
        return "StaticCredentials(<redacted>)"
