"""The malformed-capture suite (pcaps/broken/, written by pcaps/make_broken.py): for each damaged
capture, the one line the command line prints, its exit code, and the packets and flows still
decoded. A case the core does not meet yet carries an ``xfail`` reason in its expectations."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

import portwitness as pw
from conftest import PCAPS
from portwitness.cli import main

BROKEN = PCAPS / "broken"


def _cases() -> list:
    """(capture, expectations): the new captures (``<file>.expect.json`` with ``exit_code``) and
    the reused ones (``<file>.cli.json`` beside make_fixtures.py's ``<file>.expect.json``)."""
    out = []
    for exp_file in sorted(BROKEN.glob("*.expect.json")):
        capture = BROKEN / exp_file.name.removesuffix(".expect.json")
        expect = json.loads(exp_file.read_text())
        cli = BROKEN / f"{capture.name}.cli.json"
        if cli.exists():
            expect = {**expect, **json.loads(cli.read_text()), "decode_error": None}
        elif "exit_code" not in expect:
            continue  # an older broken fixture this suite does not cover (tests/test_broken.py does)
        marks = [pytest.mark.xfail(strict=True, reason=expect["xfail"])] if "xfail" in expect else []
        out.append(pytest.param(capture, expect, id=capture.name, marks=marks))
    return out


CASES = _cases()


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_suite_is_complete():
    names = {p.id for p in CASES}
    assert len(names) == 15
    assert {"truncated_last_record.pcap", "huge_caplen.pcap", "zeros.pcap", "cut_gzip.pcap.gz"} <= names
    for p in CASES:
        assert p.values[0].exists()


@pytest.mark.parametrize(("capture", "expect"), CASES)
def test_command_line(capture: Path, expect: dict, tmp_path, capsys):
    out_file = tmp_path / "flows.csv"
    code, out, err = run(["flows", str(capture), "-o", str(out_file)], capsys)
    line = expect["stderr"].replace("{path}", str(capture))
    assert err.splitlines() == ([line] if line else [])
    assert code == expect["exit_code"]
    assert out == ""
    if code == 0:
        assert pl.read_csv(out_file).height == expect["flows"]


@pytest.mark.parametrize(("capture", "expect"), CASES)
def test_decode(capture: Path, expect: dict):
    if expect["decode_error"]:
        with pytest.raises(pw.CaptureFormatError) as err:
            pw.decode(capture)
        assert str(err.value) == f"{capture}: {expect['decode_error']}"
        return
    cap = pw.decode(capture)
    assert cap.stats["records"] == expect["packets_decoded"]
    assert cap.captures["packets"].to_list() == [expect["packets_decoded"]]
    assert cap.flows.height == expect["flows"]
    assert cap.anomaly_counts() == expect["anomalies"]
    assert cap.stats["anomalies"] == sum(expect["anomalies"].values())


FATAL = [p for p in CASES if p.values[1]["exit_code"] != 0]


@pytest.mark.parametrize(("capture", "expect"), FATAL)
def test_unreadable_file_among_good_ones(capture: Path, expect: dict, tmp_path, capsys):
    """One unreadable file among good ones stops the run before anything is written, naming it;
    with --skip-unreadable the others are read and it is named as skipped."""
    good = PCAPS / "tcp_basic.pcap"
    with pytest.raises(pw.CaptureFormatError, match=f"^{re.escape(str(capture))}: "):
        pw.decode([capture, good])
    cap = pw.decode([capture, good], skip_unreadable=True)
    (skipped,) = cap.skipped
    assert skipped.path == str(capture) and skipped.reason == expect["decode_error"]
    assert cap.flows.height == pw.decode(good).flows.height
    out = tmp_path / "f.csv"
    code, _, err = run(["flows", str(capture), str(good), "-o", str(out)], capsys)
    assert code == 1 and not out.exists()
    (line,) = err.splitlines()
    assert line.startswith(f"portwitness: error: {capture}: {expect['decode_error']}")
    code, _, err = run(["flows", "--skip-unreadable", str(capture), str(good), "-o", str(out)], capsys)
    assert code == 0 and out.exists()
    assert f"portwitness: warning: skipped {capture}: {expect['decode_error']}" in err.splitlines()


# --------------------------------------------------------------------------
# A directory passed as a capture: expanded into the captures inside it, told by their magic.
# --------------------------------------------------------------------------


def test_empty_directory(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    message = f"{empty}: directory holds no pcap or pcapng capture"
    code, out, err = run(["flows", str(empty), "-o", str(tmp_path / "f.csv")], capsys)
    assert (code, out, err) == (1, "", f"portwitness: error: {message}\n")
    with pytest.raises(pw.CaptureFormatError, match="directory holds no pcap or pcapng capture"):
        pw.decode(empty)


def test_directory_without_a_capture(tmp_path, capsys):
    """Files that do not start with a capture magic are not captures, whatever their name: a
    directory holding only such files is an error, like an empty one."""
    d = tmp_path / "notes"
    (d / "sub").mkdir(parents=True)
    (d / "README.txt").write_text("not a capture\n")
    shutil.copy(BROKEN / "zeros.pcap", d / "sub" / "zeros.pcap")
    shutil.copy(BROKEN / "bad_magic.pcap", d / "bad_magic.pcap")
    code, out, err = run(["flows", str(d), "-o", str(tmp_path / "f.csv")], capsys)
    assert (code, out, err) == (
        1,
        "",
        f"portwitness: error: {d}: directory holds no pcap or pcapng capture\n",
    )


def test_empty_directory_beside_a_capture(tmp_path, capsys):
    """An input that names nothing to read fails the command, even beside a good capture."""
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["flows", str(PCAPS / "tcp_basic.pcap"), str(empty), "-o", str(tmp_path / "f.csv")]
    code, _, err = run(args, capsys)
    assert (code, err) == (
        1,
        f"portwitness: error: {empty}: directory holds no pcap or pcapng capture; "
        "nothing was read (--skip-unreadable reads the rest)\n",
    )


def test_directory_skips_what_is_no_capture(tmp_path, capsys):
    d = tmp_path / "day"
    d.mkdir()
    shutil.copy(PCAPS / "tcp_basic.pcap", d / "a.pcap")
    shutil.copy(BROKEN / "zeros.pcap", d / "b.pcap")
    (d / "a.pcap.flows.json").write_text("[]\n")
    code, _, err = run(["flows", str(d), "-o", str(tmp_path / "f.csv")], capsys)
    assert code == 0
    assert pl.read_csv(tmp_path / "f.csv").height == 6
    assert "b.pcap" not in err
    assert pw.decode(d).captures["capture"].to_list() == [str(d / "a.pcap")]


def test_the_broken_directory(tmp_path, capsys):
    """pcaps/broken as one input: every file with a capture magic is decoded, in path order. Those
    the core cannot read stop the run, or with --skip-unreadable are named and left out; the
    packets are those of the files decoded one by one."""
    files = pw.expand_paths([BROKEN])
    assert files == sorted(files) and str(BROKEN / "cut_gzip.pcap.gz") in files
    assert not any(f.endswith((".json", "zeros.pcap", "bad_magic.pcap")) for f in files)
    records = 0
    unreadable = []
    for f in files:
        try:
            records += pw.decode(f).stats["records"]
        except pw.CaptureFormatError:
            unreadable.append(f)
    assert unreadable
    with pytest.raises(pw.CaptureFormatError):
        pw.decode(BROKEN)
    cap = pw.decode(BROKEN, skip_unreadable=True)
    assert cap.captures["capture"].to_list() == files
    assert cap.stats["records"] == records
    assert [i.path for i in cap.skipped] == unreadable
    code, out, err = run(["flows", str(BROKEN), "-o", str(tmp_path / "f.csv")], capsys)
    assert code == 1 and out == "" and not (tmp_path / "f.csv").exists()
    code, out, err = run(["flows", "--skip-unreadable", str(BROKEN), "-o", str(tmp_path / "f.csv")], capsys)
    assert code == 0 and out == ""
    lines = err.splitlines()
    assert [x for x in lines if x.startswith("portwitness: warning: skipped ")] == [
        f"portwitness: warning: skipped {i.path}: {i.reason}" for i in cap.skipped
    ]
    assert "truncated_record_header 1" in lines[-1]
