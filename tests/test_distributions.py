"""The distributions: the base install is the client, ivschat-grpc[server] adds the server.

A client-only interpreter here is this one with no site-packages (python -S)
and a folder holding only the base install's distributions (pyproject's
dependencies and theirs), linked from this venv: the server's packages are
truly absent, as in a fresh `pip install ivschat-grpc`. .ci/wheel-check does
the same with real venvs and the built wheel.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.facade import Facade
from tests.support.processes import START_TIMEOUT_S, start_process

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Third-party packages that only serve and emulator use.
SERVER_PACKAGES = {
    "aioboto3",
    "aiobotocore",
    "boto3",
    "botocore",
    "aiohttp",
    "redis",
    "prometheus_client",
    "uvloop",
    "opentelemetry",
    "cryptography",
}
# Our modules that only serve and emulator use.
SERVER_MODULES = (
    "ivschat_grpc.api",
    "ivschat_grpc.emulator",
    "ivschat_grpc.replicas",
    "ivschat_grpc.runtime",
    "ivschat_grpc.aws.adapter",
)


def distributions_of(requirements: list[str]) -> set[str]:
    """The distributions that requirements name, and everything they require in turn."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        todo += [Requirement(r) for r in metadata.distribution(name).requires or []]
    return seen


def client_only_site(tmp_path: Path) -> Path:
    """A folder with only the base install's distributions: links into this venv."""
    site = tmp_path / "client-only-site"
    site.mkdir(exist_ok=True)
    for name in distributions_of(PYPROJECT["project"]["dependencies"]):
        dist = metadata.distribution(name)
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}:
            link = site / top
            if not link.exists():
                link.symlink_to(Path(str(dist.locate_file(top))))
    return site


async def client_only(tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    """argv run by this interpreter with only the base install importable: code, out, err."""
    paths = (client_only_site(tmp_path), ROOT / "server", ROOT / "server" / "gen")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(map(str, paths))}
    return await run_python("-S", *argv, env=env, cwd=tmp_path)


async def run_python(*argv: str, **kwargs: Any) -> tuple[int, str, str]:
    """This interpreter in a child process, to its end: the test's servers run on this loop."""
    proc = await start_process(
        sys.executable,
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        **kwargs,
    )
    out, err = await asyncio.wait_for(proc.communicate(), START_TIMEOUT_S)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_the_base_install_names_only_the_clients_dependencies() -> None:
    base = distributions_of(PYPROJECT["project"]["dependencies"])
    assert {canonicalize_name(p) for p in ("aioboto3", "uvloop", "redis")}.isdisjoint(base)
    server = {Requirement(r).name for r in PYPROJECT["project"]["optional-dependencies"]["server"]}
    assert {"aioboto3", "uvloop", "redis", "aiohttp", "grpcio-reflection"} <= server


def test_dependencies_are_ranges_and_the_pins_live_in_constraints_txt() -> None:
    project = PYPROJECT["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["server"]]
    declared += project["optional-dependencies"]["dev"]
    pins = {
        canonicalize_name(Requirement(line).name): Requirement(line)
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    for raw in declared:
        req = Requirement(raw)
        assert not any(s.operator in ("==", "===") for s in req.specifier), raw
        pin = pins[canonicalize_name(req.name)]
        (version,) = (s.version for s in pin.specifier if s.operator == "==")
        # The tested version is inside the range that pyproject declares.
        assert req.specifier.contains(version, prereleases=True), (raw, version)


async def test_a_client_command_loads_no_server_module(facade: Facade) -> None:
    code = (
        "import sys\n"
        "from ivschat_grpc.cli import main\n"
        f"rc = main(['create-room', '--server', '127.0.0.1:{facade.service.port}', "
        "'--name', 'client-only'])\n"
        "print('loaded:', rc, *sys.modules, file=sys.stderr)\n"
    )
    # This tree's code, as test_layout's loaded_by runs it, not an installed copy.
    tree = os.pathsep.join((str(ROOT / "server"), str(ROOT / "server" / "gen")))
    code_, out, err = await run_python("-c", code, env={**os.environ, "PYTHONPATH": tree})
    assert code_ == 0, err
    rc, *modules = err.rpartition("loaded: ")[2].split()
    assert rc == "0", err
    assert json.loads(out)["name"] == "client-only"
    assert not {m.split(".")[0] for m in modules} & SERVER_PACKAGES
    assert not [m for m in modules if m.startswith(SERVER_MODULES)]


@pytest.mark.parametrize("command", ["serve", "emulator"])
async def test_serve_without_the_server_extra_says_which_extra_to_install(
    tmp_path: Path, command: str
) -> None:
    code, out, err = await client_only(tmp_path, "-m", "ivschat_grpc", command, "--port", "0")
    assert code == 2
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"ivschat-grpc {command} needs the server extra")
    assert line.endswith("pip install 'ivschat-grpc[server]'")


async def test_the_client_commands_and_roomclient_run_on_the_base_install_alone(
    facade: Facade, tmp_path: Path
) -> None:
    server = f"127.0.0.1:{facade.service.port}"
    code, out, err = await client_only(
        tmp_path, "-m", "ivschat_grpc", "create-room", "--server", server
    )
    assert code == 0, err
    arn = json.loads(out)["arn"]
    program = (
        "import asyncio, sys\n"
        "from ivschat_grpc.client import RoomClient\n"
        "async def main() -> None:\n"
        f"    async with RoomClient.connect({server!r}) as rooms:\n"
        f"        print((await rooms.get_room({arn!r}, deadline_s=10)).arn)\n"
        "asyncio.run(main())\n"
        "assert 'aioboto3' not in sys.modules\n"
    )
    code, out, err = await client_only(tmp_path, "-c", program)
    assert code == 0, err
    assert out.strip() == arn
    code, out, err = await client_only(tmp_path, "-m", "ivschat_grpc.healthcheck", server)
    assert code == 0, out + err
