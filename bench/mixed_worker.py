"""Open-loop callers for bench/mixed.py, run as their own process so their CPU is their own.

    python -m bench.mixed_worker PLAN_JSON

PLAN_JSON names the facade (and the floor), the rooms and logging
configurations made beforehand, and each call kind's rate. The worker
connects, prints "ready", reads the start time (time.monotonic, one clock for
every process on the machine) from stdin, and from then on sends each kind at
its rate for the plan's seconds, whatever the answers: a slow or refused call
never delays the next one. Every call has the interactive deadline. It prints
one JSON line: each call's kind, when it was sent, its latency, its code, and
the ErrorInfo reason and operation of a refusal.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
import zlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2, status_pb2
from ivschat.v1 import chat_service_pb2 as chat_pb
from ivschat.v1 import chat_service_pb2_grpc as chat_grpc
from ivschat.v1 import logging_configuration_service_pb2 as lc_pb
from ivschat.v1 import logging_configuration_service_pb2_grpc as lc_grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.cli.command import loop_factory
from ivschat_grpc.core.creator import RESERVED_TAG

# A person waits for every call here: the interactive deadline.
DEADLINE_S: Final = 2.0
# Past its deadline, how long a call may take to come back before it counts as unanswered.
GRACE_S: Final = 3.0
# The local endpoint's limit of logging configurations per account, less the two kept.
ACCOUNT_LOGGING_CONFIGURATIONS: Final = 10
KEPT_LOGGING_CONFIGURATIONS: Final = 2
FLOOR_USER: Final = "floor-"
# The facade's reason for a call that ran out its deadline before it was sent.
NOT_SENT: Final = "DEADLINE_EXCEEDED_NOT_SENT"
# How long after a caller's deadline the facade's own attempt has surely ended.
SETTLED_S: Final = 1.0
# What a delete names when nothing made is left to delete: with allow_missing
# it is still one call to AWS, which answers that it does not exist.
MISSING_ROOM: Final = "arn:aws:ivschat:us-east-1:123456789012:room/AAAAAAAAAAAA"
MISSING_LOGGING_CONFIGURATION: Final = (
    "arn:aws:ivschat:us-east-1:123456789012:logging-configuration/AAAAAAAAAAAA"
)

# The AWS operations each kind of call sends, in order, when all goes well:
# what bench/mixed.py attributes a served call's latency to. A tags-only
# update reads the resource first; an update of fields and tags that names
# the reserved tag reads the tags first (docs/calling.md, Tags).
CHAINS: Final[Mapping[str, tuple[str, ...]]] = {
    "create_room": ("CreateRoom",),
    "get_room": ("GetRoom",),
    "list_rooms": ("ListRooms",),
    "update_room_tags": ("GetRoom", "UntagResource", "TagResource"),
    "update_room_fields": ("ListTagsForResource", "UpdateRoom", "UntagResource", "TagResource"),
    "delete_room": ("DeleteRoom",),
    "create_chat_token": ("CreateChatToken",),
    "send_event": ("SendEvent",),
    "disconnect_user": ("DisconnectUser",),
    "delete_message": ("DeleteMessage",),
    "create_logging_configuration": ("CreateLoggingConfiguration",),
    "get_logging_configuration": ("GetLoggingConfiguration",),
    "list_logging_configurations": ("ListLoggingConfigurations",),
    "update_logging_configuration_tags": ("GetLoggingConfiguration", "TagResource"),
    "update_logging_configuration_fields": (
        "ListTagsForResource",
        "UpdateLoggingConfiguration",
        "UntagResource",
        "TagResource",
    ),
    "delete_logging_configuration": ("DeleteLoggingConfiguration",),
    # CreateChatToken through the floor (bench/floor.py), beside the facade's.
    "floor_create_chat_token": ("CreateChatToken",),
}


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def refusal(error: grpc.aio.AioRpcError) -> tuple[str, str]:
    """The ErrorInfo reason of a failed call and the operation its metadata names, if any."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info.reason, info.metadata.get("operation", "")
    return "", ""


