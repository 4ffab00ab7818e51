"""AWS's input contract for every IVS Chat operation, and the one walker both sides use.

The limits, patterns, enums and required members come from botocore's ivschat
service model, the same data AWS's SDKs are generated from, so the facade
(which validates protos, converted to AWS's members) and the local endpoint
(which validates JSON) cannot drift apart. :func:`check` walks any input shape
of that model; it knows shape *types*, never operations.

What the model does not carry is data beside it: :data:`HINTS` (how a shape's
values look, what a list or map holds, for messages) and :data:`ADDITIONS`
(AWS's "Tag naming limits and requirements", which the tag members' reference
points to) and :data:`MAP_BYTES` (the 1 KB that AWS documents for chat
attributes). Where the model is wrong, :data:`CORRECTIONS` holds what AWS
accepts instead (the tag operations' ResourceArn). An addition hangs on a
shape, so it applies wherever that shape appears: CreateRoom's tags,
UpdateRoom's, TagResource's, UntagResource's keys.

Members the model does not know are ignored, as AWS's REST-JSON services
ignore them (that is what lets an older service take a newer client's input).

Paths name the offending field in AWS's member names: a tuple of member
names, list indices (int) and map keys (:class:`MapKey`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Final

from botocore.loaders import create_loader

from ivschat_grpc.core.tag_sync import AWS_TAG_PREFIX, is_aws_own
from ivschat_grpc.core.violations import MapKey, Path, Violation

SERVICE: Final = "ivschat"
API_VERSION: Final = "2020-07-14"

# AWS reserves this prefix for its own tags; callers may not create them.
RESERVED_TAG_PREFIX: Final = AWS_TAG_PREFIX
# Beyond Unicode letters, digits and spaces, tags allow exactly these.
TAG_PUNCTUATION: Final = frozenset("_.:/=+-@")


Shape = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Hint:
    """Hint is what a message says about a shape that the model cannot."""

    # What a value matching the pattern looks like; the pattern itself when None.
    looks_like: str | None = None
    # What a list or map holds, in a size message; "items" or "entries" when None.
    noun: str | None = None


@dataclass(frozen=True, slots=True)
class Addition:
    """Addition is a rule on a string shape that the model lacks."""

    ok: Callable[[str], bool]
    message: str
    # Whether it is only worth saying when the model's own rules hold.
    after_model: bool = True


@dataclass(frozen=True, slots=True)
class Correction:
    """Correction is a string shape's rule as AWS applies it, where the model states it wrongly."""

    # The pattern that replaces the model's, anchored to the whole value as the model's are.
    pattern: str


@dataclass(frozen=True, slots=True)
class Bounds:
    """Bounds is a shape's inclusive min and max, as the model states them."""

    min: int
    max: int


def _tag_chars_ok(text: str) -> bool:
    return all(c in TAG_PUNCTUATION or unicodedata.category(c)[0] in "LNZ" for c in text)


def _not_reserved(key: str) -> bool:
    return not is_aws_own(key)


_TAG_CHARS: Final = "letters, digits, spaces and _ . : / = + - @"

HINTS: Final[Mapping[str, Hint]] = {
    "LambdaArn": Hint(
        looks_like="empty, or a Lambda function ARN: "
        "arn:aws:lambda:<region>:<12-digit account>:function:<name>"
    ),
    # A bare room id is the commonest mistake; it is refused, not resolved
    # (docs/calling.md), and the message shows the form that works.
    "RoomIdentifier": Hint(
        looks_like="a room ARN, arn:aws:ivschat:<region>:<account>:room/<id>; "
        "a bare room id is not accepted"
    ),
    "LoggingConfigurationIdentifier": Hint(
        looks_like="a logging configuration ARN, "
        "arn:aws:ivschat:<region>:<account>:logging-configuration/<id>"
    ),
    "ResourceArn": Hint(
        looks_like="a room or logging configuration ARN, "
        "arn:aws:ivschat:<region>:<account>:room/<id> or "
        "arn:aws:ivschat:<region>:<account>:logging-configuration/<id>"
    ),
    "Tags": Hint(noun="tags"),
    "TagKeyList": Hint(noun="tag keys"),
    "LoggingConfigurationIdentifierList": Hint(noun="identifiers"),
}

ADDITIONS: Final[Mapping[str, tuple[Addition, ...]]] = {
    "TagKey": (
        Addition(_tag_chars_ok, f"key may hold only {_TAG_CHARS}"),
        # Said even of a key that is too long: it is the one a caller most needs to hear.
        Addition(
            _not_reserved, f'key must not start with "{RESERVED_TAG_PREFIX}"', after_model=False
        ),
    ),
    "TagValue": (Addition(_tag_chars_ok, f"value may hold only {_TAG_CHARS}"),),
}

