"""The facade against the floor and calling AWS directly: one command, one table, one JSON file.

    .venv/bin/python -m bench.run            # every part (about 6 minutes)
    .venv/bin/python -m bench.run unary      # or: unary batch pacing startup stores shed

1. Unary: CreateRoom and CreateChatToken, each at concurrency 1, 16 and 64,
   three ways against the same local endpoint (its quotas off): direct
   (aioboto3 alone, in the client process), the floor (bench/floor.py: a bare
   grpc.aio server making the same aioboto3 call, the least any grpc.aio
   facade can cost) and the facade (the service, its pacing off). Throughput,
   p50/p99, and CPU seconds per call of the process that makes the aioboto3
   call. That process (the floor, the facade, or direct's client) runs alone
   on one CPU and the endpoint and the gRPC load client on the other
   (taskset), so each is measured on a core of its own. Then the facade's CPU
   on each event loop.
2. Batch: a stream of 10,000 then 100,000 items: throughput and peak RSS.
3. Pacing: the endpoint enforcing 5/s and the service pacing at 5/s, 300 rooms
   through a batch: wall time against the ideal 60 s, and throttles answered.
4. Start-up: process start to health SERVING, beside the floor's start to listening.
5. Stores: CreateRoom with a new request_id per call, through the facade with
   its SQLite store and with its memory store, side by side at concurrency 1
   and 16: CPU per call and p50. The durable store's price.
6. Shed: CreateChatToken calls that cannot have a slot in their deadline,
   answered RESOURCE_EXHAUSTED by the facade, beside a floor that answers
   every call so: CPU per call, p50 and p99 of the answer.
Each target is printed as met or not. Each part's figures are written to
results/PART.json, and the run's to results/run.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from grpc_health.v1 import health_pb2
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.cli import healthcheck

from bench import batch as batch_bench
from bench.procs import UNPACED_SERVE, clean_env, endpoint, pinned, process, service_env

RESULTS = Path(__file__).parent / "results"
CALLS = {1: 1000, 16: 3000, 64: 4000}
# Every process in the unary comparison runs on the loop the service runs on by default.
EVENT_LOOP = "uvloop"
WARM_UP_CALLS = 100  # bench.worker's
# The process that makes the aioboto3 calls runs alone on SERVING_CPU; the
# endpoint and the gRPC load client share LOAD_CPU (the same one on a 1-CPU machine).
SERVING_CPU = "0"
LOAD_CPU = "1" if (os.cpu_count() or 1) > 1 else SERVING_CPU
# Each operation's worker modes: direct's, then through gRPC (the floor's and the facade's).
UNARY_MODES = {
    "CreateRoom": ("direct", "grpc"),
    "CreateChatToken": ("direct-chat-token", "grpc-chat-token"),
}
# Rounds per figure, alternating which way goes first; the figure is the
# round with the least CPU: the one least disturbed by anything else.
UNARY_ROUNDS = 2
# The endpoint without the quotas the unary part calls, and the service without its pacing of them.
UNARY_ENDPOINT = ("--quota", "CreateChatToken=off")
UNARY_SERVE = (
    *UNPACED_SERVE,
    "--operation-rates",
    "CreateChatToken=off",
    "--max-aws-in-flight",
    "64",
)
LISTENING = r"listening on [\d.]+:(\d+)"


def cpu_ticks(pid: int) -> float:
    """A process's user+system CPU seconds so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Worker runs that failed and were run again: the report lists them, so a rerun is never silent.
WORKER_FAILURES: list[str] = []


async def worker(*args: str, cpus: str | None = None) -> dict[str, Any]:
    """bench.worker's figures for args; a run that fails is run once more, and listed."""
    for attempt in range(2):
        proc = await asyncio.create_subprocess_exec(
            *pinned(cpus),
            sys.executable,
            "-m",
            "bench.worker",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=clean_env(),
        )
        out, err = await proc.communicate()
        if proc.returncode == 0:
            break
        last = err.decode(errors="replace").strip().splitlines()[-1:]
        WORKER_FAILURES.append(f"{time.strftime('%H:%M:%S')} bench.worker {' '.join(args)}: {last}")
        print(WORKER_FAILURES[-1], file=sys.stderr)
        assert attempt == 0, f"bench.worker {args} failed twice"
    result: dict[str, Any] = json.loads(out)
    return result


