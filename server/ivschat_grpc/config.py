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
    )
