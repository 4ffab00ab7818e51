"""Typed settings, read once at start from flags and the environment.

Flags win over environment variables, which win over defaults. AWS's own
variables (AWS_REGION, AWS_ENDPOINT_URL_IVSCHAT, ...) keep their AWS meaning;
the service's own start with IVSCHAT_GRPC_. Every option is one row of
OPTIONS, so its flag, variable, parsing and help cannot drift apart; each
row also says which group of Settings its value lands in.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import math
import os
import re
import ssl
import tempfile
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Final, Literal

from ivschat_grpc.aws.connection import AwsConnection
from ivschat_grpc.aws.message_limits import largest_valid_request_bytes
from ivschat_grpc.core.operations import OPERATIONS
from ivschat_grpc.core.sqlite_store import default_state_dir

ENV_PREFIX: Final = "IVSCHAT_GRPC_"
EVENT_LOOPS: Final = ("uvloop", "asyncio")
IDEMPOTENCY_STORES: Final = ("sqlite", "memory")
DEFAULT_PORT: Final = 50051


class ConfigError(Exception):
    """ConfigError says which setting is wrong and how to set it."""


@dataclass(frozen=True, slots=True)
class Listen:
    """Listen is where the gRPC server binds, and how it keeps connections alive."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    keepalive_time_s: float = 60.0
    keepalive_timeout_s: float = 20.0
    min_client_ping_interval_s: float = 10.0
    # The plaintext health port carries no authentication: it stays on
    # loopback unless asked, whatever host is.
    health_host: str = "127.0.0.1"
    health_port: int | None = None


@dataclass(frozen=True, slots=True)
class Tls:
    """Tls is the server's certificate and key, and the CA its clients' certificates need."""

    # PEM bytes, read once at start; never printed.
    cert: bytes | None = field(default=None, repr=False)
    key: bytes | None = field(default=None, repr=False)
    client_ca: bytes | None = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        """Whether the service listens with TLS."""
        return self.cert is not None


@dataclass(frozen=True, slots=True)
class Auth:
    """Auth is who may call: bearer tokens, and client certificate names under mTLS."""

    tokens: tuple[str, ...] = field(default=(), repr=False)
    allowed_clients: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits bound what callers may hold: time, calls at once, and message size."""

    # A call without a deadline gets this one, so nothing waits on AWS forever.
    default_timeout_s: float = 30.0
    grace_s: float = 10.0
    # Above what every bucket's queue (--max-queue-wait of each quota: 1,140
    # callers at 2 s) and its calls in flight hold together, so that callers
    # queued for one saturated quota never take the places of another's.
    max_concurrent_rpcs: int = 2048
    # Health has a budget of its own, so probes and the service never crowd each other out.
    max_health_rpcs: int = 32
    # A stream that owes nothing (no item in flight, every answer handed over)
    # and hears nothing for this long is closed, and so is a unary call whose
    # request has not arrived by then.
    idle_timeout_s: float = 60.0
    max_message_bytes: int = field(default_factory=largest_valid_request_bytes)


@dataclass(frozen=True, slots=True)
class Batch:
    """Batch bounds the BatchCreateRooms streams."""

    # Items one batch stream may have read and not yet answered.
    window: int = 32
    max_streams: int = 16
    max_items_per_stream: int | None = None


@dataclass(frozen=True, slots=True)
class Idempotency:
    """Idempotency is where request_id records live and how long their steps may take."""

    # "sqlite" (on disk, the default) or "memory", when there is no Redis;
    # None picks: sqlite, but memory with --emulator, whose rooms vanish with
    # the process too.
    store: str | None = None
    state_dir: Path = field(default_factory=lambda: default_state_dir(os.environ))
    retention_s: float = 86400.0
    # The most one call may spend on a request_id, its AWS calls included.
    lease_s: float = 60.0
    # How long a claim outlives its owner's last heartbeat.
    claim_timeout_s: float = 5.0
    settle_s: float = 2.0
    # AWS's read timeout (30 s) plus the settle time and a margin: by then an
    # abandoned create has landed or never will.
    recheck_s: float = 40.0


@dataclass(frozen=True, slots=True)
class Redis:
    """Redis is what replicas share, and how each paces itself while it is gone."""

    url: str | None = field(default=None, repr=False)
    # Each replica's own CreateRoom rate while Redis is gone: at most the
    # account's 5/s divided by the most replicas that can run.
    down_create_rate: float = 1.0


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Telemetry is what the service tells about itself: logs, metrics and traces."""

    log_level: str = "INFO"
    log_format: str = "json"
    # Metrics carry no authentication: they stay on loopback unless asked,
    # whatever --host is.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    tracing: str = "off"


