"""Mixed load: every IVS Chat operation at twice its quota, through one facade pinned to one core.

    .venv/bin/python -m bench.mixed                 # two phases of 60 s each
    .venv/bin/python -m bench.mixed --seconds 10 --check   # CI: phase 1, behaviour only

The local endpoint runs as its own process and enforces every operation's AWS
quota (its defaults). The facade runs as its own process with its default
pacing (AWS's quotas), pinned to one core with taskset. Callers in three
processes of their own (bench/mixed_worker.py) send open-loop: each kind of
call at its rate whatever the answers, each with the interactive deadline.

Phase 1 demands twice each operation's quota. An operation that only a
caller's RPC sends first gets 2x at once. The others are sent only after an
earlier step of the same RPC was served (docs/calling.md, Tags): UpdateRoom
and UpdateLoggingConfiguration after ListTagsForResource (an update that names
the reserved tag), UntagResource and TagResource after a read or an update.
Their demand is what the earlier steps let through, which the earlier steps'
own quotas bound; the mix of RPCs (RATES) keeps each above its quota, and the
table shows the demand that reached each one, measured.

Phase 2 demands the chat operations at half their quota and the rest at 2x,
and runs the floor (bench/floor.py, pinned to the other core) beside it,
taking CreateChatToken at the same rate from the same endpoint: the p99 of
an operation under its quota in a loaded facade against the least a grpc.aio
server costs.

Served calls, quota used and throttles are the endpoint's own record of what
it served (/_emulator/requests), over the measured window. Shed calls, other
refusals and latencies are what the callers got: a refusal counts against the
operation its ErrorInfo names, else the first its RPC sends, and a served
call's latency counts for every operation its RPC sent. Prints one table per
phase, writes bench/results/mixed.json, and exits 1 only with --check and a
broken behaviour: a throttle answered by the endpoint, a call unanswered, or
one answered with a code other than OK, RESOURCE_EXHAUSTED (a shed or the
RPC limit), DEADLINE_EXCEEDED and CANCELLED (gRPC core's refusal of calls
past its pending bound). No timing fails it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import aiohttp
import grpc
from ivschat.v1 import logging_configuration_service_pb2 as lc_pb
from ivschat.v1 import logging_configuration_service_pb2_grpc as lc_grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.core.creator import RESERVED_TAG

from bench.mixed_worker import CHAINS, FLOOR_USER
from bench.procs import clean_env, metric_by, process, service_env
from bench.run import cpu_ticks

# The facade's core, and the floor's in phase 2: each one core of its own,
# since the facade needs most of its core at phase 2's load, and the floor
# sharing it starved it (every token late). The rest is unpinned.
FACADE_CPU: Final = 1
FLOOR_CPU: Final = 0
EVENT_LOOP: Final = "uvloop"
SHED_REASON: Final = "RATE_LIMIT_EXCEEDED"
# What a caller under load may be answered besides OK: a shed (or another
# documented limit), a deadline run out (timing, never a failure here).
# CANCELLED too: gRPC core's own refusal, with no status, of calls past its
# pending bound (runtime/assembly.py), when the service falls seconds behind.
EXPECTED: Final = frozenset({"OK", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "CANCELLED"})
# Refusals that are a limit doing its job; any other RESOURCE_EXHAUSTED (a
# throttle passed on, the account's configuration limit) is the bench's or
# the facade's fault.
LIMIT_REASONS: Final = frozenset({SHED_REASON, "CONCURRENCY_LIMIT"})
CHAT: Final = ("CreateChatToken", "SendEvent", "DisconnectUser", "DeleteMessage")

# Each kind of call's rate, as a multiple of one operation's quota. The pairs
# that share an operation sum to 2x it: GetRoom is read by GetRoom and by a
# tags-only UpdateRoom (0.4 + 1.6), ListTagsForResource by the two updates
# of fields and tags (1.2 + 0.8 of its 10/s: 12 and 8 a second, of which
# about 6 and 4 reach UpdateRoom, 5/s, and UpdateLoggingConfiguration, 3/s).
# UntagResource then gets the tags-only room updates past GetRoom (about 4/s)
# and both field updates (8/s): about 1.2x; TagResource gets those past
# UntagResource (10/s) and the logging configuration's tags-only updates,
# which change a value and send TagResource alone (about 2.5/s): 1.25x.
RATES: Final[Mapping[str, tuple[str, float]]] = {
    "create_room": ("CreateRoom", 2),
    "get_room": ("GetRoom", 0.4),
    "update_room_tags": ("GetRoom", 1.6),
    "list_rooms": ("ListRooms", 2),
    "update_room_fields": ("ListTagsForResource", 1.2),
    "delete_room": ("DeleteRoom", 2),
    "create_chat_token": ("CreateChatToken", 2),
    "send_event": ("SendEvent", 2),
    "disconnect_user": ("DisconnectUser", 2),
    "delete_message": ("DeleteMessage", 2),
    "create_logging_configuration": ("CreateLoggingConfiguration", 2),
    "get_logging_configuration": ("GetLoggingConfiguration", 1 / 3),
    "update_logging_configuration_tags": ("GetLoggingConfiguration", 5 / 3),
    "list_logging_configurations": ("ListLoggingConfigurations", 2),
    "update_logging_configuration_fields": ("ListTagsForResource", 0.8),
    "delete_logging_configuration": ("DeleteLoggingConfiguration", 2),
}
UNDER_QUOTA: Final = 0.5
CHAT_KINDS: Final = frozenset(k for k, (op, _) in RATES.items() if op in CHAT)
# Rooms made before the load, for its deletes until its creates catch up.
STOCK_ROOMS: Final = 8
CHAT_ROOMS: Final = 4
# Enough that two updates of one room rarely overlap: each then has a tag to remove.
TAGGED_ROOMS: Final = 24
SETUP_DEADLINE_S: Final = 30.0
# Targets (issue 19).
QUOTA_USED_TARGET: Final = 0.97
CPU_TARGET_PCT: Final = 70.0
SHED_LATENCY_TARGET_MS: Final = 50.0
P99_OVER_FLOOR_TARGET_MS: Final = 2.0


def machine() -> str:
    model = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    cores = len(re.findall(r"^processor\s*:", Path("/proc/cpuinfo").read_text(), re.M))
    name = model[1].strip() if model else platform.machine()
    return f"{name}, {cores} cores, Python {platform.python_version()}"


def p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, int(len(ordered) * 0.99) - 1)], 2)


def p50(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


async def _paced(call: Any) -> Any:
    """call() again while the facade sheds it: setup goes no faster than the quota."""
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as e:
            if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            await asyncio.sleep(0.5)


async def setup(target: str, stock_rooms: int) -> dict[str, Any]:
    """The rooms and logging configurations the load works on, made through the facade."""
    async with grpc.aio.insecure_channel(target) as channel:
        rooms = pb_grpc.RoomServiceStub(channel)
        logging = lc_grpc.LoggingConfigurationServiceStub(channel)
        # At most a few waiting at once, so none is shed for the queue's bound.
        gate = asyncio.Semaphore(4)

        async def room(request_id: str | None = None) -> pb.Room:
            request = pb.CreateRoomRequest(name="mixed-setup")
            if request_id is not None:
                request.request_id = request_id
            async with gate:
                made: pb.CreateRoomResponse = await _paced(
                    lambda: rooms.CreateRoom(request, timeout=SETUP_DEADLINE_S)
                )
            return made.room

        async def configuration(with_request_id: bool) -> lc_pb.LoggingConfiguration:
            config = lc_pb.LoggingConfiguration(
                name="mixed-setup",
                s3=lc_pb.S3Destination(bucket_name="mixed-logs"),
                tags={} if with_request_id else {"v": "0"},
            )
            request = lc_pb.CreateLoggingConfigurationRequest(logging_configuration=config)
            if with_request_id:
                request.request_id = str(uuid.uuid4())
            made: lc_pb.LoggingConfiguration = await _paced(
                lambda: logging.CreateLoggingConfiguration(request, timeout=SETUP_DEADLINE_S)
            )
            return made

        chat = [room() for _ in range(CHAT_ROOMS)]
        tagged = [room(str(uuid.uuid4())) for _ in range(TAGGED_ROOMS)]
        stock = [room() for _ in range(stock_rooms)]
        made = await asyncio.gather(*chat, *tagged, *stock)
        configs = [await configuration(False), await configuration(True)]
    return {
        "chat_rooms": [r.arn for r in made[:CHAT_ROOMS]],
        "tagged_rooms": [
            {"arn": r.arn, "request_id": r.tags[RESERVED_TAG]}
            for r in made[CHAT_ROOMS : CHAT_ROOMS + TAGGED_ROOMS]
        ],
        "stock_rooms": [r.arn for r in made[CHAT_ROOMS + TAGGED_ROOMS :]],
        "configurations": [
            {"arn": c.arn, "request_id": c.tags.get(RESERVED_TAG, "")} for c in configs
        ],
    }


async def leftover_configurations(target: str, kept: list[dict[str, Any]]) -> list[str]:
    """The logging configurations an earlier phase made and did not delete."""
    async with grpc.aio.insecure_channel(target) as channel:
        logging = lc_grpc.LoggingConfigurationServiceStub(channel)
        request = lc_pb.ListLoggingConfigurationsRequest(page_size=50)
        listed = await _paced(
            lambda: logging.ListLoggingConfigurations(request, timeout=SETUP_DEADLINE_S)
        )
    keep = {c["arn"] for c in kept}
    return [c.arn for c in listed.logging_configurations if c.arn not in keep]


class Endpoint:
    """Endpoint reads the local endpoint's record of what it served."""

    def __init__(
        self, proc: asyncio.subprocess.Process, url: str, http: aiohttp.ClientSession
    ) -> None:
        self.proc = proc
        self.url = url
        self.http = http

    async def quotas(self) -> dict[str, float]:
        reply = await self.http.get(f"{self.url}/_emulator/operations")
        return {o["operation"]: o["quota"] for o in await reply.json()}

    async def records(self) -> list[dict[str, Any]]:
        reply = await self.http.get(f"{self.url}/_emulator/requests")
        records: list[dict[str, Any]] = await reply.json()
        return records

    async def clear(self) -> list[dict[str, Any]]:
        """The record so far, then none."""
        records = await self.records()
        await self.http.delete(f"{self.url}/_emulator/requests")
        return records


