"""Pieces in isolation: the error table's fallbacks, config precedence, the token bucket."""

from __future__ import annotations

import argparse
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from ivschat_grpc import errors
from ivschat_grpc.core.outcomes import Outcome
from ivschat_grpc.core.violations import MapKey
from ivschat_grpc.emulator.token_bucket import TokenBucket
from ivschat_grpc.runtime import settings as config


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("BadGateway", 502, grpc.StatusCode.INTERNAL),
        ("ServiceUnavailableException", 503, grpc.StatusCode.UNAVAILABLE),
        ("SlowDown", 429, grpc.StatusCode.RESOURCE_EXHAUSTED),
        ("SomethingNew", 418, grpc.StatusCode.INTERNAL),
        (Outcome.UNREACHABLE, None, grpc.StatusCode.UNAVAILABLE),
        (Outcome.READ_TIMEOUT, None, grpc.StatusCode.INTERNAL),
    ],
)
def test_codes_the_table_does_not_name_fall_back_by_status(
    code: str, status: int | None, expected: grpc.StatusCode
) -> None:
    failure = errors.from_aws(code, operation="CreateRoom", http_status=status)
    assert failure.code == expected
    assert failure.to_status_proto().details  # ErrorInfo, always


def test_other_5xx_say_the_room_may_exist() -> None:
    failure = errors.from_aws("BadGateway", operation="CreateRoom", http_status=502)
    info = error_details_pb2.ErrorInfo()
    failure.to_status_proto().details[0].Unpack(info)
    assert info.reason == "BadGateway"
    assert info.metadata["room_may_exist"] == "true"


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        (("maximumMessageLength",), "maximum_message_length"),
        (("messageReviewHandler", "fallbackResult"), "message_review_handler.fallback_result"),
        (("loggingConfigurationIdentifiers", 3), "logging_configuration_identifiers[3]"),
        (("tags", MapKey('a"b\\')), 'tags["a\\"b\\\\"]'),
    ],
)
def test_proto_paths(path: tuple[str | int, ...], rendered: str) -> None:
    assert errors.proto_path(path) == rendered


def _args(**kwargs: object) -> argparse.Namespace:
    return argparse.Namespace(**kwargs)