@dataclass(frozen=True, slots=True)
class Aws:
    """Aws is which IVS Chat the service calls, and how hard."""

    region: str | None = None
    endpoint_url: str | None = None
    max_attempts: int = 4
    # AWS allows 5 CreateRoom calls a second per account and region.
    create_rate: float | None = 5.0
    # Other operations' rates where they differ from AWS's quota (core/operations.py).
    operation_rates: Mapping[str, float | None] = field(default_factory=dict)
    max_in_flight: int = 16
    # Seconds of its operation's quota that interactive calls may queue for:
    # beyond it a caller is told at once to come back, rather than kept waiting.
    max_queue_wait_s: float = 2.0

    def rate(self, operation: str) -> float | None:
        """The calls a second this process paces operation to (None: unpaced)."""
        if operation == "CreateRoom":
            return self.create_rate
        return self.operation_rates.get(operation, OPERATIONS[operation].rate)

    def connection(self) -> AwsConnection:
        """How the adapter reaches AWS; region must be known by now."""
        if not self.region:
            raise ConfigError(
                "no AWS region: set AWS_REGION (or pass --region), or run with --emulator"
            )
        return AwsConnection(
            region=self.region,
            endpoint_url=self.endpoint_url,
            max_attempts=self.max_attempts,
            create_rate=self.create_rate,
            max_in_flight=self.max_in_flight,
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Settings is everything the service reads at start, one group per concern."""

    listen: Listen = field(default_factory=Listen)
    tls: Tls = field(default_factory=Tls)
    auth: Auth = field(default_factory=Auth)
    limits: Limits = field(default_factory=Limits)
    batch: Batch = field(default_factory=Batch)
    idempotency: Idempotency = field(default_factory=Idempotency)
    redis: Redis = field(default_factory=Redis)
    telemetry: Telemetry = field(default_factory=Telemetry)
    aws: Aws = field(default_factory=Aws)
    emulator: bool = False
    # Logging configuration ARNs that exist in the embedded endpoint.
    emulator_logging_configurations: tuple[str, ...] = ()
    insecure: bool = False
    # uvloop cut the service's CPU per CreateRoom; bench/run.py shows by how much.
    event_loop: str = "uvloop"

    @property
    def store(self) -> str:
        """Where request_id records live: "redis", "sqlite" or "memory"."""
        if self.redis.url:
            return "redis"
        if self.idempotency.store is not None:
            return self.idempotency.store
        return "memory" if self.emulator else "sqlite"

    @property
    def authenticates_callers(self) -> bool:
        """Whether callers must prove who they are: a token or a client certificate."""
        return bool(self.auth.tokens) or self.tls.client_ca is not None


# The groups in the order the documentation shows them, each with its heading.
GROUPS: Final[Sequence[tuple[str, str]]] = (
    ("listen", "Listening"),
    ("tls", "TLS"),
    ("auth", "Caller authentication"),
    ("limits", "Limits"),
    ("batch", "Batch streams"),
    ("idempotency", "Idempotency"),
    ("redis", "Redis, shared by replicas"),
    ("telemetry", "Telemetry"),
    ("aws", "AWS"),
)
# The heading of the settings that belong to no group.
TOP_LEVEL_TITLE: Final = "Running"


# --- converters: raw text to a typed value, or ConfigError ------------------


def _int(lo: int, hi: int | None = None) -> Callable[[str], int]:
    def convert(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"must be an integer, not {raw!r}") from None
        if value < lo or (hi is not None and value > hi):
            bound = f"{lo} to {hi}" if hi is not None else f"at least {lo}"
            raise ConfigError(f"must be {bound}, not {value}")
        return value

    return convert


def _positive(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"must be a number, not {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"must be a finite number, not {raw!r}")
    if value <= 0:
        raise ConfigError(f"must be positive, not {value}")
    return value


# A slower rate is no pacing anyone could wait for: one call every 100 s.
MIN_RATE: Final = 0.01


def _slow_rate(raw: str) -> float:
    rate = _positive(raw)
    if rate < MIN_RATE:
        raise ConfigError(f"must be at least {MIN_RATE:g} calls a second")
    return rate


# Longer than any deadline worth waiting on a queue for: past it the bound is no bound.
MAX_QUEUE_WAIT_S: Final = 600.0


def _queue_wait(raw: str) -> float:
    wait = _positive(raw)
    if wait > MAX_QUEUE_WAIT_S:
        raise ConfigError(f"must be at most {MAX_QUEUE_WAIT_S:g} seconds, not {wait:g}")
    return wait


def _rate(raw: str) -> float | None:
    return None if raw == "off" else _slow_rate(raw)


def _operation_rates(raw: str) -> Mapping[str, float | None]:
    """OPERATION=TPS[,...]: each a positive rate or "off", at most AWS's quota."""
    rates: dict[str, float | None] = {}
    for entry in _csv(raw):
        name, eq, value = entry.partition("=")
        name = name.strip()
        if not eq:
            raise ConfigError(f"must be OPERATION=TPS entries, not {entry!r}")
        if name == "CreateRoom":
            raise ConfigError("must not name CreateRoom: --create-rate sets its rate")
        operation = OPERATIONS.get(name)
        if operation is None:
            raise ConfigError(f"must name IVS Chat operations, not {name!r}")
        if name in rates:
            raise ConfigError(f"must name {name} once")
        rate = _rate(value.strip())
        if rate is not None and rate > operation.rate:
            raise ConfigError(f"must not exceed AWS's quota for {name} ({operation.rate:g}/s)")
        rates[name] = rate
    return rates


def _level(raw: str) -> str:
    level = raw.upper()
    if level not in logging.getLevelNamesMapping():
        raise ConfigError(f"must be one of DEBUG, INFO, WARNING, ERROR, not {raw}")
    return level


def _log_format(raw: str) -> str:
    if raw not in ("json", "text"):
        raise ConfigError(f'must be "json" or "text", not {raw!r}')
    return raw


def _pem(raw: str) -> bytes:
    try:
        return Path(raw).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {raw}: {e.strerror}") from None


def _tokens_file(raw: str) -> tuple[str, ...]:
    try:
        text = Path(raw).read_text()
    except OSError as e:
        raise ConfigError(f"cannot read {raw}: {e.strerror}") from None
    return tuple(t.strip() for t in text.splitlines() if t.strip() and not t.startswith("#"))


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in raw.split(",") if p.strip())