def throttles(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(r["operation"] for r in records if r["status"] == 429)


def served(records: list[dict[str, Any]]) -> tuple[Counter[str], int]:
    """Calls the endpoint answered other than with a throttle, by operation; and the floor's.

    A delete of what is already gone counts: AWS ran it, and counted it.
    """
    out: Counter[str] = Counter()
    floor = 0
    for r in records:
        if r["status"] in (0, 429):
            continue
        body = r["body"] if isinstance(r["body"], dict) else {}
        if r["operation"] == "CreateChatToken" and str(body.get("userId", "")).startswith(
            FLOOR_USER
        ):
            floor += 1
        else:
            out[r["operation"]] += 1
    return out, floor


async def start_workers(
    plans: list[dict[str, Any]],
) -> tuple[list[asyncio.subprocess.Process], float]:
    """One worker per plan, each told the start time they share once all are ready."""
    procs = []
    for plan in plans:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(plan, f)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.mixed_worker",
            f.name,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=clean_env(),
        )
        procs.append(proc)
    for proc in procs:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if line.strip() != b"ready":
            raise RuntimeError(f"bench.mixed_worker did not start: {line!r}")
    start = time.monotonic() + 0.3
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(f"{start}\n".encode())
        await proc.stdin.drain()
    return procs, start