@dataclass
class Load:
    """Load sends one process's share of the calls and keeps what each call got."""

    plan: Mapping[str, Any]
    rooms: Any
    chat: Any
    logging: Any
    floor: Any
    start: float = 0.0
    results: list[list[Any]] = field(default_factory=list)
    # Creates that were not sent, so as to keep under the account's limit.
    held_back: Counter[str] = field(default_factory=Counter)
    details: Counter[str] = field(default_factory=Counter)
    # Rooms and logging configurations the load made, for its deletes to take.
    made_rooms: deque[str] = field(default_factory=deque)
    made_configurations: set[str] = field(default_factory=set)
    deleting: set[str] = field(default_factory=set)
    creating: int = 0
    # When each create whose outcome is unknown ran out its deadline (it may
    # have been sent): until a list sent after that says, it may exist.
    unknown_creates: list[float] = field(default_factory=list)

    def _resource(self, name: str, i: int) -> Any:
        pool = self.plan["resources"][name]
        return pool[i % len(pool)]

    async def create_room(self, i: int) -> None:
        r = await self.rooms.CreateRoom(pb.CreateRoomRequest(name=f"mixed-{i}"), timeout=DEADLINE_S)
        self.made_rooms.append(r.room.arn)

    async def get_room(self, i: int) -> None:
        arn = self._resource("tagged_rooms", i)["arn"]
        await self.rooms.GetRoom(pb.GetRoomRequest(arn=arn), timeout=DEADLINE_S)

    async def list_rooms(self, i: int) -> None:
        await self.rooms.ListRooms(pb.ListRoomsRequest(page_size=10), timeout=DEADLINE_S)

    async def update_room_tags(self, i: int) -> None:
        # Another key each time: the room's last one is removed, this one set.
        room = pb.Room(arn=self._resource("tagged_rooms", i)["arn"], tags={f"k{i}": "v"})
        request = pb.UpdateRoomRequest(room=room, update_mask=FieldMask(paths=["tags"]))
        await self.rooms.UpdateRoom(request, timeout=DEADLINE_S)

    async def update_room_fields(self, i: int) -> None:
        # As a room read and sent back: its reserved tag named with its value.
        tagged = self._resource("tagged_rooms", i)
        tags = {RESERVED_TAG: tagged["request_id"], f"k{i}": "v"}
        room = pb.Room(arn=tagged["arn"], name=f"mixed-{i}", tags=tags)
        request = pb.UpdateRoomRequest(room=room, update_mask=FieldMask(paths=["name", "tags"]))
        await self.rooms.UpdateRoom(request, timeout=DEADLINE_S)

    async def delete_room(self, i: int) -> None:
        arn = self.made_rooms.popleft() if self.made_rooms else MISSING_ROOM
        try:
            request = pb.DeleteRoomRequest(arn=arn, allow_missing=True)
            await self.rooms.DeleteRoom(request, timeout=DEADLINE_S)
        except grpc.aio.AioRpcError:
            if arn != MISSING_ROOM:
                self.made_rooms.append(arn)  # maybe still there: a later delete takes it
            raise

    async def _token(self, chat: Any, users: str, i: int) -> None:
        room = self._resource("chat_rooms", i)
        request = chat_pb.CreateChatTokenRequest(room_arn=room, user_id=f"{users}{i % 1000}")
        await chat.CreateChatToken(request, timeout=DEADLINE_S)

    async def create_chat_token(self, i: int) -> None:
        await self._token(self.chat, "user-", i)

    async def floor_create_chat_token(self, i: int) -> None:
        # Its own users, so that the endpoint's record tells its tokens from the facade's.
        await self._token(self.floor, FLOOR_USER, i)

    async def send_event(self, i: int) -> None:
        request = chat_pb.SendEventRequest(room_arn=self._resource("chat_rooms", i), event_name="m")
        await self.chat.SendEvent(request, timeout=DEADLINE_S)

    async def disconnect_user(self, i: int) -> None:
        room = self._resource("chat_rooms", i)
        request = chat_pb.DisconnectUserRequest(room_arn=room, user_id=f"user-{i % 1000}")
        await self.chat.DisconnectUser(request, timeout=DEADLINE_S)

    async def delete_message(self, i: int) -> None:
        room = self._resource("chat_rooms", i)
        request = chat_pb.DeleteMessageRequest(room_arn=room, id=f"message{i % 100_000:05d}")
        await self.chat.DeleteMessage(request, timeout=DEADLINE_S)

    def _may_exist(self) -> int:
        return (
            KEPT_LOGGING_CONFIGURATIONS
            + len(self.made_configurations)
            + len(self.deleting)
            + self.creating
            + len(self.unknown_creates)
        )

    async def create_logging_configuration(self, i: int) -> bool:
        """False when not sent: one more could take the account past its limit."""
        if self._may_exist() >= ACCOUNT_LOGGING_CONFIGURATIONS:
            self.held_back["create_logging_configuration"] += 1
            return False
        self.creating += 1
        try:
            config = lc_pb.LoggingConfiguration(
                name=f"mixed-{i}", s3=lc_pb.S3Destination(bucket_name="mixed-logs")
            )
            request = lc_pb.CreateLoggingConfigurationRequest(logging_configuration=config)
            made = await self.logging.CreateLoggingConfiguration(request, timeout=DEADLINE_S)
            self.made_configurations.add(made.arn)
        except grpc.aio.AioRpcError as e:
            certain = refusal(e)[0] == NOT_SENT or e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and not certain:
                self.unknown_creates.append(time.monotonic())
            raise
        finally:
            self.creating -= 1
        return True

    async def get_logging_configuration(self, i: int) -> None:
        arn = self._resource("configurations", i)["arn"]
        request = lc_pb.GetLoggingConfigurationRequest(arn=arn)
        await self.logging.GetLoggingConfiguration(request, timeout=DEADLINE_S)

    async def list_logging_configurations(self, i: int) -> None:
        request = lc_pb.ListLoggingConfigurationsRequest(page_size=50)
        sent = time.monotonic()
        listed = await self.logging.ListLoggingConfigurations(request, timeout=DEADLINE_S)
        # The list is what exists: a create that ran out its deadline is found here.
        kept = {c["arn"] for c in self.plan["resources"]["configurations"]}
        for config in listed.logging_configurations:
            if config.arn not in kept and config.arn not in self.deleting:
                self.made_configurations.add(config.arn)
        # A create past its deadline by then has reached AWS or never will.
        self.unknown_creates = [t for t in self.unknown_creates if t + SETTLED_S >= sent]

    async def update_logging_configuration_tags(self, i: int) -> None:
        # One key, another value each time: TagResource alone, after the read.
        config = self.plan["resources"]["configurations"][0]
        lc = lc_pb.LoggingConfiguration(arn=config["arn"], tags={"v": str(i)})
        request = lc_pb.UpdateLoggingConfigurationRequest(
            logging_configuration=lc, update_mask=FieldMask(paths=["tags"])
        )
        await self.logging.UpdateLoggingConfiguration(request, timeout=DEADLINE_S)

    async def update_logging_configuration_fields(self, i: int) -> None:
        config = self.plan["resources"]["configurations"][1]
        tags = {RESERVED_TAG: config["request_id"], f"k{i}": "v"}
        lc = lc_pb.LoggingConfiguration(arn=config["arn"], name=f"mixed-{i}", tags=tags)
        request = lc_pb.UpdateLoggingConfigurationRequest(
            logging_configuration=lc, update_mask=FieldMask(paths=["name", "tags"])
        )
        await self.logging.UpdateLoggingConfiguration(request, timeout=DEADLINE_S)

    async def delete_logging_configuration(self, i: int) -> None:
        arn = (
            self.made_configurations.pop()
            if self.made_configurations
            else MISSING_LOGGING_CONFIGURATION
        )
        self.deleting.add(arn)
        try:
            request = lc_pb.DeleteLoggingConfigurationRequest(arn=arn, allow_missing=True)
            await self.logging.DeleteLoggingConfiguration(request, timeout=DEADLINE_S)
        except grpc.aio.AioRpcError:
            if arn != MISSING_LOGGING_CONFIGURATION:
                self.made_configurations.add(arn)
            raise
        finally:
            self.deleting.discard(arn)

    async def one(self, kind: str, i: int, send: Callable[[int], Awaitable[Any]]) -> None:
        sent = time.monotonic()
        code, reason, operation = "OK", "", ""
        try:
            if await send(i) is False:
                return
        except grpc.aio.AioRpcError as e:
            code = e.code().name
            reason, operation = refusal(e)
            if not reason:
                # No rich status: grpc's own (a deadline, a cancel), named by its text.
                self.details[f"{code}: {e.details()}"[:200]] += 1
        latency_ms = (time.monotonic() - sent) * 1000
        self.results.append(
            [kind, round(sent - self.start, 4), round(latency_ms, 3), code, reason, operation]
        )

    async def arrivals(self, kind: str, rate: float, tasks: set[asyncio.Task[None]]) -> None:
        """Start kind's calls at rate, evenly spaced, on a schedule that never slips."""
        send = getattr(self, kind)
        seconds = float(self.plan["seconds"])
        # Each kind starts at its own offset within its first interval, so
        # kinds do not all fire in the same instant.
        offset = (zlib.crc32(kind.encode()) % 1000) / 1000 / rate
        i = 0
        while (at := offset + i / rate) < seconds:
            delay = self.start + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self.one(kind, i, send))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1

    async def run(self) -> dict[str, Any]:
        tasks: set[asyncio.Task[None]] = set()
        cpu0 = cpu_s()
        await asyncio.gather(
            *(self.arrivals(kind, rate, tasks) for kind, rate in self.plan["rates"].items())
        )
        unanswered = 0
        if tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=DEADLINE_S + GRACE_S)
            unanswered = len(pending)
            for task in pending:
                task.cancel()
        return {
            "cpu_s": cpu_s() - cpu0,
            "results": self.results,
            "unanswered": unanswered,
            "held_back": dict(self.held_back),
            "details": dict(self.details.most_common(5)),
            # What is left to delete, for the next phase's deletes.
            "made_rooms": list(self.made_rooms),
        }


