// The local IVS Chat endpoint through a client nobody here wrote: the AWS SDK
// for JavaScript v3, against a real `ivschat-grpc emulator` process started
// here. Every assertion goes through the SDK's own parsing: its exception
// classes, $metadata, modeled fields and Date timestamps.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  AccessDeniedException,
  ConflictException,
  CreateChatTokenCommand,
  CreateLoggingConfigurationCommand,
  CreateRoomCommand,
  DeleteLoggingConfigurationCommand,
  DeleteMessageCommand,
  DeleteRoomCommand,
  DisconnectUserCommand,
  GetLoggingConfigurationCommand,
  GetRoomCommand,
  InternalServerException,
  IvschatClient,
  IvschatServiceException,
  ListLoggingConfigurationsCommand,
  ListRoomsCommand,
  ListTagsForResourceCommand,
  PendingVerification,
  ResourceNotFoundException,
  SendEventCommand,
  ServiceQuotaExceededException,
  TagResourceCommand,
  ThrottlingException,
  UntagResourceCommand,
  UpdateLoggingConfigurationCommand,
  UpdateRoomCommand,
  ValidationException,
} from "@aws-sdk/client-ivschat";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const REGION = "us-east-1";
const ACCOUNT = "123456789012";
const LOGGING = `arn:aws:ivschat:${REGION}:${ACCOUNT}:logging-configuration/JsLogs`;
const LAMBDA = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:review`;
const LOGS = { cloudWatchLogs: { logGroupName: "js-chat-logs" } };
// The account's logging configurations, for this suite: small, so that one
// test reaches it (JsLogs, given at start, counts too).
const LOGGING_QUOTA = 6;
// The endpoint's own public local credentials (docs/local-endpoint.md).
const CREDENTIALS = { accessKeyId: "ivschat-local", secretAccessKey: "ivschat-local-secret" };
const REQUEST_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let emulator;
let url;
// Retries absorb the quota the endpoint enforces as AWS does, and the SDK
// retries no 4xx but a throttle; `once` never retries, for the errors the SDK
// would retry past (a throttle, a 5xx, AccessDeniedException as clock skew),
// on operations whose quota leaves room.
let ivschat;
let once;

function cleanEnv() {
  // No AWS settings leak in; AWS's config files are empty ones made here.
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("AWS_")) env[key] = value;
  }
  const dir = mkdtempSync(join(tmpdir(), "ivschat-js-"));
  for (const name of ["config", "credentials"]) writeFileSync(join(dir, name), "");
  env.AWS_CONFIG_FILE = join(dir, "config");
  env.AWS_SHARED_CREDENTIALS_FILE = join(dir, "credentials");
  env.AWS_EC2_METADATA_DISABLED = "true";
  return env;
}

function client(options = {}) {
  return new IvschatClient({ endpoint: url, region: REGION, credentials: CREDENTIALS, ...options });
}

async function admin(method, path, body) {
  const response = await fetch(`${url}/_emulator/${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.equal(response.status, 200, `${method} /_emulator/${path}`);
  return response.json();
}

before(async () => {
  const python = process.env.IVSCHAT_PYTHON ?? join(repo, ".venv/bin/python");
  const args = [
    ...["-m", "ivschat_grpc", "emulator", "--port", "0", "--logging-configuration", LOGGING],
    ...["--logging-configuration-quota", String(LOGGING_QUOTA)],
  ];
  emulator = spawn(python, args, { env: cleanEnv(), stdio: ["ignore", "pipe", "inherit"] });
  url = await new Promise((found, failed) => {
    const timer = setTimeout(() => failed(new Error("the emulator did not start within 60 s")), 60_000);
    emulator.once("exit", (code) => failed(new Error(`the emulator exited with ${code}`)));
    createInterface({ input: emulator.stdout }).on("line", (line) => {
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        found(m[1]);
      }
    });
  });
  ivschat = client({ maxAttempts: 10 });
  once = client({ maxAttempts: 1 });
});

after(async () => {
  ivschat?.destroy();
  once?.destroy();
  const exited = new Promise((done) => emulator.once("exit", done));
  emulator.kill("SIGTERM");
  await exited;
});

