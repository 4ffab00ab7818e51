"""The LoggingConfigurationService servicer: validate, call the adapter, translate. Nothing else."""

from __future__ import annotations

from typing import Final

import grpc
from google.protobuf import empty_pb2
from ivschat.v1 import logging_configuration_service_pb2 as pb
from ivschat.v1 import logging_configuration_service_pb2_grpc as pb_grpc

from ivschat_grpc.api.unary import AwsServicer, guarded
from ivschat_grpc.aws import convert, request_checks
from ivschat_grpc.core.calls import Operations
from ivschat_grpc.core.creator import Creator
from ivschat_grpc.core.page_tokens import PageTokens

_LIST: Final = "ListLoggingConfigurations"


class LoggingConfigurationService(AwsServicer, pb_grpc.LoggingConfigurationServiceServicer):
    """LoggingConfigurationService exposes IVS Chat's logging configurations over gRPC."""

    def __init__(
        self,
        creator: Creator[pb.LoggingConfiguration],
        aws: Operations,
        default_timeout_s: float,
        page_tokens: PageTokens,
    ) -> None:
        super().__init__(aws, default_timeout_s)
        self._creator = creator
        self._page_tokens = page_tokens

    @guarded
    async def CreateLoggingConfiguration(
        self,
        request: pb.CreateLoggingConfigurationRequest,
        context: grpc.aio.ServicerContext[
            pb.CreateLoggingConfigurationRequest, pb.LoggingConfiguration
        ],
    ) -> pb.LoggingConfiguration:
        """Create one logging configuration, exactly once per request_id, or end with the
        error table's status."""
        checked = request_checks.create_logging_configuration(request)
        return await self._created(context, self._creator, request, checked)

    @guarded
    async def GetLoggingConfiguration(
        self,
        request: pb.GetLoggingConfigurationRequest,
        context: grpc.aio.ServicerContext[
            pb.GetLoggingConfigurationRequest, pb.LoggingConfiguration
        ],
    ) -> pb.LoggingConfiguration:
        """Read one logging configuration, or end with the error table's status."""
        checked = request_checks.by_arn("GetLoggingConfiguration", request.arn)
        result = await self._result(context, "GetLoggingConfiguration", checked)
        return convert.to_logging_configuration(result)

    @guarded
    async def ListLoggingConfigurations(
        self,
        request: pb.ListLoggingConfigurationsRequest,
        context: grpc.aio.ServicerContext[
            pb.ListLoggingConfigurationsRequest, pb.ListLoggingConfigurationsResponse
        ],
    ) -> pb.ListLoggingConfigurationsResponse:
        """One page of logging configurations; AWS's nextToken goes back sealed."""
        checked = request_checks.list_logging_configurations(request, self._page_tokens)
        result = await self._result(context, _LIST, checked)
        aws_token = result.get("nextToken")
        return pb.ListLoggingConfigurationsResponse(
            logging_configurations=[
                convert.to_logging_configuration_summary(c)
                for c in result.get("loggingConfigurations", ())
            ],
            next_page_token=(
                self._page_tokens.issue(aws_token, {}, listing=_LIST) if aws_token else ""
            ),
        )

    @guarded
    async def UpdateLoggingConfiguration(
        self,
        request: pb.UpdateLoggingConfigurationRequest,
        context: grpc.aio.ServicerContext[
            pb.UpdateLoggingConfigurationRequest, pb.LoggingConfiguration
        ],
    ) -> pb.LoggingConfiguration:
        """Change the masked fields and tags of one logging configuration, or end with the
        error table's status."""
        checked = request_checks.update_logging_configuration(request)
        return convert.to_logging_configuration(await self._update(context, checked))

    @guarded
    async def DeleteLoggingConfiguration(
        self,
        request: pb.DeleteLoggingConfigurationRequest,
        context: grpc.aio.ServicerContext[pb.DeleteLoggingConfigurationRequest, empty_pb2.Empty],
    ) -> empty_pb2.Empty:
        """Delete one logging configuration; a missing one is NOT_FOUND unless allow_missing."""
        checked = request_checks.by_arn("DeleteLoggingConfiguration", request.arn)
        await self._deleted(
            context, "DeleteLoggingConfiguration", checked, allow_missing=request.allow_missing
        )
        return empty_pb2.Empty()
