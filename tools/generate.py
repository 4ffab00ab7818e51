"""Regenerate the Python stubs in server/gen from protos/, or check they are fresh.

Usage: python tools/generate.py [--check]

--check generates into a temporary folder and fails if server/gen differs, so
CI catches a proto edited without regenerating.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GEN = ROOT / "server" / "gen"
# google/rpc/*.proto are copied verbatim from the googleapis-common-protos
# wheel into a local buf module: the BSR that would serve them is out of
# reach, and buf breaking builds past commits from git, so the copies are
# committed, and --check fails if they drift from the pinned wheel.
PROTODEPS = ROOT / "third_party" / "googleapis"
GOOGLE_RPC_PROTOS = ("status.proto", "error_details.proto", "code.proto")


def copy_google_rpc_protos(dst_root: Path) -> None:
    src = resources.files("google.rpc")
    dst = dst_root / "google" / "rpc"
    dst.mkdir(parents=True, exist_ok=True)
    for name in GOOGLE_RPC_PROTOS:
        (dst / name).write_bytes(src.joinpath(name).read_bytes())


def generate(out: Path, deps: Path = PROTODEPS) -> None:
    grpc_include = Path(str(resources.files("grpc_tools") / "_proto"))
    plugin = Path(sys.executable).parent / "protoc-gen-mypy_grpc"
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{deps}",
        f"-I{grpc_include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy_grpc={plugin}",
        f"--mypy_grpc_out={out}",
        *sources,
    ]
    subprocess.run(cmd, check=True, cwd=PROTOS)  # noqa: S603 - fixed argv, no shell
    for pkg in {p.parent for p in out.rglob("*_pb2.py")}:
        while pkg != out:
            (pkg / "__init__.py").touch()
            (pkg / "py.typed").touch()
            pkg = pkg.parent


def differences(a: Path, b: Path) -> list[str]:
    def files(root: Path) -> set[str]:
        return {
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.name != ".keep"
        }

    fa, fb = files(a), files(b)
    diff = sorted(fa ^ fb)
    diff += [f for f in sorted(fa & fb) if not filecmp.cmp(a / f, b / f, shallow=False)]
    return diff


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if server/gen is stale")
    args = parser.parse_args()
    if not args.check:
        copy_google_rpc_protos(PROTODEPS)
        for child in GEN.iterdir():
            if child.name != ".keep":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        generate(GEN)
        print(f"generated stubs in {GEN.relative_to(ROOT)}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        deps, gen = Path(tmp) / "deps", Path(tmp) / "gen"
        copy_google_rpc_protos(deps)
        generate(gen, deps)
        stale = [f"third_party/googleapis/{d}" for d in differences(deps, PROTODEPS)]
        stale += differences(gen, GEN)
    if stale:
        print("generated files are stale; run: python tools/generate.py", file=sys.stderr)
        for name in stale:
            print(f"  differs: {name}", file=sys.stderr)
        return 1
    print("server/gen and third_party/googleapis are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