// --- every operation -------------------------------------------------------

// The operations this file calls; the last test checks it against the list the
// endpoint serves, so an operation added there fails here until it has a test.
const covered = new Set();

function operation(name, title, body) {
  covered.add(name);
  test(`${name}: ${title}`, body);
}

async function newRoom(input = {}) {
  return ivschat.send(new CreateRoomCommand(input));
}

function assertRequestId(output) {
  assert.match(output.$metadata.requestId, REQUEST_ID);
}

operation("CreateRoom", "returns every field, with AWS's defaults and Dates", async () => {
  const room = await newRoom({
    name: "from-aws-sdk-js",
    messageReviewHandler: { uri: LAMBDA },
    tags: { team: "web" },
    loggingConfigurationIdentifiers: [LOGGING],
  });
  assert.equal(room.$metadata.httpStatusCode, 200);
  assertRequestId(room);
  assert.match(room.id, /^[a-zA-Z0-9]{12}$/);
  assert.equal(room.arn, `arn:aws:ivschat:${REGION}:${ACCOUNT}:room/${room.id}`);
  assert.equal(room.name, "from-aws-sdk-js");
  assert.equal(room.maximumMessageLength, 500);
  assert.equal(room.maximumMessageRatePerSecond, 10);
  assert.deepEqual(room.messageReviewHandler, { uri: LAMBDA, fallbackResult: "ALLOW" });
  assert.deepEqual(room.tags, { team: "web" });
  assert.deepEqual(room.loggingConfigurationIdentifiers, [LOGGING]);
  assert.ok(room.createTime instanceof Date);
  assert.ok(room.updateTime instanceof Date);
  assert.ok(Math.abs(Date.now() - room.createTime.getTime()) < 60_000);
});

operation("GetRoom", "returns the room by ARN", async () => {
  const created = await newRoom({ name: "got", maximumMessageLength: 42 });
  const room = await ivschat.send(new GetRoomCommand({ identifier: created.arn }));
  assertRequestId(room);
  assert.equal(room.id, created.id);
  assert.equal(room.maximumMessageLength, 42);
  assert.ok(room.createTime instanceof Date);
  assert.equal(room.createTime.getTime(), created.createTime.getTime());
});

operation("ListRooms", "pages with nextToken and filters", async () => {
  const name = `listed-${Date.now()}`;
  const made = [];
  for (let i = 0; i < 3; i++) made.push((await newRoom({ name, loggingConfigurationIdentifiers: [LOGGING] })).id);
  const seen = [];
  let nextToken;
  do {
    const page = await ivschat.send(new ListRoomsCommand({ name, maxResults: 2, nextToken }));
    assertRequestId(page);
    assert.ok(page.rooms.length <= 2);
    for (const summary of page.rooms) {
      assert.equal(summary.name, name);
      assert.ok(summary.updateTime instanceof Date);
      seen.push(summary.id);
    }
    nextToken = page.nextToken;
  } while (nextToken);
  assert.deepEqual(seen.sort(), made.sort());
  const byLogging = await ivschat.send(new ListRoomsCommand({ loggingConfigurationIdentifier: LOGGING }));
  assert.ok(made.every((id) => byLogging.rooms.some((r) => r.id === id)));
});

operation("UpdateRoom", "changes the members given and detaches the handler", async () => {
  const created = await newRoom({ name: "before", messageReviewHandler: { uri: LAMBDA } });
  const updated = await ivschat.send(
    new UpdateRoomCommand({
      identifier: created.arn,
      name: "after",
      maximumMessageRatePerSecond: 3,
      messageReviewHandler: { uri: "" },
    }),
  );
  assertRequestId(updated);
  assert.equal(updated.name, "after");
  assert.equal(updated.maximumMessageRatePerSecond, 3);
  assert.equal(updated.maximumMessageLength, 500);
  assert.equal(updated.messageReviewHandler, undefined);
  assert.ok(updated.updateTime instanceof Date);
  assert.ok(updated.updateTime.getTime() >= created.updateTime.getTime());
});

