"""The ChatService servicer: validate, call the adapter, translate. Nothing else.

Tokens, user ids and attributes are secrets: nothing here logs a request or
an answer, and the log line of each call holds only AWS's request id and the
attempts (api/unary.py).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Final

import grpc
from ivschat.v1 import chat_service_pb2 as pb
from ivschat.v1 import chat_service_pb2_grpc as pb_grpc

from ivschat_grpc.api.unary import AwsServicer, Send, guarded
from ivschat_grpc.aws import convert, request_checks
from ivschat_grpc.core.calls import Answer, CallControl, Operations
from ivschat_grpc.core.once import Once, fingerprint

_SEND_EVENT: Final = "SendEvent"


class ChatService(AwsServicer, pb_grpc.ChatServiceServicer):
    """ChatService exposes IVS Chat's tokens and moderation over gRPC."""

    def __init__(self, aws: Operations, once: Once, default_timeout_s: float) -> None:
        super().__init__(aws, default_timeout_s)
        self._once = once

    @guarded
    async def CreateChatToken(
        self,
        request: pb.CreateChatTokenRequest,
        context: grpc.aio.ServicerContext[pb.CreateChatTokenRequest, pb.CreateChatTokenResponse],
    ) -> pb.CreateChatTokenResponse:
        """Make one user's token to one room, or end with the error table's status."""
        result = await self._result(
            context, "CreateChatToken", request_checks.create_chat_token(request)
        )
        return convert.to_chat_token(result)

    @guarded
    async def SendEvent(
        self,
        request: pb.SendEventRequest,
        context: grpc.aio.ServicerContext[pb.SendEventRequest, pb.SendEventResponse],
    ) -> pb.SendEventResponse:
        """Send one event, at most once per request_id; never resent after an ambiguity."""
        checked = request_checks.send_event(request)
        once = self._send_once(request, checked[0]) if request.HasField("request_id") else None
        result = await self._result(context, _SEND_EVENT, checked, once)
        return pb.SendEventResponse(id=str(result.get("id", "")))

    def _send_once(self, request: pb.SendEventRequest, params: dict[str, Any]) -> Send[Answer]:
        """A send of SendEvent through Once, keyed by request's request_id, for _at_aws."""
        digest = fingerprint(_SEND_EVENT, request)

        def send(timeout: float, control: CallControl) -> Awaitable[Answer]:
            return self._once.send(
                _SEND_EVENT,
                request.request_id,
                digest,
                params,
                timeout,
                result_member="id",
                control=control,
            )

        return send

    @guarded
    async def DisconnectUser(
        self,
        request: pb.DisconnectUserRequest,
        context: grpc.aio.ServicerContext[pb.DisconnectUserRequest, pb.DisconnectUserResponse],
    ) -> pb.DisconnectUserResponse:
        """Disconnect one user from a room, or end with the error table's status."""
        await self._result(context, "DisconnectUser", request_checks.disconnect_user(request))
        return pb.DisconnectUserResponse()

    @guarded
    async def DeleteMessage(
        self,
        request: pb.DeleteMessageRequest,
        context: grpc.aio.ServicerContext[pb.DeleteMessageRequest, pb.DeleteMessageResponse],
    ) -> pb.DeleteMessageResponse:
        """Delete one message for a room's users, or end with the error table's status."""
        result = await self._result(
            context, "DeleteMessage", request_checks.delete_message(request)
        )
        return pb.DeleteMessageResponse(id=str(result.get("id", "")))
