"""Message-size limits derived from the contract rather than guessed.

The largest request the service accepts is the largest *valid* one: every
field at its maximum, with 4-byte UTF-8 letters wherever the contract allows
Unicode (tag keys and values, the review handler's function name and the
correlation id). Anything bigger is invalid anyway, so gRPC may refuse it
before it is parsed.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from ivschat.v1 import room_service_pb2 as pb

from ivschat_grpc.aws.validation import create_room_shape

# The facade's own limit on a batch item's correlation id, in characters.
CORRELATION_ID_MAX: Final = 128
# A letter (category Lu) that takes 4 bytes in UTF-8.
_WIDE_LETTER: Final = "\U0001d400"
_SLACK_BYTES: Final = 1024


@cache
def largest_valid_request_bytes() -> int:
    """The serialized size of the largest valid BatchCreateRoomsRequest, plus slack."""
    shape = create_room_shape()
    room = pb.CreateRoomRequest(
        name="n" * shape.name.max_len,
        maximum_message_length=shape.maximum_message_length.max,
        maximum_message_rate_per_second=shape.maximum_message_rate_per_second.max,
        logging_configuration_identifiers=["l" * shape.logging_id.max_len] * shape.logging_ids_max,
    )
    room.message_review_handler.uri = _WIDE_LETTER * shape.review_uri.max_len
    room.message_review_handler.fallback_result = pb.FALLBACK_RESULT_DENY
    key_len, value_len = shape.tag_key.max_len, shape.tag_value.max_len
    for i in range(shape.tags_max):
        key = f"{i:02d}" + _WIDE_LETTER * (key_len - 2)
        room.tags[key] = _WIDE_LETTER * value_len
    item = pb.BatchCreateRoomsRequest(correlation_id=_WIDE_LETTER * CORRELATION_ID_MAX, room=room)
    return item.ByteSize() + _SLACK_BYTES