operation("DeleteRoom", "deletes, then the room is gone", async () => {
  const created = await newRoom();
  const deleted = await ivschat.send(new DeleteRoomCommand({ identifier: created.arn }));
  assert.equal(deleted.$metadata.httpStatusCode, 204);
  assertRequestId(deleted);
  await assert.rejects(ivschat.send(new GetRoomCommand({ identifier: created.arn })), ResourceNotFoundException);
});

operation("CreateChatToken", "returns a token whose expiry follows the session", async () => {
  const room = await newRoom();
  const before = Date.now();
  const out = await ivschat.send(
    new CreateChatTokenCommand({
      roomIdentifier: room.arn,
      userId: "js-user",
      capabilities: ["SEND_MESSAGE", "DELETE_MESSAGE"],
      sessionDurationInMinutes: 30,
      attributes: { role: "moderator" },
    }),
  );
  assertRequestId(out);
  assert.ok(out.token.length > 0);
  assert.ok(out.tokenExpirationTime instanceof Date);
  assert.ok(out.sessionExpirationTime instanceof Date);
  const minutes = (out.sessionExpirationTime.getTime() - before) / 60_000;
  assert.ok(minutes > 29 && minutes <= 30.1, `session of ${minutes} minutes`);
  const [action] = (await admin("GET", "chat?operation=CreateChatToken")).filter((a) => a.roomArn === room.arn);
  assert.deepEqual(action.capabilities, ["SEND_MESSAGE", "DELETE_MESSAGE"]);
  assert.equal(action.token, undefined);
});

operation("SendEvent", "sends, and the endpoint keeps the event", async () => {
  const room = await newRoom();
  const out = await ivschat.send(
    new SendEventCommand({ roomIdentifier: room.arn, eventName: "app:poll", attributes: { q: "1" } }),
  );
  assertRequestId(out);
  assert.match(out.id, /^[a-zA-Z0-9]{12}$/);
  const sent = (await admin("GET", "chat?operation=SendEvent")).filter((a) => a.roomArn === room.arn);
  assert.deepEqual(sent, [{ operation: "SendEvent", roomArn: room.arn, id: out.id, eventName: "app:poll", attributes: { q: "1" } }]);
});

operation("DisconnectUser", "disconnects, and the endpoint keeps that it was asked", async () => {
  const room = await newRoom();
  const out = await ivschat.send(new DisconnectUserCommand({ roomIdentifier: room.arn, userId: "u1", reason: "spam" }));
  assert.equal(out.$metadata.httpStatusCode, 200);
  assertRequestId(out);
  const asked = (await admin("GET", "chat?operation=DisconnectUser")).filter((a) => a.roomArn === room.arn);
  assert.deepEqual(asked, [{ operation: "DisconnectUser", roomArn: room.arn, userId: "u1", reason: "spam" }]);
});

operation("DeleteMessage", "deletes, and answers the deletion event's id", async () => {
  const room = await newRoom();
  const out = await ivschat.send(new DeleteMessageCommand({ roomIdentifier: room.arn, id: "ABC123def456", reason: "rude" }));
  assertRequestId(out);
  assert.match(out.id, /^[a-zA-Z0-9]{12}$/);
  const deleted = (await admin("GET", "chat?operation=DeleteMessage")).filter((a) => a.roomArn === room.arn);
  assert.deepEqual(deleted, [{ operation: "DeleteMessage", roomArn: room.arn, id: out.id, messageId: "ABC123def456", reason: "rude" }]);
});

async function newLogging(input = {}) {
  return ivschat.send(new CreateLoggingConfigurationCommand({ destinationConfiguration: LOGS, ...input }));
}

// Each test deletes the configurations it makes, so that the quota is there for the next.
async function deleteLogging(...made) {
  for (const { arn } of made) await ivschat.send(new DeleteLoggingConfigurationCommand({ identifier: arn }));
}

