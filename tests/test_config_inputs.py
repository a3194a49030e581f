"""Configuration files as Windows and Linux write them (UTF-8 with or without BOM, UTF-16 LE/BE with
or without BOM, Windows-1252, CRLF), and hostile ones: digits of other scripts, numbers of thousands
of digits, TOML nested 100,000 deep, lines that made a backtracking regex take seconds. Each hostile
input is one ConfigError naming line and column, at once: the old readers raised RecursionError or
ValueError, accepted fullwidth digits as ports, or took seconds (no timing is asserted: the inputs
are sized so that the old behaviour would hang the run)."""

from __future__ import annotations

import codecs

import pytest

from portwitness.cli import main
from portwitness.config import read_mgmt, read_policy, read_portsconfig
from portwitness.config.model import ConfigError, PortRange
from portwitness.config.sniff import MGMT, POLICY, PORTSCONFIG, sniff

MGMT_TEXT = "# Arcserve management service\n[remote]\nsslport=7100\nnonsslport=7199\nusessl=false\n"
PORTSCONFIG_TEXT = "# Réseau du siège — ports fixés\ntapeengine 6502\ncaservd 6000-6001;6010\n"
POLICY_TEXT = (
    '# Réseau\n[policy]\nname = "site"\n\n[[service]]\nname = "nfs"\nports = [2049, "20048-20050"]\n'
)


def windows(text: str, encoding: str) -> bytes:
    """`text` with CRLF line ends in `encoding`, with the byte-order mark Windows writes where it
    writes one ("-bom" suffix)."""
    crlf = text.replace("\n", "\r\n")
    if encoding == "utf-16-le-bom":
        return codecs.BOM_UTF16_LE + crlf.encode("utf-16-le")
    if encoding == "utf-16-be-bom":
        return codecs.BOM_UTF16_BE + crlf.encode("utf-16-be")
    if encoding == "utf-8-bom":
        return codecs.BOM_UTF8 + crlf.encode("utf-8")
    return crlf.encode(encoding)


