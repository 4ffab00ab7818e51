"""The README and docs/: every link leads somewhere, and the README's buf curl call works."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import shlex
import shutil
import typing
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import trustme
from ivschat.v1 import room_service_pb2 as pb
from ivschat_grpc.client import ChatClient, Connection, Pem, RoomClient
from ivschat_grpc.emulator import Emulator

from tests.support.env import use_emulator_credentials
from tests.support.facade import facade_settings, serving
from tests.support.processes import read_until, run_command, running, start_process, stop

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


# --- docs/local-endpoint.md: any AWS SDK, and the service, against the endpoint


def sh_block(page: str, needle: str) -> str:
    """The ```sh block of docs/page that contains needle."""
    text = (ROOT / "docs" / page).read_text()
    blocks: list[str] = re.findall(r"```sh\n(.*?)```", text, re.S)
    return next(b for b in blocks if needle in b)


async def endpoint_record(url: str) -> list[dict[str, Any]]:
    def get() -> Any:
        with urllib.request.urlopen(f"{url}/_emulator/requests", timeout=30) as answer:  # noqa: S310 - the test's own loopback URL
            return json.load(answer)

    records: list[dict[str, Any]] = await asyncio.to_thread(get)
    return records


async def test_the_sdk_block_works_for_boto3_and_the_aws_cli_then_the_service() -> None:
    sdk = sh_block("local-endpoint.md", "boto3")
    if shutil.which("aws") is None:
        # The block says "where it is installed"; boto3 comes with the package.
        sdk = "\n".join(line for line in sdk.splitlines() if not line.startswith("aws "))
    async with running("emulator", "--port", "0") as (emu, lines):
        url = (await read_until(emu, lines, r"listening on (http://127\.0\.0\.1:\d+)"))[1]
        # The doc shows port 4566; the test must use the one the endpoint got.
        sdk = sdk.replace("http://127.0.0.1:4566", url)
        shell = await start_process(
            "bash",
            "-ec",
            sdk,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(shell.communicate(), 60)
        assert shell.returncode == 0, err.decode()
        assert re.match(r"arn:aws:ivschat:us-east-1:\d{12}:room/\w+", out.decode())
        done = [(r["operation"], r["status"]) for r in await endpoint_record(url)]
        expected = [("CreateRoom", 200)]
        if shutil.which("aws") is not None:
            expected.append(("ListRooms", 200))
        assert done == expected

        # "In the same shell": the first block's exports, then the service's command.
        served = sh_block("local-endpoint.md", "ivschat-grpc serve").strip()
        assert served == ".venv/bin/ivschat-grpc serve"
        exports = sdk.split("\n.venv/bin/python", 1)[0]
        script = f"{exports}\nexec {served} --port 0"
        service = await start_process(
            "bash",
            "-ec",
            script,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            port = (await read_until(service, [], r"listening on 127\.0\.0\.1:(\d+)"))[1]
            code, out_text, err_text = await run_command(
                "create-room", "--server", f"127.0.0.1:{port}", "--name", "via-service"
            )
            assert code == 0, err_text
            assert json.loads(out_text)["name"] == "via-service"
        finally:
            assert await stop(service) == 0
        creates = [r for r in await endpoint_record(url) if r["operation"] == "CreateRoom"]
        assert creates[-1]["body"]["name"] == "via-service"


# --- --help and the docs say the same


async def help_of(command: str, monkeypatch: pytest.MonkeyPatch) -> str:
    # Wide enough that argparse puts each option on one line.
    monkeypatch.setenv("COLUMNS", "1000")
    code, out, err = await run_command(command, "--help")
    assert code == 0, err
    return out


def help_options(text: str) -> dict[str, str]:
    """--help's options: "--flag METAVAR" to its help text (-h left out)."""
    found: dict[str, str] = {}
    flag = None
    for line in text.splitlines():
        if m := re.match(r"^  (--[a-z-]+(?: \S+)?)(?:\s{2,}(.*))?$", line):
            flag = m[1]
            found[flag] = m[2] or ""
        elif flag and re.match(r"^\s{4,}\S", line):
            # A long flag puts its help on the next line, however wide the terminal.
            found[flag] = f"{found[flag]} {line.strip()}".strip()
        else:
            flag = None
    return found


def table_rows(text: str) -> list[list[str]]:
    """Each Markdown table row's cells, `|` escapes undone, the code ticks of the first stripped."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows.append([cells[0].strip("`"), *cells[1:]])
    return rows


