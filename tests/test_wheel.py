"""The built wheel: what a package index shows of it, and what it carries.

.ci/wheel-check installs the same wheel in fresh venvs and calls through it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel built from a copy of what the Dockerfile copies, by this venv's setuptools."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    (src / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "pypi.md", src / "docs" / "pypi.md")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "server", src / "server", ignore=ignore)
    # No build isolation: this venv's setuptools builds it, offline.
    build = ("wheel", "--quiet", "--no-deps", "--no-build-isolation")
    subprocess.run(  # noqa: S603 - this interpreter's pip, fixed arguments
        [sys.executable, "-m", "pip", *build, "--wheel-dir", str(tmp / "dist"), str(src)],
        check=True,
        capture_output=True,
    )
    (built,) = (tmp / "dist").glob("ivschat_grpc-*.whl")
    return zipfile.ZipFile(built)


def metadata_of(wheel: zipfile.ZipFile) -> Message:
    (name,) = (n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    return Parser().parsestr(wheel.read(name).decode())


def test_the_description_reads_right_on_a_package_index(wheel: zipfile.ZipFile) -> None:
    meta = metadata_of(wheel)
    assert meta["Description-Content-Type"] == "text/markdown"
    description = meta.get_payload()
    assert isinstance(description, str)
    assert description.startswith("# ivschat-grpc")
    assert len(description.splitlines()) < 150
    relative = [t for t in LINK.findall(description) if not re.match(r"^(https?|mailto):", t)]
    assert relative == []
    assert ".venv/" not in description


def test_the_wheel_carries_the_apache_license_it_declares(wheel: zipfile.ZipFile) -> None:
    meta = metadata_of(wheel)
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    (name,) = (n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE"))
    text = wheel.read(name).decode()
    assert text == (ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_the_wheel_carries_the_contract_beside_its_stubs(wheel: zipfile.ZipFile) -> None:
    for proto in sorted((ROOT / "protos" / "ivschat" / "v1").glob("*.proto")):
        inside = f"ivschat/v1/{proto.name}"
        assert wheel.read(inside) == proto.read_bytes(), inside
        assert f"ivschat/v1/{proto.stem}_pb2.py" in wheel.namelist()


def test_the_base_requirements_are_the_clients_and_server_is_an_extra(
    wheel: zipfile.ZipFile,
) -> None:
    requirements = [Requirement(r) for r in metadata_of(wheel).get_all("Requires-Dist") or []]
    base = {r.name for r in requirements if r.marker is None}
    assert base == {
        "grpcio",
        "grpcio-health-checking",
        "grpcio-status",
        "protobuf",
        "googleapis-common-protos",
    }
    server = {r.name for r in requirements if r.marker and r.marker.evaluate({"extra": "server"})}
    assert {"aioboto3", "aiohttp", "redis", "uvloop", "grpcio-reflection"} <= server
    assert not [r for r in requirements if any(s.operator == "==" for s in r.specifier)]
