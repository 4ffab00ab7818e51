"""The public Python clients for ivschat.v1's three services, for other services.

RoomClient, ChatClient and LoggingConfigurationClient, one per service.
"""

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