# The model's ResourceArn pattern, arn:aws:ivschat:[a-z0-9-]+:[0-9]+:[a-z-]/[a-zA-Z0-9-]+,
# allows a one-letter resource type, so no ARN that IVS Chat makes matches it:
# its tag operations could tag nothing. These are the two resource types IVS
# Chat has, with the id pattern the model gives each type's own ARN shape
# (RoomArn, LoggingConfigurationArn).
CORRECTIONS: Final[Mapping[str, Correction]] = {
    "ResourceArn": Correction(
        pattern="arn:aws:ivschat:[a-z0-9-]+:[0-9]+:(room|logging-configuration)/[a-zA-Z0-9-]+"
    ),
}

# AWS's documented limit on a map's total size, in UTF-8 bytes of its keys and
# values together, that the model does not encode ("at most 1 KB"). A
# violation names the map itself, never an entry: these maps are secret, and
# an entry's path would hold its key.
MAP_BYTES: Final[Mapping[str, int]] = {
    "ChatTokenAttributes": 1024,
    "EventAttributes": 1024,
}

# What a value of each type is called in a "must be a list of ..." message.
_PLURALS: Final[Mapping[str, str]] = {
    "string": "strings",
    "integer": "integers",
    "long": "integers",
    "boolean": "booleans",
    "timestamp": "timestamps",
    "structure": "objects",
    "list": "lists",
    "map": "maps",
}


@cache
def service_model() -> Mapping[str, Any]:
    """The ivschat service model as botocore ships it."""
    model: Mapping[str, Any] = create_loader().load_service_model(SERVICE, "service-2", API_VERSION)
    return model


def _shapes() -> Mapping[str, Shape]:
    shapes: Mapping[str, Shape] = service_model()["shapes"]
    return shapes


def input_shape_name(operation_or_input_shape: str) -> str:
    """The input shape's name for an operation, or the shape name itself."""
    operation = service_model()["operations"].get(operation_or_input_shape)
    if operation is not None:
        return str(operation["input"]["shape"])
    if operation_or_input_shape in _shapes():
        return operation_or_input_shape
    raise KeyError(f"{operation_or_input_shape!r} is no ivschat operation or shape")


def bounds(shape_name: str) -> Bounds:
    """A shape's limits: lengths for strings, sizes for lists and maps, range for integers."""
    shape = _shapes()[shape_name]
    return Bounds(min=int(shape.get("min", 0)), max=int(shape["max"]))


def pattern(shape_name: str) -> str:
    """A string shape's pattern as AWS applies it: the model's, unless corrected."""
    correction = CORRECTIONS.get(shape_name)
    return correction.pattern if correction is not None else str(_shapes()[shape_name]["pattern"])


@cache
def _pattern(shape_name: str) -> re.Pattern[str]:
    # AWS anchors every pattern to the whole value; fullmatch does so too,
    # and unlike "$" it does not let a trailing newline through.
    return re.compile(pattern(shape_name))


def check(operation_or_input_shape: str, params: object) -> list[Violation]:
    """Every violation in an operation's input (or in a value of a named shape).

    An absent member that is not required is never a violation: AWS applies
    its default. Violations come in botocore's order: missing required
    members first, then the members in the order the input names them.
    """
    out: list[Violation] = []
    _walk(input_shape_name(operation_or_input_shape), params, (), out)
    return out


def _walk(shape_name: str, value: object, path: Path, out: list[Violation]) -> None:
    shape = _shapes()[shape_name]
    kind = shape["type"]
    walker = _WALKERS.get(kind)
    if walker is None:
        # A new shape type in a newer model must be taught here, not waved through.
        raise NotImplementedError(f"shape {shape_name} has type {kind}, which check() lacks")
    walker(shape_name, shape, value, path, out)


def _structure(
    shape_name: str, shape: Shape, value: object, path: Path, out: list[Violation]
) -> None:
    if not isinstance(value, Mapping):
        out.append(Violation(path, "must be an object"))
        return
    members: Mapping[str, Shape] = shape["members"]
    for name in shape.get("required", ()):
        if name not in value:
            out.append(Violation((*path, name), "is required"))
    if shape.get("union"):
        given = [name for name in members if value.get(name) is not None]
        if len(given) != 1:
            out.append(Violation(path, f"must set exactly one of {', '.join(members)}"))
    # Where a member travels (body, URI, query string, header) changes nothing
    # about its rules, so every member is checked alike.
    for name, member_value in value.items():
        member = members.get(name)
        if member is not None:
            _walk(member["shape"], member_value, (*path, name), out)


def _string(shape_name: str, shape: Shape, value: object, path: Path, out: list[Violation]) -> None:
    allowed = shape.get("enum")
    if allowed is not None:
        # Any value outside the enum, a string or not, gets the same answer.
        if value not in allowed:
            out.append(Violation(path, f"must be one of {', '.join(allowed)}"))
        return
    if not isinstance(value, str):
        out.append(Violation(path, "must be a string"))
        return
    before = len(out)
    _length(shape, len(value), path, out)
    if "pattern" in shape and _pattern(shape_name).fullmatch(value) is None:
        hint = HINTS.get(shape_name)
        looks_like = hint.looks_like if hint is not None else None
        wanted = looks_like or f"a match of the pattern {pattern(shape_name)}"
        out.append(Violation(path, f"must be {wanted}"))
    model_ok = len(out) == before
    for addition in ADDITIONS.get(shape_name, ()):
        if (model_ok or not addition.after_model) and not addition.ok(value):
            out.append(Violation(path, addition.message))


