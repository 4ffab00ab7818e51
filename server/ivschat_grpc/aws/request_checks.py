"""What the facade checks of each request before AWS sees it: the model's rules, then its own.

One function per operation, which the servicer and the batch stream both
call, so that a request is judged the same way however it arrives.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ivschat.v1 import chat_service_pb2 as chat_pb
from ivschat.v1 import logging_configuration_service_pb2 as lc_pb
from ivschat.v1 import room_service_pb2 as pb

from ivschat_grpc.aws import convert, validation
from ivschat_grpc.core.creator import RESERVED_TAG
from ivschat_grpc.core.page_tokens import BadPageToken, PageTokens
from ivschat_grpc.core.tag_sync import Update, is_aws_own, is_kept
from ivschat_grpc.core.violations import MapKey, Path, Violation

# ListRooms' filters: each request field with its AWS member. Empty is no filter.
LIST_FILTERS: Final[Mapping[str, str]] = {
    "name": "name",
    "message_review_handler_uri": "messageReviewHandlerUri",
    "logging_configuration_identifier": "loggingConfigurationIdentifier",
}
_HANDLER: Final = "message_review_handler"
_HANDLER_PARTS: Final = frozenset({f"{_HANDLER}.uri", f"{_HANDLER}.fallback_result"})
# The mask path that names a resource's tags, which TagResource and
# UntagResource change rather than its own update operation.
TAGS: Final = "tags"
# Every path update_mask may name; "*" names them all.
MASK_PATHS: Final = (*convert.UPDATABLE, TAGS, *sorted(_HANDLER_PARTS))


def by_arn(operation: str, arn: str) -> tuple[dict[str, Any], list[Violation]]:
    """The AWS members of an operation that names one resource by its ARN (GetRoom,
    DeleteLoggingConfiguration), and every rule arn breaks."""
    params = {"identifier": arn}
    return params, _renamed(validation.check(operation, params), {"identifier": "arn"})


def get_room(request: pb.GetRoomRequest) -> tuple[dict[str, Any], list[Violation]]:
    """GetRoom's AWS members for request, and every rule it breaks, named as the proto does."""
    return by_arn("GetRoom", request.arn)


def delete_room(request: pb.DeleteRoomRequest) -> tuple[dict[str, Any], list[Violation]]:
    """DeleteRoom's AWS members for request, and every rule it breaks, named as the proto does."""
    return by_arn("DeleteRoom", request.arn)


def list_rooms(
    request: pb.ListRoomsRequest, tokens: PageTokens
) -> tuple[dict[str, Any], list[Violation]]:
    """ListRooms' AWS members for request, and every rule it breaks, named as the proto does.

    Paged as _paged says; page_token must also be one issued for the same filters.
    """
    filters = list_filters(request)
    return _paged(
        "ListRooms",
        request.page_size,
        request.page_token,
        tokens,
        filters,
        {LIST_FILTERS[field]: value for field, value in filters.items()},
    )


def list_logging_configurations(
    request: lc_pb.ListLoggingConfigurationsRequest, tokens: PageTokens
) -> tuple[dict[str, Any], list[Violation]]:
    """ListLoggingConfigurations' AWS members for request, and every rule it breaks (_paged)."""
    return _paged(
        "ListLoggingConfigurations", request.page_size, request.page_token, tokens, {}, {}
    )


def _paged(
    listing: str,
    page_size: int,
    page_token: str,
    tokens: PageTokens,
    filters: Mapping[str, str],
    params: dict[str, Any],
) -> tuple[dict[str, Any], list[Violation]]:
    """A listing's AWS members (params: its filters' already), and the rules its paging breaks.

    page_size 0 is the most AWS takes and above it is that most (AIP-158);
    page_token must be one this service issued from the same listing for the
    same filters, and AWS's token inside it is what is sent.
    """
    out: list[Violation] = []
    members = validation.service_model()["shapes"][validation.input_shape_name(listing)]["members"]
    most = validation.bounds(members["maxResults"]["shape"]).max
    if page_size < 0:
        out.append(
            Violation(
                ("page_size",),
                f"must not be negative: 0 means {most}, and a size above {most} is taken as {most}",
            )
        )
    params = {"maxResults": most if page_size <= 0 else min(page_size, most), **params}
    if page_token:
        try:
            params["nextToken"] = tokens.open(page_token, filters, listing=listing)
        except BadPageToken as e:
            out.append(Violation(("page_token",), str(e)))
    checked = validation.check(listing, params)
    return params, out + _renamed(checked, {"nextToken": "page_token", "maxResults": "page_size"})