ENCODINGS = ["utf-16-le-bom", "utf-16-be-bom", "utf-16-le", "utf-16-be", "utf-8-bom", "utf-8", "cp1252"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_mgmt_settings_in_every_windows_encoding(tmp_path, encoding):
    path = tmp_path / "mgmt.properties"
    path.write_bytes(windows(MGMT_TEXT, encoding))
    assert sniff(path).kind == MGMT
    policy = read_mgmt(path)
    # usessl=false stays false: read as garbage it used to leave the default, true.
    assert policy.usessl is False
    ports = {(r.service, r.scenario): r.ports for r in policy.rules if r.kind == "service"}
    assert ports[("mgmt-ssl", "remote")] == (PortRange(7100, 7100),)
    assert ports[("mgmt-plain", "remote")] == (PortRange(7199, 7199),)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_portsconfig_in_every_windows_encoding(tmp_path, encoding):
    path = tmp_path / "PortsConfig.cfg"
    path.write_bytes(windows(PORTSCONFIG_TEXT, encoding))
    assert sniff(path).kind == PORTSCONFIG
    policy = read_portsconfig(path)
    got = [(r.service, r.ports, r.origin.line) for r in policy.rules]
    assert got == [
        ("tapeengine", (PortRange(6502, 6502),), 2),
        ("caservd", (PortRange(6000, 6001), PortRange(6010, 6010)), 3),
    ]
    assert not policy.warnings


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_policy_in_every_windows_encoding(tmp_path, encoding):
    path = tmp_path / "policy.toml"
    path.write_bytes(windows(POLICY_TEXT, encoding))
    assert sniff(path).kind == POLICY
    policy = read_policy(path)
    assert [(r.service, r.ports) for r in policy.rules] == [
        ("nfs", (PortRange(2049, 2049), PortRange(20048, 20050)))
    ]


def test_cp1252_comment_is_not_mistaken_for_utf16(tmp_path):
    # Bytes 0x80-0x9f are cp1252 punctuation, invalid in UTF-8; no NUL anywhere: not UTF-16 either.
    path = tmp_path / "PortsConfig.cfg"
    path.write_bytes(b"# \x93quoted\x94 \x96 r\xe9seau\r\ncaservd 6000\r\n")
    assert [(r.service, r.ports) for r in read_portsconfig(path).rules] == [
        ("caservd", (PortRange(6000, 6000),))
    ]


def error_of(read, text: str) -> tuple[int, int, str]:
    with pytest.raises(ConfigError) as e:
        read(text)
    return e.value.line, e.value.column, e.value.message


def pc(text: str):
    return read_portsconfig("PortsConfig.cfg", text=text)


def mg(text: str):
    return read_mgmt("mgmt.properties", text=text)


def tp(text: str):
    return read_policy("policy.toml", text=text)


FULLWIDTH_6000 = "\uff16\uff10\uff10\uff10"  # ６０００: int() and str.isdigit() take it
ARABIC_INDIC_6502 = "\u0666\u0665\u0660\u0662"  # ٦٥٠٢


def test_ports_are_ascii_digits_only():
    assert error_of(pc, f"caservd {FULLWIDTH_6000}\n") == (
        1,
        9,
        "port item '６０００' holds '６': ports are written with 0-9",
    )
    assert error_of(pc, f"caservd 6000;60{ARABIC_INDIC_6502}\n") == (
        1,
        16,
        "port item '60٦٥٠٢' holds '٦': ports are written with 0-9",
    )
    assert error_of(mg, f"[remote]\nsslport = {FULLWIDTH_6000}\n") == (
        2,
        11,
        "port item '６０００' holds '６': ports are written with 0-9",
    )
    assert error_of(tp, f'[[service]]\nname = "nfs"\nports = ["{FULLWIDTH_6000}"]\n') == (
        3,
        11,
        "port item '６０００' holds '６': ports are written with 0-9",
    )


def test_ten_thousand_digit_port_is_one_short_error():
    digits = "7" * 10_000
    assert error_of(pc, f"caservd {digits}\n") == (
        1,
        9,
        "port '777777777777'... (10000 characters) outside 1-65535",
    )
    assert error_of(mg, f"sslport={digits}\n") == (
        1,
        9,
        "port '777777777777'... (10000 characters) outside 1-65535",
    )
    assert error_of(pc, f"caservd 6000-{digits}\n") == (
        1,
        14,
        "port '777777777777'... (10000 characters) outside 1-65535",
    )
    # In TOML the number never reaches int(): the old reader raised ValueError (4,300-digit limit).
    assert error_of(tp, f'[[service]]\nname = "nfs"\nports = [{digits}]\n') == (
        3,
        10,
        "a value of 10000 characters: no port or setting is that long",
    )
    # Leading zeros are no longer a number, and not refused.
    assert pc("caservd 0000006000\n").rules[0].ports == (PortRange(6000, 6000),)


def test_deep_toml_is_one_error_not_a_recursion_error():
    deep = 100_000
    assert error_of(tp, "a = " + "[" * deep + "]" * deep + "\n") == (1, 37, "nested deeper than 32 levels")
    assert error_of(tp, "a = " + "{b = " * deep + "1" + "}" * deep + "\n") == (
        1,
        165,
        "nested deeper than 32 levels",
    )
    # Brackets inside strings and comments do not count.
    policy = tp(
        "# "
        + "[" * 100
        + '\n[policy]\nname = "'
        + "{" * 100
        + '"\n[[service]]\nname = "nfs"\nports = [2049]\n'
    )
    assert [r.service for r in policy.rules] == ["nfs"]


def test_long_line_policy_reads_at_once():
    # A line of `[` and 3,000 blanks inside a multi-line string: the header regex of the locator
    # backtracked cubically on it (16 s for 3 KB) while placing the error below.
    text = '[policy]\nname = """\n[' + " " * 3000 + '\n"""\n[[service]]\nname = "nfs"\nports = [70000]\n'
    assert error_of(tp, text) == (7, 10, "port 70000 outside 1-65535")


def test_management_trailing_comment_after_long_blanks():
    # `\s+#.*$` searched from every blank of the run: quadratic.
    policy = mg("[remote]\nsslport=7100" + " " * 20_000 + "# note\n")
    ssl = [r for r in policy.rules if r.service == "mgmt-ssl" and r.scenario == "remote"]
    assert ssl[0].ports == (PortRange(7100, 7100),)


def test_cli_deep_policy_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "deep.toml"
    path.write_text('[[service]]\nname = "nfs"\nports = ' + "[" * 100_000 + "]" * 100_000 + "\n")
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"portwitness: error: {path}:3:41: nested deeper than 32 levels"]