def test_flags_override_environment() -> None:
    env = {"IVSCHAT_GRPC_PORT": "7000", "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "x"}
    assert config.load(_args(), env).listen.port == 7000
    assert config.load(_args(port="0"), env).listen.port == 0
    assert config.load(_args(), env).aws.region == "eu-west-1"
    assert config.load(_args(region="ap-south-1"), env).aws.region == "ap-south-1"
    assert config.load(_args(), {"AWS_DEFAULT_REGION": "x"}).aws.region == "x"
    endpoint_env = {"AWS_ENDPOINT_URL": "http://a", "AWS_ENDPOINT_URL_IVSCHAT": "http://b"}
    assert config.load(_args(), endpoint_env).aws.endpoint_url == "http://b"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": "http"}, "--port must be an integer"),
        ({"port": "70000"}, "--port must be 0 to 65535"),
        ({"log_level": "chatty"}, "--log-level must be one of"),
        ({"grace_s": "-1"}, "--grace must be positive"),
        ({"create_rate": "fast"}, "--create-rate must be a number"),
        ({"host": "0.0.0.0"}, "refusing to listen on 0.0.0.0 without TLS"),  # noqa: S104 - refused
        ({"host": "10.1.2.3"}, "pass --insecure"),
        ({"allowed_clients": "svc-a"}, "--allowed-clients needs --tls-client-ca"),
        ({"tls_cert": "/nonexistent.pem"}, "cannot read /nonexistent.pem"),
        ({"idempotency_store": "disk"}, '--idempotency-store must be "sqlite" or "memory"'),
        (
            {"idempotency_store": "memory", "redis_url": "redis://127.0.0.1:1/0"},
            "--idempotency-store is for a service without --redis-url",
        ),
        ({"idempotency_claim_timeout_s": "60"}, "--idempotency-claim-timeout must be less than"),
        ({"state_dir": " "}, "--state-dir must name a folder"),
        ({"idempotency_lease_s": "nan"}, "--idempotency-lease must be a finite number"),
        ({"idempotency_claim_timeout_s": "inf"}, "--idempotency-claim-timeout must be a finite"),
        ({"create_rate": "nan"}, "--create-rate must be a finite number"),
        ({"idempotency_recheck_s": "1"}, "--idempotency-recheck must exceed --idempotency-settle"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(config.ConfigError, match=message):
        config.load(_args(**kwargs), {})


def test_token_bucket_bursts_then_paces() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=5, capacity=5, clock=lambda: now[0])
    assert [bucket.try_take() for _ in range(6)] == [True] * 5 + [False]
    now[0] += 0.2
    assert bucket.try_take()
    assert not bucket.try_take()


def test_environment_errors_name_the_variable() -> None:
    with pytest.raises(config.ConfigError, match="IVSCHAT_GRPC_BATCH_WINDOW must be at least 1"):
        config.load(_args(), {"IVSCHAT_GRPC_BATCH_WINDOW": "0"})


def test_insecure_allows_a_non_loopback_bind_and_tokens_combine() -> None:
    settings = config.load(
        _args(host="0.0.0.0", insecure=True),  # noqa: S104 - the point of the test
        {"IVSCHAT_GRPC_AUTH_TOKENS": "t1, t2"},
    )
    assert settings.listen.host == "0.0.0.0"  # noqa: S104 - as set
    assert settings.auth.tokens == ("t1", "t2")
    assert "t1" not in repr(settings)


def test_every_option_names_a_settings_field() -> None:
    assert {o.at for o in config.OPTIONS} <= config.field_names()
    assert len({o.flag for o in config.OPTIONS}) == len(config.OPTIONS)


def test_largest_valid_request_fits_the_default_limit() -> None:
    from ivschat_grpc.aws.message_limits import largest_valid_request_bytes

    assert 20 * 1024 < config.Settings().limits.max_message_bytes == largest_valid_request_bytes()
    assert largest_valid_request_bytes() < 128 * 1024


def test_the_configuration_doc_has_every_flag_as_the_code_says() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    flags = [o.flag for o in config.OPTIONS]
    rows = [line for line in doc.splitlines() if line.startswith("| `--")]
    # Each row shows the flag with what it takes: `--port PORT`.
    assert [row.split("`")[1].split()[0] for row in rows] == flags
    assert config.configuration_table() in doc  # fresh: tools/generate.py writes it
    serve = argparse.ArgumentParser()
    config.add_arguments(serve)
    declared = [a.option_strings[0] for a in serve._actions if a.option_strings[0] != "-h"]
    assert declared == flags  # every flag serve takes is a row


def test_tokens_come_from_a_file_and_the_environment(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text("# rotated monthly\nfile-old\n\n  file-new  \n")
    settings = config.load(
        _args(auth_tokens=str(token_file)), {"IVSCHAT_GRPC_AUTH_TOKENS": "env-one"}
    )
    assert settings.auth.tokens == ("file-old", "file-new", "env-one")
    assert settings.authenticates_callers


def test_the_store_and_its_folder_follow_the_settings(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "xdg")}
    assert config.load(_args(), env).store == "sqlite"
    assert config.load(_args(), env).idempotency.state_dir == tmp_path / "xdg" / "ivschat-grpc"
    home = {"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": "relative/is/ignored"}
    assert (
        config.load(_args(), home).idempotency.state_dir
        == tmp_path / "home/.local/state/ivschat-grpc"
    )
    own = {"IVSCHAT_GRPC_STATE_DIR": str(tmp_path / "own"), **env}
    assert config.load(_args(), own).idempotency.state_dir == tmp_path / "own"
    assert config.load(_args(emulator=True), env).store == "memory"
    assert config.load(_args(emulator=True, idempotency_store="sqlite"), env).store == "sqlite"
    assert config.load(_args(redis_url="redis://127.0.0.1:1/0"), env).store == "redis"