def list_filters(request: pb.ListRoomsRequest) -> dict[str, str]:
    """The filters request sets, by field name, as a page token is bound to them."""
    return {field: value for field in LIST_FILTERS if (value := getattr(request, field))}


def update_room(request: pb.UpdateRoomRequest) -> tuple[Update, list[Violation]]:
    """UpdateRoom's AWS work for request, and every rule it breaks, named as the proto does.

    Only the masked fields are sent, each as it is in room, zero or not. AWS
    replaces a room's review handler whole, so its uri and fallback_result are
    masked together (or as message_review_handler); a lone
    message_review_handler.uri is taken only empty, which detaches the handler.
    Masked tags (or, with no mask, tags that room sets) become the room's
    tags, through TagResource and UntagResource (core/tag_sync.py); a mask of
    tags alone sends no UpdateRoom.
    """
    room = request.room
    paths = list(request.update_mask.paths)
    out = unknown_mask_paths("UpdateRoom", paths, MASK_PATHS)
    fields: list[str]
    if not paths:
        fields = convert.set_fields(room)
        with_tags = bool(room.tags)
    elif "*" in paths:
        fields = list(convert.UPDATABLE)
        with_tags = True
    else:
        masked = set(paths)
        parts = masked & _HANDLER_PARTS
        detach = parts == {f"{_HANDLER}.uri"} and not room.message_review_handler.uri
        if _HANDLER not in masked and parts and parts != _HANDLER_PARTS and not detach:
            out.append(
                Violation(
                    ("update_mask",),
                    f"names {' '.join(sorted(parts))} alone: AWS replaces a room's review "
                    f"handler whole, so mask {_HANDLER}, or both {_HANDLER}.uri and "
                    f"{_HANDLER}.fallback_result (an empty {_HANDLER}.uri alone detaches it)",
                )
            )
        if parts:
            masked.add(_HANDLER)
        fields = [field for field in convert.UPDATABLE if field in masked]
        with_tags = TAGS in masked
    params = convert.to_update_params(room, fields)
    checked = _renamed(validation.check("UpdateRoom", params), {"identifier": "arn"})
    out += [Violation(("room", *v.path), v.message) for v in checked]
    update, tag_violations = tags_update(
        "UpdateRoom",
        params,
        arn=room.arn,
        read=("GetRoom", {"identifier": room.arn}),
        tags=dict(room.tags) if with_tags else None,
        path=("room", TAGS),
        fields=bool(fields) or not with_tags,
    )
    return update, out + tag_violations


def tags_update(
    operation: str,
    params: dict[str, Any],
    *,
    arn: str,
    read: tuple[str, dict[str, Any]],
    tags: dict[str, str] | None,
    path: Path,
    fields: bool,
) -> tuple[Update, list[Violation]]:
    """An Update RPC's work (core/tag_sync.Update), and the rules its tags break on their own.

    operation with params is the resource's own update, sent when fields;
    read gives the resource and its tags when it is not; tags (None: not
    masked) sit at path in the request. The rules that need the resource's
    current tags are tags_against's.

    AWS's own tags are left to tags_against too: a resource read and sent back
    carries them, and AWS does not count them in its limit.
    """
    own = None if tags is None else {k: v for k, v in tags.items() if not is_aws_own(k)}
    found = validation.check("Tags", own) if own is not None else []
    violations = [Violation((*path, *v.path), v.message) for v in found]
    update = Update(
        operation=operation,
        params=params if fields else None,
        arn=arn,
        read=read,
        tags=tags,
        tags_path=path,
        check_first=tags is not None and tags_need_current(tags),
    )
    return update, violations


