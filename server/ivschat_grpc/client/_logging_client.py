"""A thin typed async client for ivschat.v1.LoggingConfigurationService, for other Python services.

    async with LoggingConfigurationClient.connect("chat.internal:50051", token=token) as logs:
        config = pb.LoggingConfiguration(name="audit", s3=pb.S3Destination(bucket_name="logs"))
        made = await logs.create_logging_configuration(
            pb.CreateLoggingConfigurationRequest(logging_configuration=config, request_id=uid),
            deadline_s=5,
        )

Errors come back as LoggingConfigurationServiceError, with the google.rpc
details decoded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass

from google.protobuf import field_mask_pb2
from ivschat.v1 import logging_configuration_service_pb2 as pb
from ivschat.v1 import logging_configuration_service_pb2_grpc as pb_grpc

from ivschat_grpc.client._room_client import Connection, RoomServiceError, _Client, every


@dataclass(frozen=True, slots=True)
class LoggingConfigurationServiceError(RoomServiceError):
    """LoggingConfigurationServiceError is a failed LoggingConfigurationService call, decoded."""

    @property
    def logging_configuration_may_exist(self) -> bool:
        """Whether AWS may have made, changed or deleted the configuration despite the error."""
        return self.metadata.get("logging_configuration_may_exist") == "true"


class LoggingConfigurationClient(_Client):
    """LoggingConfigurationClient calls LoggingConfigurationService; use it as an async context
    manager."""

    _error = LoggingConfigurationServiceError

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self._stub = pb_grpc.LoggingConfigurationServiceStub(self._channel)

    async def create_logging_configuration(
        self, request: pb.CreateLoggingConfigurationRequest, *, deadline_s: float
    ) -> pb.LoggingConfiguration:
        """Create one logging configuration within deadline_s, or raise the client's error.

        With request.request_id (a UUID), a retry after any failure creates at
        most one: it returns the configuration the first call made.
        """
        return await self._call(self._stub.CreateLoggingConfiguration, request, deadline_s)

    async def get_logging_configuration(
        self, arn: str, *, deadline_s: float
    ) -> pb.LoggingConfiguration:
        """Read one logging configuration by its ARN within deadline_s, or raise the error."""
        request = pb.GetLoggingConfigurationRequest(arn=arn)
        return await self._call(self._stub.GetLoggingConfiguration, request, deadline_s)

    async def list_logging_configurations(
        self, *, deadline_s: float, page_size: int = 0, page_token: str = ""
    ) -> pb.ListLoggingConfigurationsResponse:
        """One page of logging configurations within deadline_s, or raise the client's error.

        Pass the page's next_page_token for the next page; it is empty on the last.
        """
        request = pb.ListLoggingConfigurationsRequest(page_size=page_size, page_token=page_token)
        return await self._call(self._stub.ListLoggingConfigurations, request, deadline_s)

    async def all_logging_configurations(
        self, *, deadline_s: float, page_size: int = 0
    ) -> AsyncIterator[pb.LoggingConfigurationSummary]:
        """Every logging configuration, page after page; deadline_s is each page's."""

        def page(token: str) -> Awaitable[pb.ListLoggingConfigurationsResponse]:
            return self.list_logging_configurations(
                deadline_s=deadline_s, page_size=page_size, page_token=token
            )

        async for config in every(page, lambda got: got.logging_configurations):
            yield config

    async def update_logging_configuration(
        self,
        config: pb.LoggingConfiguration,
        update_mask: Sequence[str] = (),
        *,
        deadline_s: float,
    ) -> pb.LoggingConfiguration:
        """Change config's fields that update_mask names (empty: those config sets) within
        deadline_s; config.arn names the configuration. Returns it, or raises the error."""
        request = pb.UpdateLoggingConfigurationRequest(
            logging_configuration=config,
            update_mask=field_mask_pb2.FieldMask(paths=list(update_mask)),
        )
        return await self._call(self._stub.UpdateLoggingConfiguration, request, deadline_s)

    async def delete_logging_configuration(
        self, arn: str, *, deadline_s: float, allow_missing: bool = False
    ) -> None:
        """Delete one logging configuration by its ARN within deadline_s, or raise the error."""
        request = pb.DeleteLoggingConfigurationRequest(arn=arn, allow_missing=allow_missing)
        await self._call(self._stub.DeleteLoggingConfiguration, request, deadline_s)