def summary(run: dict[str, Any], calls: int) -> dict[str, float]:
    lat = sorted(run["latencies_ms"])
    return {
        "calls_per_s": round(calls / run["wall_s"], 1),
        "p50_ms": round(statistics.median(lat), 3),
        "p99_ms": round(lat[int(len(lat) * 0.99) - 1], 3),
    }


def _row(calls: int, run: dict[str, Any], cpu_s: float | None = None) -> dict[str, Any]:
    """Throughput and latency of a worker's run, plus CPU ms per call of the process measured.

    cpu_s is the server process's CPU over the run (its warm-up calls included,
    so they count in the denominator too); without it, the worker's own.
    """
    row: dict[str, Any] = summary(run, calls)
    if cpu_s is None:
        row["cpu_ms_per_call"] = round(run["cpu_s"] / calls * 1000, 3)
    else:
        row["cpu_ms_per_call"] = round(cpu_s / (calls + WARM_UP_CALLS) * 1000, 3)
    return row


async def _through(
    server: asyncio.subprocess.Process,
    port: str,
    concurrency: int,
    calls: int,
    mode: str = "grpc",
    cpus: str | None = None,
) -> dict[str, Any]:
    before = cpu_ticks(server.pid)
    args = (mode, f"127.0.0.1:{port}", str(concurrency), str(calls), EVENT_LOOP)
    run = await worker(*args, cpus=cpus)
    return _row(calls, run, cpu_ticks(server.pid) - before)


