"""The local endpoint as tests call it directly: no quota in the way, a client that checks none."""

from __future__ import annotations

from typing import Any

from aiobotocore.config import AioConfig
from ivschat_grpc.emulator import EmulatorSettings

from tests.support.facade import LOGGING_ARNS

# One try, and botocore's own checks off, so that what the endpoint refuses reaches it.
UNCHECKED = AioConfig(retries={"total_max_attempts": 1}, read_timeout=5, parameter_validation=False)
# The logging configuration an unthrottled endpoint has from the start.
GIVEN_LOGGING_ARN = LOGGING_ARNS[0]


def unthrottled_settings(**overrides: Any) -> EmulatorSettings:
    """Settings with no operation's quota on, so a test's calls are never throttled."""
    base: dict[str, Any] = {
        "create_room_rate": None,
        "quotas": {},
        "logging_configurations": frozenset({GIVEN_LOGGING_ARN}),
    }
    return EmulatorSettings(**{**base, **overrides})