def tags_need_current(desired: Mapping[str, str]) -> bool:
    """Whether tags_against could refuse desired: only then must the tags be read first."""
    return any(is_kept(key) for key in desired) or len(desired) >= validation.bounds("Tags").max


def tags_against(
    current: Mapping[str, str], desired: Mapping[str, str], path: Path
) -> list[Violation]:
    """The rules desired (at path) breaks given the resource's current tags.

    The reserved request_id tag is the service's, and the aws: tags are AWS's:
    desired may name one only with the value the resource has (as a resource
    read and sent back does). The reserved tag counts in AWS's limit whenever
    the resource carries it; AWS's own do not.
    """
    out: list[Violation] = []
    for key in sorted(k for k in desired if is_kept(k) and desired[k] != current.get(k)):
        has = "carries another value" if key in current else "has none"
        whose = "reserved for request_id" if key == RESERVED_TAG else "AWS's own"
        out.append(
            Violation(
                (*path, MapKey(key)),
                f"is {whose}: it cannot be set or changed (the resource {has}); "
                "leave it out and it is kept",
            )
        )
    most = validation.bounds("Tags").max
    own = sum(1 for key in desired if not is_kept(key))
    if RESERVED_TAG in current and own >= most:
        out.append(
            Violation(
                path,
                f"must hold at most {most - 1} tags besides {RESERVED_TAG}, which the resource "
                f"carries and which counts in AWS's {most}, not {own}",
            )
        )
    return out


def unknown_mask_paths(operation: str, paths: list[str], allowed: Sequence[str]) -> list[Violation]:
    """A violation at update_mask for each of paths that operation cannot change.

    allowed are the paths it can; "*" names them all.
    """
    listed = ", ".join(allowed)
    return [
        Violation(
            ("update_mask",),
            f"names {_shown(path)!r}, which {operation} cannot change; it may name "
            f'{listed}, or "*" for all of them',
        )
        for path in paths
        if path != "*" and path not in allowed
    ]


# An unknown mask path is shown to its caller cut to this many characters: a
# path is the caller's own text, and ten of them whole could overflow the
# header the status travels in.
_MAX_SHOWN_PATH: Final = 64


def _shown(path: str) -> str:
    return path if len(path) <= _MAX_SHOWN_PATH else path[:_MAX_SHOWN_PATH] + "…"


# The AWS members that the chat protos name otherwise.
_CHAT_NAMES: Final[Mapping[str, str]] = {
    "roomIdentifier": "room_arn",
    "userId": "user_id",
    "sessionDurationInMinutes": "session_duration_minutes",
    "eventName": "event_name",
}
_CAPABILITY_NAMES: Final = ", ".join(
    chat_pb.ChatTokenCapability.Name(n) for n in convert.TO_AWS_CAPABILITY
)
# Secret maps: a violation inside one names the map, never the entry, whose
# path would hold its key (keys are treated as secret as values are).
_SECRET_MAPS: Final = frozenset({"attributes"})


def create_chat_token(
    request: chat_pb.CreateChatTokenRequest,
) -> tuple[dict[str, Any], list[Violation]]:
    """CreateChatToken's AWS members for request, and every rule it breaks, named as the proto does.

    A capability is refused when UNSPECIFIED, and when it repeats one given
    earlier in the list: the proto asks for each at most once, so a repeat is a
    caller's mistake worth hearing about rather than something to drop quietly.
    """
    params = convert.to_chat_token_params(request)
    own: dict[Path, Violation] = {}
    seen: dict[int, int] = {}
    for i, capability in enumerate(request.capabilities):
        if capability == chat_pb.CHAT_TOKEN_CAPABILITY_UNSPECIFIED:
            own[("capabilities", i)] = Violation(
                ("capabilities", i),
                "must not be CHAT_TOKEN_CAPABILITY_UNSPECIFIED; name a capability, "
                "or leave the list empty for a token that only views",
            )
        elif capability not in convert.TO_AWS_CAPABILITY:
            own[("capabilities", i)] = Violation(
                ("capabilities", i), f"must be one of {_CAPABILITY_NAMES}, not {capability}"
            )
        elif capability in seen:
            own[("capabilities", i)] = Violation(
                ("capabilities", i), f"repeats capabilities[{seen[capability]}]"
            )
        else:
            seen[capability] = i
    model = [v for v in validation.check("CreateChatToken", params) if v.path not in own]
    return params, _chat_named(model + list(own.values()))


