"""The public Python clients, one per ivschat.v1 service, for other services."""

from ivschat_grpc.client._chat_client import ChatClient, ChatServiceError
from ivschat_grpc.client._logging_client import (
    LoggingConfigurationClient,
    LoggingConfigurationServiceError,
)
from ivschat_grpc.client._room_client import Connection, Pem, RoomClient, RoomServiceError

__all__ = [
    "ChatClient",
    "ChatServiceError",
    "Connection",
    "LoggingConfigurationClient",
    "LoggingConfigurationServiceError",
    "Pem",
    "RoomClient",
    "RoomServiceError",
]
