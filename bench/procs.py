"""Starting the endpoint and the service as processes, and reading their memory."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ivschat_grpc.emulator import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY

START_TIMEOUT_S = 60
# The service with pacing off and quiet logs, for benchmarks against an endpoint with no quota.
UNPACED_SERVE = ("serve", "--port", "0", "--create-rate", "off", "--log-level", "WARNING")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without AWS settings, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        **extra,
    )
    return env


def service_env(endpoint_url: str) -> dict[str, str]:
    """An environment that points the service at a local endpoint, through AWS's variables.

    Its request_id records go to a new folder of their own, so services started
    side by side never contend for one state folder.
    """
    return clean_env(
        IVSCHAT_GRPC_STATE_DIR=tempfile.mkdtemp(prefix="ivschat-bench-state-"),
        AWS_ENDPOINT_URL_IVSCHAT=endpoint_url,
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID=DEFAULT_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=DEFAULT_SECRET_ACCESS_KEY,
    )


@asynccontextmanager
async def process(
    pattern: str,
    *args: str,
    env: dict[str, str],
    lines: list[str] | None = None,
    module: str = "ivschat_grpc",
    cpus: str | None = None,
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """Run `python -m MODULE ARGS` until its stdout matches pattern; yield the first group.

    Every stdout line read until then is appended to lines, if given. With
    cpus, the process runs only on those CPUs (pinned()).
    """
    proc = await asyncio.create_subprocess_exec(
        *pinned(cpus),
        sys.executable,
        "-m",
        module,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout is not None
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT_S)).decode()
            if not line:
                raise RuntimeError(f"{module} {args[0]} exited before it was ready")
            if lines is not None:
                lines.append(line)
            m = re.search(pattern, line)
            if m:
                break
        yield proc, m[1]
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


def pinned(cpus: str | None) -> tuple[str, ...]:
    """The prefix that runs a command on cpus only (taskset's list, "0" or "0,1"), if given.

    taskset execs the command in its own process, so the process's id is the command's.
    """
    if cpus is None:
        return ()
    taskset = shutil.which("taskset")
    if taskset is None:
        raise RuntimeError("pinning a process to a CPU needs taskset (util-linux)")
    return (taskset, "--cpu-list", cpus)


@asynccontextmanager
async def endpoint(*extra: str, cpus: str | None = None) -> AsyncIterator[str]:
    """A local endpoint process with its quota off; yields its URL."""
    args = ("emulator", "--port", "0", "--create-room-rate", "off", *extra)
    pattern = r"listening on (http://\S+)"
    async with process(pattern, *args, env=clean_env(), cpus=cpus) as (_, url):
        yield url


def verdict(name: str, report: dict[str, Any], width: int = 24) -> int:
    """Print report and its verdict (report["ok"]), write results/NAME.json; the exit code."""
    for key, value in report.items():
        print(f"{key:>{width}}: {value}")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{name}: " + ("passed" if report["ok"] else "FAILED"))
    return 0 if report["ok"] else 1


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident set (VmRSS) or its peak (VmHWM), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    m = re.search(rf"{field}:\s+(\d+) kB", status)
    assert m is not None
    return int(m[1]) / 1024


def metric_by(scrape: str, metric: str, label: str) -> Counter[str]:
    """A Prometheus counter's values summed by one label, from a scrape of the service."""
    out: Counter[str] = Counter()
    for labels, value in re.findall(rf"{metric}\{{([^}}]*)\}} (\S+)", scrape):
        m = re.search(rf'{label}="(\w+)"', labels)
        if m:
            out[m[1]] += int(float(value))
    return out
