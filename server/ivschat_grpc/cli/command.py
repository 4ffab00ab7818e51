"""The ivschat-grpc command: serve the facade, or run the local endpoint."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from ivschat_grpc.cli import (
    batch_create,
    chat_commands,
    create_room,
    logging_commands,
    room_commands,
)
from ivschat_grpc.cli.exit_codes import LOGGING_COMMANDS, Serve

# serve and emulator need the server extra (aioboto3, aiohttp, uvloop, ...);
# the client commands need only the base install, so what serve and emulator
# use is imported where they use it, never at the top of this module.
if TYPE_CHECKING:
    from ivschat_grpc.emulator import EmulatorSettings
    from ivschat_grpc.runtime import settings as config

SERVER_COMMANDS = ("serve", "emulator")
SERVER_EXTRA_HINT = "pip install 'ivschat-grpc[server]'"

log = logging.getLogger("ivschat_grpc")

# At DEBUG these libraries log signed request headers: the access key id, the
# signature and the session token. They never log below INFO here.
_CHATTY_AWS_LOGGERS = ("botocore", "aiobotocore", "aioboto3", "boto3", "urllib3")


def _configure_logging(level: str | int, json_lines: bool = True) -> None:
    from ivschat_grpc.runtime.telemetry import JsonFormatter, TextFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    floor = max(logging.getLogger().level, logging.INFO)
    for name in _CHATTY_AWS_LOGGERS:
        logging.getLogger(name).setLevel(floor)


# How a client command declares its own flags on its parser.
_Flags = Callable[[argparse.ArgumentParser], None]


# The server extra's modules that serve imports only when a flag asks for them
# (runtime/assembly.py): looked for, not imported, so start-up does not pay for them.
_DEFERRED_SERVER_MODULES = ("redis", "opentelemetry.instrumentation.grpc")


def _missing_server_module() -> str | None:
    """The module of the server extra that is not installed, if one is not."""
    try:
        import ivschat_grpc.emulator
        import ivschat_grpc.runtime.assembly  # noqa: F401 - imported to see that it imports
    except ModuleNotFoundError as e:
        if not e.name or e.name.split(".")[0] == "ivschat_grpc":
            raise  # our own module missing is a broken install, not a missing extra
        return e.name
    for name in _DEFERRED_SERVER_MODULES:
        try:
            found = importlib.util.find_spec(name)
        except ModuleNotFoundError as e:  # a parent package is missing
            return e.name
        if found is None:
            return name
    return None


def _parser(server: bool = True) -> argparse.ArgumentParser:
    """The command's parser; serve's and emulator's flags only with server (the extra's)."""
    parser = argparse.ArgumentParser(prog="ivschat-grpc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="serve RoomService, ChatService and LoggingConfigurationService over gRPC"
    )
    emu = sub.add_parser("emulator", help="run the local IVS Chat endpoint")
    if server:
        _add_server_arguments(serve, emu)
    _add_client_commands(sub)
    for command in sub.choices.values():
        # So that a flag the command does not take is refused with its own usage.
        command.set_defaults(command_parser=command)
    return parser


def _add_server_arguments(serve: argparse.ArgumentParser, emu: argparse.ArgumentParser) -> None:
    from ivschat_grpc.emulator import DEFAULT_REGION
    from ivschat_grpc.emulator.server import DEFAULT_ACCOUNT
    from ivschat_grpc.runtime import settings as config

    config.add_arguments(serve)
    emu.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    emu.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    emu.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host, which puts the unsigned admin routes there too",
    )
    emu.add_argument("--region", default=DEFAULT_REGION)
    emu.add_argument("--account", default=DEFAULT_ACCOUNT)
    emu.add_argument(
        "--quota",
        action="append",
        default=[],
        metavar="OPERATION=RATE",
        help='one operation\'s quota, calls a second, or "off" for none (repeatable; '
        "default: every operation at AWS's quota)",
    )
    emu.add_argument(
        "--create-room-rate",
        default=None,
        metavar="RATE",
        help="the same as --quota CreateRoom=RATE (default 5, as at AWS)",
    )
    emu.add_argument(
        "--logging-configuration",
        action="append",
        default=[],
        metavar="ARN",
        help="a logging configuration ARN that exists, ACTIVE, from the start (repeatable)",
    )
    emu.add_argument(
        "--logging-configuration-quota",
        default=None,
        metavar="N",
        help='how many logging configurations the account may hold, or "off" for no limit '
        "(default 10, as at AWS)",
    )
    emu.add_argument(
        "--logging-configuration-delay",
        default=None,
        metavar="SECONDS",
        help="how long a created, updated or deleted logging configuration stays CREATING, "
        "UPDATING or DELETING (default 0: done at once, as AWS's Create and Update answer)",
    )
    emu.add_argument(
        "--fault", action="append", default=[], metavar="JSON", help="a fault rule (repeatable)"
    )


def _add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    client_commands: tuple[tuple[str, str, str | None, _Flags], ...] = (
        (
            "create-room",
            "create one room and print it as JSON",
            create_room.__doc__,
            create_room.add_arguments,
        ),
        (
            "get-room",
            "print one room as JSON",
            room_commands.__doc__,
            partial(room_commands.add_arguments, delete=False),
        ),
        (
            "list-rooms",
            "print a page of rooms (or, with --all, every room) as JSON",
            room_commands.__doc__,
            room_commands.add_list_arguments,
        ),
        (
            "update-room",
            "change the fields of one room that the flags name, and print it as JSON",
            room_commands.__doc__,
            room_commands.add_update_arguments,
        ),
        (
            "delete-room",
            "delete one room",
            room_commands.__doc__,
            partial(room_commands.add_arguments, delete=True),
        ),
        *(
            (name, what, chat_commands.__doc__, partial(chat_commands.add_arguments, command=name))
            for name, what in (
                ("create-chat-token", "make one user's chat token and print it as JSON"),
                ("send-event", "send one event to a room"),
                ("disconnect-user", "disconnect one user from a room"),
                ("delete-message", "delete one message of a room"),
            )
        ),
        *(
            (
                name,
                what,
                logging_commands.__doc__,
                partial(logging_commands.add_arguments, command=name),
            )
            for name, what in zip(
                LOGGING_COMMANDS,
                (
                    "create one logging configuration and print it as JSON",
                    "print one logging configuration as JSON",
                    "print a page of logging configurations (or, with --all, all) as JSON",
                    "change the fields of one logging configuration that the flags name",
                    "delete one logging configuration",
                ),
                strict=True,
            )
        ),
        (
            "batch-create",
            "stream a JSON Lines or CSV file of CreateRoom requests to a server",
            batch_create.__doc__,
            batch_create.add_arguments,
        ),
    )
    for name, what, description, add_arguments in client_commands:
        command = sub.add_parser(
            name,
            help=what,
            description=description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_arguments(command)


def _emulator_settings(args: argparse.Namespace) -> EmulatorSettings:
    from ivschat_grpc.emulator import (
        DEFAULT_ACCESS_KEY_ID,
        DEFAULT_SECRET_ACCESS_KEY,
        EmulatorSettings,
        FaultRule,
    )
    from ivschat_grpc.emulator.server import (
        DEFAULT_CREATE_ROOM_RATE,
        DEFAULT_LOGGING_CONFIGURATION_DELAY_S,
        DEFAULT_LOGGING_CONFIGURATION_QUOTA,
        bad_logging_configuration_arns,
    )
    from ivschat_grpc.runtime import settings as config

    if not config.is_loopback(args.host) and not args.insecure:
        raise config.ConfigError(
            f"--host {args.host}: the emulator's admin routes (reset, faults) are unsigned, so "
            "it listens on loopback only; pass --insecure to listen there anyway"
        )
    rates = _emulator_quotas(args.quota, args.create_room_rate)
    bad = bad_logging_configuration_arns(args.logging_configuration)
    if bad:
        raise config.ConfigError(
            f"--logging-configuration {bad[0]}: must be a logging configuration ARN, "
            "arn:aws:ivschat:<region>:<account>:logging-configuration/<id>"
        )
    try:
        faults = tuple(FaultRule.from_json(json.loads(f)) for f in args.fault)
    except ValueError as e:
        raise config.ConfigError(f"bad emulator option: {e}") from e
    # IVSCHAT_EMULATOR_CREDENTIALS="KEY:SECRET[,KEY:SECRET...]" replaces the default pair.
    creds = {DEFAULT_ACCESS_KEY_ID: DEFAULT_SECRET_ACCESS_KEY}
    raw = os.environ.get("IVSCHAT_EMULATOR_CREDENTIALS")
    if raw:
        pairs = [p.split(":", 1) for p in raw.split(",")]
        if any(len(p) != 2 for p in pairs):
            raise config.ConfigError("IVSCHAT_EMULATOR_CREDENTIALS is KEY:SECRET[,KEY:SECRET]")
        creds = dict((k, v) for k, v in pairs)
    return EmulatorSettings(
        host=args.host,
        port=args.port,
        region=args.region,
        account=args.account,
        credentials=creds,
        create_room_rate=rates.pop("CreateRoom", DEFAULT_CREATE_ROOM_RATE),
        quotas={op: rate for op, rate in rates.items() if rate is not None},
        logging_configurations=frozenset(args.logging_configuration),
        logging_configuration_quota=_logging_configuration_quota(
            args.logging_configuration_quota, DEFAULT_LOGGING_CONFIGURATION_QUOTA
        ),
        logging_configuration_delay_s=_logging_configuration_delay(
            args.logging_configuration_delay, DEFAULT_LOGGING_CONFIGURATION_DELAY_S
        ),
        faults=faults,
    )


def _logging_configuration_quota(raw: str | None, default: int) -> int | None:
    from ivschat_grpc.runtime import settings as config

    if raw is None:
        return default
    if raw == "off":
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise config.ConfigError(
            f'--logging-configuration-quota {raw}: must be a whole number from 0, or "off"'
        )
    return int(raw)


def _logging_configuration_delay(raw: str | None, default: float) -> float:
    from ivschat_grpc.runtime import settings as config

    if raw is None:
        return default
    try:
        delay = float(raw)
    except ValueError:
        delay = -1.0
    # An hour is past any test's patience; more is a typo, not a delay.
    if not 0 <= delay <= 3600:
        raise config.ConfigError(
            f"--logging-configuration-delay {raw}: must be a number of seconds from 0 to 3600"
        )
    return delay


def _quota_rate(flag: str, raw: str) -> float | None:
    from ivschat_grpc.runtime import settings as config

    try:
        rate = None if raw == "off" else float(raw)
    except ValueError:
        rate = 0.0
    if rate is not None and not 0 < rate < float("inf"):
        raise config.ConfigError(f'{flag}: the rate must be a positive number or "off"')
    return rate


def _emulator_quotas(
    entries: Sequence[str], create_room_rate: str | None
) -> dict[str, float | None]:
    """Every served operation's quota: AWS's, but where --quota (or its alias) says otherwise."""
    from ivschat_grpc.emulator.server import DEFAULT_CREATE_ROOM_RATE, aws_quotas
    from ivschat_grpc.runtime import settings as config

    rates: dict[str, float | None] = {"CreateRoom": DEFAULT_CREATE_ROOM_RATE, **aws_quotas()}
    given: set[str] = set()
    if create_room_rate is not None:
        rates["CreateRoom"] = _quota_rate(
            f"--create-room-rate {create_room_rate}", create_room_rate
        )
        given.add("CreateRoom")
    for entry in entries:
        flag = f"--quota {entry}"
        name, eq, raw = entry.partition("=")
        if not eq:
            raise config.ConfigError(f"{flag}: must be OPERATION=RATE")
        if name not in rates:
            served = ", ".join(rates)
            raise config.ConfigError(f"{flag}: the endpoint serves no {name!r}; it serves {served}")
        if name in given:
            raise config.ConfigError(f"{flag}: {name}'s quota is given twice")
        given.add(name)
        rates[name] = _quota_rate(flag, raw.strip())
    return rates


def _on_signal() -> asyncio.Event:
    """An event that SIGTERM or SIGINT sets, from now on.

    Installed once the service is up and before it says so: a supervisor that
    reads "listening" and at once sends SIGTERM must get a drain, not the
    default death. Until then, a signal still ends a start that hangs.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _run_emulator(settings: EmulatorSettings) -> None:
    from ivschat_grpc.emulator import Emulator

    async with Emulator(settings) as emu:
        stop = _on_signal()
        print(f"ivschat emulator listening on {emu.url}", flush=True)
        await stop.wait()


