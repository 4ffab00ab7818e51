import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FallbackResult(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FALLBACK_RESULT_UNSPECIFIED: _ClassVar[FallbackResult]
    FALLBACK_RESULT_ALLOW: _ClassVar[FallbackResult]
    FALLBACK_RESULT_DENY: _ClassVar[FallbackResult]
FALLBACK_RESULT_UNSPECIFIED: FallbackResult
FALLBACK_RESULT_ALLOW: FallbackResult
FALLBACK_RESULT_DENY: FallbackResult

class GetRoomRequest(_message.Message):
    __slots__ = ("arn",)
    ARN_FIELD_NUMBER: _ClassVar[int]
    arn: str
    def __init__(self, arn: _Optional[str] = ...) -> None: ...

class ListRoomsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "name", "message_review_handler_uri", "logging_configuration_identifier")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_REVIEW_HANDLER_URI_FIELD_NUMBER: _ClassVar[int]
    LOGGING_CONFIGURATION_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    name: str
    message_review_handler_uri: str
    logging_configuration_identifier: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., name: _Optional[str] = ..., message_review_handler_uri: _Optional[str] = ..., logging_configuration_identifier: _Optional[str] = ...) -> None: ...

class ListRoomsResponse(_message.Message):
    __slots__ = ("rooms", "next_page_token")
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    rooms: _containers.RepeatedCompositeFieldContainer[RoomSummary]
    next_page_token: str
    def __init__(self, rooms: _Optional[_Iterable[_Union[RoomSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RoomSummary(_message.Message):
    __slots__ = ("arn", "id", "name", "create_time", "update_time", "message_review_handler", "tags", "logging_configuration_identifiers")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ARN_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_REVIEW_HANDLER_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    LOGGING_CONFIGURATION_IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    arn: str
    id: str
    name: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    message_review_handler: MessageReviewHandler
    tags: _containers.ScalarMap[str, str]
    logging_configuration_identifiers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, arn: _Optional[str] = ..., id: _Optional[str] = ..., name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message_review_handler: _Optional[_Union[MessageReviewHandler, _Mapping]] = ..., tags: _Optional[_Mapping[str, str]] = ..., logging_configuration_identifiers: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdateRoomRequest(_message.Message):
    __slots__ = ("room", "update_mask")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    room: Room
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, room: _Optional[_Union[Room, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteRoomRequest(_message.Message):
    __slots__ = ("arn", "allow_missing")
    ARN_FIELD_NUMBER: _ClassVar[int]
    ALLOW_MISSING_FIELD_NUMBER: _ClassVar[int]
    arn: str
    allow_missing: bool
    def __init__(self, arn: _Optional[str] = ..., allow_missing: _Optional[bool] = ...) -> None: ...

class MessageReviewHandler(_message.Message):
    __slots__ = ("uri", "fallback_result")
    URI_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_RESULT_FIELD_NUMBER: _ClassVar[int]
    uri: str
    fallback_result: FallbackResult
    def __init__(self, uri: _Optional[str] = ..., fallback_result: _Optional[_Union[FallbackResult, str]] = ...) -> None: ...

class CreateRoomRequest(_message.Message):
    __slots__ = ("name", "maximum_message_length", "maximum_message_rate_per_second", "message_review_handler", "tags", "logging_configuration_identifiers", "request_id")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_MESSAGE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_MESSAGE_RATE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_REVIEW_HANDLER_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    LOGGING_CONFIGURATION_IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    maximum_message_length: int
    maximum_message_rate_per_second: int
    message_review_handler: MessageReviewHandler
    tags: _containers.ScalarMap[str, str]
    logging_configuration_identifiers: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    def __init__(self, name: _Optional[str] = ..., maximum_message_length: _Optional[int] = ..., maximum_message_rate_per_second: _Optional[int] = ..., message_review_handler: _Optional[_Union[MessageReviewHandler, _Mapping]] = ..., tags: _Optional[_Mapping[str, str]] = ..., logging_configuration_identifiers: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateRoomResponse(_message.Message):
    __slots__ = ("room",)
    ROOM_FIELD_NUMBER: _ClassVar[int]
    room: Room
    def __init__(self, room: _Optional[_Union[Room, _Mapping]] = ...) -> None: ...

class Room(_message.Message):
    __slots__ = ("arn", "id", "name", "create_time", "update_time", "maximum_message_length", "maximum_message_rate_per_second", "message_review_handler", "tags", "logging_configuration_identifiers")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ARN_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_MESSAGE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_MESSAGE_RATE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_REVIEW_HANDLER_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    LOGGING_CONFIGURATION_IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    arn: str
    id: str
    name: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    maximum_message_length: int
    maximum_message_rate_per_second: int
    message_review_handler: MessageReviewHandler
    tags: _containers.ScalarMap[str, str]
    logging_configuration_identifiers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, arn: _Optional[str] = ..., id: _Optional[str] = ..., name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., maximum_message_length: _Optional[int] = ..., maximum_message_rate_per_second: _Optional[int] = ..., message_review_handler: _Optional[_Union[MessageReviewHandler, _Mapping]] = ..., tags: _Optional[_Mapping[str, str]] = ..., logging_configuration_identifiers: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchCreateRoomsRequest(_message.Message):
    __slots__ = ("correlation_id", "room")
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    correlation_id: str
    room: CreateRoomRequest
    def __init__(self, correlation_id: _Optional[str] = ..., room: _Optional[_Union[CreateRoomRequest, _Mapping]] = ...) -> None: ...

class BatchCreateRoomsResponse(_message.Message):
    __slots__ = ("correlation_id", "room", "error", "aws_request_id")
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    AWS_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    correlation_id: str
    room: Room
    error: _status_pb2.Status
    aws_request_id: str
    def __init__(self, correlation_id: _Optional[str] = ..., room: _Optional[_Union[Room, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., aws_request_id: _Optional[str] = ...) -> None: ...
