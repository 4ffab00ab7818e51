"""Conversions between the proto contract and AWS's JSON members."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from ivschat.v1 import chat_service_pb2 as chat_pb
from ivschat.v1 import logging_configuration_service_pb2 as lc_pb
from ivschat.v1 import room_service_pb2 as pb

# The proto enum and AWS's strings, both ways; UNSPECIFIED is never sent.
TO_AWS_FALLBACK: Final[Mapping[int, str]] = {
    pb.FALLBACK_RESULT_ALLOW: "ALLOW",
    pb.FALLBACK_RESULT_DENY: "DENY",
}
FROM_AWS_FALLBACK: Final[Mapping[str, pb.FallbackResult]] = {
    "ALLOW": pb.FALLBACK_RESULT_ALLOW,
    "DENY": pb.FALLBACK_RESULT_DENY,
}


def to_aws_params(request: pb.CreateRoomRequest) -> dict[str, Any]:
    """CreateRoom's input with exactly the fields the caller set.

    An unknown FallbackResult number is passed through as an int, so the
    contract check reports it instead of this function guessing.
    """
    params: dict[str, Any] = {}
    if request.HasField("name"):
        params["name"] = request.name
    if request.HasField("maximum_message_length"):
        params["maximumMessageLength"] = request.maximum_message_length
    if request.HasField("maximum_message_rate_per_second"):
        params["maximumMessageRatePerSecond"] = request.maximum_message_rate_per_second
    if request.HasField("message_review_handler"):
        params["messageReviewHandler"] = to_aws_handler(request.message_review_handler)
    if request.tags:
        params["tags"] = dict(request.tags)
    if request.logging_configuration_identifiers:
        params["loggingConfigurationIdentifiers"] = list(request.logging_configuration_identifiers)
    return params


def to_aws_handler(handler: pb.MessageReviewHandler) -> dict[str, Any]:
    """AWS's MessageReviewHandler; an UNSPECIFIED fallback is left to AWS's default (ALLOW)."""
    aws_handler: dict[str, Any] = {"uri": handler.uri}
    fallback = handler.fallback_result
    if fallback != pb.FALLBACK_RESULT_UNSPECIFIED:
        aws_handler["fallbackResult"] = TO_AWS_FALLBACK.get(fallback, fallback)
    return aws_handler


# UpdateRoom's updatable fields (AIP-134 mask paths), each with its AWS member.
UPDATABLE: Final[Mapping[str, str]] = {
    "name": "name",
    "maximum_message_length": "maximumMessageLength",
    "maximum_message_rate_per_second": "maximumMessageRatePerSecond",
    "message_review_handler": "messageReviewHandler",
    "logging_configuration_identifiers": "loggingConfigurationIdentifiers",
}


def to_update_params(room: pb.Room, fields: Iterable[str]) -> dict[str, Any]:
    """UpdateRoom's input: room.arn, and exactly the named fields of room, zero or not.

    A handler whose uri is empty detaches the room's handler, as AWS documents.
    """
    params: dict[str, Any] = {"identifier": room.arn}
    for name in fields:
        value: Any
        if name == "message_review_handler":
            value = to_aws_handler(room.message_review_handler)
        elif name == "logging_configuration_identifiers":
            value = list(room.logging_configuration_identifiers)
        else:
            value = getattr(room, name)
        params[UPDATABLE[name]] = value
    return params


def set_fields(room: pb.Room) -> list[str]:
    """The updatable fields that room sets (to a value other than the default)."""
    out: list[str] = []
    for name in UPDATABLE:
        if name == "message_review_handler":
            if room.HasField(name):
                out.append(name)
        elif getattr(room, name):
            out.append(name)
    return out


def _set_times(target: Any, source: Mapping[str, Any]) -> None:
    for member, field in (("createTime", "create_time"), ("updateTime", "update_time")):
        value = source.get(member)
        if isinstance(value, datetime):
            getattr(target, field).FromDatetime(value)


def _set_handler(target: pb.MessageReviewHandler, handler: Mapping[str, Any]) -> None:
    target.uri = handler.get("uri", "")
    target.fallback_result = FROM_AWS_FALLBACK.get(
        handler.get("fallbackResult", ""), pb.FALLBACK_RESULT_UNSPECIFIED
    )


def to_room_summary(summary: Mapping[str, Any]) -> pb.RoomSummary:
    """A RoomSummary from one of AWS's ListRooms rooms: every member AWS's has."""
    out = pb.RoomSummary(
        arn=summary.get("arn", ""),
        id=summary.get("id", ""),
        name=summary.get("name", ""),
        tags=summary.get("tags") or {},
        logging_configuration_identifiers=summary.get("loggingConfigurationIdentifiers") or [],
    )
    _set_times(out, summary)
    handler = summary.get("messageReviewHandler")
    if handler is not None:
        _set_handler(out.message_review_handler, handler)
    return out


def to_room(room: Mapping[str, Any]) -> pb.Room:
    """A Room from AWS's CreateRoom (or GetRoom) output."""
    out = pb.Room(
        arn=room.get("arn", ""),
        id=room.get("id", ""),
        name=room.get("name", ""),
        maximum_message_length=room.get("maximumMessageLength", 0),
        maximum_message_rate_per_second=room.get("maximumMessageRatePerSecond", 0),
        tags=room.get("tags") or {},
        logging_configuration_identifiers=room.get("loggingConfigurationIdentifiers") or [],
    )
    _set_times(out, room)
    handler = room.get("messageReviewHandler")
    if handler is not None:
        _set_handler(out.message_review_handler, handler)
    return out


