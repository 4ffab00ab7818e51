"""The public Python clients for ivschat.v1.RoomService and ChatService, for other services."""

from ivschat_grpc.client._chat_client import ChatClient, ChatServiceError
from ivschat_grpc.client._room_client import Connection, Pem, RoomClient, RoomServiceError

__all__ = ["ChatClient", "ChatServiceError", "Connection", "Pem", "RoomClient", "RoomServiceError"]
