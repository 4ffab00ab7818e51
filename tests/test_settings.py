"""Every setting is checked at start: a bad one stops the service with one line naming it."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trustme
from ivschat_grpc.runtime import settings as config

from tests.support.processes import read_until, run_command, running, stop

# One bad value for every option, and what the refusal says. A new option
# without a row here fails test_every_option_has_a_bad_value.
BAD: dict[str, tuple[str, str]] = {
    "host": ("999.1.1.1", "--host must be an IP address or a host name"),
    "port": ("70000", "--port must be 0 to 65535"),
    "region": ("bad region!", "--region must be an AWS region"),
    "endpoint_url": ("notaurl", "--endpoint-url must be a URL starting http://"),
    "log_level": ("chatty", "--log-level must be one of"),
    "log_format": ("xml", '--log-format must be "json" or "text"'),
    "default_timeout_s": ("nan", "--default-timeout must be a finite number"),
    "grace_s": ("-1", "--grace must be positive"),
    "create_rate": ("nan", "--create-rate must be a finite number"),
    "aws_max_in_flight": ("0", "--max-aws-in-flight must be at least 1"),
    "max_queue_wait": ("1e9", "--max-queue-wait must be at most 600 seconds"),
    "operation_rates": ("GetRoom=6", "--operation-rates must not exceed AWS's quota for GetRoom"),
    "batch_window": ("0", "--batch-window must be at least 1"),
    "max_streams": ("many", "--max-streams must be an integer"),
    "max_items_per_stream": ("0", "--max-items-per-stream must be at least 1"),
    "max_concurrent_rpcs": ("0", "--max-concurrent-rpcs must be at least 1"),
    "max_health_rpcs": ("0", "--max-health-rpcs must be at least 1"),
    "idle_timeout_s": ("inf", "--idle-timeout must be a finite number"),
    "max_message_bytes": ("99999999999", "--max-message-bytes must be 1024 to 2147483647"),
    "keepalive_time_s": ("inf", "--keepalive-time must be a finite number"),
    "keepalive_timeout_s": ("0", "--keepalive-timeout must be positive"),
    "min_client_ping_interval_s": ("nan", "--min-client-ping-interval must be a finite"),
    "tls_cert": ("/nonexistent/cert.pem", "--tls-cert cannot read /nonexistent/cert.pem"),
    "tls_key": ("/nonexistent/key.pem", "--tls-key cannot read /nonexistent/key.pem"),
    "tls_client_ca": ("/nonexistent/ca.pem", "--tls-client-ca cannot read"),
    "auth_tokens": ("/nonexistent/tokens", "--auth-token-file cannot read"),
    "allowed_clients": ("svc-a", "--allowed-clients needs --tls-client-ca"),
    "metrics_port": ("-1", "--metrics-port must be 0 to 65535"),
    "metrics_host": ("300.0.0.1", "--metrics-host must be an IP address or a host name"),
    "health_host": ("bad host", "--health-host must be an IP address or a host name"),
    "health_port": ("65536", "--health-port must be 0 to 65535"),
    "redis_url": ("notaurl", "--redis-url must be a URL starting redis://"),
    "redis_down_create_rate": ("inf", "--redis-down-create-rate must be a finite number"),
    "idempotency_store": ("disk", '--idempotency-store must be "sqlite" or "memory"'),
    "state_dir": (" ", "--state-dir must name a folder"),
    "idempotency_retention_s": ("nan", "--idempotency-retention must be a finite number"),
    "idempotency_lease_s": ("nan", "--idempotency-lease must be a finite number"),
    "idempotency_claim_timeout_s": ("nan", "--idempotency-claim-timeout must be a finite"),
    "idempotency_settle_s": ("nan", "--idempotency-settle must be a finite number"),
    "idempotency_recheck_s": ("nan", "--idempotency-recheck must be a finite number"),
    "tracing": ("zipkin", '--tracing must be "off" or "otlp"'),
    "event_loop": ("trio", '--event-loop must be "uvloop" or "asyncio"'),
}


def test_every_option_has_a_bad_value() -> None:
    assert set(BAD) == {o.field for o in config.OPTIONS if o.kind == "value"}


@pytest.mark.parametrize("field", sorted(BAD))
def test_a_bad_value_is_refused_by_flag_and_by_variable(field: str) -> None:
    value, message = BAD[field]
    with pytest.raises(config.ConfigError, match=message.replace("(", r"\(")) as info:
        config.load(argparse.Namespace(**{field: value}), {})
    assert "\n" not in str(info.value)
    option = next(o for o in config.OPTIONS if o.field == field)
    for variable in option.env:
        if not value.strip():
            continue  # an empty variable counts as unset
        # A value refused alone names its variable; a combination, the flag.
        with pytest.raises(config.ConfigError, match=f"^({variable}|{option.flag})[ :]"):
            config.load(argparse.Namespace(), {variable: value})


@pytest.mark.parametrize(
    ("value", "kept"),
    [("us-east-1", True), ("x", True), ("us east", False), ("", True)],
)
def test_regions(value: str, kept: bool) -> None:
    if not value:
        assert config.load(argparse.Namespace(), {}).aws.region is None
        return
    if kept:
        assert config.load(argparse.Namespace(region=value), {}).aws.region == value
    else:
        with pytest.raises(config.ConfigError):
            config.load(argparse.Namespace(region=value), {})


def test_a_url_with_a_password_is_not_repeated() -> None:
    with pytest.raises(config.ConfigError) as info:
        config.load(argparse.Namespace(redis_url="http://:hunter2@redis:6379"), {})
    assert "hunter2" not in str(info.value)


@pytest.fixture
def pems(tmp_path: Path) -> dict[str, str]:
    ca = trustme.CA()
    a = ca.issue_cert("127.0.0.1")
    b = ca.issue_cert("127.0.0.1")
    out = {
        "cert": tmp_path / "cert.pem",
        "key": tmp_path / "key.pem",
        "other_key": tmp_path / "other.pem",
        "garbage": tmp_path / "garbage.pem",
        "ca": tmp_path / "ca.pem",
    }
    a.cert_chain_pems[0].write_to_path(str(out["cert"]))
    a.private_key_pem.write_to_path(str(out["key"]))
    b.private_key_pem.write_to_path(str(out["other_key"]))
    out["garbage"].write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    ca.cert_pem.write_to_path(str(out["ca"]))
    return {k: str(v) for k, v in out.items()}


@pytest.mark.parametrize(
    ("cert", "key", "ca", "message"),
    [
        ("garbage", "key", None, "--tls-cert and --tls-key must be"),
        ("cert", "garbage", None, "--tls-cert and --tls-key must be"),
        ("cert", "other_key", None, "--tls-cert and --tls-key must be"),
        ("cert", "key", "garbage", "--tls-client-ca must hold PEM CA certificates"),
    ],
    ids=["garbage-cert", "garbage-key", "mismatched-key", "garbage-ca"],
)
def test_certificates_are_parsed_and_matched_at_start(
    pems: dict[str, str], cert: str, key: str, ca: str | None, message: str
) -> None:
    args = argparse.Namespace(tls_cert=pems[cert], tls_key=pems[key])
    if ca is not None:
        args.tls_client_ca = pems[ca]
    with pytest.raises(config.ConfigError, match=message):
        config.load(args, {})
    good = argparse.Namespace(tls_cert=pems["cert"], tls_key=pems["key"], tls_client_ca=pems["ca"])
    assert config.load(good, {}).tls.enabled


@contextmanager
def taken_port() -> Iterator[int]:
    """A loopback port another program listens on, without SO_REUSEPORT."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("flag", ["--port", "--metrics-port", "--health-port"])