# botocore's own rule for a region: one host label.
_REGION: Final = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
_LABEL: Final = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME: Final = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")
# gRPC takes message sizes as a C int.
_MAX_GRPC_INT: Final = 2**31 - 1


def _region(raw: str) -> str:
    if not _REGION.match(raw):
        raise ConfigError(f"must be an AWS region such as us-east-1, not {raw!r}")
    return raw


def _host(raw: str) -> str:
    try:
        ipaddress.ip_address(raw)
    except ValueError:
        # Dotted digits that are not an IPv4 address are no hostname either.
        numeric = raw.replace(".", "").isdigit()
        if numeric or len(raw) > 253 or not _HOSTNAME.match(raw):
            raise ConfigError(f"must be an IP address or a host name, not {raw!r}") from None
    return raw


def _url(*schemes: str) -> Callable[[str], str]:
    def convert(raw: str) -> str:
        try:
            parsed = urllib.parse.urlsplit(raw)
            parsed.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise ConfigError("must be a URL") from None
        named = parsed.netloc or (parsed.scheme == "unix" and parsed.path)
        if parsed.scheme not in schemes or not named:
            # The value itself is not repeated: a URL may carry a password.
            raise ConfigError(f"must be a URL starting {' or '.join(s + '://' for s in schemes)}")
        return raw

    return convert


