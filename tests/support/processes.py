"""Real processes for tests: the ivschat-grpc command, the service, and redis-server."""

from __future__ import annotations

import asyncio
import gc
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any


async def start_process(*argv: str, **kwargs: Any) -> asyncio.subprocess.Process:
    """asyncio.create_subprocess_exec, with the garbage collector off while it forks.

    uvloop forks, then runs Python in the child (threading's after-fork hook)
    before it execs. If a collection runs there and finalizes a dead grpc
    object, the finalizer joins a thread that the child does not have, and
    the child spins for ever while the test waits for it. py-spy caught one
    doing just that. With collection off, the child has nothing to finalize.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return await asyncio.create_subprocess_exec(*argv, **kwargs)
    finally:
        if collecting:
            gc.enable()


class RedisServer:
    """RedisServer is a real redis-server (Debian's) on a unix socket: no TCP port, no disk.

    It is ready when it says so on stdout, which is read to the end so it never blocks.
    """

    def __init__(self, sock: Path) -> None:
        self.sock = sock
        self.url = f"unix://{sock}"
        self._proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start it and return once it accepts connections.

        A restart in a busy test process once saw redis-server end before it
        printed anything; its exit code was not kept. Such a start is tried
        again (twice at most), and a third failure names the codes.
        """
        codes = []
        for _ in range(3):
            if await self._start_once():
                return
            assert self._proc is not None
            codes.append(await self._proc.wait())
        raise AssertionError(f"redis-server exited before it was ready, with codes {codes}")

    async def _start_once(self) -> bool:
        self._proc = await start_process(
            "redis-server",
            *("--port", "0", "--unixsocket", str(self.sock), "--unixsocketperm", "700"),
            *("--save", "", "--appendonly", "no"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self._proc.stdout is not None
        while (
            b"ready to accept connections"
            not in (line := await asyncio.wait_for(self._proc.stdout.readline(), 30)).lower()
        ):
            if not line:
                return False
        self._drain = asyncio.get_running_loop().create_task(self._read_rest())
        return True

    async def _read_rest(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        while await self._proc.stdout.readline():
            pass

    async def kill(self) -> None:
        """SIGKILL it, as a crash would."""
        assert self._proc is not None
        self._proc.kill()
        await self._proc.wait()
        if self._drain is not None:
            await self._drain
        self.sock.unlink(missing_ok=True)  # a killed server leaves its socket file

    async def stop(self) -> None:
        """Stop it if it runs."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            await self._proc.wait()
        if self._drain is not None:
            await self._drain


START_TIMEOUT_S = 60


async def spawn(*args: str) -> asyncio.subprocess.Process:
    """The ivschat-grpc command in a child process, with this test's environment."""
    return await start_process(
        sys.executable,
        "-m",
        "ivschat_grpc",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@asynccontextmanager
async def running(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, list[str]]]:
    proc = await spawn(*args)
    lines: list[str] = []
    try:
        yield proc, lines
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def read_until(
    proc: asyncio.subprocess.Process, lines: list[str], pattern: str
) -> re.Match[str]:
    assert proc.stdout is not None
    while True:
        raw = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT_S)
        if not raw:
            stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
            raise AssertionError(f"process ended before {pattern!r}: {lines} {stderr}")
        line = raw.decode().rstrip()
        lines.append(line)
        m = re.search(pattern, line)
        if m:
            return m


async def stop(proc: asyncio.subprocess.Process) -> int:
    proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(proc.wait(), START_TIMEOUT_S)


async def run_command(*args: str) -> tuple[int, str, str]:
    """Run the ivschat-grpc command to its end: exit code, stdout, stderr."""
    proc = await spawn(*args)
    out, err = await asyncio.wait_for(proc.communicate(), START_TIMEOUT_S)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def run_to_end(*args: str) -> tuple[int, str]:
    code, out, err = await run_command(*args)
    return code, out + err


LISTENING = r"listening on 127\.0\.0\.1:(\d+)"
QUIET = ("--log-level", "WARNING")


@asynccontextmanager
async def service(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`ivschat-grpc serve ARGS` as a process: yields it and its address once it listens."""
    proc = await spawn("serve", "--port", "0", *QUIET, *args)
    try:
        port = (await read_until(proc, [], LISTENING))[1]
        yield proc, f"127.0.0.1:{port}"
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