async def test_a_port_in_use_stops_the_service_with_one_line(flag: str) -> None:
    with taken_port() as port:
        args = ["serve", "--emulator", "--port", "0", flag, str(port)]
        if flag == "--port":
            args = ["serve", "--emulator", flag, str(port)]
        code, out, err = await run_command(*args)
    assert code == 2, out + err
    said = [line for line in err.splitlines() if line.startswith("ivschat-grpc: ")]
    assert len(said) == 1
    assert said[0].startswith(f"ivschat-grpc: {flag}: cannot listen on 127.0.0.1:{port}: ")
    assert "Traceback" not in err


async def test_a_second_service_on_a_port_in_use_is_refused() -> None:
    async with running("serve", "--emulator", "--port", "0") as (first, lines):
        port = (await read_until(first, lines, r"listening on 127\.0\.0\.1:(\d+)"))[1]
        code, _, err = await run_command("serve", "--emulator", "--port", port)
        assert code == 2
        assert f"--port: cannot listen on 127.0.0.1:{port}" in err
        assert await stop(first) == 0


async def test_metrics_and_health_stay_on_loopback_when_the_service_does_not() -> None:
    args = ("serve", "--emulator", "--port", "0", "--host", "0.0.0.0", "--insecure")  # noqa: S104 - the point
    ports = ("--metrics-port", "0", "--health-port", "0")
    async with running(*args, *ports) as (proc, lines):
        await read_until(proc, lines, r"plaintext health at")
        assert any(line.startswith("metrics at http://127.0.0.1:") for line in lines)
        assert any(line.startswith("plaintext health at 127.0.0.1:") for line in lines)
        assert await stop(proc) == 0
    wide = config.load(argparse.Namespace(metrics_host="0.0.0.0", health_host="::"), {})  # noqa: S104 - asked for
    assert (wide.telemetry.metrics_host, wide.listen.health_host) == ("0.0.0.0", "::")  # noqa: S104 - asked for