def default_of(text: str) -> str:
    """The default a help text shows: its last parenthesized part."""
    m = re.search(r"\(([^()]*)\)\s*$", text)
    return m[1] if m else ""


async def test_serve_help_and_the_configuration_doc_show_the_same_flags_and_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown = help_options(await help_of("serve", monkeypatch))
    doc = {row[0]: row for row in table_rows((ROOT / "docs" / "configuration.md").read_text())}
    assert set(shown) == set(doc)
    for flag, (_, env, meaning) in doc.items():
        variables = [v.strip("`") for v in env.split(", ") if v != "none"]
        suffix = f" ({', '.join(variables)})" if variables else ""
        assert shown[flag] == meaning + suffix, flag
        assert default_of(shown[flag].removesuffix(suffix)) == default_of(meaning), flag


def test_every_serve_value_names_what_it_takes() -> None:
    from ivschat_grpc.runtime.settings import OPTIONS

    for option in OPTIONS:
        if option.kind == "switch":
            assert option.metavar is None, option.flag
            continue
        # Without one, argparse shows the upper-cased dest: AUTH_TOKENS, AWS_MAX_IN_FLIGHT.
        assert option.metavar is not None, option.flag
    by_flag = {o.flag: o.metavar for o in OPTIONS}
    assert by_flag["--auth-token-file"] == "FILE"
    assert by_flag["--max-aws-in-flight"] == "N"


CLIENT_COMMANDS = {
    "create-room": "calling.md",
    "get-room": "calling.md",
    "list-rooms": "calling.md",
    "update-room": "calling.md",
    "delete-room": "calling.md",
    "create-chat-token": "calling.md",
    "send-event": "calling.md",
    "disconnect-user": "calling.md",
    "delete-message": "calling.md",
    "batch-create": "batches.md",
}


