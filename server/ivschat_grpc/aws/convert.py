"""Conversions between the proto contract and AWS's JSON members."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

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