def _least_cpu(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return min(runs, key=lambda r: r["cpu_ms_per_call"])


async def _three_ways(
    url: str,
    servers: dict[str, tuple[asyncio.subprocess.Process, str]],
    modes: tuple[str, str],
    concurrency: int,
    calls: int,
) -> dict[str, list[dict[str, Any]]]:
    """UNARY_ROUNDS runs each of direct, the floor and the facade, the order reversed each round."""
    direct_mode, grpc_mode = modes
    runs: dict[str, list[dict[str, Any]]] = {"direct": [], "floor": [], "facade": []}
    order = list(runs)
    for _ in range(UNARY_ROUNDS):
        order.reverse()  # no way always goes first
        for name in order:
            if name == "direct":
                args = (direct_mode, url, str(concurrency), str(calls), EVENT_LOOP)
                run = _row(calls, await worker(*args, cpus=SERVING_CPU))
            else:
                proc, port = servers[name]
                run = await _through(proc, port, concurrency, calls, grpc_mode, LOAD_CPU)
            runs[name].append(run)
    return runs


async def unary() -> dict[str, Any]:
    rows = []
    loops: dict[str, float] = {}
    async with endpoint(*UNARY_ENDPOINT, cpus=LOAD_CPU) as url:
        env = service_env(url)
        floor_args = (LISTENING, EVENT_LOOP)
        async with (
            process(LISTENING, *UNARY_SERVE, env=env, cpus=SERVING_CPU) as facade,
            process(*floor_args, env=env, module="bench.floor", cpus=SERVING_CPU) as floor,
        ):
            servers = {"floor": floor, "facade": facade}
            for operation, modes in UNARY_MODES.items():
                for concurrency, calls in CALLS.items():
                    runs = await _three_ways(url, servers, modes, concurrency, calls)
                    d, fl, fa = (_least_cpu(runs[k]) for k in ("direct", "floor", "facade"))
                    rows.append(
                        {
                            "operation": operation,
                            "concurrency": concurrency,
                            "calls": calls,
                            "direct": d,
                            "floor": fl,
                            "facade": fa,
                            "cpu_ratio": round(fa["cpu_ms_per_call"] / fl["cpu_ms_per_call"], 3),
                            "p50_added_ms": round(fa["p50_ms"] - fl["p50_ms"], 3),
                            "direct_cpu_ratio": round(
                                fa["cpu_ms_per_call"] / d["cpu_ms_per_call"], 3
                            ),
                            "floor_direct_cpu_ratio": round(
                                fl["cpu_ms_per_call"] / d["cpu_ms_per_call"], 3
                            ),
                        }
                    )
        # The same facade on the standard library's loop, for the uvloop decision.
        serve_std = (*UNARY_SERVE, "--event-loop", "asyncio")
        async with process(LISTENING, *serve_std, env=env, cpus=SERVING_CPU) as (proc, port):
            std = [await _through(proc, port, 16, 3000, cpus=LOAD_CPU) for _ in range(UNARY_ROUNDS)]
        loops["asyncio"] = _least_cpu(std)["cpu_ms_per_call"]
    uv = next(r for r in rows if r["operation"] == "CreateRoom" and r["concurrency"] == 16)
    loops[EVENT_LOOP] = uv["facade"]["cpu_ms_per_call"]
    pinning = {"serving_cpu": SERVING_CPU, "load_cpu": LOAD_CPU}
    return {
        "rows": rows,
        "pinning": pinning,
        "facade_cpu_ms_per_call_c16_by_loop": loops,
        "worker_failures": list(WORKER_FAILURES),
    }


STORE_CALLS = {1: 1000, 16: 3000}
STORE_ROUNDS = 4


async def stores() -> dict[str, Any]:
    """The facade with each idempotency store, every call with a new request_id.

    The two servers run side by side against one endpoint, and the rounds
    alternate between them, so both see the same machine. Each figure is the
    round with the least CPU: the one least disturbed by anything else.
    """
    rows = []
    listening = LISTENING
    serve = (*UNPACED_SERVE, "--max-aws-in-flight", "64")
    async with endpoint() as url:
        env = service_env(url)
        with tempfile.TemporaryDirectory() as state:
            sqlite_serve = (*serve, "--idempotency-store", "sqlite", "--state-dir", state)
            async with (
                process(listening, *serve, "--idempotency-store", "memory", env=env) as memory,
                process(listening, *sqlite_serve, env=env) as sqlite,
            ):
                for concurrency, calls in STORE_CALLS.items():
                    runs: dict[str, list[dict[str, Any]]] = {"memory": [], "sqlite": []}
                    order = [("memory", memory), ("sqlite", sqlite)]
                    for _ in range(STORE_ROUNDS):
                        order.reverse()  # neither store always goes first
                        for name, (proc, port) in order:
                            run = await _through(proc, port, concurrency, calls, "grpc-request-id")
                            runs[name].append(run)
                    best = {k: min(v, key=lambda r: r["cpu_ms_per_call"]) for k, v in runs.items()}
                    rows.append(
                        {
                            "concurrency": concurrency,
                            "calls": calls,
                            **best,
                            "cpu_ratio": round(
                                best["sqlite"]["cpu_ms_per_call"]
                                / best["memory"]["cpu_ms_per_call"],
                                3,
                            ),
                            "p50_added_ms": round(
                                best["sqlite"]["p50_ms"] - best["memory"]["p50_ms"], 3
                            ),
                        }
                    )
    return {"rows": rows}


async def pacing(items: int = 300) -> dict[str, Any]:
    args = ("emulator", "--port", "0", "--create-room-rate", "5")
    async with process(r"listening on (http://\S+)", *args, env=clean_env()) as (_, url):
        serve = ("serve", "--port", "0", "--create-rate", "5", "--log-level", "WARNING")
        async with process(LISTENING, *serve, env=service_env(url)) as (_, port):
            requests = [
                pb.BatchCreateRoomsRequest(correlation_id=f"p{i}", room=pb.CreateRoomRequest())
                for i in range(items)
            ]
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.RoomServiceStub(channel)
                start = time.perf_counter()
                created = 0
                async for r in stub.BatchCreateRooms(iter(requests), timeout=600):
                    created += r.HasField("room")
                seconds = time.perf_counter() - start
        async with aiohttp.ClientSession() as http:
            record = await (await http.get(f"{url}/_emulator/requests?operation=CreateRoom")).json()
    return {
        "rooms": items,
        "created": created,
        "seconds": round(seconds, 2),
        "ideal_s": round((items - 1) / 5, 1),
        "quota_used": round(((items - 1) / 5) / seconds, 4),
        "throttles": sum(1 for r in record if r["status"] == 429),
    }


_QUICK_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 5),
    ("grpc.min_reconnect_backoff_ms", 5),
    ("grpc.max_reconnect_backoff_ms", 5),
]