async def finish(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError("bench.mixed_worker failed")
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


async def sleep_until(when: float) -> None:
    delay = when - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)  # the measurement's clock, not a wait for readiness


def phase_rates(quotas: Mapping[str, float], under_quota: bool) -> dict[str, float]:
    """Each kind's calls a second; in phase 2 the chat kinds at half their quota, and the floor."""
    rates = {}
    for kind, (operation, times) in RATES.items():
        if under_quota and kind in CHAT_KINDS:
            times = UNDER_QUOTA
        rates[kind] = round(quotas[operation] * times, 3)
    if under_quota:
        rates["floor_create_chat_token"] = rates["create_chat_token"]
    return rates


def analyse(
    results: list[list[Any]],
    quotas: Mapping[str, float],
    counted: Counter[str],
    throttled: Counter[str],
    seconds: float,
) -> dict[str, Any]:
    """One row per AWS operation, from the endpoint's record and what the callers got."""
    shed: Counter[str] = Counter()
    shed_at: dict[str, list[float]] = {op: [] for op in quotas}
    refused: dict[str, Counter[str]] = {op: Counter() for op in quotas}
    latencies: dict[str, list[float]] = {op: [] for op in quotas}
    shed_ms: list[float] = []
    first_shed_ms: list[float] = []
    by_kind: dict[str, Counter[str]] = {}
    for kind, _sent, latency_ms, code, reason, operation in results:
        if kind.startswith("floor_"):
            continue
        chain = CHAINS[kind]
        key = code if not reason else f"{code}/{reason}"
        by_kind.setdefault(kind, Counter())[key] += 1
        if code == "OK":
            for op in chain:
                latencies[op].append(latency_ms)
            continue
        op = operation or chain[0]
        if code == "RESOURCE_EXHAUSTED":
            shed_ms.append(latency_ms)
            if op == chain[0]:
                first_shed_ms.append(latency_ms)
        if code == "RESOURCE_EXHAUSTED" and reason == SHED_REASON:
            shed[op] += 1
            shed_at[op].append(latency_ms)
        else:
            refused[op][key] += 1
    rows = {}
    for op, quota in quotas.items():
        rows[op] = {
            "quota_per_s": quota,
            "served": counted[op],
            # What reached the operation: served at the endpoint, or refused for it by the facade.
            "demand_x_quota": round(
                (counted[op] + shed[op] + refused[op].total()) / (quota * seconds), 2
            ),
            "quota_used": round(counted[op] / (quota * seconds), 4),
            "throttles": throttled[op],
            "shed": shed[op],
            # From the RPC's send: a shed at a later step waited for the earlier ones.
            "shed_answer_p99_ms": p99(shed_at[op]),
            "other_refusals": dict(refused[op]),
            "served_p50_ms": p50(latencies[op]),
            "served_p99_ms": p99(latencies[op]),
        }
    return {
        "operations": rows,
        "calls_by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
        "shed_answer_ms": {
            "count": len(shed_ms),
            "p50": p50(shed_ms),
            "p99": p99(shed_ms),
            "max": round(max(shed_ms), 2) if shed_ms else None,
        },
        # Refused at an RPC's first AWS call: nothing was served before, so
        # the answer's latency is the facade's own.
        "first_step_shed_answer_ms": {
            "count": len(first_shed_ms),
            "p50": p50(first_shed_ms),
            "p99": p99(first_shed_ms),
            "max": round(max(first_shed_ms), 2) if first_shed_ms else None,
        },
    }


