"""Regenerate every stub from protos/ with buf, or check the committed ones are fresh.

Usage: python tools/generate.py [--check]

buf.gen.yaml lists the plugins, all local: grpcio-tools for Python (.py,
.pyi, grpc), mypy-protobuf for typed grpc stubs, protoc-gen-es for TypeScript.
--check generates into a temporary folder and fails if anything committed
differs, so CI catches a proto edited without regenerating.
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
# Where buf.gen.yaml writes, relative to the output root.
OUTPUTS = (Path("server/gen"), Path("clients/typescript/src/gen"))
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


def generate(out_root: Path) -> None:
    """Run buf generate, writing under out_root; make the Python output a package."""
    buf = ["npx", "--no-install", "buf", "generate", "-o", str(out_root)]
    runs = (
        ["--path", "protos/ivschat"],
        [
            "--template",
            "clients/typescript/buf.gen.yaml",
            "--path",
            "third_party/googleapis/google/rpc/error_details.proto",
        ],
    )
    for args in runs:
        subprocess.run([*buf, *args], check=True, cwd=ROOT)  # noqa: S603 - fixed argv, no shell
    gen = out_root / "server" / "gen"
    for pkg in {p.parent for p in gen.rglob("*_pb2.py")}:
        while pkg != gen:
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
    parser.add_argument("--check", action="store_true", help="fail if generated files are stale")
    args = parser.parse_args()
    if not args.check:
        copy_google_rpc_protos(PROTODEPS)
        for out in OUTPUTS:
            shutil.rmtree(ROOT / out, ignore_errors=True)
        generate(ROOT)
        (ROOT / "server" / "gen" / ".keep").touch()
        print("generated " + ", ".join(str(o) for o in OUTPUTS))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        deps, out_root = Path(tmp) / "deps", Path(tmp) / "out"
        copy_google_rpc_protos(deps)
        stale = [f"third_party/googleapis/{d}" for d in differences(deps, PROTODEPS)]
        generate(out_root)
        for out in OUTPUTS:
            stale += [f"{out}/{d}" for d in differences(out_root / out, ROOT / out)]
    if stale:
        print("generated files are stale; run: python tools/generate.py", file=sys.stderr)
        for name in stale:
            print(f"  differs: {name}", file=sys.stderr)
        return 1
    print("generated files and third_party/googleapis are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