operation("CreateLoggingConfiguration", "returns every field, ACTIVE, with Dates", async () => {
  const made = await newLogging({ name: "js-logs", tags: { team: "web" } });
  try {
    assert.equal(made.$metadata.httpStatusCode, 200);
    assertRequestId(made);
    assert.match(made.id, /^[a-zA-Z0-9]{12}$/);
    assert.equal(made.arn, `arn:aws:ivschat:${REGION}:${ACCOUNT}:logging-configuration/${made.id}`);
    assert.equal(made.name, "js-logs");
    assert.deepEqual(made.destinationConfiguration, LOGS);
    assert.equal(made.state, "ACTIVE");
    assert.deepEqual(made.tags, { team: "web" });
    assert.ok(made.createTime instanceof Date);
    assert.ok(made.updateTime instanceof Date);
    assert.ok(Math.abs(Date.now() - made.createTime.getTime()) < 60_000);
  } finally {
    await deleteLogging(made);
  }
});

operation("GetLoggingConfiguration", "returns the configuration by ARN", async () => {
  const made = await newLogging({ destinationConfiguration: { s3: { bucketName: "js-logs-bucket" } } });
  try {
    const got = await ivschat.send(new GetLoggingConfigurationCommand({ identifier: made.arn }));
    assertRequestId(got);
    assert.equal(got.id, made.id);
    assert.deepEqual(got.destinationConfiguration, { s3: { bucketName: "js-logs-bucket" } });
    assert.equal(got.state, "ACTIVE");
    assert.equal(got.createTime.getTime(), made.createTime.getTime());
    const given = await ivschat.send(new GetLoggingConfigurationCommand({ identifier: LOGGING }));
    assert.equal(given.id, "JsLogs");
  } finally {
    await deleteLogging(made);
  }
});

operation("ListLoggingConfigurations", "pages with nextToken, oldest first", async () => {
  const made = [await newLogging({ name: "listed-1" }), await newLogging({ name: "listed-2" })];
  try {
    const seen = [];
    let nextToken;
    do {
      const page = await ivschat.send(new ListLoggingConfigurationsCommand({ maxResults: 1, nextToken }));
      assertRequestId(page);
      assert.ok(page.loggingConfigurations.length <= 1);
      for (const summary of page.loggingConfigurations) {
        assert.ok(summary.createTime instanceof Date);
        assert.equal(summary.state, "ACTIVE");
        seen.push(summary.arn);
      }
      nextToken = page.nextToken;
    } while (nextToken);
    assert.deepEqual(seen, [LOGGING, ...made.map((c) => c.arn)]);
  } finally {
    await deleteLogging(...made);
  }
});

operation("UpdateLoggingConfiguration", "changes the members given", async () => {
  const made = await newLogging({ name: "before" });
  try {
    const firehose = { firehose: { deliveryStreamName: "js-stream" } };
    const updated = await ivschat.send(
      new UpdateLoggingConfigurationCommand({ identifier: made.arn, name: "after", destinationConfiguration: firehose }),
    );
    assertRequestId(updated);
    assert.equal(updated.name, "after");
    assert.deepEqual(updated.destinationConfiguration, firehose);
    assert.equal(updated.state, "ACTIVE");
    assert.ok(updated.updateTime.getTime() >= made.updateTime.getTime());
  } finally {
    await deleteLogging(made);
  }
});

operation("DeleteLoggingConfiguration", "deletes, then it is gone", async () => {
  const made = await newLogging();
  const deleted = await ivschat.send(new DeleteLoggingConfigurationCommand({ identifier: made.arn }));
  assert.equal(deleted.$metadata.httpStatusCode, 204);
  assertRequestId(deleted);
  const err = await refusal(
    ivschat.send(new GetLoggingConfigurationCommand({ identifier: made.arn })),
    ResourceNotFoundException,
    404,
  );
  assert.equal(err.resourceId, made.id);
  assert.equal(err.resourceType, "LOGGING_CONFIGURATION");
});