async def _to_serving(*serve: str, env: dict[str, str]) -> float:
    """Seconds from starting `ivschat-grpc SERVE` to its health check answering SERVING."""
    start = time.perf_counter()
    async with process(LISTENING, *serve, env=env) as (_, port):
        # A failed first connection must not wait out grpc's reconnect backoff (1 s and up).
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=_QUICK_RECONNECT)
        async with channel:
            while True:  # poll: this is the measurement
                try:
                    status = await healthcheck.check(channel, timeout_s=1)
                except grpc.aio.AioRpcError:
                    status = -1
                if status == health_pb2.HealthCheckResponse.SERVING:
                    # Taken here: leaving the block stops the service, and its drain is no start-up.
                    return time.perf_counter() - start
                await asyncio.sleep(0.005)


async def _to_listening(env: dict[str, str]) -> float:
    """Seconds from starting the floor to its listening, its aioboto3 client open."""
    start = time.perf_counter()
    async with process(LISTENING, EVENT_LOOP, env=env, module="bench.floor"):
        return time.perf_counter() - start


def _median(times: list[float]) -> dict[str, Any]:
    return {"runs_s": [round(t, 3) for t in times], "median_s": round(statistics.median(times), 3)}


async def startup(runs: int = 5) -> dict[str, Any]:
    """The service's start to SERVING, with its embedded endpoint and with one apart,
    beside the floor's: the least a process that imports grpc.aio and aioboto3 takes."""
    embedded = ("serve", "--emulator", "--port", "0", "--log-level", "WARNING")
    report = _median([await _to_serving(*embedded, env=clean_env()) for _ in range(runs)])
    async with endpoint() as url:
        env = service_env(url)
        serve = ("serve", "--port", "0", "--log-level", "WARNING")
        apart = [await _to_serving(*serve, env=env) for _ in range(runs)]
        report["endpoint_apart"] = _median(apart)
        report["floor"] = _median([await _to_listening(env) for _ in range(runs)])
    return report


