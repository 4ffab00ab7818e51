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

from ivschat_grpc.aws.validation import bounds

# The facade's own limit on a batch item's correlation id, in characters.
CORRELATION_ID_MAX: Final = 128
# A letter (category Lu) that takes 4 bytes in UTF-8.
_WIDE_LETTER: Final = "\U0001d400"
_SLACK_BYTES: Final = 1024


@cache
def largest_valid_request_bytes() -> int:
    """The serialized size of the largest valid BatchCreateRoomsRequest, plus slack."""
    key_len, value_len = bounds("TagKey").max, bounds("TagValue").max
    room = pb.CreateRoomRequest(
        name="n" * bounds("RoomName").max,
        maximum_message_length=bounds("RoomMaxMessageLength").max,
        maximum_message_rate_per_second=bounds("RoomMaxMessageRatePerSecond").max,
        logging_configuration_identifiers=["l" * bounds("LoggingConfigurationIdentifier").max]
        * bounds("LoggingConfigurationIdentifierList").max,
    )
    room.message_review_handler.uri = _WIDE_LETTER * bounds("LambdaArn").max
    room.message_review_handler.fallback_result = pb.FALLBACK_RESULT_DENY
    for i in range(bounds("Tags").max):
        key = f"{i:02d}" + _WIDE_LETTER * (key_len - 2)
        room.tags[key] = _WIDE_LETTER * value_len
    item = pb.BatchCreateRoomsRequest(correlation_id=_WIDE_LETTER * CORRELATION_ID_MAX, room=room)
    return item.ByteSize() + _SLACK_BYTES
