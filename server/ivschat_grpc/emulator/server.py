"""The local IVS Chat endpoint: AWS's REST-JSON wire protocol on loopback.

It speaks the room operations (CreateRoom, GetRoom, ListRooms, UpdateRoom,
DeleteRoom), the logging configuration operations (Create, Get, List, Update,
DeleteLoggingConfiguration), the tag operations (TagResource, UntagResource,
ListTagsForResource, at /tags/{resourceArn}) and the chat operations
(CreateChatToken, SendEvent, DisconnectUser, DeleteMessage) the way AWS does
(SigV4, modeled errors with x-amzn-ErrorType, ISO 8601 times), keeps rooms and
logging configurations in memory, keeps what the chat operations did (events
sent, users disconnected, messages deleted, tokens made, without the tokens
themselves) in `EmulatorState.chat`, records every request it receives,
enforces every operation's AWS quota (each can be changed or turned off) and
misbehaves on demand through fault rules. Admin routes under /_emulator/ are
unsigned: the endpoint binds to loopback and holds nothing real.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import re
import secrets
import string
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final, Self

from aiohttp import web, web_protocol, web_server
from aiohttp.http_exceptions import HttpProcessingError

from ivschat_grpc.aws import validation
from ivschat_grpc.core.operations import OPERATIONS as AWS_OPERATIONS
from ivschat_grpc.core.outcomes import Outcome
from ivschat_grpc.core.violations import Violation
from ivschat_grpc.emulator import sigv4
from ivschat_grpc.emulator.faults import FaultPlan, FaultRule, error_statuses
from ivschat_grpc.emulator.token_bucket import TokenBucket

# The default credentials are the local endpoint's own, as DynamoDB Local's
# are: they open nothing at AWS.
DEFAULT_ACCESS_KEY_ID: Final = "ivschat-local"
DEFAULT_SECRET_ACCESS_KEY: Final = "ivschat-local-secret"  # noqa: S105 - a public local default
DEFAULT_REGION: Final = "us-east-1"
DEFAULT_ACCOUNT: Final = "123456789012"
# AWS's CreateRoom quota: 5 requests a second per account and region.
DEFAULT_CREATE_ROOM_RATE: Final = 5.0
# AWS's quota of logging configurations per account and region (ivschat-quotas.md).
DEFAULT_LOGGING_CONFIGURATION_QUOTA: Final = 10
# How long a logging configuration stays CREATING, UPDATING or DELETING. AWS's
# Create and Update answer ACTIVE (the only state their output shapes allow,
# and what the AWS CLI's examples show), so by default a change is done at once.
DEFAULT_LOGGING_CONFIGURATION_DELAY_S: Final = 0.0
# Where a logging configuration registered by ARN alone (a flag, the admin
# route) logs to: it needs some destination, and logs nothing here.
REGISTERED_DESTINATION: Final[Mapping[str, Mapping[str, str]]] = {
    "cloudWatchLogs": {"logGroupName": "ivschat-emulator"}
}
# The resource type a logging configuration's errors name. The model's
# ResourceType enum holds ROOM alone; AWS does not document what its errors
# about a logging configuration say, and ROOM would mislead.
LOGGING_CONFIGURATION: Final = "LOGGING_CONFIGURATION"
ADMIN: Final = "/_emulator"
_ID_ALPHABET: Final = string.ascii_letters + string.digits
_POSITION: Final = re.compile(r"[0-9]{1,9}")
# How an operation's validation error opens, where it is not the count.
_INVALID_INPUT: Final[Mapping[str, str]] = {
    "GetRoom": "identifier is invalid",
    "DeleteRoom": "identifier is invalid",
    "UpdateRoom": "identifier is invalid",
    "ListRooms": "invalid ListRooms input",
    "GetLoggingConfiguration": "identifier is invalid",
    "UpdateLoggingConfiguration": "identifier is invalid",
    "DeleteLoggingConfiguration": "identifier is invalid",
    "ListLoggingConfigurations": "invalid ListLoggingConfigurations input",
}

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class EmulatorSettings:
    """EmulatorSettings configures one local endpoint."""

    host: str = "127.0.0.1"
    port: int = 0
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    credentials: Mapping[str, str] = field(
        default_factory=lambda: {DEFAULT_ACCESS_KEY_ID: DEFAULT_SECRET_ACCESS_KEY}
    )
    # CreateRoom's quota, calls a second, or None for none.
    create_room_rate: float | None = DEFAULT_CREATE_ROOM_RATE
    # The other operations' quotas, calls a second: by default AWS's, as AWS
    # enforces them all; an operation not named has none.
    quotas: Mapping[str, float] = field(default_factory=lambda: aws_quotas())
    # The ARNs of logging configurations that exist from the start, ACTIVE
    # (and again after a reset).
    logging_configurations: frozenset[str] = frozenset()
    # How many logging configurations the account may hold, or None for no limit.
    logging_configuration_quota: int | None = DEFAULT_LOGGING_CONFIGURATION_QUOTA
    # Seconds a created, updated or deleted logging configuration stays
    # CREATING, UPDATING or DELETING before it is ACTIVE, or gone.
    logging_configuration_delay_s: float = DEFAULT_LOGGING_CONFIGURATION_DELAY_S
    faults: tuple[FaultRule, ...] = ()
    record_limit: int = 100_000


@dataclass(slots=True)
class RecordedRequest:
    """RecordedRequest is what the endpoint saw of one request and answered."""

    operation: str
    request_id: str
    body: Any
    status: int = 0
    error: str | None = None
    # What the request created, even when its answer was an error or none.
    room_id: str | None = None
    logging_configuration_id: str | None = None

    def to_json(self) -> Json:
        """The record's JSON form."""
        return {
            "operation": self.operation,
            "requestId": self.request_id,
            "body": self.body,
            "status": self.status,
            "error": self.error,
            "roomId": self.room_id,
            "loggingConfigurationId": self.logging_configuration_id,
        }


