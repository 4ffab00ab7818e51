"""The shape of the code: packages by role, and what each may depend on."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "server" / "ivschat_grpc"
ROLES = ("api", "aws", "cli", "client", "core", "emulator", "errors", "replicas", "runtime")


def loaded_by(*modules: str) -> set[str]:
    """Every top-level package that importing modules loads, in a fresh interpreter."""
    code = "import sys, " + ", ".join(modules) + "; print('\\n'.join(sys.modules))"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": f"{ROOT / 'server'}{os.pathsep}{ROOT / 'server' / 'gen'}",
    }
    out = subprocess.run(  # noqa: S603 - this interpreter, a fixed program
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    return {name.split(".")[0] for name in out.split()}


def test_every_role_is_a_package_that_says_what_belongs_in_it() -> None:
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert packages == sorted(ROLES)
    for name in ROLES:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text()))
        assert doc, name
        assert len(doc.splitlines()) == 1, name


def test_the_core_loads_neither_grpc_nor_botocore() -> None:
    modules = [f"ivschat_grpc.core.{p.stem}" for p in (PACKAGE / "core").glob("[!_]*.py")]
    loaded = loaded_by(*modules)
    assert not loaded & {"grpc", "botocore", "aiobotocore", "aioboto3", "redis", "aiohttp"}


def test_the_client_loads_no_server_dependency() -> None:
    loaded = loaded_by("ivschat_grpc.client")
    assert not loaded & {
        "botocore",
        "aiobotocore",
        "aioboto3",
        "redis",
        "aiohttp",
        "prometheus_client",
    }


@pytest.mark.parametrize("module", ["ivschat_grpc.client"])
def test_public_modules_say_what_they_export(module: str) -> None:
    imported = __import__(module, fromlist=["__all__"])
    assert imported.__all__
    for name in imported.__all__:
        assert not name.startswith("_")
        assert hasattr(imported, name)


def test_entry_points_stay_where_installed_scripts_and_probes_name_them() -> None:
    # Console scripts generated before the packages existed import these names.
    from ivschat_grpc import healthcheck
    from ivschat_grpc.cli import main

    assert callable(main)
    assert callable(healthcheck.check)
    assert callable(healthcheck.main)
    assert 'ivschat-grpc = "ivschat_grpc.cli:main"' in (ROOT / "pyproject.toml").read_text()