def targets(report: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    out: list[tuple[str, bool | None, str]] = []
    if "unary" in report:
        rows = report["unary"]["rows"]
        for operation in UNARY_MODES:
            c16 = next(r for r in rows if r["operation"] == operation and r["concurrency"] == 16)
            floor, facade = c16["floor"]["cpu_ms_per_call"], c16["facade"]["cpu_ms_per_call"]
            out.append(
                (
                    f"{operation}: facade CPU per call <= 1.10x the floor's at c=16",
                    c16["cpu_ratio"] <= 1.10,
                    f"{c16['cpu_ratio']}x (facade {facade} ms, floor {floor} ms)",
                )
            )
            c1 = next(r for r in rows if r["operation"] == operation and r["concurrency"] == 1)
            out.append(
                (
                    f"{operation}: p50 added over the floor at c=1 <= 0.15 ms",
                    c1["p50_added_ms"] <= 0.15,
                    f"{c1['p50_added_ms']:+.3f} ms (floor's p50 {c1['floor']['p50_ms']} ms)",
                )
            )
    if "shed" in report:
        worst = max(report["shed"]["rows"], key=lambda r: r["facade"]["p99_ms"])
        floor = worst["floor"]["p99_ms"]
        out.append(
            (
                "a call that cannot be served in its deadline is answered within 50 ms (p99)",
                worst["facade"]["p99_ms"] <= 50,
                f"p99 {worst['facade']['p99_ms']} ms at c={worst['concurrency']} "
                f"(floor's {floor} ms)",
            )
        )
    if "batch" in report:
        growth = report["batch"].get("peak_rss_growth_mb")
        out.append(
            (
                "batch peak RSS 100k - 10k <= 30 MB",
                growth is not None and growth <= 30,
                f"{growth} MB",
            )
        )
    if "pacing" in report:
        p = report["pacing"]
        ok = p["seconds"] <= 61.9 and p["throttles"] == 0
        out.append(
            (
                "300 paced rooms <= 61.9 s, 0 throttles",
                ok,
                f"{p['seconds']} s, {p['throttles']} throttles",
            )
        )
    if "startup" in report:
        s = report["startup"]
        floor = s["floor"]["median_s"]
        apart = s["endpoint_apart"]["median_s"]
        out.append(
            (
                "start-up to SERVING < 0.5 s",
                s["median_s"] < 0.5,
                f"{s['median_s']} s, {apart} s with the endpoint apart (floor: {floor} s)",
            )
        )
    if "stores" in report:
        worst = max(r["cpu_ratio"] for r in report["stores"]["rows"])
        out.append(
            ("sqlite store CPU per CreateRoom <= 1.10x memory", worst <= 1.10, f"worst {worst}x")
        )
    return out


def _verdicts(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"target": name, "met": met, "value": value} for name, met, value in targets(report)]