def _event_loop(raw: str) -> str:
    if raw not in EVENT_LOOPS:
        raise ConfigError(f'must be "uvloop" or "asyncio", not {raw!r}')
    return raw


def _store(raw: str) -> str:
    if raw not in IDEMPOTENCY_STORES:
        raise ConfigError(f'must be "sqlite" or "memory", not {raw!r}')
    return raw


def _folder(raw: str) -> Path:
    if not raw.strip():
        raise ConfigError("must name a folder")
    return Path(raw).expanduser()


def _tracing(raw: str) -> str:
    if raw not in ("off", "otlp"):
        raise ConfigError(f'must be "off" or "otlp", not {raw!r}')
    return raw


Kind = Literal["value", "switch", "repeatable"]


@dataclass(frozen=True, slots=True)
class Option:
    """Option is one flag of serve: where its value comes from, how it is read, where it goes.

    field names the flag's value in the parsed arguments; at is where it lands
    in Settings: "group.name", or a bare name for a setting of no group. A
    value takes one text through convert; a switch takes none and is true when
    given; a repeatable takes one text each time it is given, through convert.
    metavar is what a value or a repeatable takes, as --help and the
    configuration doc show it (PORT, SECONDS, FILE, json|text); a switch has none.
    """

    field: str
    flag: str
    env: tuple[str, ...]
    convert: Callable[[str], Any]
    help: str
    at: str
    kind: Kind = "value"
    metavar: str | None = None

    @property
    def group(self) -> str | None:
        """The Settings group this option belongs to, or None for a top-level one."""
        group, dot, _ = self.at.partition(".")
        return group if dot else None

    @property
    def name(self) -> str:
        """The option's field inside its group (or in Settings itself)."""
        return self.at.rpartition(".")[2]


def _own(name: str) -> tuple[str, ...]:
    return (ENV_PREFIX + name,)


