"""The floor: the least a grpc.aio facade over aioboto3 can cost on this machine.

    python -m bench.floor EVENT_LOOP [shed]  # uvloop or asyncio; AWS_* from the environment

A bare grpc.aio server whose CreateRoom and CreateChatToken make the direct
worker's aioboto3 calls and answer: no validation, pacing, metrics, logs or error mapping.
bench/run.py measures it beside the facade, so what the facade costs beyond
it is the facade's own code, and what the floor costs beyond a direct call is
grpc.aio's.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import aioboto3
import grpc
from aiobotocore.config import AioConfig
from google.protobuf import any_pb2
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from ivschat.v1 import chat_service_pb2 as chat_pb
from ivschat.v1 import chat_service_pb2_grpc as chat_grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.cli.command import loop_factory


async def _unimplemented(context: Any, served: str) -> NoReturn:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"the floor serves {served} only")
    raise AssertionError("abort raises")


class Floor(pb_grpc.RoomServiceServicer):
    """Floor answers CreateRoom with the room's ARN, ID and name, and nothing else."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def CreateRoom(self, request: Any, context: Any) -> pb.CreateRoomResponse:
        r = await self._client.create_room(name=request.name, tags=dict(request.tags))
        return pb.CreateRoomResponse(room=pb.Room(arn=r["arn"], id=r["id"], name=r["name"]))

    async def BatchCreateRooms(
        self, request_iterator: Any, context: Any
    ) -> AsyncIterator[pb.BatchCreateRoomsResponse]:
        await _unimplemented(context, "CreateRoom")
        yield pb.BatchCreateRoomsResponse()  # never reached: it raises

    async def GetRoom(self, request: Any, context: Any) -> pb.Room:
        await _unimplemented(context, "CreateRoom")

    async def ListRooms(self, request: Any, context: Any) -> pb.ListRoomsResponse:
        await _unimplemented(context, "CreateRoom")

    async def UpdateRoom(self, request: Any, context: Any) -> pb.Room:
        await _unimplemented(context, "CreateRoom")

    async def DeleteRoom(self, request: Any, context: Any) -> Any:
        await _unimplemented(context, "CreateRoom")


def _shed_status() -> tuple[tuple[str, str | bytes], ...]:
    """The least a shedding server says: RESOURCE_EXHAUSTED with the facade's three details."""
    details = [
        error_details_pb2.ErrorInfo(reason="RATE_LIMIT_EXCEEDED", domain="floor"),
        error_details_pb2.QuotaFailure(
            violations=[error_details_pb2.QuotaFailure.Violation(subject="operation:x")]
        ),
        error_details_pb2.RetryInfo(retry_delay=Duration(seconds=1)),
    ]
    packed = []
    for detail in details:
        any_ = any_pb2.Any()
        any_.Pack(detail)
        packed.append(any_)
    status = status_pb2.Status(code=8, message="shed", details=packed)
    return tuple(rpc_status.to_status(status).trailing_metadata)


class ChatFloor(chat_grpc.ChatServiceServicer):
    """ChatFloor answers CreateChatToken with AWS's token and times, and nothing else.

    With shed, it answers every CreateChatToken RESOURCE_EXHAUSTED at once,
    its status built per call as the facade's is: the least a shed call costs.
    """

    def __init__(self, client: Any, shed: bool = False) -> None:
        self._client = client
        self._shed = shed

    async def CreateChatToken(self, request: Any, context: Any) -> chat_pb.CreateChatTokenResponse:
        if self._shed:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "shed", _shed_status())
        r = await self._client.create_chat_token(
            roomIdentifier=request.room_arn, userId=request.user_id
        )
        token, session = Timestamp(), Timestamp()
        token.FromDatetime(r["tokenExpirationTime"])
        session.FromDatetime(r["sessionExpirationTime"])
        return chat_pb.CreateChatTokenResponse(
            token=r["token"], token_expiration_time=token, session_expiration_time=session
        )

    async def SendEvent(self, request: Any, context: Any) -> chat_pb.SendEventResponse:
        await _unimplemented(context, "CreateChatToken")

    async def DisconnectUser(self, request: Any, context: Any) -> chat_pb.DisconnectUserResponse:
        await _unimplemented(context, "CreateChatToken")

    async def DeleteMessage(self, request: Any, context: Any) -> chat_pb.DeleteMessageResponse:
        await _unimplemented(context, "CreateChatToken")


async def serve(shed: bool) -> None:
    # The direct worker's client, exactly (bench/worker.py).
    config = AioConfig(retries={"total_max_attempts": 1}, max_pool_connections=64)
    session = aioboto3.Session(region_name=os.environ["AWS_REGION"])
    async with session.client("ivschat", config=config) as client:
        server = grpc.aio.server()
        pb_grpc.add_RoomServiceServicer_to_server(Floor(client), server)
        chat_grpc.add_ChatServiceServicer_to_server(ChatFloor(client, shed), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        print(f"listening on 127.0.0.1:{port}", flush=True)
        await server.wait_for_termination()


def main() -> int:
    with asyncio.Runner(loop_factory=loop_factory(sys.argv[1])) as runner:
        runner.run(serve(sys.argv[2:3] == ["shed"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