# The proto's capabilities and AWS's strings; UNSPECIFIED is never sent.
TO_AWS_CAPABILITY: Final[Mapping[int, str]] = {
    chat_pb.CHAT_TOKEN_CAPABILITY_SEND_MESSAGE: "SEND_MESSAGE",
    chat_pb.CHAT_TOKEN_CAPABILITY_DISCONNECT_USER: "DISCONNECT_USER",
    chat_pb.CHAT_TOKEN_CAPABILITY_DELETE_MESSAGE: "DELETE_MESSAGE",
}


def to_chat_token_params(request: chat_pb.CreateChatTokenRequest) -> dict[str, Any]:
    """CreateChatToken's input with exactly the fields the caller set.

    A capability that is no known number is passed through as an int, so the
    contract check reports it at its index instead of this function guessing.
    """
    params: dict[str, Any] = {"roomIdentifier": request.room_arn, "userId": request.user_id}
    if request.capabilities:
        params["capabilities"] = [TO_AWS_CAPABILITY.get(c, c) for c in request.capabilities]
    if request.HasField("session_duration_minutes"):
        params["sessionDurationInMinutes"] = request.session_duration_minutes
    if request.attributes:
        params["attributes"] = dict(request.attributes)
    return params


def to_send_event_params(request: chat_pb.SendEventRequest) -> dict[str, Any]:
    """SendEvent's input; request_id is the facade's own and never sent."""
    params: dict[str, Any] = {"roomIdentifier": request.room_arn, "eventName": request.event_name}
    if request.attributes:
        params["attributes"] = dict(request.attributes)
    return params


def to_disconnect_user_params(request: chat_pb.DisconnectUserRequest) -> dict[str, Any]:
    """DisconnectUser's input with exactly the fields the caller set."""
    params: dict[str, Any] = {"roomIdentifier": request.room_arn, "userId": request.user_id}
    if request.HasField("reason"):
        params["reason"] = request.reason
    return params


def to_delete_message_params(request: chat_pb.DeleteMessageRequest) -> dict[str, Any]:
    """DeleteMessage's input with exactly the fields the caller set."""
    params: dict[str, Any] = {"roomIdentifier": request.room_arn, "id": request.id}
    if request.HasField("reason"):
        params["reason"] = request.reason
    return params


def to_chat_token(result: Mapping[str, Any]) -> chat_pb.CreateChatTokenResponse:
    """A CreateChatTokenResponse from AWS's CreateChatToken output."""
    out = chat_pb.CreateChatTokenResponse(token=result.get("token", ""))
    for member, target in (
        ("tokenExpirationTime", out.token_expiration_time),
        ("sessionExpirationTime", out.session_expiration_time),
    ):
        value = result.get(member)
        if isinstance(value, datetime):
            target.FromDatetime(value)
    return out


