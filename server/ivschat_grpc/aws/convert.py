"""Conversions between the proto contract and AWS's JSON members."""

from __future__ import annotations

from collections.abc import Mapping
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
        handler = request.message_review_handler
        aws_handler: dict[str, Any] = {"uri": handler.uri}
        fallback = handler.fallback_result
        if fallback != pb.FALLBACK_RESULT_UNSPECIFIED:
            aws_handler["fallbackResult"] = TO_AWS_FALLBACK.get(fallback, fallback)
        params["messageReviewHandler"] = aws_handler
    if request.tags:
        params["tags"] = dict(request.tags)
    if request.logging_configuration_identifiers:
        params["loggingConfigurationIdentifiers"] = list(request.logging_configuration_identifiers)
    return params


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
    for member, target in (("createTime", out.create_time), ("updateTime", out.update_time)):
        value = room.get(member)
        if isinstance(value, datetime):
            target.FromDatetime(value)
    handler = room.get("messageReviewHandler")
    if handler is not None:
        out.message_review_handler.uri = handler.get("uri", "")
        out.message_review_handler.fallback_result = FROM_AWS_FALLBACK.get(
            handler.get("fallbackResult", ""), pb.FALLBACK_RESULT_UNSPECIFIED
        )
    return out
