import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChatTokenCapability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHAT_TOKEN_CAPABILITY_UNSPECIFIED: _ClassVar[ChatTokenCapability]
    CHAT_TOKEN_CAPABILITY_SEND_MESSAGE: _ClassVar[ChatTokenCapability]
    CHAT_TOKEN_CAPABILITY_DISCONNECT_USER: _ClassVar[ChatTokenCapability]
    CHAT_TOKEN_CAPABILITY_DELETE_MESSAGE: _ClassVar[ChatTokenCapability]
CHAT_TOKEN_CAPABILITY_UNSPECIFIED: ChatTokenCapability
CHAT_TOKEN_CAPABILITY_SEND_MESSAGE: ChatTokenCapability
CHAT_TOKEN_CAPABILITY_DISCONNECT_USER: ChatTokenCapability
CHAT_TOKEN_CAPABILITY_DELETE_MESSAGE: ChatTokenCapability

class CreateChatTokenRequest(_message.Message):
    __slots__ = ("room_arn", "user_id", "capabilities", "session_duration_minutes", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ROOM_ARN_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    SESSION_DURATION_MINUTES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    room_arn: str
    user_id: str
    capabilities: _containers.RepeatedScalarFieldContainer[ChatTokenCapability]
    session_duration_minutes: int
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, room_arn: _Optional[str] = ..., user_id: _Optional[str] = ..., capabilities: _Optional[_Iterable[_Union[ChatTokenCapability, str]]] = ..., session_duration_minutes: _Optional[int] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreateChatTokenResponse(_message.Message):
    __slots__ = ("token", "token_expiration_time", "session_expiration_time")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_EXPIRATION_TIME_FIELD_NUMBER: _ClassVar[int]
    SESSION_EXPIRATION_TIME_FIELD_NUMBER: _ClassVar[int]
    token: str
    token_expiration_time: _timestamp_pb2.Timestamp
    session_expiration_time: _timestamp_pb2.Timestamp
    def __init__(self, token: _Optional[str] = ..., token_expiration_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., session_expiration_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SendEventRequest(_message.Message):
    __slots__ = ("room_arn", "event_name", "attributes", "request_id")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ROOM_ARN_FIELD_NUMBER: _ClassVar[int]
    EVENT_NAME_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    room_arn: str
    event_name: str
    attributes: _containers.ScalarMap[str, str]
    request_id: str
    def __init__(self, room_arn: _Optional[str] = ..., event_name: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class SendEventResponse(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DisconnectUserRequest(_message.Message):
    __slots__ = ("room_arn", "user_id", "reason")
    ROOM_ARN_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    room_arn: str
    user_id: str
    reason: str
    def __init__(self, room_arn: _Optional[str] = ..., user_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DisconnectUserResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteMessageRequest(_message.Message):
    __slots__ = ("room_arn", "id", "reason")
    ROOM_ARN_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    room_arn: str
    id: str
    reason: str
    def __init__(self, room_arn: _Optional[str] = ..., id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DeleteMessageResponse(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...
