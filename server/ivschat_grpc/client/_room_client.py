"""A thin typed async client for ivschat.v1.RoomService, for other Python services.

    async with RoomClient.connect("rooms.internal:50051", tls_ca="ca.pem", token=token) as rooms:
        room = await rooms.create_room(pb.CreateRoomRequest(name="match-1"), deadline_s=5)

tls_ca, client_cert and client_key each take PEM bytes, or the path of a PEM
file (a str or os.PathLike), read once when the client is made.

Errors come back as RoomServiceError, with the google.rpc details decoded.
"""

from __future__ import annotations

import os
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self, TypeAlias, TypeVar

import grpc
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc

Metadata = tuple[tuple[str, str], ...]
# PEM content as bytes, or the path of a PEM file.
Pem: TypeAlias = bytes | str | os.PathLike[str]


def read_pem(pem: Pem | None, name: str) -> bytes | None:
    """pem's bytes: itself when bytes, else the file it names, read now."""
    if pem is None or isinstance(pem, bytes):
        return pem
    if not isinstance(pem, str | os.PathLike):
        raise TypeError(f"{name} must be PEM bytes or a file path, not {type(pem).__name__}")
    if isinstance(pem, str) and pem.lstrip().startswith("-----BEGIN"):
        # A path this is not: opening it would fail with the PEM text as a file name.
        raise TypeError(f"{name} holds PEM text: pass it as bytes (.encode()), or pass its path")
    with open(pem, "rb") as file:
        return file.read()


