"""Each IVS Chat operation's quota, whether a call AWS may have run may be sent again, and its RPCs.

AWS gives every operation its own per-account rate, and none can be raised
(`ivschat-quotas.md`); each is paced as a bucket of its own. An operation is
safe to resend after an ambiguous outcome (a 5xx, a read timeout, a dropped
connection) only if running it twice does no harm. An outcome that AWS
certainly did not run (`Outcome.resend`: a throttle, a connection never made)
is resent for every operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final


@dataclass(frozen=True, slots=True)
class Operation:
    """Operation is one row: AWS's name, its quota, and its safety to resend."""

    name: str
    # Calls a second per account and region: AWS's quota.
    rate: float
    # Whether a call that AWS may have run may be sent again.
    resend_ambiguous: bool
    # What a caller must assume after an ambiguous outcome, for messages; a
    # read's (None) is that nothing changed.
    effect: str | None = "it may have taken effect"
    # The ErrorInfo metadata key, set to "true", that says so to programs.
    may_exist_key: str = "room_may_exist"
    # The request's AWS members that its proto names otherwise, and the proto
    # path of the message AWS's members sit in, so that a field AWS names in
    # its fieldList reaches the caller as the proto names it.
    proto_names: Mapping[str, str] = field(default_factory=dict)
    proto_prefix: str = ""
    # Whether the request carries secrets (a user id, chat attributes): AWS's
    # messages about its fields may repeat their values or keys, so they are
    # never passed on; only the member AWS named is.
    secret_input: bool = False
    # The RPCs ("package.Service/Method") through which a caller gets this
    # operation's work: those that send it, or, for the tag operations, those
    # that do their work through the resource; docs/calling.md lists them.
    rpcs: tuple[str, ...] = field(kw_only=True)

    @property
    def changes(self) -> bool:
        """Whether a call changes anything at AWS: False for the reads."""
        return self.effect is not None


_ARN: Final[Mapping[str, str]] = {"identifier": "arn"}
_ROOM_ARN: Final[Mapping[str, str]] = {"roomIdentifier": "room_arn"}
# A logging configuration's destination is a oneof of LoggingConfiguration,
# so AWS's destinationConfiguration.s3.bucketName is logging_configuration.s3.bucket_name.
_DESTINATION: Final[Mapping[str, str]] = {"destinationConfiguration": ""}
_LOGGING_CONFIGURATION: Final = "logging_configuration."
_PAGES: Final[Mapping[str, str]] = {"maxResults": "page_size", "nextToken": "page_token"}


def _rpc(service: str, *methods: str) -> tuple[str, ...]:
    return tuple(f"ivschat.v1.{service}/{method}" for method in methods)


_ROOMS: Final = "RoomService"
_CHAT: Final = "ChatService"
_LOGGING: Final = "LoggingConfigurationService"


def _rows(*rows: Operation) -> Mapping[str, Operation]:
    return {row.name: row for row in rows}