class AwsError(Exception):
    """AwsError is an error answer with AWS's modeled body."""

    def __init__(self, code: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.status = error_statuses().get(code, 400)
        self.body: Json = {"message": message, **fields}


class _Dropped(Exception):
    """_Dropped ends a request by closing its connection without an answer."""


def _refuse_invalid(operation: str, params: Json, extra: list[Violation] | None = None) -> None:
    """Answer a validation error naming every field that breaks the model (or extra)."""
    _refuse(operation, validation.check(operation, params) + (extra or []))


def _refuse(operation: str, violations: list[Violation]) -> None:
    """Answer a validation error naming each violation's field, if there are any."""
    if violations:
        raise AwsError(
            Outcome.VALIDATION,
            _INVALID_INPUT.get(operation, f"{len(violations)} validation error(s) detected"),
            reason="FIELD_VALIDATION_FAILED",
            fieldList=[
                {"name": validation.aws_field_name(v.path), "message": v.message}
                for v in violations
            ],
        )


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _now_iso() -> str:
    return _iso(datetime.now(UTC))


def bad_logging_configuration_arns(arns: Iterable[str]) -> list[str]:
    """The ARNs that are no logging configuration ARN, of those given to register."""
    return [a for a in arns if validation.check("LoggingConfigurationIdentifier", a)]


def _new_id() -> str:
    """A 12-character id of letters and digits, as AWS's room and event ids are."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


# AWS's default session length, when CreateChatToken names none.
DEFAULT_SESSION_MINUTES: Final = 60


@dataclass(frozen=True, slots=True)
class ChatAction:
    """ChatAction is one thing a chat operation did: what a test asks the endpoint it saw."""

    operation: str
    room_arn: str
    # The operation's own members, as sent, less roomIdentifier; a token's
    # record holds its expiry times, never the token.
    fields: Json

    def to_json(self) -> Json:
        """The action's JSON form."""
        return {"operation": self.operation, "roomArn": self.room_arn, **self.fields}


class _Pager:
    """_Pager makes and takes one list operation's nextTokens, and only its own.

    A token is the list's name and a position in digits. One given before
    items were deleted still pages what is left (maybe nothing), as the
    furthest position given stays valid.
    """

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._furthest = 0

    def start(self, params: Json, total: int) -> tuple[int, list[Violation]]:
        """Where the page nextToken names begins, or a violation naming the token."""
        token = params.get("nextToken")
        # The model says only that a token is a string; a wrong type is the walker's to name.
        if not token or not isinstance(token, str):
            return 0, []
        try:
            kind, _, position = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        except ValueError:
            kind, position = "", ""
        start = int(position) if kind == self._kind and _POSITION.fullmatch(position) else -1
        if not 0 <= start <= max(total, self._furthest):
            return 0, [Violation(("nextToken",), "is not a valid token")]
        return start, []

    def page(self, items: list[Json], start: int, limit: int) -> tuple[list[Json], str | None]:
        """The page of items from start, and the token of the next page (None on the last)."""
        end = start + limit
        if end >= len(items):
            return items[start:end], None
        self._furthest = max(self._furthest, end)
        return items[start:end], base64.urlsafe_b64encode(f"{self._kind}:{end}".encode()).decode()

    def reset(self) -> None:
        """Forget the tokens given."""
        self._furthest = 0


# A logging configuration's states while a change is under way, and what each becomes.
_SETTLES_TO: Final[Mapping[str, str | None]] = {
    "CREATING": "ACTIVE",
    "UPDATING": "ACTIVE",
    "DELETING": None,
}


class EmulatorState:
    """EmulatorState is everything the endpoint knows, readable by tests."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        self.rooms: dict[str, Json] = {}
        # Logging configurations by ARN, as AWS returns them.
        self.logging_configurations: dict[str, Json] = {}
        # When each logging configuration that is CREATING, UPDATING or
        # DELETING is done: ACTIVE, or gone.
        self._settles_at: dict[str, datetime] = {}
        self.chat: deque[ChatAction] = deque(maxlen=settings.record_limit)
        self._room_pages = _Pager("rooms")
        self._logging_configuration_pages = _Pager("logging-configurations")
        self.requests: deque[RecordedRequest] = deque(maxlen=settings.record_limit)
        self.faults = FaultPlan(settings.faults)
        self.register_logging_configurations(settings.logging_configurations)
        self.quota: TokenBucket | None = None
        self.set_quota(settings.create_room_rate)
        self.quotas = {
            op: TokenBucket(rate, max(1.0, rate)) for op, rate in settings.quotas.items()
        }

    def set_quota(self, rate: float | None) -> None:
        """Set the CreateRoom rate a second, or None for no quota."""
        # A burst of one second's worth, then a steady rate, as AWS allows.
        self.quota = None if rate is None else TokenBucket(rate, max(1.0, rate))

    def rate(self, operation: str) -> float | None:
        """The operation's quota in calls a second, or None for none."""
        bucket = self.quota if operation == "CreateRoom" else self.quotas.get(operation)
        return None if bucket is None else bucket.rate

    def reset(self) -> None:
        """Forget rooms, logging configurations, requests and faults; keep the settings.

        The logging configurations given at start exist again, ACTIVE.
        """
        self.rooms.clear()
        self.chat.clear()
        self.requests.clear()
        self.faults.clear()
        self._room_pages.reset()
        self._logging_configuration_pages.reset()
        self.register_logging_configurations(self.settings.logging_configurations)

    def register_logging_configurations(self, arns: Iterable[str]) -> None:
        """Make these the logging configurations that exist: ACTIVE, keeping any that did.

        Their ids are their ARNs' last part, and they log to REGISTERED_DESTINATION.
        """
        wanted = set(arns)
        for arn in set(self.logging_configurations) - wanted:
            self._forget_logging_configuration(arn)
        now = _now_iso()
        for arn in sorted(wanted - set(self.logging_configurations)):
            self.logging_configurations[arn] = {
                "arn": arn,
                "id": arn.rsplit("/", 1)[-1],
                "name": "",
                "createTime": now,
                "updateTime": now,
                "destinationConfiguration": copy.deepcopy(dict(REGISTERED_DESTINATION)),
                "state": "ACTIVE",
                "tags": {},
            }

    def settle(self) -> None:
        """Finish every logging configuration change whose delay is over."""
        now = datetime.now(UTC)
        for arn, when in list(self._settles_at.items()):
            if when > now:
                continue
            config = self.logging_configurations[arn]
            settled = _SETTLES_TO[config["state"]]
            if settled is None:
                self._forget_logging_configuration(arn)
            else:
                del self._settles_at[arn]
                config["state"] = settled
                config["updateTime"] = _iso(when)

    def _forget_logging_configuration(self, arn: str) -> None:
        del self.logging_configurations[arn]
        self._settles_at.pop(arn, None)

    def recorded(self, operation: str | None = None) -> list[RecordedRequest]:
        """The recorded requests, optionally for one operation."""
        return [r for r in self.requests if operation is None or r.operation == operation]

    def arn(self, resource_id: str, resource: str = "room") -> str:
        """The ARN of a room (or another resource) in this endpoint's account and region."""
        settings = self.settings
        return f"arn:aws:ivschat:{settings.region}:{settings.account}:{resource}/{resource_id}"

    def name_in(self, params: Json) -> object:
        """The name a fault rule matches a request by.

        The request's own name, or else the name of the room or logging
        configuration it identifies, if that exists.
        """
        if "name" in params:
            return params["name"]
        for member in ("identifier", "roomIdentifier", "resourceArn"):
            arn = params.get(member)
            if isinstance(arn, str):
                resource = self._resource(arn)
                return None if resource is None else resource.get("name")
        return None

    def _resource(self, arn: str) -> Json | None:
        """The room or logging configuration an ARN names, if it exists."""
        config = self.logging_configurations.get(arn)
        if config is not None:
            return config
        room = self.rooms.get(arn.rsplit("/", 1)[-1])
        return room if room is not None and room["arn"] == arn else None

    # --- operations ---------------------------------------------------------

    def create_room(self, params: Json) -> Json:
        """Validate and store a room, as AWS's CreateRoom does."""
        _refuse_invalid("CreateRoom", params)
        self._logging_configurations_exist(params)
        room_id = _new_id()
        now = _now_iso()
        handler = params.get("messageReviewHandler")
        room: Json = {
            "arn": self.arn(room_id),
            "id": room_id,
            "name": params.get("name", ""),
            "createTime": now,
            "updateTime": now,
            "maximumMessageLength": params.get("maximumMessageLength", 500),
            "maximumMessageRatePerSecond": params.get("maximumMessageRatePerSecond", 10),
            "tags": dict(params.get("tags", {})),
            "loggingConfigurationIdentifiers": list(
                params.get("loggingConfigurationIdentifiers", [])
            ),
        }
        if handler is not None:
            room["messageReviewHandler"] = {
                "uri": handler.get("uri", ""),
                "fallbackResult": handler.get("fallbackResult", "ALLOW"),
            }
        self.rooms[room_id] = room
        return room

    def _logging_configurations_exist(self, params: Json) -> None:
        # One being deleted can no longer be named: it will be gone, and a
        # room that names one cannot be in the way of its deletion.
        for arn in params.get("loggingConfigurationIdentifiers", []):
            config = self.logging_configurations.get(arn)
            if config is None or config["state"] == "DELETING":
                raise _logging_configuration_not_found(arn)

    def _room_for(self, operation: str, params: Json, member: str = "identifier") -> Json:
        _refuse_invalid(operation, params)
        identifier = str(params[member])
        room = self.rooms.get(identifier.rsplit("/", 1)[-1])
        if room is None or room["arn"] != identifier:
            raise _room_not_found(identifier)
        return room

    def get_room(self, params: Json) -> Json:
        """Return one room by ARN."""
        return self._room_for("GetRoom", params)

    def update_room(self, params: Json) -> Json:
        """Change the members present, as AWS's UpdateRoom does: it has no mask.

        An empty handler uri detaches the handler, and the identifier list,
        when present, replaces the room's.
        """
        room = self._room_for("UpdateRoom", params)
        self._logging_configurations_exist(params)
        for member in ("name", "maximumMessageLength", "maximumMessageRatePerSecond"):
            if member in params:
                room[member] = params[member]
        if "loggingConfigurationIdentifiers" in params:
            identifiers = params["loggingConfigurationIdentifiers"]
            room["loggingConfigurationIdentifiers"] = list(identifiers)
        handler = params.get("messageReviewHandler")
        if handler is not None:
            if handler.get("uri", ""):
                room["messageReviewHandler"] = {
                    "uri": handler["uri"],
                    "fallbackResult": handler.get("fallbackResult", "ALLOW"),
                }
            else:
                room.pop("messageReviewHandler", None)
        room["updateTime"] = _now_iso()
        return room

    def _chat_room(self, operation: str, params: Json) -> str:
        """The ARN of the room a chat operation names, once the request is valid."""
        return str(self._room_for(operation, params, member="roomIdentifier")["arn"])

    def create_chat_token(self, params: Json) -> Json:
        """Make a token; its expiry times follow sessionDurationInMinutes.

        AWS does not document how long a token is accepted for a new
        connection; this endpoint accepts it for as long as the session lasts.
        """
        arn = self._chat_room("CreateChatToken", params)
        minutes = int(params.get("sessionDurationInMinutes", DEFAULT_SESSION_MINUTES))
        now = datetime.now(UTC)
        expires = _iso(now + timedelta(minutes=minutes))
        times = {"tokenExpirationTime": expires, "sessionExpirationTime": expires}
        capabilities = list(params.get("capabilities", []))
        self.chat.append(
            ChatAction(
                "CreateChatToken",
                arn,
                {"capabilities": capabilities, "sessionDurationInMinutes": minutes, **times},
            )
        )
        return {"token": "AQICAH" + secrets.token_urlsafe(96), **times}

    def send_event(self, params: Json) -> Json:
        """Send an event to the room's users: here, keep it."""
        arn = self._chat_room("SendEvent", params)
        event_id = _new_id()
        fields = {
            "id": event_id,
            "eventName": params["eventName"],
            "attributes": dict(params.get("attributes", {})),
        }
        self.chat.append(ChatAction("SendEvent", arn, fields))
        return {"id": event_id}

    def disconnect_user(self, params: Json) -> Json:
        """Disconnect a user: here, keep that it was asked."""
        arn = self._chat_room("DisconnectUser", params)
        fields: Json = {k: params[k] for k in ("userId", "reason") if k in params}
        self.chat.append(ChatAction("DisconnectUser", arn, fields))
        return {}

    def delete_message(self, params: Json) -> Json:
        """Delete a message: here, keep the deletion event."""
        arn = self._chat_room("DeleteMessage", params)
        event_id = _new_id()
        fields = {"id": event_id, "messageId": params["id"]}
        if "reason" in params:
            fields["reason"] = params["reason"]
        self.chat.append(ChatAction("DeleteMessage", arn, fields))
        return {"id": event_id}

    def chat_actions(self, operation: str | None = None) -> list[ChatAction]:
        """What the chat operations did, optionally one operation's."""
        return [a for a in self.chat if operation is None or a.operation == operation]

    def delete_room(self, params: Json) -> None:
        """Delete one room by ARN."""
        del self.rooms[self._room_for("DeleteRoom", params)["id"]]

    def list_rooms(self, params: Json) -> Json:
        """Page through rooms, newest update first, filtered as AWS filters."""
        start, bad_token = self._room_pages.start(params, len(self.rooms))
        _refuse_invalid("ListRooms", params, bad_token)
        limit = int(params.get("maxResults", validation.bounds("MaxRoomResults").max))
        # Rooms updated in the same millisecond come newest made first, as a stable order.
        newest_made_first = reversed(list(self.rooms.values()))
        rooms = sorted(newest_made_first, key=lambda r: r["updateTime"], reverse=True)
        if "name" in params:
            rooms = [r for r in rooms if r["name"] == params["name"]]
        if "messageReviewHandlerUri" in params:
            uri = params["messageReviewHandlerUri"]
            rooms = [r for r in rooms if r.get("messageReviewHandler", {}).get("uri") == uri]
        if "loggingConfigurationIdentifier" in params:
            lc = params["loggingConfigurationIdentifier"]
            rooms = [r for r in rooms if lc in r["loggingConfigurationIdentifiers"]]
        page, next_token = self._room_pages.page(rooms, start, limit)
        out: Json = {
            "rooms": [
                {
                    k: v
                    for k, v in r.items()
                    if k not in ("maximumMessageLength", "maximumMessageRatePerSecond")
                }
                for r in page
            ]
        }
        if next_token is not None:
            out["nextToken"] = next_token
        return out

    # --- logging configurations ----------------------------------------------

    def _logging_configuration_for(self, operation: str, params: Json) -> Json:
        _refuse_invalid(operation, params)
        config = self.logging_configurations.get(str(params["identifier"]))
        if config is None:
            raise _logging_configuration_not_found(str(params["identifier"]))
        return config

    def _change_logging_configuration(self, config: Json, state: str) -> None:
        """Start a change: in state for the delay, or done at once without one."""
        delay = self.settings.logging_configuration_delay_s
        config["updateTime"] = _now_iso()
        if delay <= 0:
            if _SETTLES_TO[state] is None:
                self._forget_logging_configuration(config["arn"])
            else:
                config["state"] = _SETTLES_TO[state]
            return
        config["state"] = state
        self._settles_at[config["arn"]] = datetime.now(UTC) + timedelta(seconds=delay)

    def _refuse_unsettled(self, config: Json) -> None:
        # AWS documents no answer for a change to a configuration mid-change;
        # its modeled conflict (409) is the closest.
        if config["state"] != "ACTIVE":
            raise AwsError(
                Outcome.CONFLICT,
                f"Logging configuration {config['arn']} is {config['state']}",
                resourceId=config["id"],
                resourceType=LOGGING_CONFIGURATION,
            )

    def create_logging_configuration(self, params: Json) -> Json:
        """Validate and store a logging configuration, within the account's quota."""
        _refuse_invalid("CreateLoggingConfiguration", params)
        quota = self.settings.logging_configuration_quota
        if quota is not None and len(self.logging_configurations) >= quota:
            raise AwsError(
                Outcome.QUOTA_EXCEEDED,
                f"The account may hold at most {quota} logging configurations",
                resourceId=self.settings.account,
                resourceType=LOGGING_CONFIGURATION,
                limit=quota,
            )
        config_id = _new_id()
        now = _now_iso()
        config: Json = {
            "arn": self.arn(config_id, "logging-configuration"),
            "id": config_id,
            "name": params.get("name", ""),
            "createTime": now,
            "updateTime": now,
            "destinationConfiguration": copy.deepcopy(params["destinationConfiguration"]),
            "state": "CREATING",
            "tags": dict(params.get("tags", {})),
        }
        self.logging_configurations[config["arn"]] = config
        self._change_logging_configuration(config, "CREATING")
        return config

    def get_logging_configuration(self, params: Json) -> Json:
        """Return one logging configuration by ARN."""
        return self._logging_configuration_for("GetLoggingConfiguration", params)

    def update_logging_configuration(self, params: Json) -> Json:
        """Change the members present (name, destination), as AWS's Update does: it has no mask."""
        config = self._logging_configuration_for("UpdateLoggingConfiguration", params)
        self._refuse_unsettled(config)
        for member in ("name", "destinationConfiguration"):
            if member in params:
                config[member] = copy.deepcopy(params[member])
        self._change_logging_configuration(config, "UPDATING")
        return config

    def delete_logging_configuration(self, params: Json) -> None:
        """Delete one logging configuration, unless a room names it.

        AWS's IVS Chat documents nothing about deleting one that rooms use. IVS
        documents its sibling, DeleteRecordingConfiguration, as refused with
        a 409 conflict while a channel uses the configuration, and the
        conflict is modeled here too; so is this.
        """
        config = self._logging_configuration_for("DeleteLoggingConfiguration", params)
        self._refuse_unsettled(config)
        users = [
            r for r in self.rooms.values() if config["arn"] in r["loggingConfigurationIdentifiers"]
        ]
        if users:
            raise AwsError(
                Outcome.CONFLICT,
                f"Logging configuration {config['arn']} is used by {len(users)} room(s); "
                "remove it from them with UpdateRoom first",
                resourceId=config["id"],
                resourceType=LOGGING_CONFIGURATION,
            )
        self._change_logging_configuration(config, "DELETING")

    def list_logging_configurations(self, params: Json) -> Json:
        """Page through the logging configurations, oldest made first."""
        configs = list(self.logging_configurations.values())
        start, bad_token = self._logging_configuration_pages.start(params, len(configs))
        _refuse_invalid("ListLoggingConfigurations", params, bad_token)
        limit = int(
            params.get("maxResults", validation.bounds("MaxLoggingConfigurationResults").max)
        )
        page, next_token = self._logging_configuration_pages.page(configs, start, limit)
        out: Json = {"loggingConfigurations": page}
        if next_token is not None:
            out["nextToken"] = next_token
        return out

    # --- tags ------------------------------------------------------------------

    def _tagged(self, operation: str, params: Json) -> Json:
        """The room or logging configuration a tag operation names, once the request is valid."""
        _refuse_invalid(operation, params)
        arn = str(params["resourceArn"])
        resource = self._resource(arn)
        if resource is None:
            # The corrected ResourceArn pattern lets through these two types alone.
            is_room = arn.split(":", 5)[-1].startswith("room/")
            raise _room_not_found(arn) if is_room else _logging_configuration_not_found(arn)
        return resource

    def tag_resource(self, params: Json) -> Json:
        """Add or replace tags, leaving the resource at most its 50."""
        resource = self._tagged("TagResource", params)
        tags = {**resource["tags"], **params["tags"]}
        limit = validation.bounds("Tags").max
        if len(tags) > limit:
            message = f"must leave the resource at most {limit} tags, not {len(tags)}"
            _refuse("TagResource", [Violation(("tags",), message)])
        resource["tags"] = tags
        return {}

    def untag_resource(self, params: Json) -> Json:
        """Remove the tags with these keys; a key the resource lacks is no error."""
        resource = self._tagged("UntagResource", params)
        for key in params["tagKeys"]:
            resource["tags"].pop(key, None)
        return {}

    def list_tags_for_resource(self, params: Json) -> Json:
        """The resource's tags."""
        return {"tags": dict(self._tagged("ListTagsForResource", params)["tags"])}


def _room_not_found(arn: str) -> AwsError:
    return AwsError(
        Outcome.NOT_FOUND,
        f"Room {arn} not found",
        resourceId=arn.rsplit("/", 1)[-1],
        resourceType="ROOM",
    )


def _logging_configuration_not_found(arn: str) -> AwsError:
    return AwsError(
        Outcome.NOT_FOUND,
        f"Logging configuration {arn} not found",
        resourceId=arn.rsplit("/", 1)[-1],
        resourceType=LOGGING_CONFIGURATION,
    )


def aws_quotas() -> dict[str, float]:
    """AWS's quota for each operation the endpoint serves but CreateRoom (create_room_rate)."""
    return {op: AWS_OPERATIONS[op].rate for op in OPERATIONS if op != "CreateRoom"}


Operation = Callable[[EmulatorState, Json], Json | None]
OPERATIONS: Final[Mapping[str, tuple[Operation, int]]] = {
    "CreateRoom": (EmulatorState.create_room, 200),
    "GetRoom": (EmulatorState.get_room, 200),
    "ListRooms": (EmulatorState.list_rooms, 200),
    "UpdateRoom": (EmulatorState.update_room, 200),
    "DeleteRoom": (EmulatorState.delete_room, 204),
    "CreateChatToken": (EmulatorState.create_chat_token, 200),
    "SendEvent": (EmulatorState.send_event, 200),
    "DisconnectUser": (EmulatorState.disconnect_user, 200),
    "DeleteMessage": (EmulatorState.delete_message, 200),
    "CreateLoggingConfiguration": (EmulatorState.create_logging_configuration, 200),
    "GetLoggingConfiguration": (EmulatorState.get_logging_configuration, 200),
    "ListLoggingConfigurations": (EmulatorState.list_logging_configurations, 200),
    "UpdateLoggingConfiguration": (EmulatorState.update_logging_configuration, 200),
    "DeleteLoggingConfiguration": (EmulatorState.delete_logging_configuration, 204),
    "TagResource": (EmulatorState.tag_resource, 200),
    "UntagResource": (EmulatorState.untag_resource, 200),
    "ListTagsForResource": (EmulatorState.list_tags_for_resource, 200),
}


def _located_members(operation: str, request: web.Request) -> Json:
    """The members the model puts in the request's path or query string, by member name.

    aiohttp gives the path's labels decoded: TagResource's ARN arrives
    URL-encoded, as its reference asks (%3A, %2F).
    """
    shapes = validation.service_model()["shapes"]
    members: Mapping[str, Json] = shapes[validation.input_shape_name(operation)]["members"]
    out: Json = {}
    for name, member in members.items():
        key = member.get("locationName", name)
        if member.get("location") == "uri":
            out[name] = request.match_info[key]
        elif member.get("location") == "querystring" and key in request.query:
            many = shapes[member["shape"]]["type"] == "list"
            out[name] = request.query.getall(key) if many else request.query[key]
    return out


def _record_created(record: RecordedRequest, result: Json | None) -> None:
    """Keep the id of what a create made in its record, answered or not."""
    if result is None:
        return
    if record.operation == "CreateRoom":
        record.room_id = result["id"]
    elif record.operation == "CreateLoggingConfiguration":
        record.logging_configuration_id = result["id"]


def _error_response(request_id: str, status: int, code: str, body: Json) -> web.Response:
    return web.json_response(
        body,
        status=status,
        headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": code},
    )


def _drop(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise _Dropped


def build_app(state: EmulatorState) -> web.Application:
    """The aiohttp application for one endpoint state."""

    async def aws(request: web.Request, operation: str | None = None) -> web.StreamResponse:
        # A POST to a path no operation is served at names an unknown operation.
        operation = operation or request.match_info["operation"]
        request_id = str(uuid.uuid4())
        raw = await request.read()
        record = RecordedRequest(operation, request_id, None)
        try:
            record.body = json.loads(raw) if raw else {}
        except (ValueError, RecursionError):
            # RecursionError: a body nested deeper than the parser goes ('[' * 1000).
            record.body = raw.decode("utf-8", "replace")
        if isinstance(record.body, dict) and operation in OPERATIONS:
            # Checked and recorded with the body's: the tag operations' ARN and keys.
            record.body = {**record.body, **_located_members(operation, request)}
        state.requests.append(record)
        try:
            response = await _handle(request, operation, raw, record)
        except AwsError as e:
            record.status, record.error = e.status, e.code
            return _error_response(request_id, e.status, e.code, e.body)
        except sigv4.Refusal as e:
            record.status, record.error = e.status, e.code
            return _error_response(request_id, e.status, e.code, {"message": e.message})
        except _Dropped:
            record.status, record.error = 0, "ConnectionDropped"
            raise asyncio.CancelledError from None
        record.status = response.status
        return response

    async def _handle(
        request: web.Request, operation: str, raw: bytes, record: RecordedRequest
    ) -> web.StreamResponse:
        sigv4.verify(
            sigv4.SignedRequest(request.method, request.raw_path, request.headers, raw),
            secrets=state.settings.credentials,
            region=state.settings.region,
            service=validation.SERVICE,
        )
        if operation not in OPERATIONS:
            raise AwsError(
                Outcome.VALIDATION,
                f"Unknown operation {operation}",
                reason="UNKNOWN_OPERATION",
            )
        if not isinstance(record.body, dict):
            raise AwsError(
                Outcome.VALIDATION, "The request body is not a JSON object", reason="OTHER"
            )
        params: Json = record.body
        state.settle()
        bucket = state.quota if operation == "CreateRoom" else state.quotas.get(operation)
        if bucket is not None and not bucket.try_take():
            raise AwsError(
                Outcome.THROTTLED,
                f"Rate exceeded for {operation}",
                resourceId=operation,
                resourceType="ROOM",
                limit=int(bucket.rate),
            )
        rule = state.faults.take(operation, state.name_in(params))
        handler, status = OPERATIONS[operation]
        ran = False
        if rule is not None:
            if rule.latency_ms:
                await asyncio.sleep(rule.latency_ms / 1000)
            if rule.create:
                # The operation runs (a room is made, or deleted) before the fault.
                result, ran = handler(state, params), True
                _record_created(record, result)
            if rule.drop:
                _drop(request)
            if rule.error is not None:
                # A rule's fields may carry a message of its own (one that
                # echoes the request, as AWS's messages can).
                fields = _fault_fields(rule)
                message = str(fields.pop("message", f"Injected {rule.error}"))
                raise AwsError(rule.error, message, **fields)
        if not ran:
            result = handler(state, params)
        _record_created(record, result)
        if result is None:
            return web.Response(status=status, headers={"x-amzn-RequestId": record.request_id})
        return web.json_response(
            result, status=status, headers={"x-amzn-RequestId": record.request_id}
        )

    app = web.Application(middlewares=[_aws_shaped_http_errors], client_max_size=MAX_BODY_BYTES)
    app.add_routes(_admin_routes(state))
    model = validation.service_model()["operations"]
    for operation in OPERATIONS:
        http = model[operation]["http"]
        app.router.add_route(http["method"], http["requestUri"], partial(aws, operation=operation))
    app.router.add_post("/{operation}", aws)
    return app


# AWS's front end refuses bodies past this; so does this endpoint, the way AWS does.
MAX_BODY_BYTES: Final = 1024 * 1024
# What the front end answers for what aiohttp itself refuses: a path no route
# serves, a method it does not take, a body over the limit.
_HTTP_ERRORS: Final[Mapping[int, tuple[str, str]]] = {
    404: ("UnknownOperationException", "No operation is served at this path"),
    405: ("UnknownOperationException", "No operation is served with this method"),
    413: ("RequestEntityTooLargeException", "The request body is too large"),
}


@web.middleware
async def _aws_shaped_http_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Answer aiohttp's own refusals as AWS does: JSON, with an error type and a request id."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if request.path.startswith(ADMIN) or e.status not in _HTTP_ERRORS:
            raise
        code, message = _HTTP_ERRORS[e.status]
        return _error_response(str(uuid.uuid4()), e.status, code, {"message": message})


# What the endpoint answers for a request that is not well-formed HTTP (a bad
# request line, header, chunk or Content-Length), which aiohttp refuses before
# any route or middleware sees it. AWS's front end does not document its answer;
# the guess is the one it gives a body it cannot read: a JSON 400 naming
# SerializationException, so an SDK parses it like any other error.
MALFORMED_HTTP: Final = "SerializationException"
# An exception no handler expected: AWS's own name for its 500s.
INTERNAL: Final = Outcome.INTERNAL_SERVER


class _AwsRequestHandler(web_protocol.RequestHandler):
    """A connection whose last-resort answers are AWS-shaped JSON, not aiohttp's text.

    aiohttp answers its parser's refusals and a handler's unexpected exception
    through handle_error, past every middleware, and offers no hook for it
    (aio-libs/aiohttp#3287): overriding it is the one place to shape them.
    """

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp's own answer logs the error and refuses when a response has begun.
        super().handle_error(request, status, exc, message)
        if isinstance(exc, HttpProcessingError) or 400 <= status < 500:
            # A bad chunk arriving after the headers fails request.read() in
            # the handler: still the client's malformed HTTP, not our 500.
            status, code = status if 400 <= status < 500 else 400, MALFORMED_HTTP
            text = f"The request is not well-formed HTTP ({type(exc).__name__})"
        elif status == 504:
            code, text = INTERNAL, "The request timed out"
        else:
            status, code, text = 500, INTERNAL, "An internal error occurred"
        response = _error_response(str(uuid.uuid4()), status, code, {"message": text})
        response.force_close()
        return response


class _AwsServer(web_server.Server):
    """The protocol factory that makes _AwsRequestHandler connections."""

    def __call__(self) -> web_protocol.RequestHandler:
        return _AwsRequestHandler(self, loop=self._loop, **self._kwargs)


class _AwsRunner(web.AppRunner):
    """An AppRunner whose connections answer even malformed HTTP in JSON."""

    async def _make_server(self) -> web_server.Server:
        server = await super()._make_server()
        # The application builds its Server with arguments of its own choosing;
        # taking that object and changing only its class keeps them all.
        server.__class__ = _AwsServer
        return server


def _fault_fields(rule: FaultRule) -> Json:
    """The modeled fields an injected error carries, unless the rule overrides them."""
    resource: Json = (
        {"resourceId": "InjectedLoggingConfiguration", "resourceType": LOGGING_CONFIGURATION}
        if "LoggingConfiguration" in rule.operation
        else {"resourceId": "InjectedRoom", "resourceType": "ROOM"}
    )
    aws = AWS_OPERATIONS.get(rule.operation)
    defaults: Mapping[str, Json] = {
        Outcome.VALIDATION: {
            "reason": "FIELD_VALIDATION_FAILED",
            "fieldList": [{"name": "name", "message": "Injected validation failure"}],
        },
        Outcome.CONFLICT: resource,
        Outcome.NOT_FOUND: resource,
        Outcome.QUOTA_EXCEEDED: {
            **resource,
            "limit": DEFAULT_LOGGING_CONFIGURATION_QUOTA
            if resource["resourceType"] == LOGGING_CONFIGURATION
            else 50000,
        },
        # As the quota's own throttle says it.
        Outcome.THROTTLED: {
            "resourceId": rule.operation,
            "resourceType": "ROOM",
            "limit": int(aws.rate) if aws is not None else 5,
        },
    }
    return {**defaults.get(rule.error or "", {}), **rule.fields}


def _bad_admin_body(message: str) -> web.HTTPBadRequest:
    """A 400 in JSON, as the AWS routes answer: a test's client parses one kind of body."""
    return web.HTTPBadRequest(
        text=json.dumps({"message": message}), content_type="application/json"
    )


def _admin_routes(state: EmulatorState) -> web.RouteTableDef:
    routes = web.RouteTableDef()

    async def body(request: web.Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            raise _bad_admin_body("body must be JSON") from None

    @routes.get(f"{ADMIN}/health")
    async def health(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    @routes.get(f"{ADMIN}/requests")
    async def requests(request: web.Request) -> web.Response:
        op = request.query.get("operation")
        return web.json_response([r.to_json() for r in state.recorded(op)])

    @routes.delete(f"{ADMIN}/requests")
    async def clear_requests(_: web.Request) -> web.Response:
        state.requests.clear()
        return web.json_response({"ok": True})

    @routes.get(f"{ADMIN}/chat")
    async def chat(request: web.Request) -> web.Response:
        op = request.query.get("operation")
        return web.json_response([a.to_json() for a in state.chat_actions(op)])

    @routes.get(f"{ADMIN}/operations")
    async def operations(_: web.Request) -> web.Response:
        # What a client's test suite reads to know it calls every operation.
        return web.json_response([{"operation": op, "quota": state.rate(op)} for op in OPERATIONS])

    @routes.get(f"{ADMIN}/faults")
    async def faults(_: web.Request) -> web.Response:
        return web.json_response([r.to_json() for r in state.faults.rules()])

    @routes.post(f"{ADMIN}/faults")
    async def add_faults(request: web.Request) -> web.Response:
        data = await body(request)
        try:
            rules = [FaultRule.from_json(d) for d in (data if isinstance(data, list) else [data])]
        except ValueError as e:
            raise _bad_admin_body(str(e)) from e
        state.faults.add(*rules)
        return web.json_response([r.to_json() for r in state.faults.rules()])

    @routes.delete(f"{ADMIN}/faults")
    async def clear_faults(_: web.Request) -> web.Response:
        state.faults.clear()
        return web.json_response({"ok": True})

    @routes.put(f"{ADMIN}/quota")
    async def quota(request: web.Request) -> web.Response:
        data = await body(request)
        if not isinstance(data, dict) or set(data) != {"create_room_per_second"}:
            raise _bad_admin_body('the body is {"create_room_per_second": N or null}')
        rate = data["create_room_per_second"]
        if rate is not None and (not isinstance(rate, int | float) or rate <= 0):
            raise _bad_admin_body("create_room_per_second must be positive or null")
        state.set_quota(None if rate is None else float(rate))
        return web.json_response({"create_room_per_second": rate})

    @routes.put(f"{ADMIN}/logging-configurations")
    async def logging_configurations(request: web.Request) -> web.Response:
        data = await body(request)
        arns = data.get("arns") if isinstance(data, dict) else None
        if not isinstance(arns, list) or not all(isinstance(a, str) for a in arns):
            raise _bad_admin_body('body must be {"arns": [ARN, ...]}')
        bad = bad_logging_configuration_arns(arns)
        if bad:
            raise _bad_admin_body(f"not a logging configuration ARN: {bad[0]}")
        state.register_logging_configurations(arns)
        return web.json_response({"arns": sorted(state.logging_configurations)})

    @routes.post(f"{ADMIN}/reset")
    async def reset(_: web.Request) -> web.Response:
        state.reset()
        return web.json_response({"ok": True})

    return routes


class Emulator:
    """Emulator runs one local endpoint on the current event loop.

    Use it as `async with Emulator(settings) as emu:`; `emu.url` is then the
    endpoint URL and `emu.state` its rooms, requests and faults.
    """

    def __init__(self, settings: EmulatorSettings | None = None) -> None:
        self.settings = settings or EmulatorSettings()
        self.state = EmulatorState(self.settings)
        self._runner: _AwsRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The endpoint URL, once started."""
        return f"http://{self.settings.host}:{self.port}"

    async def start(self) -> None:
        """Bind and start serving; port 0 picks a free port."""
        self._runner = _AwsRunner(build_app(self.state), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        # The runner's first address is the one site just bound: (host, port, ...).
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop serving and close open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