# A logging configuration's destinations: the oneof's field, AWS's member,
# and the one string each holds, by its proto and AWS names.
DESTINATIONS: Final[Mapping[str, tuple[str, str, str]]] = {
    "s3": ("s3", "bucket_name", "bucketName"),
    "cloud_watch_logs": ("cloudWatchLogs", "log_group_name", "logGroupName"),
    "firehose": ("firehose", "delivery_stream_name", "deliveryStreamName"),
}
FROM_AWS_STATE: Final[Mapping[str, lc_pb.LoggingConfigurationState]] = {
    "CREATING": lc_pb.LOGGING_CONFIGURATION_STATE_CREATING,
    "CREATE_FAILED": lc_pb.LOGGING_CONFIGURATION_STATE_CREATE_FAILED,
    "DELETING": lc_pb.LOGGING_CONFIGURATION_STATE_DELETING,
    "DELETE_FAILED": lc_pb.LOGGING_CONFIGURATION_STATE_DELETE_FAILED,
    "UPDATING": lc_pb.LOGGING_CONFIGURATION_STATE_UPDATING,
    "UPDATE_FAILED": lc_pb.LOGGING_CONFIGURATION_STATE_UPDATE_FAILED,
    "ACTIVE": lc_pb.LOGGING_CONFIGURATION_STATE_ACTIVE,
}
# UpdateLoggingConfiguration's updatable fields (AIP-134 mask paths), each
# with its AWS member: the destinations all set the one destinationConfiguration.
LOGGING_UPDATABLE: Final[Mapping[str, str]] = {
    "name": "name",
    **dict.fromkeys(DESTINATIONS, "destinationConfiguration"),
}


def to_aws_destination(config: lc_pb.LoggingConfiguration) -> dict[str, Any] | None:
    """AWS's DestinationConfiguration for the destination config sets, or None if it sets none."""
    which = config.WhichOneof("destination")
    if which is None:
        return None
    member, field, aws_field = DESTINATIONS[which]
    return {member: {aws_field: getattr(getattr(config, which), field)}}


def to_create_logging_configuration_params(
    request: lc_pb.CreateLoggingConfigurationRequest,
) -> dict[str, Any]:
    """CreateLoggingConfiguration's input with exactly the fields the caller set.

    An empty name is left out: AWS's default is the same empty name. The
    output fields (arn, id, times, state) are ignored, as the proto says.
    """
    config = request.logging_configuration
    params: dict[str, Any] = {}
    if config.name:
        params["name"] = config.name
    destination = to_aws_destination(config)
    if destination is not None:
        params["destinationConfiguration"] = destination
    if config.tags:
        params["tags"] = dict(config.tags)
    return params


def to_update_logging_configuration_params(
    config: lc_pb.LoggingConfiguration, fields: Iterable[str]
) -> dict[str, Any]:
    """UpdateLoggingConfiguration's input: config.arn, and the named fields of config.

    A destination field names the destination config sets, which AWS takes
    whole; the caller's checks make sure there is one.
    """
    params: dict[str, Any] = {"identifier": config.arn}
    for name in fields:
        if name == "name":
            params["name"] = config.name
        elif (destination := to_aws_destination(config)) is not None:
            params["destinationConfiguration"] = destination
    return params


def _fill_logging_configuration(
    target: lc_pb.LoggingConfiguration | lc_pb.LoggingConfigurationSummary,
    source: Mapping[str, Any],
) -> None:
    """Every member AWS returns of a logging configuration, as its full form and summary share."""
    target.arn = source.get("arn", "")
    target.id = source.get("id", "")
    target.name = source.get("name", "")
    target.tags.update(source.get("tags") or {})
    target.state = FROM_AWS_STATE.get(
        source.get("state", ""), lc_pb.LOGGING_CONFIGURATION_STATE_UNSPECIFIED
    )
    _set_times(target, source)
    destination = source.get("destinationConfiguration") or {}
    for which, (member, field, aws_field) in DESTINATIONS.items():
        if member in destination:
            setattr(getattr(target, which), field, destination[member].get(aws_field, ""))
            break


def to_logging_configuration(source: Mapping[str, Any]) -> lc_pb.LoggingConfiguration:
    """A LoggingConfiguration from AWS's Create, Get or Update output, or a listing's summary."""
    out = lc_pb.LoggingConfiguration()
    _fill_logging_configuration(out, source)
    return out


def to_logging_configuration_summary(
    source: Mapping[str, Any],
) -> lc_pb.LoggingConfigurationSummary:
    """A LoggingConfigurationSummary from one of ListLoggingConfigurations' items."""
    out = lc_pb.LoggingConfigurationSummary()
    _fill_logging_configuration(out, source)
    return out