async def _serve(settings: config.Settings) -> None:
    from ivschat_grpc.aws.adapter import AwsChainError, credentials_available
    from ivschat_grpc.aws.connection import StaticCredentials
    from ivschat_grpc.emulator import DEFAULT_REGION, Emulator, EmulatorSettings
    from ivschat_grpc.runtime import settings as config
    from ivschat_grpc.runtime.assembly import build_server

    async with AsyncExitStack() as stack:
        credentials = None
        if settings.emulator:
            # The embedded endpoint gets fresh credentials each run, so nothing
            # secret is written anywhere and nothing real is ever used.
            credentials = StaticCredentials(
                f"local{secrets.token_hex(6)}", secrets.token_urlsafe(24)
            )
            emu = Emulator(
                EmulatorSettings(
                    region=settings.aws.region or DEFAULT_REGION,
                    credentials={credentials.access_key_id: credentials.secret_access_key},
                    logging_configurations=frozenset(settings.emulator_logging_configurations),
                )
            )
            await emu.start()
            stack.push_async_callback(emu.stop)
            aws = replace(settings.aws, endpoint_url=emu.url, region=emu.settings.region)
            settings = replace(settings, aws=aws)
            print(f"embedded local IVS Chat endpoint at {emu.url}", flush=True)
        else:
            region = settings.aws.connection().region
            try:
                found = await credentials_available(region)
            except AwsChainError as e:
                raise config.ConfigError(str(e)) from None
            if not found:
                raise config.ConfigError(
                    "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, or run with an IAM role; or pass --emulator"
                )
        service = await build_server(settings, stack, credentials=credentials)
        stop = _on_signal()
        target = (
            "the embedded local endpoint"
            if settings.emulator
            else (settings.aws.endpoint_url or f"AWS IVS Chat in {settings.aws.region}")
        )
        print(
            f"ivschat-grpc listening on {settings.listen.host}:{service.port} (backend: {target})",
            flush=True,
        )
        if service.metrics_port is not None:
            metrics_at = f"{settings.telemetry.metrics_host}:{service.metrics_port}"
            print(f"metrics at http://{metrics_at}/metrics", flush=True)
        if service.health_port is not None:
            health_at = f"{settings.listen.health_host}:{service.health_port}"
            print(f"plaintext health at {health_at}", flush=True)
        await stop.wait()
        log.info("draining for up to %.1f s", settings.limits.grace_s)