OPERATIONS: Final[Mapping[str, Operation]] = _rows(
    # Not idempotent: AWS takes no token, so a resend can make a second room.
    Operation(
        "CreateRoom",
        5,
        resend_ambiguous=False,
        effect="the room may exist",
        rpcs=_rpc(_ROOMS, "CreateRoom", "BatchCreateRooms"),
    ),
    Operation(
        "GetRoom",
        5,
        resend_ambiguous=True,
        effect=None,
        proto_names=_ARN,
        rpcs=_rpc(_ROOMS, "GetRoom"),
    ),
    Operation(
        "ListRooms",
        5,
        resend_ambiguous=True,
        effect=None,
        proto_names=_PAGES,
        rpcs=_rpc(_ROOMS, "ListRooms"),
    ),
    # Sets the same fields to the same values again.
    Operation(
        "UpdateRoom",
        5,
        resend_ambiguous=True,
        effect="the room may be updated",
        proto_names=_ARN,
        proto_prefix="room.",
        rpcs=_rpc(_ROOMS, "UpdateRoom"),
    ),
    Operation(
        "DeleteRoom",
        5,
        resend_ambiguous=True,
        effect="the room may be deleted",
        proto_names=_ARN,
        rpcs=_rpc(_ROOMS, "DeleteRoom"),
    ),
    # A spare token harms nothing, and expires.
    Operation(
        "CreateChatToken",
        200,
        resend_ambiguous=True,
        effect="a token may have been made",
        may_exist_key="token_may_exist",
        proto_names={**_ROOM_ARN, "sessionDurationInMinutes": "session_duration_minutes"},
        secret_input=True,
        rpcs=_rpc(_CHAT, "CreateChatToken"),
    ),
    # A duplicate event reaches every user in the room.
    Operation(
        "SendEvent",
        100,
        resend_ambiguous=False,
        effect="the event may have been sent",
        may_exist_key="event_may_have_been_sent",
        proto_names=_ROOM_ARN,
        secret_input=True,
        rpcs=_rpc(_CHAT, "SendEvent"),
    ),
    Operation(
        "DisconnectUser",
        100,
        resend_ambiguous=True,
        effect="the user may be disconnected",
        may_exist_key="user_may_be_disconnected",
        proto_names=_ROOM_ARN,
        secret_input=True,
        rpcs=_rpc(_CHAT, "DisconnectUser"),
    ),
    Operation(
        "DeleteMessage",
        100,
        resend_ambiguous=True,
        effect="the message may be deleted",
        may_exist_key="message_may_be_deleted",
        proto_names=_ROOM_ARN,
        rpcs=_rpc(_CHAT, "DeleteMessage"),
    ),
    # Not idempotent either: a resend can make a second configuration.
    Operation(
        "CreateLoggingConfiguration",
        3,
        resend_ambiguous=False,
        effect="the logging configuration may exist",
        may_exist_key="logging_configuration_may_exist",
        proto_names=_DESTINATION,
        proto_prefix=_LOGGING_CONFIGURATION,
        rpcs=_rpc(_LOGGING, "CreateLoggingConfiguration"),
    ),
    Operation(
        "GetLoggingConfiguration",
        3,
        resend_ambiguous=True,
        effect=None,
        proto_names=_ARN,
        rpcs=_rpc(_LOGGING, "GetLoggingConfiguration"),
    ),
    Operation(
        "ListLoggingConfigurations",
        3,
        resend_ambiguous=True,
        effect=None,
        proto_names=_PAGES,
        rpcs=_rpc(_LOGGING, "ListLoggingConfigurations"),
    ),
    # Sets the same name and destination again.
    Operation(
        "UpdateLoggingConfiguration",
        3,
        resend_ambiguous=True,
        effect="the logging configuration may be updated",
        may_exist_key="logging_configuration_may_exist",
        proto_names={**_ARN, **_DESTINATION},
        proto_prefix=_LOGGING_CONFIGURATION,
        rpcs=_rpc(_LOGGING, "UpdateLoggingConfiguration"),
    ),
    Operation(
        "DeleteLoggingConfiguration",
        3,
        resend_ambiguous=True,
        effect="the logging configuration may be deleted",
        may_exist_key="logging_configuration_may_exist",
        proto_names=_ARN,
        rpcs=_rpc(_LOGGING, "DeleteLoggingConfiguration"),
    ),
    # Tags are set through the resources themselves, as Google's APIs do: an
    # Update whose mask names tags diffs them and sends these two.
    Operation(
        "TagResource",
        10,
        resend_ambiguous=True,
        effect="the tags may be set",
        may_exist_key="tags_may_be_changed",
        rpcs=_rpc(_ROOMS, "UpdateRoom") + _rpc(_LOGGING, "UpdateLoggingConfiguration"),
    ),
    Operation(
        "UntagResource",
        10,
        resend_ambiguous=True,
        effect="the tags may be removed",
        may_exist_key="tags_may_be_changed",
        rpcs=_rpc(_ROOMS, "UpdateRoom") + _rpc(_LOGGING, "UpdateLoggingConfiguration"),
    ),
    # A resource's tags come back with it from its Get, as AWS's Get carries
    # them; an Update reads them with this first when the tags it sends could
    # be refused for the ones the resource has (the reserved tag, the limit).
    Operation(
        "ListTagsForResource",
        10,
        resend_ambiguous=True,
        effect=None,
        rpcs=_rpc(_ROOMS, "GetRoom", "UpdateRoom")
        + _rpc(_LOGGING, "GetLoggingConfiguration", "UpdateLoggingConfiguration"),
    ),
)