def send_event(request: chat_pb.SendEventRequest) -> tuple[dict[str, Any], list[Violation]]:
    """SendEvent's AWS members for request, and every rule it breaks, named as the proto does."""
    params = convert.to_send_event_params(request)
    violations = validation.check("SendEvent", params)
    if request.HasField("request_id"):
        violations += _uuid_rule(request.request_id)
    return params, _chat_named(violations)


def disconnect_user(
    request: chat_pb.DisconnectUserRequest,
) -> tuple[dict[str, Any], list[Violation]]:
    """DisconnectUser's AWS members for request, and every rule it breaks, proto-named."""
    params = convert.to_disconnect_user_params(request)
    return params, _chat_named(validation.check("DisconnectUser", params))


def delete_message(
    request: chat_pb.DeleteMessageRequest,
) -> tuple[dict[str, Any], list[Violation]]:
    """DeleteMessage's AWS members for request, and every rule it breaks, proto-named."""
    params = convert.to_delete_message_params(request)
    return params, _chat_named(validation.check("DeleteMessage", params))


def _chat_named(violations: list[Violation]) -> list[Violation]:
    """violations renamed as the chat protos name them, with secret maps' entries unnamed."""
    out: list[Violation] = []
    for v in _renamed(violations, dict(_CHAT_NAMES)):
        if len(v.path) > 1 and v.path[0] in _SECRET_MAPS:
            v = Violation(v.path[:1], "has an entry that " + v.message.removeprefix("must "))
        out.append(v)
    return out


def _renamed(violations: list[Violation], names: dict[str, str]) -> list[Violation]:
    """violations with the AWS members that the proto names otherwise renamed."""
    return [
        Violation((names.get(str(v.path[0]), v.path[0]), *v.path[1:]), v.message) if v.path else v
        for v in violations
    ]


def create_room(request: pb.CreateRoomRequest) -> tuple[dict[str, Any], list[Violation]]:
    """CreateRoom's AWS members for request, and every rule it breaks (none: it may be sent)."""
    params = convert.to_aws_params(request)
    request_id = request.request_id if request.HasField("request_id") else None
    return params, validation.check("CreateRoom", params) + _request_id_rules(
        request.tags, request_id, ("tags",)
    )


def _request_id_rules(
    tags: Mapping[str, str], request_id: str | None, tags_path: Path
) -> list[Violation]:
    """The facade's own rules for a create's request_id and its reserved tag (tags at tags_path)."""
    out: list[Violation] = []
    if RESERVED_TAG in tags:
        out.append(Violation((*tags_path, MapKey(RESERVED_TAG)), "is reserved for request_id"))
    if request_id is not None:
        out += _uuid_rule(request_id)
        tags_max = validation.bounds("Tags").max
        if len(tags) >= tags_max:
            out.append(
                Violation(
                    tags_path,
                    f"must hold at most {tags_max - 1} tags with request_id, whose tag counts too",
                )
            )
    return out


# Where a logging configuration's AWS members sit in the proto: in
# logging_configuration, its destination's oneof members there directly.
_CONFIG: Final = "logging_configuration"
_DESTINATION: Final = "destinationConfiguration"
_DESTINATION_NAMES: Final = ", ".join(convert.DESTINATIONS)
# UpdateLoggingConfiguration's mask paths; "*" names them all.
LOGGING_MASK_PATHS: Final = (*convert.LOGGING_UPDATABLE, TAGS)