@pytest.mark.parametrize("command", CLIENT_COMMANDS)
async def test_each_client_commands_help_is_in_its_docs(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = help_options(await help_of(command, monkeypatch))
    assert shown["--server HOST:PORT"] == "where the service listens (default 127.0.0.1:50051)"
    calling = (ROOT / "docs" / "calling.md").read_text()
    connection = {row[0]: row[1] for row in table_rows(calling) if row[0].startswith("--")}
    # The connection flags: as --help shows them, defaults included, in calling.md's table.
    assert {f: shown[f] for f in connection} == connection
    # Every other flag is named on the command's own page.
    page = (ROOT / "docs" / CLIENT_COMMANDS[command]).read_text()
    missing = [f for f in shown if f not in connection and f.split()[0] not in page]
    assert missing == []


# --- the metrics, and the benchmark figures


def test_the_metrics_doc_lists_every_metric_and_the_readme_links_it() -> None:
    from ivschat_grpc.runtime.telemetry import Metrics

    # With Redis: ivschat_grpc_redis_up is exposed only then, and listed all the same.
    families = re.findall(r"^# TYPE (\S+) ", Metrics(redis=True).scrape().decode(), re.M)
    # prometheus_client adds a _created gauge beside each unlabelled counter, for its start time.
    exposed = {name for name in families if not name.endswith("_created")}
    operations = (ROOT / "docs" / "operations.md").read_text()
    section = operations.split("### Metrics", 1)[1].split("\n## ", 1)[0]
    listed = {row[0] for row in table_rows(section)}
    assert "ivschat_grpc_redis_up" in listed
    assert listed == exposed
    assert "docs/operations.md#metrics" in links(ROOT / "README.md")


def test_the_batch_figures_are_given_once() -> None:
    bench = (ROOT / "docs" / "benchmarks.md").read_text()
    sizes = dict(re.findall(r"^\| (10,000|100,000) \| [\d,]+ \| ([\d.]+) MB \|$", bench, re.M))
    small, large = float(sizes["10,000"]), float(sizes["100,000"])
    growth = f"{large - small:.1f}"
    # Every other mention of the batch's memory is worked from that one table.
    assert f"Peak RSS grows by {growth} MB" in bench
    assert f"{small} → {large} MB: +{growth} MB" in bench
    # No other page, nor prose, gives a throughput of its own.
    for page in PAGES:
        assert re.findall(r"[\d,]+ items/s", page.read_text()) == [], page.name
    assert "docs/benchmarks.md" in links(ROOT / "README.md")


# --- calling.md's RoomClient snippet: tls_ca is a PEM file's path, or bytes


async def test_the_clients_take_a_ca_path_or_bytes_against_a_tls_server(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    use_emulator_credentials(monkeypatch)
    settings = facade_settings(
        emulator,
        create_rate=None,
        tls_cert=b"".join(p.bytes() for p in leaf.cert_chain_pems),
        tls_key=leaf.private_key_pem.bytes(),
        auth_tokens=("doc-token",),
    )
    async with serving(settings) as (service, _):
        target = f"127.0.0.1:{service.port}"
        # The snippet's spelling: a str path. Then a Path, then the PEM bytes.
        pems: list[Pem] = [str(ca_file), ca_file, ca_file.read_bytes()]
        for i, ca_pem in enumerate(pems):
            async with RoomClient.connect(
                target, tls_ca=ca_pem, server_name="localhost", token="doc-token"
            ) as rooms:
                room = await rooms.create_room(pb.CreateRoomRequest(name=f"ca-{i}"), deadline_s=10)
                assert room.name == f"ca-{i}"
            async with ChatClient.connect(
                target, tls_ca=ca_pem, server_name="localhost", token="doc-token"
            ) as chat:
                made = await chat.create_chat_token(room.arn, "doc-user", deadline_s=10)
                assert made.token
    assert sorted(r["name"] for r in emulator.state.rooms.values()) == ["ca-0", "ca-1", "ca-2"]


def test_pem_text_passed_as_a_str_is_refused_with_what_to_pass(tmp_path: Path) -> None:
    text = trustme.CA().cert_pem.bytes().decode()
    with pytest.raises(TypeError, match=r"tls_ca holds PEM text: pass it as bytes"):
        RoomClient.connect("127.0.0.1:1", tls_ca=text)
    with pytest.raises(FileNotFoundError):
        Connection("127.0.0.1:1", client_cert=tmp_path / "missing.pem")
    bad: Any = 42
    with pytest.raises(TypeError, match="client_key must be PEM bytes or a file path, not int"):
        Connection("127.0.0.1:1", client_key=bad)


@pytest.mark.parametrize("client", [RoomClient, ChatClient])
def test_connect_takes_typed_keywords_not_any_options(client: type[Any]) -> None:
    signature = inspect.signature(client.connect)
    hints = typing.get_type_hints(client.connect)
    keywords = {name: p for name, p in signature.parameters.items() if p.kind is p.KEYWORD_ONLY}
    assert set(keywords) == {"tls_ca", "client_cert", "client_key", "server_name", "token"}
    assert all(p.kind is not p.VAR_KEYWORD for p in signature.parameters.values())
    for name in ("tls_ca", "client_cert", "client_key"):
        assert set(typing.get_args(hints[name])) == {bytes, str, os.PathLike[str], type(None)}
    assert hints["token"] == str | None