# In GROUPS' order, the top-level ones last: the documentation's tables and
# serve's --help list them so.
OPTIONS: Final[Sequence[Option]] = (
    # --- listen
    Option(
        "host",
        "--host",
        _own("HOST"),
        _host,
        "address to bind (default 127.0.0.1)",
        at="listen.host",
        metavar="ADDRESS",
    ),
    Option(
        "port",
        "--port",
        _own("PORT"),
        _int(0, 65535),
        "port to bind; 0 picks one (50051)",
        at="listen.port",
        metavar="PORT",
    ),
    Option(
        "keepalive_time_s",
        "--keepalive-time",
        _own("KEEPALIVE_TIME"),
        _positive,
        "seconds between the server's keepalive pings (60)",
        at="listen.keepalive_time_s",
        metavar="SECONDS",
    ),
    Option(
        "keepalive_timeout_s",
        "--keepalive-timeout",
        _own("KEEPALIVE_TIMEOUT"),
        _positive,
        "seconds to wait for a ping's answer before closing the connection (20)",
        at="listen.keepalive_timeout_s",
        metavar="SECONDS",
    ),
    Option(
        "min_client_ping_interval_s",
        "--min-client-ping-interval",
        _own("MIN_CLIENT_PING_INTERVAL"),
        _positive,
        "shortest interval allowed between a client's pings; faster clients are cut off (10)",
        at="listen.min_client_ping_interval_s",
        metavar="SECONDS",
    ),
    Option(
        "health_port",
        "--health-port",
        _own("HEALTH_PORT"),
        _int(0, 65535),
        "also serve grpc.health.v1 alone, in plaintext, on this port (off)",
        at="listen.health_port",
        metavar="PORT",
    ),
    Option(
        "health_host",
        "--health-host",
        _own("HEALTH_HOST"),
        _host,
        "address the plaintext health port binds, apart from --host (default 127.0.0.1)",
        at="listen.health_host",
        metavar="ADDRESS",
    ),
    # --- tls
    Option(
        "tls_cert",
        "--tls-cert",
        _own("TLS_CERT"),
        _pem,
        "PEM certificate chain file",
        at="tls.cert",
        metavar="FILE",
    ),
    Option(
        "tls_key",
        "--tls-key",
        _own("TLS_KEY"),
        _pem,
        "PEM private key file",
        at="tls.key",
        metavar="FILE",
    ),
    Option(
        "tls_client_ca",
        "--tls-client-ca",
        _own("TLS_CLIENT_CA"),
        _pem,
        "PEM CA file; when set, clients must present a certificate it signed (mTLS)",
        at="tls.client_ca",
        metavar="FILE",
    ),
    # --- auth
    Option(
        "auth_tokens",
        "--auth-token-file",
        (),
        _tokens_file,
        f"file of accepted bearer tokens, one a line; or {ENV_PREFIX}AUTH_TOKENS=tok1,tok2",
        at="auth.tokens",
        metavar="FILE",
    ),
    Option(
        "allowed_clients",
        "--allowed-clients",
        _own("ALLOWED_CLIENTS"),
        _csv,
        "comma-separated client certificate names (CN or DNS SAN) allowed in (mTLS)",
        at="auth.allowed_clients",
        metavar="NAME,...",
    ),
    # --- limits
    Option(
        "default_timeout_s",
        "--default-timeout",
        _own("DEFAULT_TIMEOUT"),
        _positive,
        "seconds for calls sent without a deadline (30)",
        at="limits.default_timeout_s",
        metavar="SECONDS",
    ),
    Option(
        "grace_s",
        "--grace",
        _own("GRACE"),
        _positive,
        "seconds to drain on SIGTERM (10)",
        at="limits.grace_s",
        metavar="SECONDS",
    ),
    Option(
        "max_concurrent_rpcs",
        "--max-concurrent-rpcs",
        _own("MAX_CONCURRENT_RPCS"),
        _int(1),
        "authenticated RPCs at once, streams included; more are refused RESOURCE_EXHAUSTED (2048)",
        at="limits.max_concurrent_rpcs",
        metavar="N",
    ),
    Option(
        "max_health_rpcs",
        "--max-health-rpcs",
        _own("MAX_HEALTH_RPCS"),
        _int(1),
        "health checks and watches at once, apart from --max-concurrent-rpcs (32)",
        at="limits.max_health_rpcs",
        metavar="N",
    ),
    Option(
        "idle_timeout_s",
        "--idle-timeout",
        _own("IDLE_TIMEOUT"),
        _positive,
        "seconds a stream that owes nothing, or a call still without its request, "
        "may stay silent before it is closed (60)",
        at="limits.idle_timeout_s",
        metavar="SECONDS",
    ),
    Option(
        "max_message_bytes",
        "--max-message-bytes",
        _own("MAX_MESSAGE_BYTES"),
        _int(1024, _MAX_GRPC_INT),
        "largest request message; larger is RESOURCE_EXHAUSTED (the largest valid request)",
        at="limits.max_message_bytes",
        metavar="BYTES",
    ),
    # --- batch
    Option(
        "batch_window",
        "--batch-window",
        _own("BATCH_WINDOW"),
        _int(1),
        "items one batch stream works on at once (32)",
        at="batch.window",
        metavar="N",
    ),
    Option(
        "max_streams",
        "--max-streams",
        _own("MAX_STREAMS"),
        _int(1),
        "batch streams (16)",
        at="batch.max_streams",
        metavar="N",
    ),
    Option(
        "max_items_per_stream",
        "--max-items-per-stream",
        _own("MAX_ITEMS_PER_STREAM"),
        _int(1),
        "items one batch stream may send (no limit)",
        at="batch.max_items_per_stream",
        metavar="N",
    ),
    # --- idempotency
    Option(
        "idempotency_store",
        "--idempotency-store",
        _own("IDEMPOTENCY_STORE"),
        _store,
        "where request_id records live without --redis-url: sqlite, a file in --state-dir "
        "that survives a crash, or memory, lost with the process (sqlite; memory with "
        "--emulator)",
        at="idempotency.store",
        metavar="sqlite|memory",
    ),
    Option(
        "state_dir",
        "--state-dir",
        _own("STATE_DIR"),
        _folder,
        "folder of the sqlite request_id store, locked by one process at a time "
        "($XDG_STATE_HOME/ivschat-grpc, else ~/.local/state/ivschat-grpc)",
        at="idempotency.state_dir",
        metavar="FOLDER",
    ),
    Option(
        "idempotency_retention_s",
        "--idempotency-retention",
        _own("IDEMPOTENCY_RETENTION"),
        _positive,
        "seconds a request_id is remembered (86400)",
        at="idempotency.retention_s",
        metavar="SECONDS",
    ),
    Option(
        "idempotency_lease_s",
        "--idempotency-lease",
        _own("IDEMPOTENCY_LEASE"),
        _positive,
        "seconds one call may work on a request_id at most, its AWS calls included (60)",
        at="idempotency.lease_s",
        metavar="SECONDS",
    ),
    Option(
        "idempotency_claim_timeout_s",
        "--idempotency-claim-timeout",
        _own("IDEMPOTENCY_CLAIM_TIMEOUT"),
        _positive,
        "seconds a request_id's claim outlives its owner's last heartbeat, so a dead owner's "
        "claim lapses this soon; owners renew every third of it (5)",
        at="idempotency.claim_timeout_s",
        metavar="SECONDS",
    ),
    Option(
        "idempotency_settle_s",
        "--idempotency-settle",
        _own("IDEMPOTENCY_SETTLE"),
        _positive,
        "seconds to let an unanswered create finish at AWS before looking the room up (2)",
        at="idempotency.settle_s",
        metavar="SECONDS",
    ),
    Option(
        "idempotency_recheck_s",
        "--idempotency-recheck",
        _own("IDEMPOTENCY_RECHECK"),
        _positive,
        "seconds after an ambiguous create or a takeover at which the service looks once more "
        "and deletes a room a late create made twice (40: AWS's 30 s read timeout, and more)",
        at="idempotency.recheck_s",
        metavar="SECONDS",
    ),
    # --- redis
    Option(
        "redis_url",
        "--redis-url",
        _own("REDIS_URL"),
        _url("redis", "rediss", "unix"),
        "share every operation's pacing bucket and the request_id records with every replica "
        "through Redis (redis://host:port/0 or unix:///path) (default: this process alone)",
        at="redis.url",
        metavar="URL",
    ),
    Option(
        "redis_down_create_rate",
        "--redis-down-create-rate",
        _own("REDIS_DOWN_CREATE_RATE"),
        _slow_rate,
        "CreateRoom calls a second for this process while Redis is unreachable (1)",
        at="redis.down_create_rate",
        metavar="TPS",
    ),
    # --- telemetry
    Option(
        "log_level",
        "--log-level",
        _own("LOG_LEVEL"),
        _level,
        "log level (INFO)",
        at="telemetry.log_level",
        metavar="LEVEL",
    ),
    Option(
        "log_format",
        "--log-format",
        _own("LOG_FORMAT"),
        _log_format,
        "json or text (json)",
        at="telemetry.log_format",
        metavar="json|text",
    ),
    Option(
        "metrics_port",
        "--metrics-port",
        _own("METRICS_PORT"),
        _int(0, 65535),
        "serve Prometheus metrics at /metrics on this port, bound to --metrics-host (off)",
        at="telemetry.metrics_port",
        metavar="PORT",
    ),
    Option(
        "metrics_host",
        "--metrics-host",
        _own("METRICS_HOST"),
        _host,
        "address the metrics endpoint binds, apart from --host (default 127.0.0.1)",
        at="telemetry.metrics_host",
        metavar="ADDRESS",
    ),
    Option(
        "tracing",
        "--tracing",
        _own("TRACING"),
        _tracing,
        "OpenTelemetry spans per RPC: off, or otlp (to OTEL_EXPORTER_OTLP_ENDPOINT) (off)",
        at="telemetry.tracing",
        metavar="off|otlp",
    ),
    # --- aws
    Option(
        "region",
        "--region",
        ("AWS_REGION", "AWS_DEFAULT_REGION"),
        _region,
        "AWS region",
        at="aws.region",
        metavar="REGION",
    ),
    Option(
        "endpoint_url",
        "--endpoint-url",
        ("AWS_ENDPOINT_URL_IVSCHAT", "AWS_ENDPOINT_URL"),
        _url("http", "https"),
        "IVS Chat endpoint URL (default: AWS's)",
        at="aws.endpoint_url",
        metavar="URL",
    ),
    Option(
        "create_rate",
        "--create-rate",
        _own("CREATE_RATE"),
        _rate,
        'CreateRoom calls a second for the process, or "off" (5, AWS\'s quota)',
        at="aws.create_rate",
        metavar="TPS|off",
    ),
    Option(
        "operation_rates",
        "--operation-rates",
        _own("OPERATION_RATES"),
        _operation_rates,
        "OPERATION=TPS,...: calls a second for the process for operations other than CreateRoom, "
        '"off" for none (AWS\'s quota for each)',
        at="aws.operation_rates",
        metavar="OPERATION=TPS,...",
    ),
    Option(
        "aws_max_in_flight",
        "--max-aws-in-flight",
        _own("MAX_AWS_IN_FLIGHT"),
        _int(1),
        "AWS calls in flight at once, per operation (16)",
        at="aws.max_in_flight",
        metavar="N",
    ),
    Option(
        "max_queue_wait",
        "--max-queue-wait",
        _own("MAX_QUEUE_WAIT"),
        _queue_wait,
        "seconds of each operation's quota that callers may queue for; the rest are "
        "answered RESOURCE_EXHAUSTED at once (2)",
        at="aws.max_queue_wait_s",
        metavar="SECONDS",
    ),
    # --- no group: how the process runs
    Option(
        "event_loop",
        "--event-loop",
        _own("EVENT_LOOP"),
        _event_loop,
        "uvloop, or asyncio for the standard library's loop (uvloop)",
        at="event_loop",
        metavar="uvloop|asyncio",
    ),
    Option(
        "emulator",
        "--emulator",
        (),
        str,
        "serve against an embedded local IVS Chat endpoint instead of AWS",
        at="emulator",
        kind="switch",
    ),
    Option(
        "emulator_logging_configuration",
        "--emulator-logging-configuration",
        (),
        str,
        "with --emulator: a logging configuration ARN that exists there (repeatable)",
        at="emulator_logging_configurations",
        kind="repeatable",
        metavar="ARN",
    ),
    Option(
        "insecure",
        "--insecure",
        (),
        str,
        "allow listening beyond loopback without TLS and caller authentication (logs a warning)",
        at="insecure",
        kind="switch",
    ),
)
_BY_FIELD: Final[Mapping[str, Option]] = {o.field: o for o in OPTIONS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare serve's flags; every value's default is None so the environment can fill it."""
    for option in OPTIONS:
        if option.kind == "switch":
            parser.add_argument(
                option.flag, dest=option.field, action="store_true", help=option.help
            )
        elif option.kind == "repeatable":
            parser.add_argument(
                option.flag,
                dest=option.field,
                action="append",
                default=[],
                metavar=option.metavar,
                help=option.help,
            )
        else:
            env = f" ({', '.join(option.env)})" if option.env else ""
            parser.add_argument(
                option.flag, dest=option.field, metavar=option.metavar, help=option.help + env
            )


def configuration_table() -> str:
    """Every flag of serve as Markdown tables, one per group: docs/configuration.md holds this."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    sections: list[str] = []
    headings = [(g, f"{title} (`{g}`)") for g, title in GROUPS] + [(None, TOP_LEVEL_TITLE)]
    for group, heading in headings:
        rows = [f"## {heading}", "", "| flag | environment | meaning (default) |", "|---|---|---|"]
        for o in OPTIONS:
            if o.group == group:
                env = ", ".join(f"`{e}`" for e in o.env) or "none"
                flag = f"{o.flag} {o.metavar}" if o.metavar else o.flag
                rows.append(f"| `{cell(flag)}` | {env} | {cell(o.help)} |")
        sections.append("\n".join(rows) + "\n")
    return "\n".join(sections)


def replace_options(base: Settings, values: Mapping[str, Any]) -> Settings:
    """base with some settings replaced, each named by its option's field."""
    top: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        option = _BY_FIELD.get(key)
        if option is None:
            raise KeyError(f"no option has the field {key!r}")
        if option.group is None:
            top[option.name] = value
        else:
            groups.setdefault(option.group, {})[option.name] = value
    for group, changed in groups.items():
        top[group] = replace(getattr(base, group), **changed)
    return replace(base, **top)


def is_loopback(host: str) -> bool:
    """Whether host is this machine's loopback, by name or address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Build Settings from parsed flags and an environment, once."""
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw = getattr(args, option.field, None)
        if option.kind == "switch":
            values[option.field] = bool(raw)
            continue
        if option.kind == "repeatable":
            values[option.field] = tuple(option.convert(str(r)) for r in raw or ())
            continue
        source = option.flag
        if raw is None:
            source, raw = next(((e, environ[e]) for e in option.env if environ.get(e)), ("", None))
        if raw is None:
            continue
        try:
            values[option.field] = option.convert(str(raw))
        except ConfigError as e:
            raise ConfigError(f"{source} {e}") from None
    # The default folder comes from the same environment as everything else.
    values.setdefault("state_dir", default_state_dir(environ))
    env_tokens = _csv(environ.get(f"{ENV_PREFIX}AUTH_TOKENS", ""))
    values["auth_tokens"] = tuple(values.get("auth_tokens", ())) + env_tokens
    settings = replace_options(Settings(), values)
    _check(settings)
    return settings


def _check_tls(tls: Tls) -> None:
    """Parse the certificate, the key and the CA now, so a bad one stops the start, not a bind."""
    if tls.cert is None or tls.key is None:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # ssl reads a chain and key only from files: a private folder, gone at once.
    with tempfile.TemporaryDirectory() as folder:
        cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        cert.write_bytes(tls.cert)
        key.touch(mode=0o600)
        key.write_bytes(tls.key)
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError:
            raise ConfigError(
                "--tls-cert and --tls-key must be a PEM certificate chain and its own private key"
            ) from None
    if tls.client_ca is not None:
        try:
            context.load_verify_locations(cadata=tls.client_ca.decode("ascii", "replace"))
        except (ssl.SSLError, ValueError):
            raise ConfigError("--tls-client-ca must hold PEM CA certificates") from None


def _check(s: Settings) -> None:
    tls, ids = s.tls, s.idempotency
    if (tls.cert is None) != (tls.key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    _check_tls(tls)
    if tls.client_ca is not None and not tls.enabled:
        raise ConfigError("--tls-client-ca needs --tls-cert and --tls-key")
    if s.auth.allowed_clients and tls.client_ca is None:
        raise ConfigError("--allowed-clients needs --tls-client-ca, which makes clients show one")
    if ids.retention_s < 2 * ids.lease_s:
        raise ConfigError("--idempotency-retention must be at least twice --idempotency-lease")
    if ids.claim_timeout_s >= ids.lease_s:
        raise ConfigError("--idempotency-claim-timeout must be less than --idempotency-lease")
    if s.redis.url and ids.store is not None:
        raise ConfigError(
            "--idempotency-store is for a service without --redis-url: with it, records live "
            "in Redis"
        )
    if ids.recheck_s <= ids.settle_s:
        raise ConfigError("--idempotency-recheck must exceed --idempotency-settle")
    if ids.lease_s <= 2 * ids.settle_s + 1:
        raise ConfigError("--idempotency-lease must exceed twice --idempotency-settle, plus 1 s")
    if s.aws.create_rate is not None and s.redis.down_create_rate > s.aws.create_rate:
        raise ConfigError("--redis-down-create-rate must not exceed --create-rate")
    host = s.listen.host
    if not is_loopback(host) and not (tls.enabled and s.authenticates_callers) and not s.insecure:
        raise ConfigError(
            f"refusing to listen on {host} without TLS and caller authentication "
            "(--tls-cert/--tls-key with --auth-token-file or --tls-client-ca); "
            "listen on 127.0.0.1, or pass --insecure to do it anyway"
        )


def field_names() -> frozenset[str]:
    """Every Settings field as a path, "listen.port" or "emulator", to check OPTIONS against."""
    defaults = Settings()
    names: set[str] = set()
    for f in fields(defaults):
        value = getattr(defaults, f.name)
        if is_dataclass(value):
            names |= {f"{f.name}.{g.name}" for g in fields(value)}
        else:
            names.add(f.name)
    return frozenset(names)
