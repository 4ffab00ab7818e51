"""AWS's CreateRoom input contract, and the one validator both sides use.

The limits and patterns come from botocore's ivschat service model, the same
data AWS's SDKs are generated from, so the facade (which validates protos) and
the local endpoint (which validates JSON) cannot drift apart. The tag rules
that the model does not carry come from AWS's "Tag naming limits and
requirements", which the CreateRoom reference points to.

Paths name the offending field in AWS's member names: a tuple of member
names, list indices (int) and map keys (:class:`MapKey`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from botocore.loaders import create_loader

SERVICE: Final = "ivschat"
API_VERSION: Final = "2020-07-14"

# AWS reserves this prefix for its own tags; callers may not create them.
RESERVED_TAG_PREFIX: Final = "aws:"
# Beyond Unicode letters, digits and spaces, tags allow exactly these.
TAG_PUNCTUATION: Final = frozenset("_.:/=+-@")


class MapKey(str):
    """MapKey marks a path segment as a map key rather than a member name."""

    __slots__ = ()


PathPart = str | int
Path = tuple[PathPart, ...]


@dataclass(frozen=True, slots=True)
class Violation:
    """Violation is one broken constraint, at one field."""

    path: Path
    message: str


@dataclass(frozen=True, slots=True)
class Text:
    """Text is a string shape's limits; lengths count code points."""

    min_len: int
    max_len: int
    pattern: re.Pattern[str] | None
    # What a matching value looks like, for people; the pattern when None.
    shape: str | None = None


@dataclass(frozen=True, slots=True)
class Whole:
    """Whole is an integer shape's inclusive range."""

    min: int
    max: int


@dataclass(frozen=True, slots=True)
class CreateRoomShape:
    """CreateRoomShape holds every limit on CreateRoom's input."""

    name: Text
    maximum_message_length: Whole
    maximum_message_rate_per_second: Whole
    review_uri: Text
    fallback_results: tuple[str, ...]
    tags_max: int
    tag_key: Text
    tag_value: Text
    logging_ids_max: int
    logging_id: Text
    room_identifier: Text
    list_max_results: Whole


@cache
def service_model() -> Mapping[str, Any]:
    """The ivschat service model as botocore ships it."""
    model: Mapping[str, Any] = create_loader().load_service_model(SERVICE, "service-2", API_VERSION)
    return model


def _text(shape_name: str, shape_hint: str | None = None) -> Text:
    shape = service_model()["shapes"][shape_name]
    pattern = shape.get("pattern")
    return Text(
        min_len=int(shape.get("min", 0)),
        max_len=int(shape["max"]),
        # AWS anchors every pattern to the whole value; fullmatch does so too,
        # and unlike "$" it does not let a trailing newline through.
        pattern=re.compile(pattern) if pattern else None,
        shape=shape_hint,
    )


def _whole(shape_name: str) -> Whole:
    shape = service_model()["shapes"][shape_name]
    return Whole(min=int(shape["min"]), max=int(shape["max"]))


@cache
def create_room_shape() -> CreateRoomShape:
    """Read CreateRoom's limits from the service model once."""
    shapes = service_model()["shapes"]
    return CreateRoomShape(
        name=_text("RoomName"),
        maximum_message_length=_whole("RoomMaxMessageLength"),
        maximum_message_rate_per_second=_whole("RoomMaxMessageRatePerSecond"),
        review_uri=_text(
            "LambdaArn",
            "empty, or a Lambda function ARN: "
            "arn:aws:lambda:<region>:<12-digit account>:function:<name>",
        ),
        fallback_results=tuple(shapes["FallbackResult"]["enum"]),
        tags_max=int(shapes["Tags"]["max"]),
        tag_key=_text("TagKey"),
        tag_value=_text("TagValue"),
        logging_ids_max=int(shapes["LoggingConfigurationIdentifierList"]["max"]),
        logging_id=_text("LoggingConfigurationIdentifier"),
        room_identifier=_text("RoomIdentifier"),
        list_max_results=_whole("MaxRoomResults"),
    )