def unexpected(results: list[list[Any]]) -> dict[str, int]:
    """Answers no caller under load should get, by code and reason."""
    out: Counter[str] = Counter()
    for _kind, _sent, _latency, code, reason, _op in results:
        if code not in EXPECTED or (code == "RESOURCE_EXHAUSTED" and reason not in LIMIT_REASONS):
            out[f"{code}/{reason}" if reason else code] += 1
    return dict(out)


def shed_metric(scrape: str) -> Counter[str]:
    """ivschat_grpc_shed_total by operation."""
    return metric_by(scrape, "ivschat_grpc_shed_total", "operation")


async def phase(
    name: str,
    seconds: float,
    under_quota: bool,
    quotas: Mapping[str, float],
    endpoint: Endpoint,
    facade: tuple[asyncio.subprocess.Process, str, str],
    floor: tuple[asyncio.subprocess.Process, str] | None,
    resources: dict[str, Any],
) -> dict[str, Any]:
    facade_proc, facade_port, metrics_url = facade
    endpoint_proc = endpoint.proc
    rates = phase_rates(quotas, under_quota)
    target = f"127.0.0.1:{facade_port}"
    base: dict[str, Any] = {
        "target": target,
        "floor": f"127.0.0.1:{floor[1]}" if floor else None,
        "seconds": seconds,
        "resources": resources,
        "event_loop": EVENT_LOOP,
    }
    # Three callers: the tokens (with the floor's), the moderation calls,
    # and the rest, so that no caller's own loop is what delays a call.
    tokens = {k: r for k, r in rates.items() if k.endswith("create_chat_token")}
    moderation = {k: r for k, r in rates.items() if k in CHAT_KINDS and k not in tokens}
    rest = {k: r for k, r in rates.items() if k not in tokens and k not in moderation}
    resources["stock_configurations"] = await leftover_configurations(
        target, resources["configurations"]
    )
    before = await endpoint.clear()
    async with endpoint.http.get(metrics_url) as reply:
        shed_before = shed_metric(await reply.text())
    procs, start = await start_workers([{**base, "rates": r} for r in (tokens, moderation, rest)])
    await sleep_until(start)
    cpu0 = cpu_ticks(facade_proc.pid)
    endpoint_cpu0 = cpu_ticks(endpoint_proc.pid)
    floor_cpu0 = cpu_ticks(floor[0].pid) if floor else 0.0
    await sleep_until(start + seconds)
    cpu1 = cpu_ticks(facade_proc.pid)
    endpoint_cpu1 = cpu_ticks(endpoint_proc.pid)
    floor_cpu1 = cpu_ticks(floor[0].pid) if floor else 0.0
    snapshot_at = time.monotonic()
    window = await endpoint.records()
    snapshot_s = time.monotonic() - snapshot_at
    outs = await asyncio.gather(*(finish(p) for p in procs))
    whole = await endpoint.records()
    async with endpoint.http.get(metrics_url) as reply:
        shed_after = shed_metric(await reply.text())
    results = [r for out in outs for r in out["results"]]
    resources["stock_rooms"] = [arn for out in outs for arn in out["made_rooms"]]
    counted, floor_served = served(window)
    report = analyse(results, quotas, counted, throttles(whole), seconds)
    report = {
        "phase": name,
        "seconds": seconds,
        "rates_per_s": rates,
        "throttles_before": sum(throttles(before).values()),
        "endpoint_snapshot_s": round(snapshot_s, 3),
        "facade_cpu_pct_of_one_core": round((cpu1 - cpu0) / seconds * 100, 1),
        # The rest of the machine's share, for what the facade's figures stand on.
        "endpoint_cpu_pct": round((endpoint_cpu1 - endpoint_cpu0) / seconds * 100, 1),
        # The callers' CPU includes their drain after the window.
        "callers_cpu_pct": round(sum(o["cpu_s"] for o in outs) / seconds * 100, 1),
        "load_average": round(os.getloadavg()[0], 2),
        **report,
        "shed_total_metric": dict(shed_after - shed_before),
        "unanswered": sum(o["unanswered"] for o in outs),
        "held_back": dict(sum((Counter(o["held_back"]) for o in outs), Counter())),
        "unexpected": unexpected(results),
        "client_error_details": dict(
            sum((Counter(o["details"]) for o in outs), Counter()).most_common(5)
        ),
    }
    if floor:
        floor_ok = [r[2] for r in results if r[0] == "floor_create_chat_token" and r[3] == "OK"]
        floor_codes = Counter(r[3] for r in results if r[0] == "floor_create_chat_token")
        report["floor"] = {
            "create_chat_token_per_s": rates["floor_create_chat_token"],
            "served_by_endpoint": floor_served,
            "codes": dict(floor_codes),
            "served_p50_ms": p50(floor_ok),
            "served_p99_ms": p99(floor_ok),
            "cpu_pct_of_one_core": round((floor_cpu1 - floor_cpu0) / seconds * 100, 1),
        }
    return report