@dataclass(frozen=True, slots=True)
class RoomServiceError(Exception):
    """RoomServiceError is a failed call, with its rich details decoded."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    field_violations: Mapping[str, str] = field(default_factory=dict)
    retry_after_s: float | None = None

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"

    @property
    def room_may_exist(self) -> bool:
        """Whether AWS may have created the room despite the error."""
        return self.metadata.get("room_may_exist") == "true"

    @classmethod
    def from_status(cls, code: grpc.StatusCode, status: status_pb2.Status) -> RoomServiceError:
        """Decode a google.rpc.Status (from trailers, or a batch item's error)."""
        reason, metadata, violations, retry = "", {}, {}, None
        for detail in status.details:
            info, bad, retry_info = (
                error_details_pb2.ErrorInfo(),
                error_details_pb2.BadRequest(),
                error_details_pb2.RetryInfo(),
            )
            if detail.Unpack(info):
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Unpack(bad):
                violations.update({v.field: v.description for v in bad.field_violations})
            elif detail.Unpack(retry_info):
                retry = retry_info.retry_delay.ToTimedelta().total_seconds()
        return cls(code, status.message, reason, metadata, violations, retry)

    @classmethod
    def from_rpc_error(cls, error: grpc.aio.AioRpcError) -> RoomServiceError:
        """Decode a failed call's status and its grpc-status-details-bin trailer."""
        try:
            status = rpc_status.from_call(error)  # type: ignore[arg-type] # an AioRpcError answers what a Call does
        except ValueError:
            status = None  # a trailer that disagrees with the status itself is not trusted
        if status is None:
            return cls(error.code(), error.details() or "")
        return cls.from_status(error.code(), status)


@dataclass(frozen=True, slots=True, init=False)
class Connection:
    """Connection says how to reach the service; TLS and tokens match the server's options.

    tls_ca, client_cert and client_key take PEM bytes or a PEM file's path;
    a path is read here, once, so the fields always hold bytes.
    """

    target: str
    tls_ca: bytes | None
    client_cert: bytes | None
    client_key: bytes | None
    server_name: str | None
    token: str | None = field(repr=False)

    def __init__(
        self,
        target: str,
        tls_ca: Pem | None = None,
        client_cert: Pem | None = None,
        client_key: Pem | None = None,
        server_name: str | None = None,
        token: str | None = None,
    ) -> None:
        # Frozen: the fields are set once, here, through object's own setattr.
        set_ = object.__setattr__
        set_(self, "target", target)
        set_(self, "tls_ca", read_pem(tls_ca, "tls_ca"))
        set_(self, "client_cert", read_pem(client_cert, "client_cert"))
        set_(self, "client_key", read_pem(client_key, "client_key"))
        set_(self, "server_name", server_name)
        set_(self, "token", token)

    def channel(self) -> grpc.aio.Channel:
        """A channel: TLS when a CA or client certificate is given, else plaintext."""
        if self.tls_ca is None and self.client_cert is None:
            return grpc.aio.insecure_channel(self.target)
        credentials = grpc.ssl_channel_credentials(self.tls_ca, self.client_key, self.client_cert)
        options = [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
        return grpc.aio.secure_channel(self.target, credentials, options=options)

    def metadata(self) -> Metadata:
        """Per-call metadata: the bearer token, if any."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()


R = TypeVar("R")


class _Page(Protocol):
    """_Page is one page of a List RPC's response (AIP-132)."""

    next_page_token: str


Page = TypeVar("Page", bound=_Page)
Item = TypeVar("Item")


class _Client:
    """_Client is what RoomClient and ChatClient share: one channel, its metadata, the errors."""

    # The error a failed call raises: RoomServiceError, or a subclass.
    _error: type[RoomServiceError] = RoomServiceError

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._channel = connection.channel()
        self._metadata = connection.metadata()

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        tls_ca: Pem | None = None,
        client_cert: Pem | None = None,
        client_key: Pem | None = None,
        server_name: str | None = None,
        token: str | None = None,
    ) -> Self:
        """A client for target ("host:port"): TLS when tls_ca or client_cert is given.

        tls_ca, client_cert and client_key are PEM bytes or a PEM file's path;
        server_name is the name to expect on the server's certificate; token
        is sent as a bearer token on every call.
        """
        return cls(Connection(target, tls_ca, client_cert, client_key, server_name, token))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._channel.close()

    async def _call(
        self, method: Callable[..., Awaitable[R]], request: Any, deadline_s: float
    ) -> R:
        """method(request) within deadline_s, its failure raised as this client's error."""
        try:
            return await method(request, timeout=deadline_s, metadata=self._metadata)
        except grpc.aio.AioRpcError as e:
            raise self._error.from_rpc_error(e) from e


async def every(
    page: Callable[[str], Awaitable[Page]], items: Callable[[Page], Iterable[Item]]
) -> AsyncIterator[Item]:
    """Every item of a listing (AIP-132): page(token) after page, following next_page_token."""
    token = ""
    while True:
        got = await page(token)
        for item in items(got):
            yield item
        token = got.next_page_token
        if not token:
            return


class RoomClient(_Client):
    """RoomClient calls RoomService; use it as an async context manager."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self._stub = pb_grpc.RoomServiceStub(self._channel)

    async def create_room(self, request: pb.CreateRoomRequest, *, deadline_s: float) -> pb.Room:
        """Create one room within the gRPC deadline deadline_s, or raise RoomServiceError."""
        response = await self._call(self._stub.CreateRoom, request, deadline_s)
        return response.room

    async def get_room(self, arn: str, *, deadline_s: float) -> pb.Room:
        """Read one room by its ARN within deadline_s, or raise RoomServiceError."""
        return await self._call(self._stub.GetRoom, pb.GetRoomRequest(arn=arn), deadline_s)

    async def list_rooms(
        self,
        *,
        deadline_s: float,
        page_size: int = 0,
        page_token: str = "",
        name: str = "",
        message_review_handler_uri: str = "",
        logging_configuration_identifier: str = "",
    ) -> pb.ListRoomsResponse:
        """One page of rooms within deadline_s, or raise RoomServiceError.

        Pass the page's next_page_token, with the same filters, for the next
        page; it is empty on the last. An empty filter is no filter.
        """
        request = pb.ListRoomsRequest(
            page_size=page_size,
            page_token=page_token,
            name=name,
            message_review_handler_uri=message_review_handler_uri,
            logging_configuration_identifier=logging_configuration_identifier,
        )
        return await self._call(self._stub.ListRooms, request, deadline_s)

    async def all_rooms(
        self,
        *,
        deadline_s: float,
        page_size: int = 0,
        name: str = "",
        message_review_handler_uri: str = "",
        logging_configuration_identifier: str = "",
    ) -> AsyncIterator[pb.RoomSummary]:
        """Every room the filters keep, page after page; deadline_s is each page's."""

        def page(token: str) -> Awaitable[pb.ListRoomsResponse]:
            return self.list_rooms(
                deadline_s=deadline_s,
                page_size=page_size,
                page_token=token,
                name=name,
                message_review_handler_uri=message_review_handler_uri,
                logging_configuration_identifier=logging_configuration_identifier,
            )

        async for room in every(page, lambda got: got.rooms):
            yield room

    async def update_room(
        self, room: pb.Room, update_mask: Sequence[str] = (), *, deadline_s: float
    ) -> pb.Room:
        """Change room's fields that update_mask names (empty: those room sets) within
        deadline_s; room.arn names the room. Returns the room, or raises RoomServiceError."""
        request = pb.UpdateRoomRequest(
            room=room, update_mask=field_mask_pb2.FieldMask(paths=list(update_mask))
        )
        return await self._call(self._stub.UpdateRoom, request, deadline_s)

    async def delete_room(
        self, arn: str, *, deadline_s: float, allow_missing: bool = False
    ) -> None:
        """Delete one room by its ARN within deadline_s, or raise RoomServiceError."""
        request = pb.DeleteRoomRequest(arn=arn, allow_missing=allow_missing)
        await self._call(self._stub.DeleteRoom, request, deadline_s)

    async def batch_create(
        self,
        requests: AsyncIterator[pb.BatchCreateRoomsRequest] | Iterator[pb.BatchCreateRoomsRequest],
        *,
        deadline_s: float | None = None,
    ) -> AsyncIterator[pb.BatchCreateRoomsResponse]:
        """Stream requests; yield each item's response. A stream failure raises RoomServiceError."""
        call = self._stub.BatchCreateRooms(requests, timeout=deadline_s, metadata=self._metadata)
        try:
            async for response in call:
                yield response
        except grpc.aio.AioRpcError as e:
            raise RoomServiceError.from_rpc_error(e) from e
