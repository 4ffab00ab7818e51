"""Check that every element in protos/ has a comment that starts with its own name.

buf's COMMENTS rules only ask that a comment exists; this house rule asks that
it open with the element's name ("CreateRoomRequest mirrors ...").
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
DEPS = ROOT / "third_party" / "googleapis"

# Field numbers of the repeated members in FileDescriptorProto & co, which make
# up SourceCodeInfo.Location.path.
MESSAGE, ENUM, SERVICE = 4, 5, 6
FIELD, NESTED, NESTED_ENUM = 2, 3, 4
ENUM_VALUE, METHOD = 2, 2


def _elements(f: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[tuple[int, ...], str]]:
    def message(
        m: descriptor_pb2.DescriptorProto, path: tuple[int, ...]
    ) -> Iterator[tuple[tuple[int, ...], str]]:
        if m.options.map_entry:
            return
        yield path, m.name
        for i, fld in enumerate(m.field):
            yield (*path, FIELD, i), fld.name
        for i, nested in enumerate(m.nested_type):
            yield from message(nested, (*path, NESTED, i))
        for i, e in enumerate(m.enum_type):
            yield from enum(e, (*path, NESTED_ENUM, i))

    def enum(
        e: descriptor_pb2.EnumDescriptorProto, path: tuple[int, ...]
    ) -> Iterator[tuple[tuple[int, ...], str]]:
        yield path, e.name
        for i, v in enumerate(e.value):
            yield (*path, ENUM_VALUE, i), v.name

    for i, m in enumerate(f.message_type):
        yield from message(m, (MESSAGE, i))
    for i, e in enumerate(f.enum_type):
        yield from enum(e, (ENUM, i))
    for i, s in enumerate(f.service):
        yield (SERVICE, i), s.name
        for j, rpc in enumerate(s.method):
            yield (SERVICE, i, METHOD, j), rpc.name


def main() -> int:
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    grpc_include = resources.files("grpc_tools").joinpath("_proto")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        subprocess.run(  # noqa: S603 - fixed argv, no shell
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{PROTOS}",
                f"-I{DEPS}",
                f"-I{grpc_include}",
                "--include_source_info",
                f"--descriptor_set_out={out}",
                *sources,
            ],
            check=True,
        )
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    problems = []
    for f in files:
        comments = {
            tuple(loc.path): loc.leading_comments.strip() for loc in f.source_code_info.location
        }
        for path, name in _elements(f):
            if not comments.get(path, "").startswith(name):
                problems.append(f"{f.name}: {name}'s comment must start with {name!r}")
    for p in problems:
        print(p, file=sys.stderr)
    print(f"proto comments: {len(problems)} problem(s) in {len(files)} file(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