def targets(phases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def target(name: str, met: bool | None, value: str) -> None:
        out.append({"target": name, "met": met, "value": value})

    first = phases[0]
    rows = first["operations"]
    low = {op: r["quota_used"] for op, r in rows.items() if r["quota_used"] < QUOTA_USED_TARGET}
    least = min(rows, key=lambda op: rows[op]["quota_used"])
    target(
        "quota used >= 97 %, every operation (phase 1)",
        not low,
        f"least {least} {rows[least]['quota_used']:.1%}; below: {sorted(low) or 'none'}",
    )
    thrown = sum(sum(r["throttles"] for r in p["operations"].values()) for p in phases)
    thrown += sum(p["throttles_before"] for p in phases)
    target("throttles answered by the endpoint: 0", thrown == 0, str(thrown))
    cpu = first["facade_cpu_pct_of_one_core"]
    target("facade CPU <= 70 % of one core (phase 1)", cpu <= CPU_TARGET_PCT, f"{cpu} %")
    shed = first["first_step_shed_answer_ms"]
    if shed["count"]:
        target(
            "a shed call answered within 50 ms (p99, phase 1, at the RPC's first call)",
            shed["p99"] <= SHED_LATENCY_TARGET_MS,
            f"p99 {shed['p99']} ms, max {shed['max']} ms, {shed['count']} sheds",
        )
    else:
        target("a shed call answered within 50 ms", False, "no RESOURCE_EXHAUSTED answer at all")
    for p in phases[1:]:
        if "floor" not in p:
            continue
        facade_p99 = p["operations"]["CreateChatToken"]["served_p99_ms"]
        floor_p99 = p["floor"]["served_p99_ms"]
        if facade_p99 is None or floor_p99 is None:
            target("served p99 under quota <= floor p99 + 2 ms", False, "no served calls")
            continue
        added = round(facade_p99 - floor_p99, 2)
        target(
            "served p99 under quota <= floor p99 + 2 ms (CreateChatToken at 0.5x, phase 2)",
            added <= P99_OVER_FLOOR_TARGET_MS,
            f"facade {facade_p99} ms, floor {floor_p99} ms: +{added} ms",
        )
    return out


def table(p: dict[str, Any]) -> str:
    lines = [
        f"{p['phase']} ({p['seconds']:g} s)",
        f"{'operation':<28} {'quota':>6} {'demand':>7} {'used':>7} {'thr':>4} "
        f"{'shed':>6} {'shed p99':>8} {'p99 ms':>8}  other refusals",
    ]
    for op, r in p["operations"].items():
        other = ", ".join(f"{k} {v}" for k, v in r["other_refusals"].items()) or "-"
        served_p99 = "-" if r["served_p99_ms"] is None else f"{r['served_p99_ms']:.1f}"
        shed_p99 = "-" if r["shed_answer_p99_ms"] is None else f"{r['shed_answer_p99_ms']:.1f}"
        lines.append(
            f"{op:<28} {r['quota_per_s']:>6g} {r['demand_x_quota']:>6.2f}x "
            f"{r['quota_used']:>7.1%} {r['throttles']:>4} {r['shed']:>6} {shed_p99:>8} "
            f"{served_p99:>8}  {other}"
        )
    shed = p["first_step_shed_answer_ms"]
    lines.append(
        f"facade CPU {p['facade_cpu_pct_of_one_core']} % of one core; shed answers at the first "
        f"call p50 {shed['p50']} / p99 {shed['p99']} / max {shed['max']} ms ({shed['count']}); "
        f"unanswered {p['unanswered']}; unexpected {p['unexpected'] or 'none'}"
    )
    lines.append(
        f"endpoint CPU {p['endpoint_cpu_pct']} %, callers' CPU {p['callers_cpu_pct']} %, "
        f"load average {p['load_average']}"
    )
    if p["held_back"]:
        lines.append(f"not sent, to stay under the account's limit: {p['held_back']}")
    if "floor" in p:
        f = p["floor"]
        lines.append(
            f"floor CreateChatToken at {f['create_chat_token_per_s']:g}/s: p50 "
            f"{f['served_p50_ms']} / p99 {f['served_p99_ms']} ms, {f['codes']}, "
            f"CPU {f['cpu_pct_of_one_core']} %"
        )
    return "\n".join(lines)


async def run(seconds: float, check: bool, serve_args: list[str]) -> dict[str, Any]:
    emulator = ("emulator", "--port", "0")
    listening = r"listening on [\d.]+:(\d+)"
    lines: list[str] = []
    async with (
        process(r"listening on (http://\S+)", *emulator, env=clean_env()) as (emulator_proc, url),
        aiohttp.ClientSession() as http,
    ):
        env = service_env(url)
        serve = (
            "serve",
            "--port",
            "0",
            "--log-level",
            "WARNING",
            "--metrics-port",
            "0",
            *serve_args,
        )
        async with process(
            r"metrics at (http://\S+)", *serve, env=env, lines=lines, cpus=str(FACADE_CPU)
        ) as (facade_proc, metrics_url):
            facade_port = re.findall(listening, "".join(lines))[0]
            facade = (facade_proc, facade_port, metrics_url)
            endpoint = Endpoint(emulator_proc, url, http)
            quotas = await endpoint.quotas()
            stock = STOCK_ROOMS if check else 3 * STOCK_ROOMS
            resources = await setup(f"127.0.0.1:{facade_port}", stock)
            phases = [
                await phase(
                    "phase 1: every operation at 2x its quota",
                    seconds,
                    False,
                    quotas,
                    endpoint,
                    facade,
                    None,
                    resources,
                )
            ]
            if not check:
                floor_args = (listening, EVENT_LOOP)
                async with process(
                    *floor_args, env=env, module="bench.floor", cpus=str(FLOOR_CPU)
                ) as floor:
                    phases.append(
                        await phase(
                            "phase 2: chat at 0.5x its quota, the rest at 2x, the floor beside",
                            seconds,
                            True,
                            quotas,
                            endpoint,
                            facade,
                            floor,
                            resources,
                        )
                    )
    report: dict[str, Any] = {
        "machine": machine(),
        "command": " ".join(["python -m bench.mixed", *sys.argv[1:]]),
        "facade_args": serve_args,
        "phases": phases,
        "targets": targets(phases) if not check else [],
    }
    broken = [
        p["unanswered"]
        or p["unexpected"]
        or p["throttles_before"]
        or any(r["throttles"] for r in p["operations"].values())
        for p in phases
    ]
    report["ok"] = not any(broken)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description="Every operation at twice its quota.")
    parser.add_argument("--seconds", type=float, default=60.0, help="each phase's (60)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="phase 1 only; exit 1 on a broken behaviour (never on a timing)",
    )
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument for the facade's serve (repeat: --serve-arg=--max-concurrent-rpcs "
        "--serve-arg=2048); by default it runs with its defaults",
    )
    args = parser.parse_args()
    report = asyncio.run(run(args.seconds, args.check, args.serve_arg))
    print(f"ivschat-grpc mixed load ({report['machine']})")
    for p in report["phases"]:
        print(table(p))
    for t in report["targets"]:
        print(f"target {t['target']}: {t['value']} -> {'met' if t['met'] else 'NOT met'}")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    name = "mixed-check" if args.check else "mixed"
    (results / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {results / (name + '.json')}")
    if not args.check:
        return 0
    print("mixed: " + ("passed" if report["ok"] else "FAILED"))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