def _cpu_model() -> str:
    """The CPU's model name, as lscpu gives it, where /proc/cpuinfo says."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


SHED_CALLS = {1: 1000, 16: 3000}
# One CreateChatToken slot every 100 s: after the first, every call's slot is
# past its 30 s deadline, and it is shed on arrival.
SHED_SERVE = (*UNPACED_SERVE, "--operation-rates", "CreateChatToken=0.01")


async def shed() -> dict[str, Any]:
    """CreateChatToken calls shed on arrival, the facade beside the floor that sheds them all.

    The floor (bench/floor.py shed) answers each RESOURCE_EXHAUSTED with the
    same three details, built per call: what any grpc.aio server pays to say
    no. Latency is the time to the answer, the target's 50 ms.
    """
    rows = []
    async with endpoint(*UNARY_ENDPOINT, cpus=LOAD_CPU) as url:
        env = service_env(url)
        floor_args = (LISTENING, EVENT_LOOP, "shed")
        async with (
            process(LISTENING, *SHED_SERVE, env=env, cpus=SERVING_CPU) as facade,
            process(*floor_args, env=env, module="bench.floor", cpus=SERVING_CPU) as floor,
        ):
            servers = {"floor": floor, "facade": facade}
            for concurrency, calls in SHED_CALLS.items():
                runs: dict[str, list[dict[str, Any]]] = {"floor": [], "facade": []}
                order = list(runs)
                for _ in range(UNARY_ROUNDS):
                    order.reverse()
                    for name in order:
                        proc, port = servers[name]
                        mode = "grpc-chat-token-shed"
                        run = await _through(proc, port, concurrency, calls, mode, LOAD_CPU)
                        runs[name].append(run)
                fl, fa = _least_cpu(runs["floor"]), _least_cpu(runs["facade"])
                rows.append(
                    {
                        "concurrency": concurrency,
                        "calls": calls,
                        "floor": fl,
                        "facade": fa,
                        "cpu_ratio": round(fa["cpu_ms_per_call"] / fl["cpu_ms_per_call"], 3),
                    }
                )
    return {"rows": rows, "pinning": {"serving_cpu": SERVING_CPU, "load_cpu": LOAD_CPU}}


async def _batch() -> dict[str, Any]:
    report = await batch_bench.run([10_000, 100_000])
    rows = report["rows"]
    growth = rows[-1]["service_peak_rss_mb"] - rows[0]["service_peak_rss_mb"]
    report["peak_rss_growth_mb"] = round(growth, 1)
    return report


PARTS: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
    "unary": unary,
    "batch": _batch,
    "pacing": pacing,
    "startup": startup,
    "stores": stores,
    "shed": shed,
}


async def run(parts: list[str]) -> dict[str, Any]:
    machine = (
        f"{platform.machine()}, {_cpu_model()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    report: dict[str, Any] = {"machine": machine}
    for part in parts:
        # When each part ran, to set against anything else the machine was doing then.
        started = _utc_now()
        report[part] = await PARTS[part]()
        report[part].update(started_utc=started, ended_utc=_utc_now())
    return report


def _print_ways(row: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        x = row[name]
        print(
            f"  {name:<6} {x['calls_per_s']:>7}/s  p50 {x['p50_ms']:6.2f} ms  "
            f"p99 {x['p99_ms']:6.2f} ms  cpu {x['cpu_ms_per_call']:.3f} ms/call"
        )


def main() -> int:
    parts = sys.argv[1:] or list(PARTS)
    report = asyncio.run(run(parts))
    print(f"ivschat-grpc benchmark ({report['machine']})")
    unary_report = report.get("unary", {})
    for r in unary_report.get("rows", []):
        print(f"unary {r['operation']} c={r['concurrency']}, {r['calls']} calls:")
        _print_ways(r, ("direct", "floor", "facade"))
        print(
            f"  facade: cpu x{r['cpu_ratio']} of the floor, p50 {r['p50_added_ms']:+.3f} ms | "
            f"cpu x{r['direct_cpu_ratio']} of direct (floor x{r['floor_direct_cpu_ratio']})"
        )
    if unary_report:
        by_loop = unary_report["facade_cpu_ms_per_call_c16_by_loop"]
        print(f"facade cpu ms/call at c=16 by event loop: {by_loop}")
    for row in report.get("batch", {}).get("rows", []):
        print(
            f"batch {row['items']:>6} items: {row['items_per_s']}/s, "
            f"peak RSS {row['service_peak_rss_mb']} MB"
        )
    if "pacing" in report:
        print(f"pacing: {report['pacing']}")
    if "startup" in report:
        print(f"start-up: {report['startup']}")
    for r in report.get("stores", {}).get("rows", []):
        print(f"request_id stores, c={r['concurrency']}, {r['calls']} calls:")
        _print_ways(r, ("memory", "sqlite"))
        print(f"  sqlite: cpu x{r['cpu_ratio']} of memory, p50 +{r['p50_added_ms']} ms")
    for r in report.get("shed", {}).get("rows", []):
        print(f"shed CreateChatToken c={r['concurrency']}, {r['calls']} calls:")
        _print_ways(r, ("floor", "facade"))
        print(f"  facade: cpu x{r['cpu_ratio']} of the floor")
    report["targets"] = _verdicts(report)
    for t in report["targets"]:
        print(f"target {t['target']}: {t['value']} -> {'met' if t['met'] else 'NOT met'}")
    RESULTS.mkdir(exist_ok=True)
    for part in parts:
        own = {"machine": report["machine"], part: report[part]}
        own["targets"] = _verdicts(own)
        (RESULTS / f"{part}.json").write_text(json.dumps(own, indent=2) + "\n")
    # run.json keeps the latest figures of every part: a run of some parts leaves the others'.
    latest = RESULTS / "run.json"
    merged = json.loads(latest.read_text()) if latest.exists() else {}
    merged.update({k: v for k, v in report.items() if k != "targets"})
    merged["targets"] = _verdicts(merged)
    latest.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"written to {latest} and {', '.join(p + '.json' for p in parts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
