// client.ts shows how a TypeScript service calls ivschat.v1.RoomService,
// ivschat.v1.ChatService and ivschat.v1.LoggingConfigurationService over gRPC with stubs that buf
// generated from the repository's protos, and how it reads the google.rpc details the service puts
// on every error.
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";
import { ChatService } from "./gen/ivschat/v1/chat_service_pb.js";
import { LoggingConfigurationService } from "./gen/ivschat/v1/logging_configuration_service_pb.js";
import { RoomService } from "./gen/ivschat/v1/room_service_pb.js";

export { Code, ConnectError };
export * from "./gen/ivschat/v1/chat_service_pb.js";
export * from "./gen/ivschat/v1/logging_configuration_service_pb.js";
export * from "./gen/ivschat/v1/room_service_pb.js";

export type RoomClient = Client<typeof RoomService>;
export type ChatClient = Client<typeof ChatService>;
export type LoggingClient = Client<typeof LoggingConfigurationService>;

// One transport per address and token: both services share its HTTP/2
// connection, as the Python client's channel is shared.
function transport(address: string, token?: string): ReturnType<typeof createGrpcTransport> {
  const bearer: Interceptor = (next) => async (req) => {
    if (token !== undefined) {
      req.header.set("authorization", `Bearer ${token}`);
    }
    return next(req);
  };
  return createGrpcTransport({ baseUrl: `http://${address}`, interceptors: [bearer] });
}

/** connect opens a plaintext HTTP/2 gRPC client; token, if given, is sent as a bearer token. */
export function connect(address: string, token?: string): RoomClient {
  return createClient(RoomService, transport(address, token));
}

/** Clients is one client per service, all over one connection. */
export interface Clients {
  rooms: RoomClient;
  chat: ChatClient;
  logging: LoggingClient;
}

/** connectAll opens a client for each of the three services over one connection. */
export function connectAll(address: string, token?: string): Clients {
  const shared = transport(address, token);
  return {
    rooms: createClient(RoomService, shared),
    chat: createClient(ChatService, shared),
    logging: createClient(LoggingConfigurationService, shared),
  };
}

/** connectBoth opens RoomService and ChatService clients over one connection (see connectAll). */
export function connectBoth(address: string, token?: string): { rooms: RoomClient; chat: ChatClient } {
  const { rooms, chat } = connectAll(address, token);
  return { rooms, chat };
}

/** FieldViolation is one entry of google.rpc.BadRequest. */
export interface FieldViolation {
  field: string;
  description: string;
}

/** fieldViolations decodes every google.rpc.BadRequest violation carried by an error. */
export function fieldViolations(error: unknown): FieldViolation[] {
  return ConnectError.from(error)
    .findDetails(BadRequestSchema)
    .flatMap((bad) => bad.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
}

/** errorReason is google.rpc.ErrorInfo's reason: the AWS error code or the service's own. */
export function errorReason(error: unknown): string | undefined {
  return ConnectError.from(error).findDetails(ErrorInfoSchema)[0]?.reason;
}