async def test_the_emulator_refuses_a_non_loopback_host_without_insecure() -> None:
    code, _, err = await run_command("emulator", "--host", "0.0.0.0")  # noqa: S104 - refused
    assert code == 2
    assert "--host 0.0.0.0: the emulator's admin routes" in err
    args = ("emulator", "--host", "0.0.0.0", "--port", "0", "--insecure")  # noqa: S104 - asked for
    async with running(*args) as (emu, lines):
        await read_until(emu, lines, r"listening on http://")
        assert await stop(emu) == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("GetRoom", "must be OPERATION=TPS entries"),
        ("GetRooms=1", "must name IVS Chat operations, not 'GetRooms'"),
        ("CreateRoom=1", "must not name CreateRoom: --create-rate sets its rate"),
        ("GetRoom=0", "must be positive"),
        ("GetRoom=nan", "must be a finite number"),
        ("CreateChatToken=201", "must not exceed AWS's quota for CreateChatToken"),
        ("GetRoom=5e-324", "must be at least 0.01 calls a second"),
        ("GetRoom=1,GetRoom=2", "must name GetRoom once"),
    ],
)
def test_operation_rates_name_real_operations_within_their_quotas(value: str, message: str) -> None:
    with pytest.raises(config.ConfigError, match=f"^--operation-rates {message}"):
        config.load(argparse.Namespace(operation_rates=value), {})


def test_operation_rates_set_each_operations_rate_and_off_turns_it_off() -> None:
    settings = config.load(
        argparse.Namespace(operation_rates="GetRoom=2, ListRooms=off"), {"AWS_REGION": "us-east-1"}
    )
    assert settings.aws.operation_rates == {"GetRoom": 2.0, "ListRooms": None}


@pytest.mark.parametrize("flag", ["create_rate", "redis_down_create_rate"])
def test_a_rate_too_slow_to_wait_for_is_refused(flag: str) -> None:
    # 5e-324 once divided down to 0 and crashed the start with a traceback.
    with pytest.raises(config.ConfigError, match=r"must be at least 0\.01 calls a second"):
        config.load(argparse.Namespace(**{flag: "5e-324"}), {})