def loop_factory(event_loop: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes a new event loop of the named kind (config.EVENT_LOOPS)."""
    import uvloop

    return uvloop.new_event_loop if event_loop == "uvloop" else asyncio.new_event_loop


def run(main: Coroutine[Any, Any, None], event_loop: str) -> None:
    """Run main to completion on a new loop of the named kind."""
    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        runner.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ivschat-grpc command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # Only serve's and emulator's own flags need the server extra: a client
    # command, or the command list, parses without it.
    server = bool(argv) and argv[0] in SERVER_COMMANDS
    if server and (missing := _missing_server_module()) is not None:
        print(
            f"ivschat-grpc {argv[0]} needs the server extra (no module {missing!r}): "
            f"{SERVER_EXTRA_HINT}",
            file=sys.stderr,
        )
        return Serve.BAD_SETTING
    args, unknown = _parser(server).parse_known_args(argv)
    if unknown:
        # argparse would show the top-level usage, which does not list the flag's command's flags.
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "create-room":
        return create_room.main(args)
    if args.command == "batch-create":
        return batch_create.main(args)
    if args.command in ("get-room", "list-rooms", "update-room", "delete-room"):
        return room_commands.main(args)
    if args.command in chat_commands.COMMANDS:
        return chat_commands.main(args)
    if args.command in LOGGING_COMMANDS:
        return logging_commands.main(args)
    from ivschat_grpc.runtime import settings as config

    try:
        if args.command == "emulator":
            emu_settings = _emulator_settings(args)
            _configure_logging(logging.INFO, json_lines=False)
            asyncio.run(_run_emulator(emu_settings))
            return Serve.STOPPED
        settings = config.load(args, os.environ)
        telemetry = settings.telemetry
        _configure_logging(telemetry.log_level, telemetry.log_format == "json")
        run(_serve(settings), settings.event_loop)
    except config.ConfigError as e:
        print(f"ivschat-grpc: {e}", file=sys.stderr)
        return Serve.BAD_SETTING
    return Serve.STOPPED


if __name__ == "__main__":
    sys.exit(main())
