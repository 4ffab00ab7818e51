import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LoggingConfigurationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOGGING_CONFIGURATION_STATE_UNSPECIFIED: _ClassVar[LoggingConfigurationState]
    LOGGING_CONFIGURATION_STATE_CREATING: _ClassVar[LoggingConfigurationState]
    LOGGING_CONFIGURATION_STATE_CREATE_FAILED: _ClassVar[LoggingConfigurationState]
    LOGGING_CONFIGURATION_STATE_DELETING: _ClassVar[LoggingConfigurationState]
    LOGGING_CONFIGURATION_STATE_DELETE_FAILED: _ClassVar[LoggingConfigurationState]
    LOGGING_CONFIGURATION_STATE_UPDATING: _ClassVar[LoggingConfigurationState]
    LOGGING_CONFIGURATION_STATE_UPDATE_FAILED: _ClassVar[LoggingConfigurationState]
    LOGGING_CONFIGURATION_STATE_ACTIVE: _ClassVar[LoggingConfigurationState]
LOGGING_CONFIGURATION_STATE_UNSPECIFIED: LoggingConfigurationState
LOGGING_CONFIGURATION_STATE_CREATING: LoggingConfigurationState
LOGGING_CONFIGURATION_STATE_CREATE_FAILED: LoggingConfigurationState
LOGGING_CONFIGURATION_STATE_DELETING: LoggingConfigurationState
LOGGING_CONFIGURATION_STATE_DELETE_FAILED: LoggingConfigurationState
LOGGING_CONFIGURATION_STATE_UPDATING: LoggingConfigurationState
LOGGING_CONFIGURATION_STATE_UPDATE_FAILED: LoggingConfigurationState
LOGGING_CONFIGURATION_STATE_ACTIVE: LoggingConfigurationState

class S3Destination(_message.Message):
    __slots__ = ("bucket_name",)
    BUCKET_NAME_FIELD_NUMBER: _ClassVar[int]
    bucket_name: str
    def __init__(self, bucket_name: _Optional[str] = ...) -> None: ...

class CloudWatchLogsDestination(_message.Message):
    __slots__ = ("log_group_name",)
    LOG_GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    log_group_name: str
    def __init__(self, log_group_name: _Optional[str] = ...) -> None: ...

class FirehoseDestination(_message.Message):
    __slots__ = ("delivery_stream_name",)
    DELIVERY_STREAM_NAME_FIELD_NUMBER: _ClassVar[int]
    delivery_stream_name: str
    def __init__(self, delivery_stream_name: _Optional[str] = ...) -> None: ...

class LoggingConfiguration(_message.Message):
    __slots__ = ("arn", "id", "name", "create_time", "update_time", "s3", "cloud_watch_logs", "firehose", "state", "tags")
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
    S3_FIELD_NUMBER: _ClassVar[int]
    CLOUD_WATCH_LOGS_FIELD_NUMBER: _ClassVar[int]
    FIREHOSE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    arn: str
    id: str
    name: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    s3: S3Destination
    cloud_watch_logs: CloudWatchLogsDestination
    firehose: FirehoseDestination
    state: LoggingConfigurationState
    tags: _containers.ScalarMap[str, str]
    def __init__(self, arn: _Optional[str] = ..., id: _Optional[str] = ..., name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., s3: _Optional[_Union[S3Destination, _Mapping]] = ..., cloud_watch_logs: _Optional[_Union[CloudWatchLogsDestination, _Mapping]] = ..., firehose: _Optional[_Union[FirehoseDestination, _Mapping]] = ..., state: _Optional[_Union[LoggingConfigurationState, str]] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class LoggingConfigurationSummary(_message.Message):
    __slots__ = ("arn", "id", "name", "create_time", "update_time", "s3", "cloud_watch_logs", "firehose", "state", "tags")
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
    S3_FIELD_NUMBER: _ClassVar[int]
    CLOUD_WATCH_LOGS_FIELD_NUMBER: _ClassVar[int]
    FIREHOSE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    arn: str
    id: str
    name: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    s3: S3Destination
    cloud_watch_logs: CloudWatchLogsDestination
    firehose: FirehoseDestination
    state: LoggingConfigurationState
    tags: _containers.ScalarMap[str, str]
    def __init__(self, arn: _Optional[str] = ..., id: _Optional[str] = ..., name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., s3: _Optional[_Union[S3Destination, _Mapping]] = ..., cloud_watch_logs: _Optional[_Union[CloudWatchLogsDestination, _Mapping]] = ..., firehose: _Optional[_Union[FirehoseDestination, _Mapping]] = ..., state: _Optional[_Union[LoggingConfigurationState, str]] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreateLoggingConfigurationRequest(_message.Message):
    __slots__ = ("logging_configuration", "request_id")
    LOGGING_CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    logging_configuration: LoggingConfiguration
    request_id: str
    def __init__(self, logging_configuration: _Optional[_Union[LoggingConfiguration, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetLoggingConfigurationRequest(_message.Message):
    __slots__ = ("arn",)
    ARN_FIELD_NUMBER: _ClassVar[int]
    arn: str
    def __init__(self, arn: _Optional[str] = ...) -> None: ...

class ListLoggingConfigurationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListLoggingConfigurationsResponse(_message.Message):
    __slots__ = ("logging_configurations", "next_page_token")
    LOGGING_CONFIGURATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    logging_configurations: _containers.RepeatedCompositeFieldContainer[LoggingConfigurationSummary]
    next_page_token: str
    def __init__(self, logging_configurations: _Optional[_Iterable[_Union[LoggingConfigurationSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateLoggingConfigurationRequest(_message.Message):
    __slots__ = ("logging_configuration", "update_mask")
    LOGGING_CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    logging_configuration: LoggingConfiguration
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, logging_configuration: _Optional[_Union[LoggingConfiguration, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteLoggingConfigurationRequest(_message.Message):
    __slots__ = ("arn", "allow_missing")
    ARN_FIELD_NUMBER: _ClassVar[int]
    ALLOW_MISSING_FIELD_NUMBER: _ClassVar[int]
    arn: str
    allow_missing: bool
    def __init__(self, arn: _Optional[str] = ..., allow_missing: _Optional[bool] = ...) -> None: ...