def check_text(value: object, rule: Text, path: Path, out: list[Violation]) -> None:
    """Append a violation if value is not a string within rule."""
    if not isinstance(value, str):
        out.append(Violation(path, "must be a string"))
        return
    if not rule.min_len <= len(value) <= rule.max_len:
        out.append(
            Violation(
                path,
                f"must be {rule.min_len} to {rule.max_len} characters long, not {len(value)}",
            )
        )
    if rule.pattern is not None and rule.pattern.fullmatch(value) is None:
        wanted = rule.shape or f"a match of the pattern {rule.pattern.pattern}"
        out.append(Violation(path, f"must be {wanted}"))


def check_whole(value: object, rule: Whole, path: Path, out: list[Violation]) -> None:
    """Append a violation if value is not an integer within rule."""
    # bool is an int in Python but never a JSON number.
    if not isinstance(value, int) or isinstance(value, bool):
        out.append(Violation(path, "must be an integer"))
    elif not rule.min <= value <= rule.max:
        out.append(Violation(path, f"must be from {rule.min} to {rule.max}, not {value}"))


def _tag_chars_ok(text: str) -> bool:
    return all(c in TAG_PUNCTUATION or unicodedata.category(c)[0] in "LNZ" for c in text)


def _check_tags(tags: object, shape: CreateRoomShape, out: list[Violation]) -> None:
    if not isinstance(tags, Mapping):
        out.append(Violation(("tags",), "must be a map of strings to strings"))
        return
    if len(tags) > shape.tags_max:
        out.append(
            Violation(("tags",), f"must hold at most {shape.tags_max} tags, not {len(tags)}")
        )
        return  # the entries of an oversized map are not worth the work of checking
    for key, value in tags.items():
        if not isinstance(key, str):
            out.append(Violation(("tags",), "keys must be strings"))
            continue
        path: Path = ("tags", MapKey(key))
        before = len(out)
        check_text(key, shape.tag_key, path, out)
        if len(out) == before and not _tag_chars_ok(key):
            out.append(
                Violation(path, "key may hold only letters, digits, spaces and _ . : / = + - @")
            )
        if key.lower().startswith(RESERVED_TAG_PREFIX):
            out.append(Violation(path, f'key must not start with "{RESERVED_TAG_PREFIX}"'))
        before = len(out)
        check_text(value, shape.tag_value, path, out)
        if len(out) == before and not _tag_chars_ok(value):
            out.append(
                Violation(path, "value may hold only letters, digits, spaces and _ . : / = + - @")
            )


def check_create_room(params: Mapping[str, Any]) -> list[Violation]:
    """Every violation in a CreateRoom input, in AWS's JSON member names.

    An absent member is never a violation: AWS applies its default.
    """
    shape = create_room_shape()
    out: list[Violation] = []
    if "name" in params:
        check_text(params["name"], shape.name, ("name",), out)
    for member, rule in (
        ("maximumMessageLength", shape.maximum_message_length),
        ("maximumMessageRatePerSecond", shape.maximum_message_rate_per_second),
    ):
        if member in params:
            check_whole(params[member], rule, (member,), out)
    if "messageReviewHandler" in params:
        handler = params["messageReviewHandler"]
        if not isinstance(handler, Mapping):
            out.append(Violation(("messageReviewHandler",), "must be an object"))
        else:
            if "uri" in handler:
                check_text(handler["uri"], shape.review_uri, ("messageReviewHandler", "uri"), out)
            if "fallbackResult" in handler and handler["fallbackResult"] not in (
                shape.fallback_results
            ):
                out.append(
                    Violation(
                        ("messageReviewHandler", "fallbackResult"),
                        f"must be one of {', '.join(shape.fallback_results)}",
                    )
                )
    if "tags" in params:
        _check_tags(params["tags"], shape, out)
    if "loggingConfigurationIdentifiers" in params:
        ids = params["loggingConfigurationIdentifiers"]
        member = "loggingConfigurationIdentifiers"
        if not isinstance(ids, list):
            out.append(Violation((member,), "must be a list of strings"))
        else:
            if len(ids) > shape.logging_ids_max:
                out.append(
                    Violation(
                        (member,),
                        f"must hold at most {shape.logging_ids_max} identifiers, not {len(ids)}",
                    )
                )
            else:  # the items of an oversized list are not worth the work of checking
                for i, item in enumerate(ids):
                    check_text(item, shape.logging_id, (member, i), out)
    return out


def aws_field_name(path: Path) -> str:
    """Render a path the way the local endpoint names fields in fieldList."""
    out = ""
    for part in path:
        if isinstance(part, int | MapKey):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