operation("TagResource", "tags a room and a logging configuration, through the URL-encoded ARN", async () => {
  const room = await newRoom({ tags: { team: "web" } });
  const made = await newLogging();
  try {
    for (const arn of [room.arn, made.arn]) {
      const out = await ivschat.send(new TagResourceCommand({ resourceArn: arn, tags: { env: "prod", "a b/c": "d" } }));
      assert.equal(out.$metadata.httpStatusCode, 200);
      assertRequestId(out);
    }
    const got = await ivschat.send(new GetRoomCommand({ identifier: room.arn }));
    assert.deepEqual(got.tags, { team: "web", env: "prod", "a b/c": "d" });
    const logging = await ivschat.send(new GetLoggingConfigurationCommand({ identifier: made.arn }));
    assert.deepEqual(logging.tags, { env: "prod", "a b/c": "d" });
  } finally {
    await deleteLogging(made);
  }
});

operation("UntagResource", "removes the keys given, in the query string", async () => {
  const room = await newRoom({ tags: { a: "1", "b c": "2", "d+e": "3" } });
  const out = await ivschat.send(new UntagResourceCommand({ resourceArn: room.arn, tagKeys: ["a", "d+e", "absent"] }));
  assert.equal(out.$metadata.httpStatusCode, 200);
  assertRequestId(out);
  const got = await ivschat.send(new GetRoomCommand({ identifier: room.arn }));
  assert.deepEqual(got.tags, { "b c": "2" });
});

operation("ListTagsForResource", "lists a resource's tags", async () => {
  const room = await newRoom({ tags: { team: "web" } });
  const out = await ivschat.send(new ListTagsForResourceCommand({ resourceArn: room.arn }));
  assertRequestId(out);
  assert.deepEqual(out.tags, { team: "web" });
  const given = await ivschat.send(new ListTagsForResourceCommand({ resourceArn: LOGGING }));
  assert.deepEqual(given.tags, {});
});

// --- every modeled error ---------------------------------------------------

// The SDK's parse of a refusal: its class, name, status and request id.
async function refusal(promise, type, status, name = type.name) {
  const err = await promise.then(
    () => assert.fail(`expected ${type.name}`),
    (e) => e,
  );
  assert.ok(err instanceof type, `${err.name} is not a ${type.name}`);
  assert.ok(err instanceof IvschatServiceException);
  assert.equal(err.name, name);
  assert.equal(err.$fault, status >= 500 ? "server" : "client");
  assert.equal(err.$metadata.httpStatusCode, status);
  assert.match(err.$metadata.requestId, REQUEST_ID);
  assert.equal(typeof err.message, "string");
  return err;
}

// One injected error on the next call of an operation (emulator/faults.py).
async function inject(rule) {
  await admin("POST", "faults", { times: 1, ...rule });
}

test("ValidationException names every bad field, with its reason", async () => {
  const err = await refusal(
    ivschat.send(new CreateRoomCommand({ name: "not a name!", maximumMessageLength: 0, maximumMessageRatePerSecond: 101 })),
    ValidationException,
    400,
  );
  assert.equal(err.reason, "FIELD_VALIDATION_FAILED");
  const names = err.fieldList.map((f) => f.name).sort();
  assert.deepEqual(names, ["maximumMessageLength", "maximumMessageRatePerSecond", "name"]);
  for (const f of err.fieldList) assert.equal(typeof f.message, "string");
});

test("ResourceNotFoundException names the room", async () => {
  const arn = `arn:aws:ivschat:${REGION}:${ACCOUNT}:room/NoSuchRoom12`;
  const err = await refusal(ivschat.send(new GetRoomCommand({ identifier: arn })), ResourceNotFoundException, 404);
  assert.equal(err.resourceId, "NoSuchRoom12");
  assert.equal(err.resourceType, "ROOM");
});

test("ResourceNotFoundException names an unknown logging configuration", async () => {
  const missing = `arn:aws:ivschat:${REGION}:${ACCOUNT}:logging-configuration/Missing`;
  const err = await refusal(
    ivschat.send(new CreateRoomCommand({ loggingConfigurationIdentifiers: [missing] })),
    ResourceNotFoundException,
    404,
  );
  assert.equal(err.resourceId, "Missing");
  assert.equal(err.resourceType, "LOGGING_CONFIGURATION");
});