def create_logging_configuration(
    request: lc_pb.CreateLoggingConfigurationRequest,
) -> tuple[dict[str, Any], list[Violation]]:
    """CreateLoggingConfiguration's AWS members for request, and every rule it breaks.

    Exactly one destination is required; the oneof allows at most one, so the
    rule broken is setting none.
    """
    params = convert.to_create_logging_configuration_params(request)
    config = request.logging_configuration
    request_id = request.request_id if request.HasField("request_id") else None
    checked = _in_config(validation.check("CreateLoggingConfiguration", params))
    return params, checked + _request_id_rules(config.tags, request_id, (_CONFIG, "tags"))


def update_logging_configuration(
    request: lc_pb.UpdateLoggingConfigurationRequest,
) -> tuple[Update, list[Violation]]:
    """UpdateLoggingConfiguration's AWS work for request, and every rule it breaks.

    Only the masked fields are sent (AIP-134: an empty mask masks the fields
    set, "*" every one). AWS replaces a destination whole with the one sent
    and cannot remove one, so a mask naming a destination needs the request to
    set one of those it names; a mask not naming the destination leaves it
    be, whatever the request sets. Masked tags (or, with no mask, tags the
    request sets) become the configuration's tags, as UpdateRoom's do; a mask
    of tags alone sends no UpdateLoggingConfiguration.
    """
    config = request.logging_configuration
    paths = list(request.update_mask.paths)
    out = unknown_mask_paths("UpdateLoggingConfiguration", paths, LOGGING_MASK_PATHS)
    which = config.WhichOneof("destination")
    updatable = list(convert.LOGGING_UPDATABLE)
    if not paths:
        fields = (["name"] if config.name else []) + ([which] if which else [])
        with_tags = bool(config.tags)
    elif "*" in paths:
        fields = updatable
        with_tags = True
    else:
        fields = [field for field in updatable if field in paths]
        with_tags = TAGS in paths
    masked = [field for field in fields if field in convert.DESTINATIONS]
    if masked and which not in masked:
        named = "a destination" if "*" in paths else " or ".join(masked)
        sets = f"sets {which}" if which else "sets none"
        out.append(
            Violation(
                ("update_mask",),
                f"names {named}, but {_CONFIG} {sets}: AWS replaces the destination whole "
                "with the one set, and cannot remove it, so set the destination the mask names",
            )
        )
    params = convert.to_update_logging_configuration_params(config, fields)
    checked = validation.check("UpdateLoggingConfiguration", params)
    out += _in_config(_renamed(checked, {"identifier": "arn"}))
    update, tag_violations = tags_update(
        "UpdateLoggingConfiguration",
        params,
        arn=config.arn,
        read=("GetLoggingConfiguration", {"identifier": config.arn}),
        tags=dict(config.tags) if with_tags else None,
        path=(_CONFIG, TAGS),
        fields=bool(fields) or not with_tags,
    )
    return update, out + tag_violations


def _in_config(violations: list[Violation]) -> list[Violation]:
    """violations of a logging configuration's AWS members, at their paths in the proto."""
    out: list[Violation] = []
    for v in violations:
        if v.path[:1] != (_DESTINATION,):
            out.append(Violation((_CONFIG, *v.path), v.message))
        elif len(v.path) > 1:
            out.append(Violation((_CONFIG, *v.path[1:]), v.message))
        else:  # required, or not exactly one: the oneof holds at most one
            out.append(
                Violation((_CONFIG,), f"must set exactly one destination: {_DESTINATION_NAMES}")
            )
    return out


def _uuid_rule(request_id: str) -> list[Violation]:
    """A violation unless request_id is a UUID in its canonical form (any case)."""
    try:
        canonical = str(uuid.UUID(request_id))
    except ValueError:
        canonical = ""
    if canonical and canonical == request_id.lower():
        return []
    return [Violation(("requestId",), "must be a UUID like 3f2b9a4e-6c1d-4e8a-9b7f-2d5c8e1a0b3c")]
