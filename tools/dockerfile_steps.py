"""Run the Dockerfile's build stage on this machine, in a fresh venv, and smoke-test it.

No Docker engine runs here, so CI proves the image's install steps this way:
each COPY copies from the repo into a scratch WORKDIR, each RUN runs there
with /opt/venv pointing at a scratch venv, and the result must start.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_IN_IMAGE = "/opt/venv"


def build_stage(dockerfile: Path) -> list[tuple[str, str]]:
    """(instruction, argument) pairs of the first stage, continuation lines joined."""
    steps: list[tuple[str, str]] = []
    text = dockerfile.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, argument = line.partition(" ")
        if instruction.upper() == "FROM" and steps:
            break
        steps.append((instruction.upper(), argument.strip()))
    return steps


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work, venv = Path(tmp) / "src", Path(tmp) / "venv"
        work.mkdir()
        env = dict(os.environ)
        for instruction, argument in build_stage(ROOT / "Dockerfile"):
            argument = argument.replace(VENV_IN_IMAGE, str(venv))
            if instruction == "ENV":
                for pair in shlex.split(argument):
                    key, _, value = pair.partition("=")
                    env[key] = value
            elif instruction == "COPY":
                *sources, target = shlex.split(argument)
                for source in sources:
                    src = ROOT / source
                    # As Docker does: into a folder when the target ends in "/"
                    # (made if missing) or is ".", else to the target's name.
                    into = target.endswith("/") or target in (".", "./")
                    dst = work / target / src.name if into else work / target
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    if src.is_dir():
                        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
                    else:
                        shutil.copy(src, dst)
            elif instruction == "RUN":
                print(f"RUN {argument[:100]}", flush=True)
                # The Dockerfile's python is python3.11; this runs it with ours.
                command = argument.replace("python -m venv", f"{sys.executable} -m venv")
                command = command.replace("python -c", f"{sys.executable} -c")
                subprocess.run(["bash", "-ec", command], cwd=work, env=env, check=True)  # noqa: S603, S607 - the Dockerfile's own steps
        probes = (
            ["ivschat-grpc", "--help"],
            # The image serves: the server extra is installed.
            ["ivschat-grpc", "serve", "--help"],
            ["python", "-m", "ivschat_grpc.healthcheck", "-h"],
        )
        for name, *args in probes:
            argv = [str(venv / "bin" / name), *args]
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 - fixed argv
        print("the Dockerfile's build steps install a working ivschat-grpc")
    return 0


if __name__ == "__main__":
    sys.exit(main())
