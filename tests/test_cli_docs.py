"""The command-line reference (docs/cli.md), the man page (docs/portwitness.1) and shell completion:
the two files are what scripts/gen_cli_docs.py makes from the commands' help today, the man page
is valid roff, and click's completion answers for the console script."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import click
import pytest

from conftest import ROOT, requires
from portwitness.cli import cli


def _generator():
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _generator()


def test_cli_md_and_man_page_are_current():
    stale = [str(p.relative_to(ROOT)) for p in gen.stale()]
    assert not stale, f"{', '.join(stale)} not current: run python3 scripts/gen_cli_docs.py"


def test_check_mode_names_a_stale_file(tmp_path, monkeypatch, capsys):
    stale_md = tmp_path / "cli.md"
    stale_md.write_text("# old\n")
    monkeypatch.setattr(gen, "CLI_MD", stale_md)
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    monkeypatch.setattr(gen, "MAN_PAGE", tmp_path / "portwitness.1")
    assert gen.main(["--check"]) == 1
    out = capsys.readouterr().out
    assert "cli.md is not current" in out and "portwitness.1 is not current" in out
    assert gen.main([]) == 0 and gen.main(["--check"]) == 0


def _visible_commands(group: click.Group, prefix: str = "portwitness") -> list[str]:
    ctx = click.Context(group)
    out = []
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        if sub is None or sub.hidden:
            continue
        out.append(f"{prefix} {name}")
        if isinstance(sub, click.Group):
            out += _visible_commands(sub, f"{prefix} {name}")
    return out


def test_every_command_and_option_is_in_both():
    md = gen.markdown()
    man = gen.manpage()
    commands = _visible_commands(cli)
    assert {"portwitness flows", "portwitness report", "portwitness config check"} <= set(commands)
    for command in commands:
        assert f"\n## {command}\n" in md
        assert f'\n.SS "{gen.roff(command)}"\n' in man
    for ctx in gen.walk(cli):
        for param in ctx.command.get_params(ctx):
            if isinstance(param, click.Option) and not param.hidden:
                for opt in param.opts:
                    assert opt in md, (ctx.command_path, opt)
                    assert gen.roff(opt) in man, (ctx.command_path, opt)


# Requests a generated page may use, and the escapes inside text.
REQUESTS = {".TH", ".SH", ".SS", ".PP", ".TP", ".B", ".nf", ".fi", '.\\"'}
ESCAPE = re.compile(r"\\(?:e|-|&|f[BIR]|\[u[0-9A-F]{4}\])")


def test_man_page_is_sane_roff():
    page = (ROOT / "docs" / "portwitness.1").read_text(encoding="utf-8")
    lines = page.splitlines()
    assert lines[0].startswith(".TH PORTWITNESS 1 ")
    sections = [line.split(" ", 1)[1] for line in lines if line.startswith(".SH ")]
    assert sections == [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "COMMANDS",
        '"EXIT STATUS"' if '.SH "EXIT STATUS"' in page else "EXIT STATUS",
        "ENVIRONMENT",
        '"SEE ALSO"' if '.SH "SEE ALSO"' in page else "SEE ALSO",
    ]
    assert lines[lines.index(".SH NAME") + 1].startswith("portwitness \\- ")
    for n, line in enumerate(lines, 1):
        assert line.isascii(), (n, line)
        if line.startswith((".", "'")):
            assert line.split(" ", 1)[0] in REQUESTS, (n, line)
        if not line.startswith('.\\"'):
            assert ESCAPE.sub("", line).count("\\") == 0, (n, line)
        if line.startswith(".TP"):
            assert lines[n].startswith("\\fB"), (n, lines[n])  # the tag line


def test_roff_escapes_what_troff_would_read():
    assert gen.roff("a-b \\ c") == "a\\-b \\e c"
    assert gen.roff(".starts a request\n'too") == "\\&.starts a request\n\\&'too"
    assert gen.roff("µs ≥") == "\\[u00B5]s \\[u2265]"


@requires("groff")
def test_groff_renders_the_man_page_without_a_warning():
    page = ROOT / "docs" / "portwitness.1"
    proc = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", str(page)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    text = re.sub(r".\x08", "", proc.stdout)  # overstrike bold and underline
    assert "PORTWITNESS(1)" in text and "EXIT STATUS" in text
    for command in _visible_commands(cli):
        assert command in text


def _complete(env: dict[str, str]) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    argv = [sys.executable, "-m", "portwitness.cli"]
    return subprocess.run(argv, env=full, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _portwitness_completion portwitness"),
        ("zsh", "#compdef portwitness"),
        ("fish", "complete --no-files --command portwitness"),
    ],
)
def test_completion_script_for_each_shell(shell, marker):
    proc = _complete({"_PORTWITNESS_COMPLETE": f"{shell}_source"})
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout


def test_completion_answers_commands_and_options():
    proc = _complete(
        {"_PORTWITNESS_COMPLETE": "bash_complete", "COMP_WORDS": "portwitness re", "COMP_CWORD": "1"}
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["plain,report"]
    proc = _complete(
        {"_PORTWITNESS_COMPLETE": "bash_complete", "COMP_WORDS": "portwitness usage --b", "COMP_CWORD": "2"}
    )
    assert proc.stdout.split() == ["plain,--by"]
