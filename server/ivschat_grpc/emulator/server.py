"""The local IVS Chat endpoint: AWS's REST-JSON wire protocol on loopback.

It speaks the room operations (CreateRoom, GetRoom, ListRooms, UpdateRoom,
DeleteRoom) and the chat operations (CreateChatToken, SendEvent,
DisconnectUser, DeleteMessage) the way AWS does (SigV4, modeled errors with
x-amzn-ErrorType, ISO 8601 times), keeps the rooms in memory, keeps what the
chat operations did (events sent, users disconnected, messages deleted, tokens
made, without the tokens themselves) in `EmulatorState.chat`, records every
request it receives, enforces every operation's AWS quota (each can be
changed or turned off) and
misbehaves on demand through fault rules. Admin routes under /_emulator/ are
unsigned: the endpoint binds to loopback and holds nothing real.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import string
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
ADMIN: Final = "/_emulator"
_ID_ALPHABET: Final = string.ascii_letters + string.digits
_POSITION: Final = re.compile(r"[0-9]{1,9}")
# How an operation's validation error opens, where it is not the count.
_INVALID_INPUT: Final[Mapping[str, str]] = {
    "GetRoom": "identifier is invalid",
    "DeleteRoom": "identifier is invalid",
    "UpdateRoom": "identifier is invalid",
    "ListRooms": "invalid ListRooms input",
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
    logging_configurations: frozenset[str] = frozenset()
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
    room_id: str | None = None

    def to_json(self) -> Json:
        """The record's JSON form."""
        return {
            "operation": self.operation,
            "requestId": self.request_id,
            "body": self.body,
            "status": self.status,
            "error": self.error,
            "roomId": self.room_id,
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
    violations = validation.check(operation, params) + (extra or [])
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


class EmulatorState:
    """EmulatorState is everything the endpoint knows, readable by tests."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        self.rooms: dict[str, Json] = {}
        self.chat: deque[ChatAction] = deque(maxlen=settings.record_limit)
        # The furthest position a ListRooms token has named, which stays valid.
        self._furthest_token = 0
        self.requests: deque[RecordedRequest] = deque(maxlen=settings.record_limit)
        self.faults = FaultPlan(settings.faults)
        self.logging_configurations: set[str] = set(settings.logging_configurations)
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
        """Forget rooms, requests and faults; keep the settings."""
        self.rooms.clear()
        self.chat.clear()
        self.requests.clear()
        self.faults.clear()
        self._furthest_token = 0

    def recorded(self, operation: str | None = None) -> list[RecordedRequest]:
        """The recorded requests, optionally for one operation."""
        return [r for r in self.requests if operation is None or r.operation == operation]

    def arn(self, room_id: str) -> str:
        """The ARN of a room in this endpoint's account and region."""
        return f"arn:aws:ivschat:{self.settings.region}:{self.settings.account}:room/{room_id}"

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
        for arn in params.get("loggingConfigurationIdentifiers", []):
            if arn not in self.logging_configurations:
                raise AwsError(
                    Outcome.NOT_FOUND,
                    f"Logging configuration {arn} not found",
                    resourceId=arn.rsplit("/", 1)[-1],
                    resourceType="LOGGING_CONFIGURATION",
                )

    def _room_for(self, operation: str, params: Json, member: str = "identifier") -> Json:
        _refuse_invalid(operation, params)
        identifier = str(params[member])
        room_id = identifier.rsplit("/", 1)[-1]
        room = self.rooms.get(room_id)
        if room is None or room["arn"] != identifier:
            raise AwsError(
                Outcome.NOT_FOUND,
                f"Room {identifier} not found",
                resourceId=room_id,
                resourceType="ROOM",
            )
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
        # The model says only that a token is a string; this endpoint's tokens are its own.
        bad_token: list[Violation] = []
        start = 0
        token = params.get("nextToken")
        if token and isinstance(token, str):
            try:
                position = base64.urlsafe_b64decode(token.encode()).decode()
            except ValueError:
                position = ""
            # Only this endpoint's own tokens: a position among the rooms, in digits.
            # A position past the end that it gave out is still its own: rooms
            # deleted since leave a shorter list, and the page is then empty.
            start = int(position) if _POSITION.fullmatch(position) else -1
            if not 0 <= start <= max(len(self.rooms), self._furthest_token):
                start = 0
                bad_token.append(Violation(("nextToken",), "is not a valid token"))
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
        page = rooms[start : start + limit]
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
        if start + limit < len(rooms):
            out["nextToken"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
            self._furthest_token = max(self._furthest_token, start + limit)
        return out


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
}


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

    async def aws(request: web.Request) -> web.StreamResponse:
        operation = request.match_info["operation"]
        request_id = str(uuid.uuid4())
        raw = await request.read()
        record = RecordedRequest(operation, request_id, None)
        try:
            record.body = json.loads(raw) if raw else {}
        except (ValueError, RecursionError):
            # RecursionError: a body nested deeper than the parser goes ('[' * 1000).
            record.body = raw.decode("utf-8", "replace")
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
        bucket = state.quota if operation == "CreateRoom" else state.quotas.get(operation)
        if bucket is not None and not bucket.try_take():
            raise AwsError(
                Outcome.THROTTLED,
                f"Rate exceeded for {operation}",
                resourceId=operation,
                resourceType="ROOM",
                limit=int(bucket.rate),
            )
        rule = state.faults.take(operation, params.get("name"))
        handler, status = OPERATIONS[operation]
        ran = False
        if rule is not None:
            if rule.latency_ms:
                await asyncio.sleep(rule.latency_ms / 1000)
            if rule.create:
                # The operation runs (a room is made, or deleted) before the fault.
                result, ran = handler(state, params), True
                if operation == "CreateRoom" and result is not None:
                    record.room_id = result["id"]
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
        if operation == "CreateRoom" and result is not None:
            record.room_id = result["id"]
        if result is None:
            return web.Response(status=status, headers={"x-amzn-RequestId": record.request_id})
        return web.json_response(
            result, status=status, headers={"x-amzn-RequestId": record.request_id}
        )

    app = web.Application(middlewares=[_aws_shaped_http_errors], client_max_size=MAX_BODY_BYTES)
    app.add_routes(_admin_routes(state))
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
    defaults: Mapping[str, Json] = {
        Outcome.VALIDATION: {
            "reason": "FIELD_VALIDATION_FAILED",
            "fieldList": [{"name": "name", "message": "Injected validation failure"}],
        },
        Outcome.CONFLICT: {"resourceId": "InjectedRoom", "resourceType": "ROOM"},
        Outcome.NOT_FOUND: {"resourceId": "InjectedRoom", "resourceType": "ROOM"},
        Outcome.QUOTA_EXCEEDED: {
            "resourceId": "InjectedRoom",
            "resourceType": "ROOM",
            "limit": 50000,
        },
        Outcome.THROTTLED: {
            "resourceId": "CreateRoom",
            "resourceType": "ROOM",
            "limit": 5,
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
        state.logging_configurations = set(arns)
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
