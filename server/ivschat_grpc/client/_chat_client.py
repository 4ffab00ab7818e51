"""A thin typed async client for ivschat.v1.ChatService, for other Python services.

    async with ChatClient.connect("chat.internal:50051", tls_ca="ca.pem", token=token) as chat:
        token = await chat.create_chat_token(room_arn, user_id, deadline_s=5)

Errors come back as ChatServiceError, with the google.rpc details decoded.
The token, user ids and attributes are never put in an error or a repr here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ivschat.v1 import chat_service_pb2 as pb
from ivschat.v1 import chat_service_pb2_grpc as pb_grpc

from ivschat_grpc.client._room_client import Connection, RoomServiceError, _Client


@dataclass(frozen=True, slots=True)
class ChatServiceError(RoomServiceError):
    """ChatServiceError is a failed ChatService call, with its rich details decoded."""

    @property
    def event_may_have_been_sent(self) -> bool:
        """Whether SendEvent's event may have reached the room despite the error."""
        return self.metadata.get("event_may_have_been_sent") == "true"


class ChatClient(_Client):
    """ChatClient calls ChatService; use it as an async context manager."""

    _error = ChatServiceError

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self._stub = pb_grpc.ChatServiceStub(self._channel)

    async def create_chat_token(
        self,
        room_arn: str,
        user_id: str,
        *,
        deadline_s: float,
        capabilities: Iterable[pb.ChatTokenCapability] = (),
        session_duration_minutes: int | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> pb.CreateChatTokenResponse:
        """Make user_id's token to room_arn within deadline_s, or raise ChatServiceError."""
        request = pb.CreateChatTokenRequest(
            room_arn=room_arn,
            user_id=user_id,
            capabilities=list(capabilities),
            attributes=dict(attributes or {}),
        )
        if session_duration_minutes is not None:
            request.session_duration_minutes = session_duration_minutes
        return await self._call(self._stub.CreateChatToken, request, deadline_s)

    async def send_event(
        self,
        room_arn: str,
        event_name: str,
        *,
        deadline_s: float,
        attributes: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> str:
        """Send one event within deadline_s; its id, or ChatServiceError.

        With request_id (a UUID), a retry after any failure sends at most once:
        a first call that completed gives its id back.
        """
        request = pb.SendEventRequest(
            room_arn=room_arn, event_name=event_name, attributes=dict(attributes or {})
        )
        if request_id is not None:
            request.request_id = request_id
        response = await self._call(self._stub.SendEvent, request, deadline_s)
        return response.id

    async def disconnect_user(
        self, room_arn: str, user_id: str, *, deadline_s: float, reason: str | None = None
    ) -> None:
        """Disconnect user_id from room_arn within deadline_s, or raise ChatServiceError."""
        request = pb.DisconnectUserRequest(room_arn=room_arn, user_id=user_id)
        if reason is not None:
            request.reason = reason
        await self._call(self._stub.DisconnectUser, request, deadline_s)

    async def delete_message(
        self, room_arn: str, message_id: str, *, deadline_s: float, reason: str | None = None
    ) -> str:
        """Delete one message within deadline_s; the deletion event's id, or ChatServiceError."""
        request = pb.DeleteMessageRequest(room_arn=room_arn, id=message_id)
        if reason is not None:
            request.reason = reason
        response = await self._call(self._stub.DeleteMessage, request, deadline_s)
        return response.id