test("ValidationException names the destination when it holds no kind", async () => {
  const err = await refusal(
    ivschat.send(new CreateLoggingConfigurationCommand({ destinationConfiguration: {} })),
    ValidationException,
    400,
  );
  assert.equal(err.reason, "FIELD_VALIDATION_FAILED");
  assert.deepEqual(err.fieldList.map((f) => f.name), ["destinationConfiguration"]);
});

test("ValidationException names a tag ARN of another form, and a reserved key", async () => {
  const oneLetter = `arn:aws:ivschat:${REGION}:${ACCOUNT}:r/abc123`;
  const bad = await refusal(
    ivschat.send(new ListTagsForResourceCommand({ resourceArn: oneLetter })),
    ValidationException,
    400,
  );
  assert.deepEqual(bad.fieldList.map((f) => f.name), ["resourceArn"]);
  const room = await newRoom();
  const reserved = await refusal(
    ivschat.send(new TagResourceCommand({ resourceArn: room.arn, tags: { "aws:team": "x" } })),
    ValidationException,
    400,
  );
  assert.deepEqual(reserved.fieldList.map((f) => f.name), ["tags[aws:team]"]);
});

test("ResourceNotFoundException for the tags of a room that does not exist", async () => {
  const arn = `arn:aws:ivschat:${REGION}:${ACCOUNT}:room/NoSuchRoom12`;
  const err = await refusal(
    ivschat.send(new UntagResourceCommand({ resourceArn: arn, tagKeys: ["k"] })),
    ResourceNotFoundException,
    404,
  );
  assert.equal(err.resourceId, "NoSuchRoom12");
  assert.equal(err.resourceType, "ROOM");
});

test("ConflictException: a logging configuration a room uses is not deleted", async () => {
  const made = await newLogging();
  const room = await newRoom({ loggingConfigurationIdentifiers: [made.arn] });
  const err = await refusal(
    ivschat.send(new DeleteLoggingConfigurationCommand({ identifier: made.arn })),
    ConflictException,
    409,
  );
  assert.equal(err.resourceId, made.id);
  assert.equal(err.resourceType, "LOGGING_CONFIGURATION");
  await ivschat.send(new UpdateRoomCommand({ identifier: room.arn, loggingConfigurationIdentifiers: [] }));
  await deleteLogging(made);
});

test("ServiceQuotaExceededException past the account's logging configurations", async () => {
  const listed = await ivschat.send(new ListLoggingConfigurationsCommand({}));
  const made = [];
  try {
    for (let i = listed.loggingConfigurations.length; i < LOGGING_QUOTA; i++) made.push(await newLogging());
    const err = await refusal(newLogging(), ServiceQuotaExceededException, 402);
    assert.equal(err.limit, LOGGING_QUOTA);
    assert.equal(err.resourceType, "LOGGING_CONFIGURATION");
    assert.equal(err.resourceId, ACCOUNT);
  } finally {
    await deleteLogging(...made);
  }
});

test("AccessDeniedException, as modeled", async () => {
  const room = await newRoom();
  await inject({ operation: "DisconnectUser", error: "AccessDeniedException" });
  await refusal(
    once.send(new DisconnectUserCommand({ roomIdentifier: room.arn, userId: "u1" })),
    AccessDeniedException,
    403,
  );
});

// The front end's own 403s are AWS's common errors, absent from the model: the
// SDK still parses their name, status and request id from the JSON answer.
for (const [why, credentials, name] of [
  ["a wrong secret", { ...CREDENTIALS, secretAccessKey: "not-the-secret" }, "InvalidSignatureException"],
  ["an unknown key", { accessKeyId: "nobody", secretAccessKey: "x" }, "UnrecognizedClientException"],
]) {
  test(`a signature with ${why} is refused 403 ${name}`, async () => {
    const stranger = client({ credentials, maxAttempts: 1 });
    try {
      await refusal(stranger.send(new CreateRoomCommand({})), IvschatServiceException, 403, name);
    } finally {
      stranger.destroy();
    }
  });
}

