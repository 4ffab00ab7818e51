"""What the facade checks of each request before AWS sees it: the model's rules, then its own.

One function per operation, which the servicer and the batch stream both
call, so that a request is judged the same way however it arrives.
"""

from __future__ import annotations

import uuid
from typing import Any

from ivschat.v1 import room_service_pb2 as pb

from ivschat_grpc.aws import convert, validation
from ivschat_grpc.core.creator import RESERVED_TAG
from ivschat_grpc.core.violations import MapKey, Violation


def get_room(request: pb.GetRoomRequest) -> tuple[dict[str, Any], list[Violation]]:
    """GetRoom's AWS members for request, and every rule it breaks, named as the proto does."""
    params = {"identifier": request.arn}
    return params, _renamed(validation.check("GetRoom", params), {"identifier": "arn"})


def delete_room(request: pb.DeleteRoomRequest) -> tuple[dict[str, Any], list[Violation]]:
    """DeleteRoom's AWS members for request, and every rule it breaks, named as the proto does."""
    params = {"identifier": request.arn}
    return params, _renamed(validation.check("DeleteRoom", params), {"identifier": "arn"})


def _renamed(violations: list[Violation], names: dict[str, str]) -> list[Violation]:
    """violations with the AWS members that the proto names otherwise renamed."""
    return [
        Violation((names.get(str(v.path[0]), v.path[0]), *v.path[1:]), v.message) if v.path else v
        for v in violations
    ]


def create_room(request: pb.CreateRoomRequest) -> tuple[dict[str, Any], list[Violation]]:
    """CreateRoom's AWS members for request, and every rule it breaks (none: it may be sent)."""
    params = convert.to_aws_params(request)
    return params, validation.check("CreateRoom", params) + _facade_rules(request)


def _facade_rules(request: pb.CreateRoomRequest) -> list[Violation]:
    """The facade's own rules for request_id and its reserved tag."""
    out: list[Violation] = []
    if RESERVED_TAG in request.tags:
        out.append(Violation(("tags", MapKey(RESERVED_TAG)), "is reserved for request_id"))
    if request.HasField("request_id"):
        try:
            canonical = str(uuid.UUID(request.request_id))
        except ValueError:
            canonical = ""
        if not canonical or canonical != request.request_id.lower():
            out.append(
                Violation(
                    ("requestId",), "must be a UUID like 3f2b9a4e-6c1d-4e8a-9b7f-2d5c8e1a0b3c"
                )
            )
        tags_max = validation.bounds("Tags").max
        if len(request.tags) >= tags_max:
            out.append(
                Violation(
                    ("tags",),
                    f"must hold at most {tags_max - 1} tags with request_id, whose tag counts too",
                )
            )
    return out
