"""The public Python client for ivschat.v1.RoomService: what other services import."""

from ivschat_grpc.client._room_client import Connection, RoomClient, RoomServiceError

__all__ = ["Connection", "RoomClient", "RoomServiceError"]