test("ThrottlingException past a tag operation's AWS quota", async () => {
  const arn = `arn:aws:ivschat:${REGION}:${ACCOUNT}:room/AbCdEfGhIjKl`;
  // 60 at once against ListTagsForResource's 10 a second.
  const outcomes = await Promise.allSettled(
    Array.from({ length: 60 }, () => once.send(new ListTagsForResourceCommand({ resourceArn: arn }))),
  );
  const throttled = outcomes.filter((o) => o.status === "rejected" && o.reason instanceof ThrottlingException);
  assert.ok(throttled.length > 0, "no call was throttled");
  const err = await refusal(Promise.reject(throttled[0].reason), ThrottlingException, 429);
  assert.equal(err.resourceId, "ListTagsForResource");
  assert.equal(err.limit, 10);
});

test("ThrottlingException past the operation's AWS quota", async () => {
  const arn = `arn:aws:ivschat:${REGION}:${ACCOUNT}:room/AbCdEfGhIjKl`;
  // 30 at once against GetRoom's 5 a second: some are throttled by the quota itself.
  const outcomes = await Promise.allSettled(
    Array.from({ length: 30 }, () => once.send(new GetRoomCommand({ identifier: arn }))),
  );
  const throttled = outcomes.filter((o) => o.status === "rejected" && o.reason instanceof ThrottlingException);
  assert.ok(throttled.length > 0, "no call was throttled");
  const err = await refusal(Promise.reject(throttled[0].reason), ThrottlingException, 429);
  assert.equal(err.resourceId, "GetRoom");
  assert.equal(err.resourceType, "ROOM");
  assert.equal(err.limit, 5);
});

test("ConflictException names the resource", async () => {
  const room = await newRoom();
  await inject({ operation: "UpdateRoom", error: "ConflictException" });
  const err = await refusal(ivschat.send(new UpdateRoomCommand({ identifier: room.arn, name: "x" })), ConflictException, 409);
  assert.equal(err.resourceId, "InjectedRoom");
  assert.equal(err.resourceType, "ROOM");
});

test("ServiceQuotaExceededException carries its limit", async () => {
  await inject({ operation: "CreateRoom", error: "ServiceQuotaExceededException", fields: { limit: 1000 } });
  const err = await refusal(ivschat.send(new CreateRoomCommand({})), ServiceQuotaExceededException, 402);
  assert.equal(err.resourceType, "ROOM");
  assert.equal(err.resourceId, "InjectedRoom");
  assert.equal(err.limit, 1000);
});

test("PendingVerification", async () => {
  await inject({ operation: "CreateRoom", error: "PendingVerification" });
  await refusal(ivschat.send(new CreateRoomCommand({})), PendingVerification, 403);
});

test("InternalServerException", async () => {
  const room = await newRoom();
  await inject({ operation: "SendEvent", error: "InternalServerException" });
  await refusal(
    once.send(new SendEventCommand({ roomIdentifier: room.arn, eventName: "e" })),
    InternalServerException,
    500,
  );
});

// The new operations' other modeled errors, injected: the SDK parses each
// from a logging configuration or a tag path's answer as from any other.
for (const [operation, type, status, send] of [
  ["GetLoggingConfiguration", AccessDeniedException, 403, () => new GetLoggingConfigurationCommand({ identifier: LOGGING })],
  ["UpdateLoggingConfiguration", PendingVerification, 403, () => new UpdateLoggingConfigurationCommand({ identifier: LOGGING, name: "x" })],
  ["CreateLoggingConfiguration", ConflictException, 409, () => new CreateLoggingConfigurationCommand({ destinationConfiguration: LOGS })],
  ["TagResource", InternalServerException, 500, () => new TagResourceCommand({ resourceArn: LOGGING, tags: { k: "v" } })],
]) {
  test(`${type.name} from ${operation}`, async () => {
    await inject({ operation, error: type.name });
    const err = await refusal(once.send(send()), type, status);
    if (type === ConflictException) assert.equal(err.resourceType, "LOGGING_CONFIGURATION");
  });
}

// Last: every operation the endpoint serves has a test above.
test("every operation the endpoint serves is called here", async () => {
  const served = (await admin("GET", "operations")).map((row) => row.operation);
  assert.deepEqual([...covered].sort(), [...served].sort());
});
