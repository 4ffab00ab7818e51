"""The README and docs/: every link leads somewhere, and the README's buf curl call works."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.support.processes import read_until, running, start_process, stop

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes for page's headings (outside code blocks)."""
    found, code = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            code = not code
        elif not code and (m := re.match(r"^#+ (.*)$", line)):
            found.add(re.sub(r"[^\w\- ]", "", m[1].strip().lower()).replace(" ", "-"))
    return found


def links(page: Path) -> list[str]:
    """Every link target in page, outside code blocks."""
    out, code = [], False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            code = not code
        elif not code:
            out += LINK.findall(line)
    return out


def test_the_readme_is_a_front_door() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_leads_to_a_file_and_heading_that_exist(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"^(https?|mailto):", target):
            continue
        path, _, anchor = target.partition("#")
        where = (page.parent / path).resolve() if path else page
        if not where.exists() or (anchor and anchor not in anchors(where)):
            broken.append(target)
    assert broken == []


@pytest.mark.skipif(shutil.which("npx") is None, reason="buf comes from npm: .ci/setup")
async def test_the_readme_buf_curl_call_creates_a_room() -> None:
    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if "buf curl" in b)
    async with running("serve", "--emulator", "--port", "0") as (proc, lines):
        port = (await read_until(proc, lines, r"listening on 127\.0\.0\.1:(\d+)"))[1]
        # The README shows the default port; the test must use the one it got.
        command = block.replace("\\\n", " ").replace("127.0.0.1:50051", f"127.0.0.1:{port}")
        argv = shlex.split(command)  # as a shell reads it, continuation lines joined
        curl = await start_process(
            *argv,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(curl.communicate(), 60)
        assert curl.returncode == 0, err.decode()
        room = json.loads(out)["room"]
        assert (room["name"], room["tags"]) == ("demo", {"team": "blue"})
        assert await stop(proc) == 0
