"""The documentation says what the code does: docs/formats.md lists every column of every table
with its type as a decode returns it, the policies shipped in examples/policies/ load without a
warning and are shown in docs/policy.md as they are, every key the policy reader accepts is
documented, every relative link in README.md and docs/ leads to a file, and the README's examples
print what it shows."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import polars as pl
import pytest

import portwitness as pw
from conftest import ROOT, need
from portwitness.capture import TABLES
from portwitness.cli import main
from portwitness.config import read_policy
from portwitness.config.policy import POLICY_KEYS, SERVICE_KEYS

DOCS = ROOT / "docs"
DEMO = Path(str(files("portwitness") / "demo" / "demo.pcap"))
POLICIES = sorted((ROOT / "examples" / "policies").glob("*.toml"))


def documented_tables(text: str) -> dict[str, list[tuple[str, str]]]:
    """`## \\`table\\`` sections of formats.md: their (column, type) rows, in order."""
    out: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        head = re.fullmatch(r"## `(\w+)`", line)
        if head:
            current = head.group(1)
            out[current] = []
            continue
        if line.startswith("## "):
            current = None
        row = re.match(r"\| `(\w+)` \| ([^|]+?) \|", line)
        if current and row:
            out[current].append((row.group(1), row.group(2)))
    return out


def type_name(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return f"Datetime({dtype.time_unit}, {dtype.time_zone})"
    return str(dtype)


def test_formats_md_has_every_column_with_its_type():
    cap = pw.decode(DEMO)
    documented = documented_tables((DOCS / "formats.md").read_text(encoding="utf-8"))
    # Every table a decode returns, a new one included, with every column in order.
    assert set(documented) - {"stats"} == set(TABLES)
    for table in TABLES:
        schema = getattr(cap, table).schema
        assert documented.get(table) == [(c, type_name(t)) for c, t in schema.items()], table
    stats = (DOCS / "formats.md").read_text(encoding="utf-8").split("## `stats`", 1)[1].split("##", 1)[0]
    assert set(re.findall(r"`(\w+)`", stats)) == set(cap.stats), "the stats counters"


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_example_policy_loads_without_warnings(path, capsys):
    policy = read_policy(path)
    assert policy.warnings == []
    assert policy.rules
    assert main(["config", "check", str(path), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no warning line
    plan = json.loads(captured.out)
    assert plan["schema"] == "portwitness.plan/1" and len(plan["rules"]) >= len(policy.rules)


def test_the_three_examples_are_shipped_and_shown_as_they_are():
    assert [p.name for p in POLICIES] == ["arcserve.toml", "nfs-pinned.toml", "windows-rpc.toml"]
    page = (DOCS / "policy.md").read_text(encoding="utf-8")
    for path in POLICIES:
        assert f"```toml\n{path.read_text(encoding='utf-8')}```" in page, path.name


def test_example_policies_say_what_they_are_for():
    arcserve, nfs, windows = (read_policy(p) for p in POLICIES)
    assert arcserve.usessl is True
    assert {r.service for r in arcserve.rules} >= {"catirpc", "caauthd", "tapeengine", "mgmt-callback"}
    assert {r.program for r in nfs.rules if not r.dynamic} >= {100000, 100003, 100005, 100021, 100024}
    dynamic = [r for r in windows.rules if r.dynamic]
    assert dynamic and all(str(p) == "49152-65535" for r in dynamic for p in r.ports)


def test_every_policy_key_is_documented():
    page = (DOCS / "policy.md").read_text(encoding="utf-8")
    for key in (*POLICY_KEYS, *SERVICE_KEYS):
        assert f"| `{key}` |" in page, key


def _markdown() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", _markdown(), ids=lambda p: p.name)
def test_relative_links_lead_to_files(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        assert (page.parent / target).exists(), f"{page.name}: {target}"


@pytest.mark.parametrize("page", _markdown(), ids=lambda p: p.name)
def test_no_machine_paths(page):
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"/work/|/root/|/home/\w+|pytest-of-", text), page.name


# --- README: the examples' outputs are what the commands print -------------------------------------

DEMO_DIR = DEMO.parent
BOX = re.compile(r"[┃│┏┓┗┛━┳┻╇┡┩└┘┴┬─╋┼┌┐├┤]")
# Commands shown on the user's own files, run here on the files the example was made from.
RUN_AS = {
    "portwitness report captures/ --config PortsConfig.cfg --mgmt-config mgmt.properties": "portwitness demo"
}


def readme_examples() -> list[tuple[str, list[str]]]:
    """(command, expected output lines) of every README code block that starts with `$ portwitness`;
    a command whose comment says `N columns` is shown as a terminal that wide prints it, and is run
    on one (the command is then `COLUMNS=N <command>`)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```\n(\$ portwitness.*?)```", text, re.S):
        first, *rest = block.rstrip("\n").split("\n")
        command, _, comment = first[2:].partition("  #")
        width = re.search(r"(\d+) columns", comment)
        out.append(((f"COLUMNS={width[1]} " if width else "") + command.strip(), rest))
    return out


def _normalised(text: str) -> str:
    return " ".join(BOX.sub(" ", text).split())


@pytest.mark.parametrize(
    "command, expected", readme_examples(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_readme_examples_print_what_the_readme_shows(command, expected):
    run = RUN_AS.get(command, command)
    cwd = DEMO_DIR if "PortsConfig.cfg" in run else ROOT
    columns = re.match(r"COLUMNS=(\d+) (.*)", run)
    if columns:
        need("script")
        run = columns[2]
    shell = run.replace("portwitness", f"{sys.executable} -m portwitness.cli", 1)
    package_parent = Path(pw.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    argv = ["bash", "-c", shell]
    if columns:
        # On a pseudo-terminal that wide (util-linux `script`), colours and escapes stripped below.
        env.update(COLUMNS=columns[1], LINES="50", NO_COLOR="1", TERM="xterm")
        argv = ["script", "-qec", shell, "/dev/null"]
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    if columns:
        proc.stdout = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", proc.stdout).replace("\r", "")
    # Box rules, widths and line breaks aside; "…" stands for columns the README leaves out.
    want = _normalised("\n".join(expected))
    pattern = ".*?".join(re.escape(part.strip()) for part in want.split("…"))
    assert re.search(pattern, _normalised(proc.stdout)), f"{command}:\n{proc.stdout}"