async def main_async(plan: Mapping[str, Any]) -> dict[str, Any]:
    # One channel for each service: grpc.aio multiplexes, and the facade sees
    # a handful of connections, as it would from a few application servers.
    async with (
        grpc.aio.insecure_channel(plan["target"]) as rooms,
        grpc.aio.insecure_channel(plan["target"]) as chat,
        grpc.aio.insecure_channel(plan["target"]) as logging,
        grpc.aio.insecure_channel(plan.get("floor") or plan["target"]) as floor,
    ):
        for channel in (rooms, chat, logging, floor):
            await asyncio.wait_for(channel.channel_ready(), 30)
        load = Load(
            plan,
            pb_grpc.RoomServiceStub(rooms),
            chat_grpc.ChatServiceStub(chat),
            lc_grpc.LoggingConfigurationServiceStub(logging),
            chat_grpc.ChatServiceStub(floor),
        )
        print("ready", flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        load.made_rooms.extend(plan["resources"]["stock_rooms"])
        load.made_configurations.update(plan["resources"]["stock_configurations"])
        load.start = float(line)
        return await load.run()


def main() -> int:
    with open(sys.argv[1]) as f:
        plan = json.load(f)
    with asyncio.Runner(loop_factory=loop_factory(plan.get("event_loop", "uvloop"))) as runner:
        print(json.dumps(runner.run(main_async(plan))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