def _length(shape: Shape, length: int, path: Path, out: list[Violation]) -> None:
    low, high = shape.get("min"), shape.get("max")
    if high is not None and not int(low or 0) <= length <= int(high):
        message = f"must be {int(low or 0)} to {high} characters long, not {length}"
    elif high is None and low is not None and length < int(low):
        message = f"must be at least {low} characters long, not {length}"
    else:
        return
    out.append(Violation(path, message))


def _integer(
    shape_name: str, shape: Shape, value: object, path: Path, out: list[Violation]
) -> None:
    # bool is an int in Python but never a JSON number.
    if not isinstance(value, int) or isinstance(value, bool):
        out.append(Violation(path, "must be an integer"))
        return
    low, high = shape.get("min"), shape.get("max")
    if low is not None and high is not None:
        if not low <= value <= high:
            out.append(Violation(path, f"must be from {low} to {high}, not {value}"))
    elif low is not None and value < low:
        out.append(Violation(path, f"must be at least {low}, not {value}"))
    elif high is not None and value > high:
        out.append(Violation(path, f"must be at most {high}, not {value}"))


def _boolean(
    shape_name: str, shape: Shape, value: object, path: Path, out: list[Violation]
) -> None:
    if not isinstance(value, bool):
        out.append(Violation(path, "must be a boolean"))


def _timestamp(
    shape_name: str, shape: Shape, value: object, path: Path, out: list[Violation]
) -> None:
    # botocore takes a datetime; REST-JSON sends epoch seconds.
    if isinstance(value, bool) or not isinstance(value, datetime | int | float):
        out.append(Violation(path, "must be a timestamp"))


def _size_ok(shape_name: str, shape: Shape, size: int, path: Path, out: list[Violation]) -> bool:
    """Whether a list's or map's size is within the model's; a violation if not."""
    hint = HINTS.get(shape_name)
    noun = (hint.noun if hint is not None else None) or (
        "items" if shape["type"] == "list" else "entries"
    )
    low, high = shape.get("min"), shape.get("max")
    if high is not None and size > int(high):
        out.append(Violation(path, f"must hold at most {high} {noun}, not {size}"))
        return False
    if low is not None and size < int(low):
        out.append(Violation(path, f"must hold at least {low} {noun}, not {size}"))
        return False
    return True


def _plural(shape_name: str) -> str:
    return _PLURALS.get(_shapes()[shape_name]["type"], "values")


def _list(shape_name: str, shape: Shape, value: object, path: Path, out: list[Violation]) -> None:
    item_shape = str(shape["member"]["shape"])
    if not isinstance(value, list | tuple):
        out.append(Violation(path, f"must be a list of {_plural(item_shape)}"))
        return
    # The items of a list of the wrong size are not worth the work of checking.
    if _size_ok(shape_name, shape, len(value), path, out):
        for i, item in enumerate(value):
            _walk(item_shape, item, (*path, i), out)


def _map(shape_name: str, shape: Shape, value: object, path: Path, out: list[Violation]) -> None:
    key_shape, value_shape = str(shape["key"]["shape"]), str(shape["value"]["shape"])
    if not isinstance(value, Mapping):
        out.append(
            Violation(path, f"must be a map of {_plural(key_shape)} to {_plural(value_shape)}")
        )
        return
    # The entries of a map of the wrong size are not worth the work of checking.
    if not _size_ok(shape_name, shape, len(value), path, out):
        return
    limit = MAP_BYTES.get(shape_name)
    if limit is not None:
        total = sum(
            len(k.encode("utf-8", "surrogatepass")) + len(v.encode("utf-8", "surrogatepass"))
            for k, v in value.items()
            if isinstance(k, str) and isinstance(v, str)
        )
        if total > limit:
            out.append(
                Violation(
                    path,
                    f"must total at most {limit} bytes of UTF-8 in keys and values, not {total}",
                )
            )
    for key, entry in value.items():
        if not isinstance(key, str):
            out.append(Violation(path, "keys must be strings"))
            continue
        entry_path: Path = (*path, MapKey(key))
        _walk(key_shape, key, entry_path, out)
        _walk(value_shape, entry, entry_path, out)


_Walker = Callable[[str, Shape, object, Path, list[Violation]], None]
_WALKERS: Final[Mapping[str, _Walker]] = {
    "structure": _structure,
    "string": _string,
    "integer": _integer,
    "long": _integer,
    "boolean": _boolean,
    "timestamp": _timestamp,
    "list": _list,
    "map": _map,
}


def aws_field_name(path: Path) -> str:
    """Render a path the way the local endpoint names fields in fieldList."""
    out = ""
    for part in path:
        if isinstance(part, int | MapKey):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
