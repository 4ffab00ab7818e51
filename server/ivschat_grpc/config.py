"""Typed settings, read once at start from flags and the environment.

Flags win over environment variables, which win over defaults. AWS's own
variables (AWS_REGION, AWS_ENDPOINT_URL_IVSCHAT, ...) keep their AWS meaning;
the service's own start with IVSCHAT_GRPC_.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

from ivschat_grpc.aws import AwsSettings

ENV_PREFIX: Final = "IVSCHAT_GRPC_"
DEFAULT_PORT: Final = 50051

T = TypeVar("T")


class ConfigError(Exception):
    """ConfigError says which setting is wrong and how to set it."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Settings is everything the service reads at start."""

    region: str | None = None
    endpoint_url: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    log_level: str = "INFO"
    emulator: bool = False
    # A call without a deadline gets this one, so nothing waits on AWS forever.
    default_timeout_s: float = 30.0
    grace_s: float = 10.0
    aws_max_attempts: int = 4
    # AWS allows 5 CreateRoom calls a second per account and region.
    create_rate: float | None = 5.0
    aws_max_in_flight: int = 16
    # Items one batch stream may have read and not yet answered.
    batch_window: int = 32
    max_streams: int = 16
    max_items_per_stream: int | None = None

    def aws(self) -> AwsSettings:
        """The adapter's settings; region must be known by now."""
        if not self.region:
            raise ConfigError(
                "no AWS region: set AWS_REGION (or pass --region), or run with --emulator"
            )
        return AwsSettings(
            region=self.region,
            endpoint_url=self.endpoint_url,
            max_attempts=self.aws_max_attempts,
            create_rate=self.create_rate,
            max_in_flight=self.aws_max_in_flight,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare serve's flags; every default is None so the environment can fill it."""
    parser.add_argument("--host", help=f"address to bind ({ENV_PREFIX}HOST; default 127.0.0.1)")
    parser.add_argument("--port", help=f"port to bind, 0 for any ({ENV_PREFIX}PORT; default 50051)")
    parser.add_argument("--region", help="AWS region (AWS_REGION, AWS_DEFAULT_REGION)")
    parser.add_argument(
        "--endpoint-url", help="IVS Chat endpoint (AWS_ENDPOINT_URL_IVSCHAT, AWS_ENDPOINT_URL)"
    )
    parser.add_argument("--log-level", help=f"log level ({ENV_PREFIX}LOG_LEVEL; default INFO)")
    parser.add_argument(
        "--default-timeout",
        help=f"seconds for calls sent without a deadline ({ENV_PREFIX}DEFAULT_TIMEOUT; default 30)",
    )
    parser.add_argument(
        "--grace", help=f"seconds to drain on SIGTERM ({ENV_PREFIX}GRACE; default 10)"
    )
    parser.add_argument(
        "--create-rate",
        help=f'CreateRoom calls a second for the whole process, or "off" '
        f"({ENV_PREFIX}CREATE_RATE; default 5, AWS's quota)",
    )
    parser.add_argument(
        "--max-aws-in-flight",
        help=f"AWS calls in flight at once ({ENV_PREFIX}MAX_AWS_IN_FLIGHT; default 16)",
    )
    parser.add_argument(
        "--batch-window",
        help=f"items a batch stream works on at once ({ENV_PREFIX}BATCH_WINDOW; default 32)",
    )
    parser.add_argument(
        "--max-streams",
        help=f"batch streams at once ({ENV_PREFIX}MAX_STREAMS; default 16)",
    )
    parser.add_argument(
        "--max-items-per-stream",
        help=f"items one batch stream may send ({ENV_PREFIX}MAX_ITEMS_PER_STREAM; default none)",
    )
    parser.add_argument(
        "--emulator",
        action="store_true",
        help="serve against an embedded local IVS Chat endpoint instead of AWS",
    )


def _parse(name: str, raw: str, convert: Callable[[str], T]) -> T:
    try:
        return convert(raw)
    except ValueError:
        kind = "an integer" if convert is int else "a number"
        raise ConfigError(f"{name} must be {kind}, not {raw!r}") from None


def _positive(name: str, value: float) -> float:
    if value <= 0:
        raise ConfigError(f"{name} must be positive, not {value}")
    return value


def _at_least_one(name: str, raw: str | None, default: int) -> int:
    if raw is None:
        return default
    value = _parse(name, raw, int)
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, not {value}")
    return value


def load(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Build Settings from parsed flags and an environment, once."""

    def pick(flag: str, *env_names: str) -> str | None:
        value = getattr(args, flag, None)
        if value is not None:
            return str(value)
        for env in env_names:
            if environ.get(env):
                return environ[env]
        return None

    defaults = Settings()
    port_raw = pick("port", f"{ENV_PREFIX}PORT")
    port = defaults.port if port_raw is None else _parse("port", port_raw, int)
    if not 0 <= port <= 65535:
        raise ConfigError(f"port must be 0 to 65535, not {port}")
    log_level = (pick("log_level", f"{ENV_PREFIX}LOG_LEVEL") or defaults.log_level).upper()
    if log_level not in logging.getLevelNamesMapping():
        raise ConfigError(f"log level must be one of DEBUG, INFO, WARNING, ERROR, not {log_level}")
    timeout_raw = pick("default_timeout", f"{ENV_PREFIX}DEFAULT_TIMEOUT")
    grace_raw = pick("grace", f"{ENV_PREFIX}GRACE")
    rate_raw = pick("create_rate", f"{ENV_PREFIX}CREATE_RATE")
    create_rate = defaults.create_rate
    if rate_raw is not None:
        create_rate = (
            None
            if rate_raw == "off"
            else _positive("create rate", _parse("create rate", rate_raw, float))
        )
    items_raw = pick("max_items_per_stream", f"{ENV_PREFIX}MAX_ITEMS_PER_STREAM")
    return Settings(
        region=pick("region", "AWS_REGION", "AWS_DEFAULT_REGION"),
        endpoint_url=pick("endpoint_url", "AWS_ENDPOINT_URL_IVSCHAT", "AWS_ENDPOINT_URL"),
        host=pick("host", f"{ENV_PREFIX}HOST") or defaults.host,
        port=port,
        log_level=log_level,
        emulator=bool(getattr(args, "emulator", False)),
        default_timeout_s=(
            defaults.default_timeout_s
            if timeout_raw is None
            else _positive("default timeout", _parse("default timeout", timeout_raw, float))
        ),
        grace_s=(
            defaults.grace_s
            if grace_raw is None
            else _positive("grace", _parse("grace", grace_raw, float))
        ),
        create_rate=create_rate,
        aws_max_in_flight=_at_least_one(
            "max AWS in flight",
            pick("max_aws_in_flight", f"{ENV_PREFIX}MAX_AWS_IN_FLIGHT"),
            defaults.aws_max_in_flight,
        ),
        batch_window=_at_least_one(
            "batch window", pick("batch_window", f"{ENV_PREFIX}BATCH_WINDOW"), defaults.batch_window
        ),
        max_streams=_at_least_one(
            "max streams", pick("max_streams", f"{ENV_PREFIX}MAX_STREAMS"), defaults.max_streams
        ),
        max_items_per_stream=(
            None if items_raw is None else _at_least_one("max items per stream", items_raw, 1)
        ),
    )
