"""The public Python client for ivschat.v1.RoomService: what other services import.

async with RoomClient.connect("rooms.internal:50051", tls_ca=ca, token=token) as rooms:
    room = await rooms.create_room(pb.CreateRoomRequest(name="lobby"))
"""

from ivschat_grpc.client._room_client import Connection, RoomClient, RoomServiceError

__all__ = ["Connection", "RoomClient", "RoomServiceError"]
