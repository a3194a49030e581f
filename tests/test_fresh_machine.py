"""The quick start's `pip install '.[test]' && python3 -m pytest` on a machine with nothing but pip:
tests that need tshark, root, the real peers or the real captures are skipped with one line naming
what is missing and the Debian package that brings it, the run ends with a count and how to run
them, and PORTWITNESS_REQUIRE_ALL=1 (CI) turns every such skip into a failure.

pytest runs in a subprocess whose PATH holds nothing (the interpreter is called by its full path),
whose user is not root (a plugin makes os.geteuid() answer 1000) and whose real captures are
somewhere that does not exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import portwitness
from conftest import NEEDS, REQUIRE_ALL, ROOT

TESTS = Path(__file__).resolve().parent

NOT_ROOT = "import os\n\nos.geteuid = lambda: 1000\n"

# Every way a test says what it needs: requires() on a test and on a parametrized test, the tshark
# and interop markers, the shared_captures fixture, a parameter that is a real capture, need()
# inside a test; and one test that needs nothing.
NEEDY = """
import pytest
from conftest import SHARED_CAPTURES, need, requires


@requires("tshark")
def test_tshark():
    raise AssertionError("must not run")


@requires("chromium")
@pytest.mark.parametrize("n", [1, 2])
def test_chromium(n):
    raise AssertionError("must not run")


@pytest.mark.tshark
def test_tshark_marker():
    raise AssertionError("must not run")


@pytest.mark.interop
def test_interop_marker():
    raise AssertionError("must not run")


def test_fixture(shared_captures):
    raise AssertionError("must not run")


@pytest.mark.parametrize("capture", [SHARED_CAPTURES / "zeek-nfs_write.pcap"])
def test_real_capture_parameter(capture):
    raise AssertionError("must not run")


def test_need_inside():
    need("nft", "iptables")
    raise AssertionError("must not run")


def test_needs_nothing():
    assert 1 + 1 == 2
"""


def run_pytest(tmp_path: Path, *args: str, require_all: bool = False) -> subprocess.CompletedProcess:
    plugin_dir = tmp_path / "plugin"
    plugin_dir.mkdir(exist_ok=True)
    (plugin_dir / "pw_not_root.py").write_text(NOT_ROOT)
    empty = tmp_path / "empty-path"
    empty.mkdir(exist_ok=True)
    package_parent = Path(portwitness.__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k not in (REQUIRE_ALL, "PYTEST_ADDOPTS")}
    env.update(
        PATH=str(empty),
        PYTHONPATH=os.pathsep.join([str(plugin_dir), str(TESTS), str(package_parent)]),
        PORTWITNESS_CAPTURES=str(tmp_path / "no-captures-here"),
    )
    if require_all:
        env[REQUIRE_ALL] = "1"
    argv = [sys.executable, "-m", "pytest", "-p", "pw_not_root", "-p", "no:cacheprovider", "-q", *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def needy(tmp_path: Path) -> list[str]:
    """The tests above, in a folder of their own, with tests/conftest.py loaded as a plugin."""
    folder = tmp_path / "needy"
    folder.mkdir()
    (folder / "test_needy.py").write_text(NEEDY)
    return ["-p", "conftest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(folder), str(folder)]


def skip_lines(out: str) -> dict[str, int]:
    """`SKIPPED [n] tests/conftest.py:N: reason` lines of -ra's summary: reason -> n."""
    found: dict[str, int] = {}
    for n, reason in re.findall(r"^SKIPPED \[(\d+)\] [^:]+:\d+: (.*)$", out, re.M):
        found[reason] = found.get(reason, 0) + int(n)
    return found


def test_missing_tools_skip_with_the_package_and_a_summary(tmp_path):
    proc = run_pytest(tmp_path, *needy(tmp_path))
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert re.search(r"^1 passed, 8 skipped", out.splitlines()[-1]), out
    skipped = skip_lines(out)
    assert skipped["needs tshark (apt-get install tshark)"] == 2
    assert skipped["needs chromium (apt-get install chromium)"] == 2
    assert skipped["needs nft, iptables (apt-get install nftables iptables)"] == 1
    captures = NEEDS["real captures"].why
    assert skipped[f"needs real captures ({captures})"] == 2
    interop = [r for r in skipped if r.startswith("needs root, unshare, nsenter")]
    assert len(interop) == 1 and skipped[interop[0]] == 1
    assert interop[0].endswith(
        "(apt-get install util-linux coreutils iproute2 tcpdump rpcbind smbclient openssl; "
        "run as root: network namespaces, a capture on lo, ports 111 and 135)"
    ), interop[0]
    # samba-dcerpcd is found by its path, not on PATH: present on a machine that has Samba.
    assert ("samba-dcerpcd" in interop[0]) != NEEDS["samba-dcerpcd"].present()
    # The summary: how many, for what, and how to run them.
    assert "8 tests skipped for what this machine lacks (" in out
    assert re.search(
        r"^To run them: apt-get install .*chromium.*; run as root; put the real captures", out, re.M
    )
    assert f"{REQUIRE_ALL}=1 makes these skips failures." in out


def test_require_all_turns_the_skips_into_failures(tmp_path):
    proc = run_pytest(tmp_path, *needy(tmp_path), require_all=True)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    # Seven fail in setup (errors), need() inside a test fails the test itself.
    assert re.search(r"^1 failed, 1 passed, 7 errors", out.splitlines()[-1]), out
    assert "SKIPPED" not in out
    assert f"needs tshark (apt-get install tshark) [{REQUIRE_ALL}=1]" in out
    assert "8 tests failed for what this machine lacks (" in out
    assert f"or unset {REQUIRE_ALL} to skip them." in out


def test_the_suites_own_needy_tests_skip(tmp_path):
    """The differential, interop and browser tests of the suite itself, on such a machine."""
    proc = run_pytest(
        tmp_path,
        "tests/test_tshark.py::test_broken_fixture_agrees_on_what_both_read",
        "tests/test_interop.py",
        "tests/test_report.py",
        "tests/test_oncrpc.py",
        "-k",
        "broken_fixture or test_interop or chromium or real or tshark",
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    last = out.splitlines()[-1]
    assert " skipped" in last and "failed" not in last and "error" not in last, last
    reasons = skip_lines(out)
    assert any(r.startswith("needs tshark (") for r in reasons), reasons
    assert any(r.startswith("needs chromium (") for r in reasons), reasons
    assert any(r.startswith("needs root, ") for r in reasons), reasons
    assert any(r.startswith("needs real captures (") for r in reasons), reasons
    assert re.search(r"^\d+ tests skipped for what this machine lacks", out, re.M)


def test_ci_runs_the_suite_with_every_skip_a_failure():
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"{REQUIRE_ALL}=1 python3 -m pytest" in ci
    # and installs what the needs name (groff for the man page included)
    for package in (
        "tshark",
        "tcpdump",
        "rpcbind",
        "samba",
        "smbclient",
        "openssl",
        "chromium",
        "groff-base",
    ):
        assert f"need+=({package})" in ci, package
